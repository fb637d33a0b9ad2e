"""The study's analyses on a grid whose every answer was worked out by hand.

Three points over 24 conditions (edge CPU 0/50/100 %, edge memory 0/100 %, 10 and
50 Mbit/s, cloud CPU 0 %, cloud memory 0/50 %), with latencies from plain formulas:

    point 1 (raw input to the cloud): 0.1 + 8 / bandwidth + 0.002 * cloud_mem
    point 2:                          0.2 + 2 / bandwidth + 0.001 * (edge_cpu + cloud_mem)
    point 3 (all on the edge):        0.3 + 0.004 * edge_cpu + 0.001 * edge_mem

At the baseline (no stress, 50 Mbit/s) they take 0.26, 0.24 and 0.30 s: point 2 is
best. The expected values in the tests below were computed from these formulas on
paper (each case's arithmetic is in its comment), not read from the code's output.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from adaptsim.study.analysis import (
    best_points,
    combined_gains,
    distribution,
    gains,
    sensitivity,
    slices,
)
from adaptsim.study.latency import COND_COLUMNS, LatencyGrid

LEVELS = {
    "edge_cpu_pct": (0.0, 50.0, 100.0),
    "edge_mem_pct": (0.0, 100.0),
    "bandwidth_mbps": (10.0, 50.0),
    "cloud_cpu_pct": (0.0,),
    "cloud_mem_pct": (0.0, 50.0),
}


def _latency(ecpu, emem, bw, cmem):
    return np.array(
        [
            0.1 + 8 / bw + 0.002 * cmem,
            0.2 + 2 / bw + 0.001 * (ecpu + cmem),
            0.3 + 0.004 * ecpu + 0.001 * emem,
        ]
    )


_ARGS = ("edge_cpu_pct", "edge_mem_pct", "bandwidth_mbps", "cloud_mem_pct")


def _grid(latency=None, conds=None) -> LatencyGrid:
    if conds is None:
        conds = pd.DataFrame(
            list(itertools.product(*(LEVELS[c] for c in COND_COLUMNS))), columns=COND_COLUMNS
        )
    if latency is None:
        latency = np.array(
            [
                _latency(r.edge_cpu_pct, r.edge_mem_pct, r.bandwidth_mbps, r.cloud_mem_pct)
                for r in conds.itertuples()
            ]
        )
    return LatencyGrid("toy", conds, np.array([1, 2, 3]), ("in", "mid", "out"), latency, {})


def _at(frame: pd.DataFrame, edge_cpu=0.0, edge_mem=0.0, bw=50.0, cloud_mem=0.0) -> pd.Series:
    hit = frame[
        (frame["edge_cpu_pct"] == edge_cpu)
        & (frame["edge_mem_pct"] == edge_mem)
        & (frame["bandwidth_mbps"] == bw)
        & (frame["cloud_mem_pct"] == cloud_mem)
    ]
    assert len(hit) == 1
    return hit.iloc[0]


def test_best_point_and_runner_up_per_condition():
    best = best_points(_grid())
    assert len(best) == 24 and set(best["model"]) == {"toy"}
    # baseline: 0.26, 0.24, 0.30 -> point 2, runner-up point 1
    r = _at(best)
    assert (r["best_point"], r["best_layer"], r["best_latency_s"]) == (2, "mid", 0.24)
    assert (r["runner_up_point"], r["runner_up_layer"], r["runner_up_latency_s"]) == (1, "in", 0.26)
    # 10 Mbit/s: 0.9, 0.4, 0.3 -> point 3, runner-up point 2
    r = _at(best, bw=10.0)
    assert (r["best_point"], r["runner_up_point"], r["runner_up_latency_s"]) == (3, 2, 0.4)
    # edge CPU 50 %: 0.26, 0.29, 0.5 -> point 1, runner-up 2
    r = _at(best, edge_cpu=50.0)
    assert (r["best_point"], r["best_latency_s"], r["runner_up_point"]) == (1, 0.26, 2)
    # cloud memory 50 %: 0.36, 0.29, 0.30 -> point 2, runner-up 3
    r = _at(best, cloud_mem=50.0)
    assert (r["best_point"], r["runner_up_point"], r["runner_up_latency_s"]) == (2, 3, 0.3)
    # two conditions where points 2 and 3 take the same time: 10 Mbit/s with edge memory
    # 100 % (0.4 and 0.3 + 0.1 s), and with edge CPU 50 % and cloud memory 50 %
    # (0.2 + 0.2 + 0.05 + 0.05 and 0.3 + 0.2 s): the lower ordinal wins, and it is a tie
    ties = best[best["tie"]]
    assert ties[
        ["edge_cpu_pct", "edge_mem_pct", "bandwidth_mbps", "cloud_mem_pct"]
    ].values.tolist() == [
        [0.0, 100.0, 10.0, 0.0],
        [50.0, 0.0, 10.0, 50.0],
    ]
    assert ties["best_point"].tolist() == [2, 2] and ties["runner_up_point"].tolist() == [3, 3]


def test_ties_within_a_microsecond_go_to_the_lowest_ordinal():
    conds = pd.DataFrame([dict.fromkeys(COND_COLUMNS, 0.0)] * 4).assign(bandwidth_mbps=50.0)
    conds["edge_cpu_pct"] = [0.0, 50.0, 100.0, 25.0]
    lat = np.array(
        [
            [0.5, 0.2500004, 0.2500001],  # 2 and 3 agree to the microsecond: 2 wins, a tie
            [0.5, 0.251, 0.250],  # a millisecond apart: 3 wins, no tie
            [np.nan, 0.3, np.nan],  # one point measured: no runner-up
            [np.nan, np.nan, np.nan],  # nothing measured: no row
        ]
    )
    best = best_points(_grid(lat, conds))
    assert best["edge_cpu_pct"].tolist() == [0.0, 50.0, 100.0]
    assert best["best_point"].tolist() == [2, 3, 2]
    assert best["runner_up_point"].tolist() == [3, 2, -1]
    assert best["runner_up_layer"].tolist() == ["out", "mid", ""]
    assert best["tie"].tolist() == [True, False, False]
    assert best["best_latency_s"].tolist() == [0.25, 0.25, 0.3]
    assert np.isnan(best["runner_up_latency_s"].iloc[2])


def test_slices_hold_the_conditions_they_name():
    s = slices(_grid())
    conds = _grid().conditions
    assert s["all"].sum() == 24
    # one factor moves, the others stay at the baseline (no stress, 50 Mbit/s)
    assert sorted(conds[s["single:edge_cpu"]]["edge_cpu_pct"]) == [0.0, 50.0, 100.0]
    assert (conds[s["single:edge_cpu"]]["bandwidth_mbps"] == 50.0).all()
    assert sorted(conds[s["single:bandwidth"]]["bandwidth_mbps"]) == [10.0, 50.0]
    assert (conds[s["single:bandwidth"]]["edge_cpu_pct"] == 0.0).all()
    assert s["single:cloud_cpu"].sum() == 1 and s["single:cloud_mem"].sum() == 2
    # edge_cpu=max: edge CPU 100 %, edge memory and bandwidth free, the cloud at baseline
    m = conds[s["edge_cpu=max"]]
    assert len(m) == 4 and (m["edge_cpu_pct"] == 100.0).all() and (m["cloud_mem_pct"] == 0).all()
    assert (
        len(conds[s["edge_cpu=min"]]) == 4 and (conds[s["edge_cpu=min"]]["edge_cpu_pct"] == 0).all()
    )
    assert (conds[s["bandwidth=min"]]["bandwidth_mbps"] == 10.0).all()
    assert len(conds[s["bandwidth=min"]]) == 6
    assert (conds[s["edge_mem=max"]]["edge_mem_pct"] == 100.0).all()
    # all stresses at their ends, bandwidth free
    hi, lo = conds[s["all_stress=max"]], conds[s["all_stress=min"]]
    assert len(hi) == 2 and (hi["edge_cpu_pct"] == 100).all() and (hi["edge_mem_pct"] == 100).all()
    assert (hi["cloud_mem_pct"] == 50).all() and sorted(hi["bandwidth_mbps"]) == [10.0, 50.0]
    assert len(lo) == 2 and (lo[["edge_cpu_pct", "edge_mem_pct", "cloud_mem_pct"]] == 0).all().all()


def test_distribution_shares_per_slice():
    grid = _grid()
    dist = distribution(grid, best_points(grid))
    assert set(dist["model"]) == {"toy"}

    def rows(name):
        d = dist[dist["slice"] == name]
        return [(r.rank, r.point, r.layer_name, r.share, r.conditions) for r in d.itertuples()]

    # single edge CPU: 0 % -> 2, 50 % and 100 % -> 1
    assert rows("single:edge_cpu") == [(1, 1, "in", 0.6667, 3), (2, 2, "mid", 0.3333, 3)]
    # edge CPU 100 %: at 50 Mbit/s point 1 (0.26 against 0.34), at 10 Mbit/s point 2
    # (0.5 against 0.7 and 0.9), either edge memory: two each, equal counts keep point order
    assert rows("edge_cpu=max") == [(1, 1, "in", 0.5, 4), (2, 2, "mid", 0.5, 4)]
    # all stress at max: 50 Mbit/s 0.36 / 0.39 / 0.8 -> 1; 10 Mbit/s 1.0 / 0.55 / 0.8 -> 2
    assert rows("all_stress=max") == [(1, 1, "in", 0.5, 2), (2, 2, "mid", 0.5, 2)]
    assert rows("all_stress=min") == [(1, 2, "mid", 0.5, 2), (2, 3, "out", 0.5, 2)]
    assert rows("single:cloud_cpu") == [(1, 2, "mid", 1.0, 1)]
    # top=1 keeps the leading point of each slice; the share is still of all conditions
    top = distribution(grid, best_points(grid), top=1)
    assert top["rank"].eq(1).all()
    one = top[top["slice"] == "single:edge_cpu"].iloc[0]
    assert (one["point"], one["share"]) == (1, 0.6667)


def test_distribution_of_the_whole_grid_counts_every_condition():
    grid = _grid()
    dist = distribution(grid, best_points(grid))
    allrows = dist[dist["slice"] == "all"]
    # independently: the formulas' fastest point in each of the 24 conditions, the lower
    # one where two agree to the microsecond
    winners = [
        int(np.argmin(np.round(1e6 * _latency(*(getattr(r, c) for c in _ARGS))))) + 1
        for r in grid.conditions.itertuples()
    ]
    counts = pd.Series(winners).value_counts()
    assert dict(zip(allrows["point"], allrows["share"], strict=True)) == {
        p: round(n / 24, 4) for p, n in counts.items()
    }
    assert allrows["rank"].tolist() == list(range(1, len(counts) + 1))
    assert allrows["share"].is_monotonic_decreasing


def test_a_slice_with_no_measured_condition_is_left_out():
    grid = _grid()
    lat = grid.latency_s.copy()
    lat[(grid.conditions["edge_cpu_pct"] == 100.0).to_numpy()] = np.nan
    g = _grid(lat)
    dist = distribution(g, best_points(g))
    assert "edge_cpu=max" not in set(dist["slice"]) and "all_stress=max" not in set(dist["slice"])
    assert "edge_cpu=min" in set(dist["slice"])


def test_sensitivity_says_which_factors_move_the_best_point():
    grid = _grid()
    sens = {r["factor"]: r for r in sensitivity(grid, best_points(grid))}
    assert list(sens) == ["edge_cpu", "edge_mem", "bandwidth", "cloud_cpu", "cloud_mem"]
    e = sens["edge_cpu"]
    assert (e["levels"], e["changes"], e["distinct_best_points"], e["best_points"]) == (
        3,
        "Y",
        2,
        "1 2",
    )
    assert (sens["bandwidth"]["changes"], sens["bandwidth"]["best_points"]) == ("Y", "2 3")
    # edge memory 100 % slows only point 3 (0.4 s), 2 stays best; cloud memory 50 %:
    # 0.36, 0.29, 0.30 -> 2 stays best
    for f in ("edge_mem", "cloud_mem"):
        assert (sens[f]["levels"], sens[f]["changes"], sens[f]["best_points"]) == (2, "N", "2")
    assert (sens["cloud_cpu"]["levels"], sens["cloud_cpu"]["changes"]) == (1, "N")
    assert {r["model"] for r in sens.values()} == {"toy"}


def test_gains_over_the_baseline_point_one_factor_at_a_time():
    g = gains(_grid())
    got = [(r.factor, r.level, r.static_point, r.best_point) for r in g.itertuples()]
    # the baseline level of each factor is left out; levels ascend within a factor
    assert got == [
        ("edge_cpu", 50.0, 2, 1),
        ("edge_cpu", 100.0, 2, 1),
        ("edge_mem", 100.0, 2, 2),
        ("bandwidth", 10.0, 2, 3),
    ]
    # edge CPU 50: (0.29 - 0.26) / 0.29 = 10.34 %; 100: (0.34 - 0.26) / 0.34 = 23.53 %
    # edge memory 100: no change of point, 0 %; 10 Mbit/s: (0.4 - 0.3) / 0.4 = 25 %
    assert g["gain_pct"].tolist() == [10.34, 23.53, 0.0, 25.0]
    assert g["static_latency_s"].tolist() == [0.29, 0.34, 0.24, 0.4]
    assert g["best_latency_s"].tolist() == [0.26, 0.26, 0.24, 0.3]
    assert (g["note"] == "").all() and g["flagged_static_latency_s"].isna().all()
    assert set(g["model"]) == {"toy"}


def test_gain_cells_that_cannot_be_computed_say_why():
    grid = _grid()
    lat = grid.latency_s.copy()
    c = grid.conditions
    base = (c["edge_mem_pct"] == 0) & (c["cloud_mem_pct"] == 0) & (c["bandwidth_mbps"] == 50)
    lat[(base & (c["edge_cpu_pct"] == 50)).to_numpy(), 1] = np.nan  # static point missing
    lat[(base & (c["edge_cpu_pct"] == 100)).to_numpy()] = np.nan  # nothing measured
    lat[(base & (c["edge_cpu_pct"] == 0)).to_numpy()] = [0.5, 0.2, 0.7]  # baseline: still 2
    at10 = (c["edge_cpu_pct"] == 0) & (c["edge_mem_pct"] == 0) & (c["bandwidth_mbps"] == 10)
    lat[(at10 & (c["cloud_mem_pct"] == 0)).to_numpy()] = [0.9, 0.0, 0.3]  # a zero time
    g = gains(_grid(lat)).set_index(["factor", "level"])
    missing = g.loc[("edge_cpu", 50.0)]
    assert missing["note"] == "static point 2 (mid) was not measured at this condition"
    assert np.isnan(missing["gain_pct"]) and missing["best_point"] == 1
    assert g.loc[("edge_cpu", 100.0), "note"] == "no point was measured at this condition"
    zero = g.loc[("bandwidth", 10.0)]
    assert zero["note"] == "static point 2 takes 0 s here" and np.isnan(zero["gain_pct"])
    # with the static point's line among the left-out rows, the note says what it reads
    left_out = pd.DataFrame(
        [
            {
                "model": "toy",
                **{col: float(_at(c, edge_cpu=50.0)[col]) for col in COND_COLUMNS},
                "point": 2,
                "flags": "input_is_next_cut",
                "total_s": 0.4567,
            },
            {  # another model's line at the same place is not this model's
                "model": "other",
                **{col: float(_at(c, edge_cpu=50.0)[col]) for col in COND_COLUMNS},
                "point": 2,
                "flags": "input_is_next_cut",
                "total_s": 9.0,
            },
        ]
    )
    flagged = gains(_grid(lat), left_out).set_index(["factor", "level"])
    row = flagged.loc[("edge_cpu", 50.0)]
    assert "flagged input_is_next_cut" in row["note"] and "reads 0.457 s" in row["note"]
    assert row["flagged_static_latency_s"] == 0.457


def test_without_a_measured_baseline_there_is_no_static_point():
    grid = _grid()
    lat = grid.latency_s.copy()
    c = grid.conditions
    base = (
        (c["edge_cpu_pct"] == 0)
        & (c["edge_mem_pct"] == 0)
        & (c["bandwidth_mbps"] == 50)
        & (c["cloud_mem_pct"] == 0)
    )
    lat[base.to_numpy()] = np.nan
    g = gains(_grid(lat))
    assert g.empty and "gain_pct" in g.columns and "note" in g.columns
    assert combined_gains(_grid(lat)).empty


def test_combined_gains_in_every_condition_with_factors_moved():
    out = combined_gains(_grid())
    assert len(out) == 24 and set(out["model"]) == {"toy"}
    base = _at(out)
    assert (base["factors_moved"], base["gain_pct"], base["repartition"]) == (0, 0.0, False)
    # edge CPU 100, edge memory 100, cloud memory 50 at 50 Mbit/s: three factors moved;
    # static point 2 takes 0.39 s, point 1 0.36 s: (0.39 - 0.36) / 0.39 = 7.69 %
    r = _at(out, edge_cpu=100.0, edge_mem=100.0, cloud_mem=50.0)
    assert r["factors_moved"] == 3 and r["repartition"]
    assert r["gain_pct"] == pytest.approx(0.03 / 0.39 * 100)
    # the same at 10 Mbit/s: four moved, point 2 (0.55 s) is best again: no gain
    r = _at(out, edge_cpu=100.0, edge_mem=100.0, bw=10.0, cloud_mem=50.0)
    assert r["factors_moved"] == 4 and not r["repartition"] and r["gain_pct"] == 0.0
    assert sorted(out["factors_moved"].value_counts().items()) == [
        (0, 1),
        (1, 5),
        (2, 9),
        (3, 7),
        (4, 2),
    ]


def test_combined_gains_leave_out_conditions_without_the_static_point():
    grid = _grid()
    lat = grid.latency_s.copy()
    lat[(grid.conditions["bandwidth_mbps"] == 10).to_numpy(), 1] = np.nan
    out = combined_gains(_grid(lat))
    assert len(out) == 12 and (out["bandwidth_mbps"] == 50).all()


def test_distribution_keeps_the_five_most_frequent_points_by_default():
    # seven points, nine conditions: point 7 is best in three, points 1 to 6 in one each;
    # the default keeps five: point 7, then the tied ones in point order
    conds = pd.DataFrame([dict.fromkeys(COND_COLUMNS, 0.0)] * 9).assign(bandwidth_mbps=50.0)
    conds["edge_cpu_pct"] = np.arange(9) * 10.0
    winner = [7, 7, 1, 2, 3, 4, 5, 6, 7]
    lat = np.ones((9, 7))
    lat[np.arange(9), np.array(winner) - 1] = 0.5
    grid = LatencyGrid("seven", conds, np.arange(1, 8), tuple("abcdefg"), lat, {})
    dist = distribution(grid, best_points(grid))
    everything = dist[dist["slice"] == "all"]
    assert everything["point"].tolist() == [7, 1, 2, 3, 4]
    assert everything["share"].tolist() == [round(3 / 9, 4)] + [round(1 / 9, 4)] * 4
    assert everything["conditions"].eq(9).all()


def test_equal_shares_keep_point_order_in_a_model_with_many_points():
    # forty points (DenseNet121 has 22 valid points, MobileNet more): each best once, but
    # 31 and 36 twice. Equal shares keep the points' order (a stable sort; a quicksort
    # over this many reorders them)
    winner = [*range(1, 41), 31, 36]
    conds = pd.DataFrame([dict.fromkeys(COND_COLUMNS, 0.0)] * len(winner))
    conds = conds.assign(bandwidth_mbps=50.0, edge_cpu_pct=np.arange(len(winner)) * 1.0)
    lat = np.ones((len(winner), 40))
    lat[np.arange(len(winner)), np.array(winner) - 1] = 0.5
    names = tuple(f"layer{k}" for k in range(1, 41))
    grid = LatencyGrid("forty", conds, np.arange(1, 41), names, lat, {})
    everything = distribution(grid, best_points(grid)).query("slice == 'all'")
    assert everything["point"].tolist() == [31, 36, 1, 2, 3]
    assert everything["layer_name"].tolist() == ["layer31", "layer36", "layer1", "layer2", "layer3"]


def test_gains_of_a_grid_with_only_its_baseline_is_an_empty_table_with_its_columns():
    """Nothing moved from the baseline: no gain rows, but the table keeps its columns
    (the report and the CSV read them by name). Fails if the table is built without
    its column list (mutant analysis.gains_120: an empty frame with no columns)."""
    conds = pd.DataFrame([dict.fromkeys(COND_COLUMNS, 0.0)]).assign(bandwidth_mbps=50.0)
    g = gains(_grid(conds=conds))
    assert g.empty
    assert {"factor", "level", "static_point", "best_point", "gain_pct", "note"} <= set(g.columns)
