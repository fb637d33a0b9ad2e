"""Simulator speed: the fast engine vs the naive SimPy one, measured side by side.

Excluded from the default run (``-m benchmark`` runs it): shared machines are
noisy, so this reports medians of repeated runs and their ratio rather than
timing anything inside the normal tests.
"""

from __future__ import annotations

import json

import pytest

from adaptsim.simulator.bench import bench


@pytest.mark.benchmark
def test_fast_engine_beats_naive_simpy(capsys):
    result = bench(repeats=3)
    with capsys.disabled():
        print("\n" + json.dumps(result, indent=1))
    assert result["speedup"] >= 3.0
    assert result["fast_requests_per_s"] >= 100_000
