"""The bookkeeping of benchmarks/selection_ceiling.py on hand-made records.

That benchmark says whether choosing among the built-ins window by window could
reach issue 17's target; its numbers are only as good as these helpers: the sums
per expert, seed and window, the composite of the chosen experts' frames (with the
switch pause charged only where the point really changes), and the online replays,
which may only look at windows that have already ended.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "selection_ceiling.py"
_spec = importlib.util.spec_from_file_location("selection_ceiling", _PATH)
sel = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(sel)


def _records() -> pd.DataFrame:
    """Two experts, two seeds, frames at 0..5 s (windows of 2 s: three, two frames each).

    Expert "a" serves at point 3 throughout; "b" at point 5, then point 3 from 4 s.
    Latencies: a = 1 + arrival/10 + seed; b = 2 - arrival/10 + seed (b wins from 5 s on).
    """
    rows = []
    for seed in (1, 2):
        for t in range(6):
            rows.append(("a", seed, float(t), 1 + t / 10 + seed, 3))
            rows.append(("b", seed, float(t), 2 - t / 10 + seed, 5 if t < 4 else 3))
    # shuffled: the helpers must not rely on the records' order
    frame = pd.DataFrame(rows, columns=["policy", "seed", "arrival_s", "latency_s", "point"])
    return frame.sample(frac=1.0, random_state=0).reset_index(drop=True)


def test_window_sums_add_each_experts_frames_per_seed_and_window():
    seeds, lat, count, first, last = sel.window_sums(_records(), ["a", "b"], 2.0)
    assert seeds == [1, 2]
    assert lat.shape == (2, 2, 3)
    # expert a, seed 1, window 1 (frames at 2 and 3 s): (1 + .2 + 1) + (1 + .3 + 1)
    assert lat[0, 0, 1] == pytest.approx(4.5)
    # expert b, seed 2, window 2 (frames at 4 and 5 s): (2 - .4 + 2) + (2 - .5 + 2)
    assert lat[1, 1, 2] == pytest.approx(7.1)
    assert (count == 2).all()
    assert first[1, 0].tolist() == [5, 5, 3] and last[1, 0].tolist() == [5, 5, 3]
    assert first[0].tolist() == [[3, 3, 3], [3, 3, 3]]


def test_a_constant_choice_gives_back_the_experts_own_mean():
    records = _records()
    _seeds, lat, count, first, last = sel.window_sums(records, ["a", "b"], 2.0)
    for e, name in enumerate(["a", "b"]):
        choice = np.full((2, 3), e)
        got = sel.composite_means(lat, count, first, last, choice, pause_s=0.7)
        want = records[records["policy"] == name].groupby("seed")["latency_s"].mean()
        # b's own move (5 -> 3 between windows 1 and 2) is in its latencies already:
        # the composite charges no pause for it
        assert got == pytest.approx(want.to_numpy())


def test_the_pause_is_charged_where_the_chosen_point_changes_and_only_there():
    _seeds, lat, count, first, last = sel.window_sums(_records(), ["a", "b"], 2.0)
    # b in window 0 (point 5), a in window 1 (point 3: a move), b in window 2 (point 3: none)
    choice = np.array([[1, 0, 1], [1, 0, 1]])
    free = sel.composite_means(lat, count, first, last, choice, pause_s=0.0)
    pays = sel.composite_means(lat, count, first, last, choice, pause_s=0.7)
    seed1 = [2.0 + 1, 1.9 + 1, 1.2 + 1, 1.3 + 1, 1.6 + 1, 1.5 + 1]
    assert free[0] == pytest.approx(np.mean(seed1))
    assert pays - free == pytest.approx([0.7 / 6, 0.7 / 6])


def test_follow_the_leader_looks_only_at_windows_that_have_ended():
    # expert 1 wins window 2 by far, expert 0 the two before it
    lat = np.array([[[1.0, 1.0, 9.0, 1.0]], [[2.0, 2.0, 0.0, 2.0]]])
    assert sel.online_choice(lat, default=1, discount=None).tolist() == [[1, 0, 0, 1]]
    # the last window's leader only
    assert sel.online_choice(lat, default=0, discount=0.0).tolist() == [[0, 0, 0, 1]]
    # discounted by a half: after window 2, expert 0 has 0.25 + 0.5 + 9, expert 1 0.5 + 1 + 0
    assert sel.online_choice(lat, default=0, discount=0.5).tolist() == [[0, 0, 0, 1]]


def test_the_seed_rows_are_one_per_seed_and_refuse_a_length_mismatch():
    assert sel._seed_rows("x", [1, 2], [0.5, 0.6]) == [
        {"policy": "x", "seed": 1, "mean_s": 0.5},
        {"policy": "x", "seed": 2, "mean_s": 0.6},
    ]
    with pytest.raises(ValueError):
        sel._seed_rows("x", [1, 2], [0.5])
