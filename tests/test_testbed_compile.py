"""The testbed's edge, cloud and switch-cost measurer compile each sub-model as its own
tf.function (``models.split.compiled``): no TensorFlow retracing flood in their logs.

A fresh process each, as the real run starts them: TensorFlow warns of retracing per
Python code object and process (tests/test_profiler_output.py for the profiler). With
the shared lambda they used before, the fifth LeNet sub-model's first trace printed
"5 out of the last 5 calls ... triggered tf.function retracing" into edge.log and
cloud.log, and so into validation.json's log tails.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

BUILDS = {
    "edge heads": "from adaptsim.testbed.edge import build_heads; h, x, _ = build_heads('lenet');"
    "print(sum(f is not None for f in h.values()), 'heads')",
    "cloud tails": "from adaptsim.testbed.server import build_tails; "
    "t = build_tails(['lenet'], progress=lambda s: None); print(len(t['lenet']), 'tails')",
    "switch costs": "from adaptsim.testbed.switch import switch_costs; "
    "c = switch_costs('lenet', repeats=1); print(len(c), 'costs')",
}


@pytest.mark.slow
@pytest.mark.parametrize("what", list(BUILDS))
def test_every_sub_model_compiles_without_a_retracing_warning(what):
    r = subprocess.run([sys.executable, "-c", BUILDS[what]], capture_output=True, text=True,
                       timeout=300)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "retracing" not in r.stdout + r.stderr, r.stderr
    assert int(r.stdout.split()[-2]) >= 6  # enough sub-models that a shared counter warns
