"""Calibration pieces checked against numbers worked out by hand.

The stress grid's interpolation (in speed, in time where a value is zero, the
time-sharing law beyond the CPU levels at a memory level between two), the link's
correction by its measured medians between and beyond the bandwidth levels, a
per-block calibration from a hand-made Scission file, and the spread's quantiles.
Each expected value is computed in its comment from the inputs, not read back.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from adaptsim.calibration import ExtrapolationError, StressGrid
from adaptsim.calibration.blocks import fit_from_blocks, network_link
from adaptsim.calibration.check import noise_floor, siblings
from adaptsim.calibration.model import ModelCalibration, link_grid
from adaptsim.calibration.scores import row_quantile
from adaptsim.calibration.spread import FLAT, SPREAD_PROBS, quantiles
from adaptsim.errors import UserError
from adaptsim.importers import import_scission
from adaptsim.store import FACTORS, ChoiceError

# Times 1, 2 (CPU 100 %), 4 (memory 100 %) and 8 s (both): speeds 1, 1/2, 1/4, 1/8.
SQUARE = StressGrid(
    np.array([0.0, 100.0]), np.array([0.0, 100.0]), np.array([[[1.0], [4.0]], [[2.0], [8.0]]])
)


def test_bilinear_interpolation_is_in_speed():
    v, extrap = SQUARE.at([50.0, 25.0, 0.0, 100.0], [50.0, 0.0, 75.0, 100.0])
    # (50, 50): speed (1 + 1/2 + 1/4 + 1/8) / 4 = 0.46875; (25, 0): 3/4 + 1/8 = 0.875;
    # (0, 75): 1/4 + 3/16 = 0.4375; a corner: its own value
    np.testing.assert_allclose(v[:, 0], [1 / 0.46875, 1 / 0.875, 1 / 0.4375, 8.0])
    assert not extrap.any()


def test_a_zero_corner_interpolates_in_time():
    g = StressGrid(np.array([0.0, 100.0]), np.array([0.0]), np.array([[[0.0, 1.0]], [[2.0, 3.0]]]))
    v, _ = g.at([50.0], [0.0])
    # the first value has a zero corner: linear in time, 1.0; the second in speed:
    # (1 + 1/3) / 2 = 2/3, time 1.5
    np.testing.assert_allclose(v[0], [1.0, 1.5])


def test_time_sharing_beyond_the_cpu_levels_at_a_memory_level_between_two():
    g = StressGrid(SQUARE.cpu_levels, SQUARE.mem_levels, SQUARE.values, time_sharing=True)
    v, extrap = g.at([150.0, 250.0, 100.0], [50.0, 50.0, 200.0], extrapolate=True)
    # memory 50 %: speed 5/8 at CPU 0 and 5/16 at CPU 100; times the CPU share 1 and
    # 1/2: base 1.6 s both, so 1.6 / (1 - 150/200) = 6.4 s; CPU beyond 199 % is held at
    # 199: 1.6 / 0.005 = 320 s; memory beyond its levels holds the nearest: 8 s
    np.testing.assert_allclose(v[:, 0], [6.4, 320.0, 8.0])
    assert extrap.tolist() == [True, True, True]


def test_plain_grids_extrapolate_in_speed_and_hold_grids_hold():
    v, extrap = SQUARE.at([150.0], [0.0], extrapolate=True)
    # speed 1 - 1.5 * 1/2 = 1/4 at CPU 150 %: 4 s
    assert v[0, 0] == pytest.approx(4.0) and extrap[0]
    v, _ = SQUARE.at([300.0], [0.0], extrapolate=True)
    # speed 1 - 3 * 1/2 < 0: the time line instead, 1 + 3 * 1 = 4 s
    assert v[0, 0] == pytest.approx(4.0)
    hold = StressGrid(SQUARE.cpu_levels, SQUARE.mem_levels, SQUARE.values, hold=True)
    v, extrap = hold.at([150.0, -10.0], [0.0, 300.0], extrapolate=True)
    np.testing.assert_allclose(v[:, 0], [2.0, 4.0])
    assert extrap.tolist() == [True, True]


def test_levels_are_checked_to_a_hair_and_named_in_the_error():
    v, extrap = SQUARE.at([100.0 + 1e-10], [0.0])  # within 1e-9: not outside
    assert v[0, 0] == pytest.approx(2.0) and not extrap[0]
    with pytest.raises(ExtrapolationError) as err:
        SQUARE.at([0.0, 120.0], [0.0, 0.0])
    assert str(err.value) == (
        "CPU stress % 120 lies outside the measured levels 0..100; "
        "adaptsim does not extrapolate silently"
    )
    with pytest.raises(ExtrapolationError, match=r"^memory stress % -5 lies outside"):
        SQUARE.at([0.0], [-5.0])
    one = StressGrid(np.array([0.0]), np.array([20.0]), np.array([[[3.0]]]), names=("a", "b"))
    with pytest.raises(ExtrapolationError) as err:
        one.at([0.0], [30.0])
    assert str(err.value) == "b 30 was never measured (only 20); cannot interpolate"
    v, extrap = one.at([10.0, 0.0], [20.0, 20.0], extrapolate=True)
    assert v[:, 0].tolist() == [3.0, 3.0] and extrap.tolist() == [True, False]


def _two_points(bandwidth_levels, table_at_levels) -> ModelCalibration:
    """Two points, no stress axes: edge blocks 0.1 and 0.2 s, cloud 0.05 and 0.02 s.

    The link law: point 0 (0.01 s + 1 MB, no host time), point 1 (0.01 s + 100 kB,
    0.5 s of host time).
    """
    zero = np.array([0.0])
    law = np.array([[0.01, 1e6, 0.0], [0.01, 1e5, 0.5]])
    return ModelCalibration(
        model="toy",
        ordinals=np.array([0, 1]),
        kinds=("all_cloud", "all_edge"),
        layer_names=("input", "out"),
        output_bytes=np.array([1e6, 1e5]),
        edge_blocks=StressGrid(zero, zero, np.array([[[0.1, 0.2]]])),
        cloud_blocks=StressGrid(zero, zero, np.array([[[0.05, 0.02]]])),
        link=link_grid(zero, zero, law[None, None]),
        link_table=link_grid(zero, zero, np.array(table_at_levels, dtype=float)[None, None]),
        bandwidth_levels=tuple(bandwidth_levels),
        spread={},
        quality={},
    )


def test_link_between_and_beyond_bandwidth_levels():
    # law at 10 Mbit/s: 0.01 + 8e6 / 1e7 = 0.81 s, the median 0.91 (0.1 above it);
    # at 50: 0.17 s, the median on it. Point 1: its host's 0.5 s at both.
    cal = _two_points((10.0, 50.0), [[0.91, 0.17], [0.5, 0.5]])
    p = cal.predict(bandwidth_mbps=[10.0, 50.0, 25.0, 5.0, 100.0])
    # 25 Mbit/s lies a quarter of the way from 50 to 10 in 1/bandwidth: the law's
    # 0.01 + 0.32 plus 0.1 / 4; at 5 the nearest level's 0.1 on 0.01 + 1.6; at 100 none
    np.testing.assert_allclose(p.comm_s[:, 0], [0.91, 0.17, 0.355, 1.71, 0.09])
    np.testing.assert_allclose(p.comm_s[:, 1], [0.5] * 5)
    assert p.extrapolated.tolist() == [False, False, False, True, True]
    # edge: blocks up to the point; cloud: blocks after it
    np.testing.assert_allclose(p.edge_s[0], [0.1, 0.3])
    np.testing.assert_allclose(p.cloud_s[0], [0.02, 0.0])
    np.testing.assert_allclose(p.total_s[2], [0.1 + 0.02 + 0.355, 0.3 + 0.5])
    with pytest.raises(UserError, match="bandwidth must be positive"):
        cal.predict(bandwidth_mbps=[10.0, 0.0])


def test_a_single_bandwidth_level_corrects_everywhere_and_flags_elsewhere():
    cal = _two_points((10.0,), [[0.91], [0.5]])
    p = cal.predict(bandwidth_mbps=[10.0, 20.0])
    # 20 Mbit/s: 0.01 + 0.4 + the level's 0.1
    np.testing.assert_allclose(p.comm_s[:, 0], [0.91, 0.51])
    assert p.extrapolated.tolist() == [False, True]


def test_time_sharing_holds_for_predictions_beyond_the_cpu_levels():
    cal = _two_points((10.0,), [[0.91], [0.5]])
    with pytest.raises(ExtrapolationError):
        cal.predict(edge_cpu_pct=50.0, bandwidth_mbps=10.0)
    p = cal.predict(edge_cpu_pct=100.0, bandwidth_mbps=10.0, extrapolate=True)
    # one CPU level at 0 %: at 100 % the edge runs at half speed
    np.testing.assert_allclose(p.edge_s[0], [0.2, 0.6])
    np.testing.assert_allclose(p.cloud_s[0], [0.02, 0.0])
    assert p.extrapolated[0]


_KEYS = ("file", "source", "destination", "ping(ms)", "bandwidth(mbps)")
NETWORK = [
    dict(zip(_KEYS, ("network_stats_wifi.csv", "raspi4", "6700k(NoGPU)", "1", "99"), strict=True)),
    dict(zip(_KEYS, ("network_stats.csv", "Raspi4", "6700k(nogpu)", "100", "1.6"), strict=True)),
]


def test_network_link_between_two_hosts_by_their_short_names():
    # the role prefix goes, the case does not matter, only network_stats.csv counts
    assert network_link(NETWORK, "device-raspi4", "cloud-6700k(NoGPU)") == (0.1, 1.6)
    assert network_link(NETWORK[1:], "edge-RASPI4", "6700K(NOGPU)") == (0.1, 1.6)
    no_file = {k: v for k, v in NETWORK[1].items() if k != "file"}
    assert network_link([no_file], "raspi4", "6700k(nogpu)") == (0.1, 1.6)
    with pytest.raises(UserError) as err:
        network_link(NETWORK, "cloud-6700k(NoGPU)", "device-raspi4")  # the other way round
    assert str(err.value) == (
        "no network facts between cloud-6700k(NoGPU) and device-raspi4 in the store; "
        "import the source's network_stats.csv beside its blocks"
    )


def _blocks(tmp_path, *rows):
    path = tmp_path / "blocks.csv"
    head = "system,model,block_index,input_layer,output_layer,latency_s,output_size_bytes"
    path.write_text("\n".join([head, *rows]) + "\n")
    frame, _ = import_scission(path, tmp_path / "s.parquet")
    return frame


def test_a_per_block_calibration_by_hand(tmp_path):
    frame = _blocks(
        tmp_path,
        "device-raspi4,toy,0,0,1,0.5,1128",
        "device-raspi4,toy,1,2,3,0.25,528",
        "cloud-6700k(NoGPU),toy,0,0,1,0.05,1128",
        "cloud-6700k(NoGPU),toy,1,2,3,0.02,528",
        "cloud-6700k(NoGPU),other,0,0,1,0.05,1128",  # timed on the cloud only: not calibrated
    )
    cal = fit_from_blocks(frame, "device-raspi4", "cloud-6700k(NoGPU)", NETWORK)
    assert list(cal.models) == ["toy"]
    assert cal.provenance == {
        "method": "adaptsim.calibration.blocks (per-block means, no stress)",
        "edge_host": "device-raspi4",
        "cloud_host": "cloud-6700k(NoGPU)",
        "overhead_s": 0.1,
        "bandwidth_mbps": 1.6,
    }
    m = cal.model("toy")
    assert m.ordinals.tolist() == [0, 1, 2] and m.kinds == ("all_cloud", "cut", "all_edge")
    assert m.layer_names == ("input", "block 0 (layer 1)", "block 1 (layer 3)")
    # "toy" is not in the zoo: the input is taken as large as the first block's output
    assert m.output_bytes.tolist() == [1000.0, 1000.0, 400.0]
    assert m.bandwidth_levels == (1.6,) and m.spread == dict.fromkeys(
        ("edge", "cloud", "comm"), FLAT
    )
    assert m.quality == {"blocks": 2}
    p = m.predict(bandwidth_mbps=[1.6, 3.2])
    np.testing.assert_allclose(p.edge_s[0], [0.0, 0.5, 0.75])
    np.testing.assert_allclose(p.cloud_s[0], [0.07, 0.02, 0.0])
    # 0.1 s of ping plus bytes * 8 / 1.6e6: 1000 B 5 ms, 400 B 2 ms; at 3.2 Mbit/s half
    np.testing.assert_allclose(p.comm_s, [[0.105, 0.105, 0.102], [0.1025, 0.1025, 0.101]])
    assert p.extrapolated.tolist() == [False, True]
    with pytest.raises(ExtrapolationError):
        m.predict(edge_cpu_pct=50.0, bandwidth_mbps=1.6)


def test_a_per_block_calibration_of_a_zoo_model_sends_its_real_input(tmp_path):
    frame = _blocks(
        tmp_path,
        "device-raspi4,vgg16,0,0,1,0.5,1128",
        "cloud-6700k(NoGPU),vgg16,0,0,1,0.05,1128",
    )
    m = fit_from_blocks(frame, "device-raspi4", "cloud-6700k(NoGPU)", NETWORK).model("vgg16")
    assert m.output_bytes.tolist() == [224 * 224 * 3 * 4, 1000.0]


def test_per_block_choices_the_store_cannot_meet(tmp_path):
    frame = _blocks(
        tmp_path,
        "device-raspi4,toy,0,0,1,0.5,1128",
        "device-raspi4,toy,1,2,3,0.25,528",
        "cloud-6700k(NoGPU),toy,0,0,1,0.05,1128",
        "cloud-6700k(NoGPU),solo,0,0,1,0.05,1128",
    )
    with pytest.raises(ChoiceError) as err:
        fit_from_blocks(frame, "edge-2500", "cloud-6700k(NoGPU)", NETWORK)
    assert str(err.value) == (
        "edge host 'edge-2500': no edge blocks timed on it; hosts in the store: "
        "cloud-6700k(NoGPU), device-raspi4"
    )
    with pytest.raises(ChoiceError, match=r"^cloud host 'device-raspi4': no cloud blocks"):
        fit_from_blocks(frame, "device-raspi4", "device-raspi4", NETWORK)
    with pytest.raises(UserError) as err:
        fit_from_blocks(frame, "device-raspi4", "cloud-6700k(NoGPU)", NETWORK)
    assert str(err.value) == "toy: the two hosts timed different blocks"
    with pytest.raises(UserError) as err:
        fit_from_blocks(frame, "device-raspi4", "cloud-6700k(NoGPU)", NETWORK, ["solo"])
    assert "solo" in str(err.value)


def test_spread_quantiles_of_the_finite_values():
    q = quantiles(np.array([np.nan, *np.linspace(-1.0, 1.0, 101), np.inf]))
    assert q["probs"] == list(SPREAD_PROBS) and len(q["probs"]) == 21
    # the p quantile of -1..1 in 101 even steps is 2p - 1
    np.testing.assert_allclose(q["log_ratio"], 2 * np.array(SPREAD_PROBS) - 1, atol=1e-6)
    assert quantiles(np.array([np.nan]))["log_ratio"] == [0.0] * 21
    assert SPREAD_PROBS[0] == 0.01 and SPREAD_PROBS[-1] == 0.99 and SPREAD_PROBS[10] == 0.5


def test_row_quantile_is_numpys_over_the_finite_values():
    rng = np.random.default_rng(3)
    values = rng.normal(size=(6, 9))
    values[1, :4] = np.nan
    values[2] = np.nan
    values[3, 1:] = np.nan
    for q in (0.0, 0.1, 0.5, 0.9, 1.0):
        want = [
            np.quantile(r[np.isfinite(r)], q) if np.isfinite(r).any() else np.nan for r in values
        ]
        np.testing.assert_allclose(row_quantile(values, q), want)


def _totals(*conditions) -> pd.DataFrame:
    """Rows of one model: (edge CPU %, cloud memory %, totals of points 1 and 2)."""
    rows = []
    for ecpu, cmem, totals in conditions:
        for point, total in enumerate(totals, start=1):
            cond = dict.fromkeys(FACTORS.values(), 0.0) | {"bandwidth_mbps": 50.0}
            rows.append(
                cond
                | {"edge_cpu_pct": ecpu, "cloud_mem_pct": cmem, "point": point, "total_s": total}
            )
    return pd.DataFrame(rows).assign(model="toy")


TOTALS = _totals((0.0, 0.0, [1.0, 1.2]), (0.0, 50.0, [1.1, 1.0]), (50.0, 0.0, [2.0, 1.5]))


def test_noise_floor_scores_each_near_repeat_on_the_other():
    floor = noise_floor("toy", TOTALS)
    # only the two files that differ in cloud memory alone are near-repeats; each pair
    # is scored on its second file. Cloud memory 0 picks point 1, which takes 1.1 s at
    # 50 % against its best 1.0: regret 0.1; the other way point 2: 1.2 / 1.0 - 1 = 0.2.
    assert floor["cloud_mem_pct"].tolist() == [50.0, 0.0]
    np.testing.assert_allclose(floor["regret"], [0.1, 0.2])
    # per-point errors |1.0 / 1.1 - 1| = 0.0909 and |1.2 / 1.0 - 1| = 0.2: their median,
    # and their 90th percentile 0.0909 + 0.9 * (0.2 - 0.0909)
    np.testing.assert_allclose(floor["ape"].iloc[0], (1 / 11 + 0.2) / 2)
    np.testing.assert_allclose(floor["ape_p90"].iloc[0], 1 / 11 + 0.9 * (0.2 - 1 / 11))
    assert set(floor["model"]) == {"toy"}
    assert noise_floor("toy", TOTALS[TOTALS["cloud_mem_pct"] == 0]).empty


def test_siblings_predict_each_file_by_the_others_that_differ_in_one_factor():
    sib = siblings("toy", TOTALS).set_index(["factor", "edge_cpu_pct", "cloud_mem_pct"])
    assert sorted(sib.index) == [
        ("cloud_mem", 0.0, 0.0),
        ("cloud_mem", 0.0, 50.0),
        ("edge_cpu", 0.0, 0.0),
        ("edge_cpu", 50.0, 0.0),
    ]
    # each predicted by its one sibling: edge CPU 0 % by 50 % (1.5 < 2.0: point 2, which
    # takes 1.2 against 1.0: 0.2); 50 % by 0 % (point 1: 2.0 / 1.5 - 1)
    assert sib.loc[("edge_cpu", 0.0, 0.0), "regret"] == pytest.approx(0.2)
    assert sib.loc[("edge_cpu", 50.0, 0.0), "regret"] == pytest.approx(2.0 / 1.5 - 1)
    assert sib.loc[("cloud_mem", 0.0, 50.0), "regret"] == pytest.approx(0.1)
    # per-point errors of 2.0 against 1.0 and 1.5 against 1.2: 1.0 and 0.25
    assert sib.loc[("edge_cpu", 0.0, 0.0), "ape"] == pytest.approx(0.625)


def test_siblings_average_the_others_and_skip_their_gaps():
    rows = _totals((0.0, 0.0, [1.0, 4.0]), (0.0, 50.0, [3.0, np.nan]), (0.0, 100.0, [5.0, 2.0]))
    sib = siblings("toy", rows)
    mem = sib[sib["factor"] == "cloud_mem"].set_index("cloud_mem_pct")
    # cloud memory 0: point 1 predicted (3 + 5) / 2 = 4, point 2 by 2 alone: point 2 wins,
    # measured 4.0 against the best 1.0: regret 3
    assert mem.loc[0.0, "regret"] == pytest.approx(3.0)
    # cloud memory 50: point 2 was not measured there, so it cannot be picked: regret 0
    assert mem.loc[50.0, "regret"] == pytest.approx(0.0)
    assert siblings("toy", rows.iloc[:2]).empty


def test_extras_on_other_levels_than_their_blocks_are_refused(tmp_path):
    import json
    from importlib import resources

    from adaptsim.calibration import load_calibration

    text = resources.files("adaptsim").joinpath("data/calibration_adaptivednn.json").read_text()
    doc = json.loads(text)
    doc["models"] = {"lenet": doc["models"]["lenet"]}
    for side in ("edge", "cloud"):
        bad = json.loads(json.dumps(doc))
        bad["models"]["lenet"][f"{side}_extra_s"]["cpu_levels"] = [0.0, 40.0, 100.0]
        path = tmp_path / f"{side}.json"
        path.write_text(json.dumps(bad))
        with pytest.raises(UserError) as err:
            load_calibration(path)
        assert str(err.value) == (
            f"{path}: models.lenet.{side}_extra_s has other levels than {side}_block_s; "
            "they must be the same; correct it or rebuild the file with `adaptsim calibrate`"
        )


def test_the_check_summary_row_keeps_each_score_to_its_decimals():
    """The check's summary row from hand-made detail rows: regrets 0.00..0.09 (p90
    0.081 by numpy's linear rule, median 0.045, 6 of 10 within 5 %), the floor's half
    of them, and one extrapolated row left out of the interpolation scores. Fails if a
    score is rounded to whole numbers (mutant check._row_67: the floor's p90 regret
    0.0405 read as 0) or taken from the wrong frame."""
    from adaptsim.calibration.check import _row

    r = np.arange(10) / 100

    def detail(regret, extrapolated=False):
        return pd.DataFrame({"regret": regret, "ape": regret / 2, "ape_p90": regret,
                             "extrapolated": extrapolated})  # fmt: skip

    cv = detail(r, extrapolated=np.arange(10) == 9)
    row = _row("m", cv, detail(r / 2), detail(r * 2))
    assert row["conditions"] == 10
    assert row["within_5pct"] == 0.6 and row["floor_within_5pct"] == 1.0
    assert row["median_regret"] == 0.045 and row["floor_median_regret"] == 0.0225
    assert row["p90_regret"] == 0.081 and row["floor_p90_regret"] == 0.0405
    assert row["median_ape"] == 0.0225 and row["floor_median_ape"] == 0.0112  # 0.01125
    assert row["interp_within_5pct"] == round(6 / 9, 3)  # the extrapolated 0.09 left out
    assert row["siblings_within_5pct"] == 0.3 and row["siblings_median_ape"] == 0.045
