"""Validation folders damaged or foreign, as `validate --fold-back`, the validation report,
the scorecard and re-scoring read them: one line naming the file, never a traceback.

The audit of 1 Dec found every reader of a validation folder going straight to pandas
and ``json``: ``validate --fold-back`` of a folder with a truncated Parquet file, a
``validation.json`` that is not an object, or a summary without the columns the
fold-back fits on raised KeyError, ArrowInvalid or JSONDecodeError (for
``--fold-back``: before the real run, so nothing was lost but the message). They all
read through :mod:`adaptsim.testbed.folder` now. The folder here is a stand-in
written by the real writer (a simulated "real" run with a real run's ``return_s``),
as in tests/test_testbed_report.py: no root, no namespaces.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from adaptsim.errors import UserError
from adaptsim.simulator import run_scenario
from adaptsim.simulator.scenario import PolicySpec
from adaptsim.testbed import scenario_for_testbed
from adaptsim.testbed.foldback import FoldBack, apply_foldback, fit_foldback
from adaptsim.testbed.folder import fold_back_source
from adaptsim.testbed.report import write_validation_report
from adaptsim.testbed.rescore import twin_scenario
from adaptsim.testbed.validate import write_validation
from damage import Damage, csv_edit, json_edit, parquet_edit, replace_with, truncate

DATA = Path(__file__).parent / "data"
SCENARIO = DATA / "testbed_lenet.yaml"
CALIBRATION = Path(__file__).parents[1] / "src/adaptsim/data/calibration_own_2core.json"


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    sc = scenario_for_testbed(SCENARIO, CALIBRATION, duration_s=4.0)
    sc = replace(sc, policies=(PolicySpec(policy="all-edge"), PolicySpec(policy="all-cloud")))
    stand_in = FoldBack(edge_scale=1.4, cloud_scale=1.2, uplink_extra_s=0.002, return_s=0.0,
                        pause_s=0.0, frames=40)  # fmt: skip
    real = run_scenario(apply_foldback(sc, stand_in))
    real.records["return_s"] = 0.001  # a real run's own column
    facts = {"scenario": str(SCENARIO), "calibration": str(CALIBRATION), "time_scale": 1.0,
             "duration_s": 4.0, "seeds": list(sc.seeds), "applied": {}, "notes": [],
             "placement": {"edge_cpus": [0], "cloud_cpus": [1], "cloud_workers": 1,
                           "memory_stress_cpus": [1]},
             "one_way_latency": "added in the application", "zero_rate": "tbf",
             "load_average": [1.0, 1.0, 1.0], "interrupted": False}  # fmt: skip
    out = write_validation(tmp_path_factory.mktemp("v") / "v", real, run_scenario(sc), facts)
    fit_foldback(out)  # the stand-in is one a fold-back fits on
    return out


def _copy(folder: Path, tmp_path: Path) -> Path:
    import shutil

    return Path(shutil.copytree(folder, tmp_path / "v"))


_write = replace_with
_truncate = truncate


def _facts(edit: Callable[[dict], None]) -> Damage:
    return json_edit("validation.json", edit)


def _records(side: str, edit: Callable[[pd.DataFrame], pd.DataFrame]) -> Damage:
    return parquet_edit(f"{side}/records.parquet", edit)


def _summary(edit: Callable[[pd.DataFrame], pd.DataFrame]) -> Damage:
    return csv_edit("real/summary.csv", edit)


# case -> (damage, readers that must refuse it in one line)
FOLD, REPORT, RESCORE = "fold-back", "report", "rescore"
DAMAGED = {
    "validation.json not JSON": (_write("validation.json", "{"), (FOLD, REPORT, RESCORE)),
    "validation.json a list": (_write("validation.json", "[1]"), (FOLD, REPORT, RESCORE)),
    "validation.json binary": (_write("validation.json", b"\x00\xff"), (FOLD, REPORT, RESCORE)),
    "validation.json seeds a word": (_facts(lambda f: f.update(seeds="x")), (FOLD, RESCORE)),
    "validation.json without a placement": (_facts(lambda f: f.pop("placement")), (REPORT,)),
    "validation.json applied a list": (_facts(lambda f: f.update(applied=[1])), (FOLD,)),
    "real records truncated": (_truncate("real/records.parquet"), (FOLD, REPORT)),
    "simulated records truncated": (_truncate("simulated/records.parquet"), (FOLD, REPORT)),
    "real records latency words": (
        _records("real", lambda r: r.assign(latency_s="x")),
        (FOLD, REPORT),
    ),
    "real records without return_s": (
        _records("real", lambda r: r.drop(columns="return_s")),
        (FOLD,),
    ),
    "real summary without switching_s": (
        _summary(lambda s: s.drop(columns="switching_s")),
        (FOLD,),
    ),
    "real summary empty": (_write("real/summary.csv", ""), (FOLD, RESCORE)),
    "comparison.csv binary": (_write("comparison.csv", b"\x00\x01\xff"), (REPORT,)),
}

READERS = {
    FOLD: lambda v: fold_back_source(v, "--fold-back"),
    REPORT: write_validation_report,
    RESCORE: twin_scenario,
}


@pytest.mark.parametrize(
    ("case", "reader"),
    [(c, r) for c, (_, readers) in DAMAGED.items() for r in readers],
)
def test_a_damaged_validation_folder_is_one_line(folder, tmp_path, case, reader):
    v = _copy(folder, tmp_path)
    culprit = DAMAGED[case][0](v)
    with pytest.raises(UserError) as exc:
        READERS[reader](v)
    message = str(exc.value)
    assert "\n" not in message and str(culprit) in message, message


def test_the_intact_folder_passes_every_reader(folder, tmp_path):
    v = _copy(folder, tmp_path)
    fold_back_source(v)
    write_validation_report(v)
    assert twin_scenario(v).duration_s == 4.0
