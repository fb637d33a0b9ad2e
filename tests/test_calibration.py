"""Calibration: interpolation, fitting, the file format and its check."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from adaptsim.calibration import (
    ExtrapolationError,
    StressGrid,
    fit_model,
    load_calibration,
    save_calibration,
)
from adaptsim.calibration.build import measured_rows
from adaptsim.calibration.check import (
    CheckInterrupted,
    check_calibration,
    floor_gain,
    noise_floor,
)
from adaptsim.calibration.fit import fit_calibration
from adaptsim.calibration.scores import ape_columns, regret
from adaptsim.cli import app
from adaptsim.errors import UserError
from adaptsim.importers import import_adaptivednn
from adaptsim.store import COLUMNS, FACTORS, read_store


@pytest.fixture(scope="module")
def lenet_rows(tmp_path_factory):
    store = tmp_path_factory.mktemp("s") / "store.parquet"
    from pathlib import Path

    import_adaptivednn([Path(__file__).parent / "data/adaptivednn/2020-05-27"], store)
    return measured_rows(store).rows


def test_speed_interpolation_follows_cpu_sharing():
    # One core shared with a hog at p %: speed 1 - p/200, time 1 / speed.
    g = StressGrid(np.array([0.0, 100.0]), np.array([0.0]), np.array([[[1.0]], [[2.0]]]))
    v, extrap = g.at([50.0], [0.0])
    assert v[0, 0] == pytest.approx(1 / 0.75)
    assert not extrap[0]
    with pytest.raises(ExtrapolationError, match="outside the measured levels"):
        g.at([120.0], [0.0])
    v, extrap = g.at([120.0], [0.0], extrapolate=True)
    assert extrap[0] and v[0, 0] > 2.0


def test_compute_grids_extrapolate_cpu_by_time_sharing_and_hold_memory():
    # Measured at CPU 0 and 50 % (the 50 % level 5 % off the law) and memory 0 and 50 %.
    values = np.array([[[1.0], [1.1]], [[1.4], [1.5]]])
    levels = np.array([0.0, 50.0])
    law = StressGrid(levels, levels, values, time_sharing=True)
    plain = StressGrid(levels, levels, values)
    v, extrap = law.at([100.0], [0.0], extrapolate=True)
    # One parameter fitted to both levels: base = geometric mean of time * (1 - p/200).
    assert extrap[0] and v[0, 0] == pytest.approx(np.sqrt(1.0 * 1.4 * 0.75) / 0.5)
    # A straight line in speed through the two levels lands elsewhere (1 / (1 - 2 * 0.286)).
    assert plain.at([100.0], [0.0], extrapolate=True)[0][0, 0] == pytest.approx(1 / (1 - 2 * 2 / 7))
    # Beyond the memory levels the nearest one holds.
    v, extrap = law.at([0.0], [100.0], extrapolate=True)
    assert extrap[0] and v[0, 0] == pytest.approx(1.1)
    # Inside the levels nothing changes.
    np.testing.assert_allclose(law.at([25.0], [20.0])[0], plain.at([25.0], [20.0])[0])
    with pytest.raises(ExtrapolationError):
        law.at([100.0], [0.0])


def test_single_level_axis_refuses_other_levels():
    g = StressGrid(np.array([0.0]), np.array([0.0]), np.ones((1, 1, 3)))
    assert g.at([0.0], [0.0])[0].shape == (1, 3)
    with pytest.raises(ExtrapolationError, match="never measured"):
        g.at([50.0], [0.0])


def _synthetic_rows(
    block_edge, block_cloud, out_bytes, rng, noise=0.02, bandwidths=(10.0, 50.0), host_s=None
):
    """Per-partition rows generated from known block times (a fitting check, not a mock).

    The link takes ``0.004 s + bytes * 8 / bandwidth``, or ``host_s[k]`` where that is longer.
    """
    rows = []
    n = len(block_edge)
    host_s = host_s or [0.0] * n
    for ecpu, slow in ((0.0, 1.0), (50.0, 4 / 3), (100.0, 2.0)):
        for bw in bandwidths:
            for rep in range(5):
                for k in range(1, n + 1):
                    f_edge, f_cloud = rng.lognormal(0, noise, 2) if noise else (1.0, 1.0)
                    edge = slow * sum(block_edge[:k]) * f_edge
                    cloud = sum(block_cloud[k:]) * f_cloud
                    comm = max(0.004 + out_bytes[k - 1] * 8 / (bw * 1e6), host_s[k - 1])
                    rows.append(
                        {
                            "source": "synthetic",
                            "provenance": f"f{rep}:{k}",
                            "record": "partition",
                            "host_role": "edge+cloud",
                            "model": "toy",
                            "point": k,
                            "layer_index": float(k - 1),
                            "layer_name": f"l{k}",
                            "output_bytes": float(out_bytes[k - 1]),
                            "edge_cpu_pct": ecpu,
                            "edge_mem_pct": 0.0,
                            "cloud_cpu_pct": 0.0,
                            "cloud_mem_pct": 0.0,
                            "bandwidth_mbps": bw,
                            "edge_cpu_quota": np.nan,
                            "repeats": 1,
                            "stat": "sample",
                            "edge_s": edge,
                            "cloud_s": cloud,
                            "comm_s": comm,
                            "total_s": edge + cloud + comm,
                            "flags": "",
                        }
                    )
    frame = pd.DataFrame(rows)
    for c in COLUMNS:
        if c not in frame:
            frame[c] = "" if c.endswith(("host", "arch", "cpu")) else np.nan
    return frame[list(COLUMNS)]


def test_nnls_recovers_block_times():
    rng = np.random.default_rng(1)
    e = [0.002, 0.30, 0.05, 0.40, 0.01]
    c = [0.0, 0.03, 0.005, 0.04, 0.002]
    out_bytes = [600_000, 3_000_000, 800_000, 400_000, 4_000]
    cal = fit_model("toy", _synthetic_rows(e, c, out_bytes, rng))
    # columns: ordinals 1..5 (point 1 treated as the raw-input point) + all-edge 6
    assert cal.ordinals.tolist() == [1, 2, 3, 4, 5, 6]
    # Per-block times are differences of noisy sums; their sums are what is recovered.
    np.testing.assert_allclose(np.cumsum(cal.edge_blocks.values[0, 0, :5]), np.cumsum(e), rtol=0.03)
    np.testing.assert_allclose(
        np.cumsum(cal.edge_blocks.values[2, 0, :5]), 2 * np.cumsum(e), rtol=0.03
    )
    assert (cal.edge_blocks.values >= 0).all()
    p = cal.predict(edge_cpu_pct=[50.0], bandwidth_mbps=[25.0])
    truth = (
        4 / 3 * np.cumsum(e) + (np.sum(c) - np.cumsum(c)) + 0.004 + np.array(out_bytes) * 8 / 25e6
    )
    np.testing.assert_allclose(p.total_s[0, :5], truth, rtol=0.05)
    # The link law recovers the bytes it was generated from (small payloads within the
    # compute noise: 10 kB is 1.6 ms at 50 Mbit/s).
    np.testing.assert_allclose(cal.link.values[0, 0, :5, 1], out_bytes, rtol=0.02, atol=10_000)


def test_link_law_is_the_slower_of_wire_and_hosts():
    # Point 2 (3 MB) is wire-bound at 10 and 25 Mbit/s (2.4 and 0.96 s) and bound by
    # its hosts' 0.7 s at 50 (0.48 s of wire), as DenseNet121's cuts are in the
    # AdaptiveDNN data. A straight line through the three medians would flatten to
    # the hosts and price a slower link below its wire.
    e = [0.002, 0.30, 0.05, 0.40, 0.01]
    c = [0.0, 0.03, 0.005, 0.04, 0.002]
    out_bytes = [600_000, 3_000_000, 800_000, 400_000, 4_000]
    host = [0.0, 0.7, 0.0, 0.0, 0.0]
    rows = _synthetic_rows(e, c, out_bytes, None, 0.0, (10.0, 25.0, 50.0), host)
    cal = fit_model("toy", rows)
    law = cal.link.values[0, 0]
    assert law[1] == pytest.approx([0.004, 3_000_000, 0.7], rel=1e-3)
    np.testing.assert_allclose(law[[0, 2, 3], 1], np.array(out_bytes)[[0, 2, 3]], rtol=1e-3)
    comm = cal.predict(0, 0, 0, 0, [2.0, 10.0, 50.0, 100.0]).comm_s[:, 1]
    np.testing.assert_allclose(comm, [0.004 + 12.0, 2.404, 0.7, 0.7], rtol=1e-3)
    # Fitted without the 10 Mbit/s files, it still prices them at the wire.
    cal = fit_model("toy", rows[rows["bandwidth_mbps"] > 10])
    p = cal.predict(0, 0, 0, 0, 10.0, extrapolate=True)
    assert p.comm_s[0, 1] == pytest.approx(2.404, rel=1e-3) and p.extrapolated[0]


def test_a_link_its_hosts_bind_at_every_bandwidth_has_no_overhead():
    # Point 4 (400 kB) takes its hosts' 0.7 s at 10, 25 and 50 Mbit/s (its wire needs
    # 0.33 s at most): the law is the hosts' time with no overhead, and a slower link
    # costs the wire alone: 400 kB at 2 Mbit/s is 1.6 s, not 1.6 s plus an overhead.
    e = [0.002, 0.30, 0.05, 0.40, 0.01]
    c = [0.0, 0.03, 0.005, 0.04, 0.002]
    out_bytes = [600_000, 3_000_000, 800_000, 400_000, 4_000]
    host = [0.0, 0.0, 0.0, 0.7, 0.0]
    cal = fit_model("toy", _synthetic_rows(e, c, out_bytes, None, 0.0, (10.0, 25.0, 50.0), host))
    assert cal.link.values[0, 0, 3] == pytest.approx([0.0, 400_000, 0.7], abs=1e-6)
    comm = cal.predict(0, 0, 0, 0, [2.0, 25.0], extrapolate=True).comm_s[:, 3]
    np.testing.assert_allclose(comm, [1.6, 0.7], rtol=1e-6)


def test_a_point_no_block_sum_reaches_gets_its_own_extra():
    # The cloud sub-model starting after point 2 costs 0.2 s more than its blocks, as
    # ResNet50's second point does in the AdaptiveDNN data (2.3 s against 0.7 s).
    e = [0.002, 0.30, 0.05, 0.40, 0.01]
    c = [0.0, 0.03, 0.005, 0.04, 0.002]
    rows = _synthetic_rows(e, c, [600_000, 3_000_000, 800_000, 400_000, 4_000], None, noise=0.0)
    bump = rows["point"] == 2
    rows.loc[bump, ["cloud_s", "total_s"]] += 0.2
    cal = fit_model("toy", rows)
    extra = cal.cloud_extra.values[0, 0]
    # The block just before point 2 and point 2's extra cannot be told apart (only the
    # all-cloud point sees that block): the extra is the least that fits, 0.2 - 0.03.
    assert extra[1] == pytest.approx(0.17, abs=1e-4) and np.delete(extra, 1) == pytest.approx(0.0)
    cloud = cal.predict(0, 0, 0, 0, 50).cloud_s[0, :5]
    np.testing.assert_allclose(cloud, np.sum(c) - np.cumsum(c) + np.r_[0, 0.2, 0, 0, 0], atol=1e-5)
    assert cal.edge_extra.values.max() == 0.0
    assert any("cloud per-point extras" in n and "[2]" in n for n in cal.notes)


def test_edge_times_monotone_and_ends_present(lenet_rows):
    cal = fit_model("lenet", lenet_rows)
    assert cal.kinds[0] == "all_cloud" and cal.ordinals[0] == 0  # Sequential: point 0
    assert cal.kinds[-1] == "all_edge" and cal.ordinals[-1] == 11
    p = cal.predict(0, 0, 0, 0, 50)
    assert (np.diff(p.edge_s[0]) >= -1e-12).all()
    assert (np.diff(p.cloud_s[0]) <= 1e-12).all()
    assert p.edge_s[0, 0] == 0 and p.cloud_s[0, -1] == 0
    assert (p.total_s > 0).all()


def test_link_follows_edge_and_cloud_cpu_with_a_pooled_slope(lenet_rows):
    cal = fit_model("lenet", lenet_rows)
    table, law = cal.link_table.values, cal.link.values
    assert table.shape[:2] == (3, 3)  # edge CPU x cloud CPU levels
    # Per (edge CPU, cloud CPU) cell, the table is the median over that cell's files of
    # what the compute leaves of the total (pooled over both memory stresses).
    rows = lenet_rows[lenet_rows["bandwidth_mbps"] == 25.0]
    pred = cal.predict_at(rows)
    cols = np.searchsorted(cal.ordinals, rows["point"].to_numpy())
    idx = np.arange(len(rows))
    left = rows["total_s"].to_numpy() - pred.edge_s[idx, cols] - pred.cloud_s[idx, cols]
    bw = cal.bandwidth_levels.index(25.0)
    for i, e in enumerate(cal.link.cpu_levels):
        for j, c in enumerate(cal.link.mem_levels):
            cell = (rows["edge_cpu_pct"].to_numpy() == e) & (rows["cloud_cpu_pct"].to_numpy() == c)
            medians = pd.Series(left[cell]).groupby(cols[cell]).median().clip(lower=0.0)
            np.testing.assert_allclose(
                table[i, j, medians.index, bw], medians.to_numpy(), atol=1e-12
            )
    assert not np.allclose(table[0, 0], table[0, 2])  # LeNet's link does follow cloud CPU
    # The wire bytes are one for every cell; overhead and host time are the cell's.
    assert (law[..., 1] == law[:1, :1, :, 1]).all()
    assert not np.allclose(law[0, 0, :, 0] + law[0, 0, :, 2], law[0, 2, :, 0] + law[0, 2, :, 2])
    # Predictions use the cell of the condition's edge and cloud CPU stress.
    p = cal.predict(0, 0, [0, 100], 0, 25.0).comm_s
    np.testing.assert_allclose(p, table[0, [0, 2], :, bw], atol=1e-12)


def test_link_grid_holds_the_nearest_level_beyond_its_levels():
    from adaptsim.calibration.model import link_grid

    g = link_grid([0.0, 100.0], [0.0, 50.0], np.array([[[1.0], [2.0]], [[3.0], [4.0]]]))
    v, extrap = g.at([150.0, 50.0], [80.0, 25.0], extrapolate=True)
    assert extrap.tolist() == [True, False]
    assert v[0, 0] == pytest.approx(4.0)  # edge and cloud beyond: the corner holds
    assert 1.0 < v[1, 0] < 4.0
    with pytest.raises(ExtrapolationError, match="cloud CPU stress % 80"):
        g.at([0.0], [80.0])


def test_save_load_roundtrip_and_validation(lenet_rows, tmp_path):
    cal = fit_calibration(lenet_rows, {"source": "test"})
    path = tmp_path / "cal.json"
    save_calibration(cal, path)
    back = load_calibration(path)
    a = cal.model("lenet").predict([0, 50], [0, 100], [50, 0], [0, 0], [10, 25])
    b = back.model("lenet").predict([0, 50], [0, 100], [50, 0], [0, 0], [10, 25])
    np.testing.assert_allclose(a.total_s, b.total_s, rtol=1e-5)
    with pytest.raises(UserError, match=r"has no model 'vgg16'.*calibrates lenet"):
        back.model("vgg16")
    doc = json.loads(path.read_text())
    assert doc["version"] == 4
    assert doc["models"]["lenet"]["link"]["axes"] == ["edge_cpu", "cloud_cpu", "point"]
    assert doc["models"]["lenet"]["link"]["params"] == ["overhead_s", "wire_bytes", "host_s"]
    # Version 3 files had no host time: it loads as zero, the wire law alone.
    old = json.loads(path.read_text())
    old["version"] = 3
    for m in old["models"].values():
        m["link"]["values"] = np.asarray(m["link"]["values"])[..., :2].tolist()
    (tmp_path / "v3.json").write_text(json.dumps(old))
    lenet = cal.model("lenet")
    v3 = load_calibration(tmp_path / "v3.json").model("lenet")
    np.testing.assert_allclose(v3.link.values[..., :2], lenet.link.values[..., :2])
    assert (v3.link.values[..., 2] == 0).all()
    # Version 2 files kept the link per edge (CPU, memory) level: read at the first
    # memory level, at every cloud CPU level.
    old["version"] = 2
    for key in ("link", "link_table"):
        g = old["models"]["lenet"][key]
        g["cpu_levels"], g["mem_levels"] = g.pop("edge_cpu_levels"), [0.0, 50.0, 100.0]
        g["values"] = np.stack([np.asarray(g["values"])[:, 0]] * 3, axis=1).tolist()
    (tmp_path / "v2ok.json").write_text(json.dumps(old))
    v2 = load_calibration(tmp_path / "v2ok.json").model("lenet")
    np.testing.assert_allclose(v2.link.values, v3.link.values[:, :1].repeat(3, axis=1))
    np.testing.assert_allclose(v2.link.mem_levels, lenet.cloud_blocks.cpu_levels)
    # Version 1 files (before per-point extras) still load, with zero extras.
    old["version"] = 1
    for m in old["models"].values():
        m.pop("edge_extra_s"), m.pop("cloud_extra_s")
    (tmp_path / "v1.json").write_text(json.dumps(old))
    v1 = load_calibration(tmp_path / "v1.json").model("lenet")
    assert v1.edge_extra.values.max() == 0.0 and v1.cloud_extra.values.max() == 0.0
    del old["models"]["lenet"]["spread"]
    old["version"] = 2
    (tmp_path / "v2.json").write_text(json.dumps(old))
    with pytest.raises(UserError, match=r"v2.json: models\.lenet\.edge_extra_s is missing"):
        load_calibration(tmp_path / "v2.json")
    for key in ("edge_extra_s", "cloud_extra_s"):
        old["models"]["lenet"][key] = doc["models"]["lenet"][key]
    (tmp_path / "v2.json").write_text(json.dumps(old))
    with pytest.raises(UserError, match=r"v2.json: models\.lenet\.spread is missing"):
        load_calibration(tmp_path / "v2.json")
    old["models"]["lenet"]["spread"] = doc["models"]["lenet"]["spread"]
    bad = json.loads(json.dumps(doc))
    for key in ("link", "link_table"):  # the link at other cloud CPU levels than the compute
        bad["models"]["lenet"][key]["cloud_cpu_levels"] = [0.0, 40.0, 100.0]
    path.write_text(json.dumps(bad))
    with pytest.raises(UserError, match="link has other CPU levels than edge_block_s"):
        load_calibration(path)
    bad["models"]["lenet"]["link"]["cloud_cpu_levels"] = [0.0, 50.0, 100.0]
    path.write_text(json.dumps(bad))
    with pytest.raises(UserError, match="link_table has other levels than link"):
        load_calibration(path)
    for row in doc["models"]["lenet"]["edge_block_s"]["values"]:
        for cell in row:
            cell.pop()  # the last block goes missing everywhere
    path.write_text(json.dumps(doc))
    with pytest.raises(UserError, match=r"edge_block_s\.values has shape"):
        load_calibration(path)
    path.write_text("{not json")
    with pytest.raises(UserError, match="not valid JSON"):
        load_calibration(path)


def test_shipped_calibration_has_all_models():
    cal = load_calibration()
    assert sorted(cal.models) == sorted(
        ["alexnet", "densenet121", "lenet", "mobilenet", "resnet50", "resnet50v2", "vgg16", "vgg19"]
    )
    vgg19 = cal.model("vgg19")
    p = vgg19.predict([0, 100], [0, 0], [0, 0], [0, 0], [50, 10])
    # Stress and low bandwidth make every point slower than the baseline.
    assert (p.total_s[1] > p.total_s[0]).all()


def test_regret_by_hand():
    measured = np.array([[1.0, 2.0, 1.04], [3.0, np.nan, 1.0]])
    predicted = np.array([[2.0, 3.0, 1.0], [0.5, 0.1, 2.0]])
    # row 0: picks point 2 (1.04) vs best 1.0; row 1: point 1 is unmeasured, picks 0 (3.0).
    np.testing.assert_allclose(regret(predicted, measured), [0.04, 2.0])


def test_point_errors_by_hand():
    measured = np.array([[1.0] * 10, [2.0, np.nan, 4.0, 0.0] + [np.nan] * 6])
    predicted = np.array([[1.0 + k / 100 for k in range(10)], [1.0, 5.0, 5.0, 1.0] + [1.0] * 6])
    cols = ape_columns(predicted, measured)
    # row 0: errors 0 .. 9 %; row 1: only points 0 and 2 count (50 % and 25 %)
    np.testing.assert_allclose(cols["ape"], [0.045, 0.375])
    np.testing.assert_allclose(cols["ape_p90"], [0.081, 0.475])
    none = ape_columns(np.ones((1, 2)), np.full((1, 2), np.nan))
    assert np.isnan(none["ape"]).all() and np.isnan(none["ape_p90"]).all()
    one = ape_columns(np.array([[1.2, 9.0]]), np.array([[1.0, np.nan]]))
    np.testing.assert_allclose([one["ape"][0], one["ape_p90"][0]], [0.2, 0.2])


def test_part_errors_say_which_part_misses():
    from adaptsim.calibration.model import Prediction
    from adaptsim.calibration.scores import part_errors

    # Two conditions, asked for in the opposite order to the store's sorted one; two points.
    conds = pd.DataFrame({c: [0.0, 0.0] for c in FACTORS.values()}).assign(edge_cpu_pct=[50.0, 0.0])
    rows = pd.DataFrame({c: [0.0] * 4 for c in FACTORS.values()}).assign(
        edge_cpu_pct=[0.0, 0.0, 50.0, 50.0],
        point=[1, 2, 1, 2],
        edge_s=[1.0, 2.0, 2.0, 4.0],
        cloud_s=[1.0, 0.0, 1.0, 0.0],
        comm_s=[1.0, np.nan, 1.0, 0.0],
    )
    measured = np.array([[4.0, 4.0], [3.0, 2.0]])  # totals, per conds row
    # The edge is right at 0 % and off by 1 s at 50 %; the link off by 0.5 s everywhere.
    pred = Prediction(
        edge_s=np.array([[3.0, 5.0], [1.0, 2.0]]),
        cloud_s=np.array([[1.0, 0.0], [1.0, 0.0]]),
        comm_s=np.array([[1.5, 0.5], [1.5, 0.5]]),
        extrapolated=np.zeros(2, dtype=bool),
    )
    err = part_errors(pred, rows, conds, np.array([1, 2]), measured)
    # at 50 %: the edge 1/4 + 1/4 of the totals, the link 1/8 + 1/8
    np.testing.assert_allclose(
        [err[f"{p}_err_share"][0] for p in ("edge", "cloud", "link")], [2 / 3, 0.0, 1 / 3]
    )
    # at 0 %, point 2's link was not measured: only point 1 counts, where the link alone misses
    np.testing.assert_allclose(
        [err[f"{p}_err_share"][1] for p in ("edge", "cloud", "link")], [0.0, 0.0, 1.0]
    )


def _detail(kind: str, regret: np.ndarray, ape: np.ndarray) -> pd.DataFrame:
    """Detail rows of one model: a condition per value (a made-up check's output)."""
    n = len(regret)
    conds = {c: np.arange(n) if c == "edge_cpu_pct" else np.zeros(n) for c in FACTORS.values()}
    return pd.DataFrame(conds | {"model": "m", "kind": kind, "regret": regret, "ape": ape}).assign(
        ape_p90=lambda f: 2 * f["ape"]
    )


def test_floor_gain_intervals_tell_a_real_gain_from_none():
    rng = np.random.default_rng(1)
    noise = rng.uniform(0.0, 0.2, 200)
    same = pd.concat([_detail("cv", noise, noise), _detail("floor", noise, noise)])
    g = floor_gain(same, np.random.default_rng(0), reps=300).set_index("model")
    # identical CV and floor: no gain, and the interval (same draws for both) is 0 too
    assert (g.loc["m"] == 0).all() and list(g.index) == ["m", "all"]
    better = pd.concat([_detail("cv", noise / 4, noise / 2), _detail("floor", noise, noise)])
    g = floor_gain(better, np.random.default_rng(0), reps=300).set_index("model").loc["m"]
    assert g["gain_within_5pct"] == pytest.approx(
        np.mean(noise / 4 <= 0.05) - np.mean(noise <= 0.05), abs=1e-4
    )
    assert g["gain_median_regret"] == pytest.approx(np.median(noise) * 3 / 4, abs=1e-4)
    assert g["gain_p90_ape"] == pytest.approx(np.median(noise), abs=1e-4)
    for name in ("within_5pct", "median_regret", "median_ape", "p90_ape"):
        assert 0 < g[f"gain_{name}_lo"] <= g[f"gain_{name}"] <= g[f"gain_{name}_hi"]


def test_noise_floor_pairs_cloud_memory_repeats(lenet_rows):
    floor = noise_floor("lenet", lenet_rows)
    assert len(floor) == 81 * 6  # 81 groups of 3 files, every ordered pair
    # each file is scored twice, on the picks of its two near-repeats (the arithmetic of
    # one pair is checked by hand in test_calibration_pieces.py)
    assert floor["cloud_mem_pct"].value_counts().to_dict() == {0.0: 162, 50.0: 162, 100.0: 162}
    assert (floor.groupby(list(FACTORS.values())).size() == 2).all()


@pytest.mark.slow
def test_check_reports_cv_and_floor(lenet_rows):
    summary, detail = check_calibration(lenet_rows, ["lenet"])
    assert list(summary["model"]) == ["lenet", "all"]
    row = summary.iloc[0]
    assert row["conditions"] == 243 * 5  # each condition held out once per factor
    assert 0 <= row["within_5pct"] <= 1 and 0 <= row["floor_within_5pct"] <= 1
    assert set(detail["kind"]) == {"cv", "floor", "siblings"}
    assert (detail["kind"] == "siblings").sum() == 243 * 5  # one per condition and factor


def test_ctrl_c_during_the_check_keeps_the_models_it_finished(lenet_rows):
    rows = lenet_rows[lenet_rows["bandwidth_mbps"] != 25]  # a smaller check, same code

    # Ctrl-C arrives right after the first model is checked, before the second
    # (the progress callback stands in for the user's keyboard).
    def ctrl_c(_model):
        raise KeyboardInterrupt

    with pytest.raises(CheckInterrupted) as stop:  # resampled with seed 0, the default
        check_calibration(rows, ["lenet", "lenet"], progress=ctrl_c, rng=np.random.default_rng(0))
    assert stop.value.models == ["lenet"]
    assert list(stop.value.summary["model"]) == ["lenet", "all"]
    assert set(stop.value.detail["kind"]) == {"cv", "floor", "siblings"}
    whole, _ = check_calibration(rows, ["lenet"])
    pd.testing.assert_frame_equal(stop.value.summary, whole)

    def no_floor(_model, _rows):  # before any model is done: a plain interrupt
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt) as plain:
        check_calibration(rows, ["lenet"], floor=no_floor)
    assert not isinstance(plain.value, CheckInterrupted)


def test_siblings_predict_each_file_by_the_mean_of_the_others(lenet_rows):
    from adaptsim.calibration.check import siblings

    sib = siblings("lenet", lenet_rows)
    mem = sib[sib["factor"] == "cloud_mem"]
    assert len(mem) == 243
    # by hand for one group: the file at cloud memory 0 vs the mean of 50 and 100
    key = {"edge_cpu_pct": 0.0, "edge_mem_pct": 0.0, "bandwidth_mbps": 10.0, "cloud_cpu_pct": 0.0}
    g = lenet_rows
    for k, v in key.items():
        g = g[g[k] == v]
    wide = g.pivot_table(index="cloud_mem_pct", columns="point", values="total_s")
    pred = wide.loc[[50.0, 100.0]].mean()
    meas = wide.loc[0.0]
    want = meas[pred.idxmin()] / meas.min() - 1
    got = mem
    for k, v in key.items():
        got = got[got[k] == v]
    assert got[got["cloud_mem_pct"] == 0.0]["regret"].iloc[0] == pytest.approx(want)


runner = CliRunner()


def test_cli_calibrate_with_check(tmp_path):
    from pathlib import Path

    store = tmp_path / "s.parquet"
    import_adaptivednn([Path(__file__).parent / "data/adaptivednn/2020-05-27"], store)
    out = tmp_path / "cal.json"
    r = runner.invoke(app, ["calibrate", str(store), "--out", str(out), "--check"])
    assert r.exit_code == 0, r.output
    assert load_calibration(out).model("lenet")
    check = pd.read_csv(tmp_path / "cal.check.csv")
    assert {"within_5pct", "floor_within_5pct", "median_ape", "floor_median_ape"} <= set(check)
    assert (check["p90_ape"] >= check["median_ape"]).all()
    assert (check["floor_p90_ape"] >= check["floor_median_ape"]).all()
    gain = check["within_5pct"] - check["floor_within_5pct"]
    np.testing.assert_allclose(check["gain_within_5pct"], gain, atol=1e-3)
    assert (check["gain_median_ape_lo"] <= check["gain_median_ape"]).all()
    assert (check["gain_median_ape"] <= check["gain_median_ape_hi"]).all()
    assert "95 % bootstrap interval" in r.output
    # Per held-out factor: the same cross-validation rows, split by the factor held out.
    detail = pd.read_csv(tmp_path / "cal.check-detail.csv")
    levels = pd.read_csv(tmp_path / "cal.check-by-factor.csv", dtype={"level": str})
    per = levels[levels["level"] == "all"].set_index(["model", "factor"])
    assert len(per) == 2 * 5 and per["conditions"].eq(243).all()
    cv = detail[(detail["kind"] == "cv") & (detail["factor"] == "edge_cpu")]
    row = per.loc[("all", "edge_cpu")]
    assert row["within_5pct"] == round(float((cv["regret"] <= 0.05).mean()), 3)
    assert row["median_ape"] == round(float(cv["ape"].median()), 4)
    assert row["p90_ape"] == round(float(cv["ape_p90"].median()), 4)
    shares = [f"mean_{part}_err_share" for part in ("edge", "cloud", "link")]
    assert row[shares].sum() == pytest.approx(1.0, abs=2e-3)  # who carries the error, in all
    assert row["mean_link_err_share"] == round(float(cv["link_err_share"].mean()), 3)
    # ... and per held-out level: 0 and 100 % lie beyond the two levels left to fit.
    one = levels[(levels["model"] == "all") & (levels["factor"] == "edge_cpu")]
    one = one[one["level"] != "all"].set_index("level")
    assert list(one.index) == ["0", "50", "100"] and one["conditions"].sum() == 243
    assert list(one["extrapolated"]) == [1.0, 0.0, 1.0]
    top = cv[cv["level"] == 100]
    assert one.loc["100", "median_ape"] == round(float(top["ape"].median()), 4)
    lenet = check[check["model"] == "lenet"].iloc[0]  # the factors together make the whole
    assert lenet["within_5pct"] == pytest.approx(per["within_5pct"].loc["lenet"].mean(), abs=2e-3)
    bad = runner.invoke(app, ["calibrate", str(tmp_path / "none.parquet"), "--out", str(out)])
    assert bad.exit_code == 2 and "does not exist" in bad.stderr


def test_per_block_calibration_from_scission(tmp_path):
    from pathlib import Path

    from adaptsim.importers import import_scission

    store = tmp_path / "s.parquet"
    import_scission(Path(__file__).parent / "data/scission/blocks.csv", store)
    out = tmp_path / "pi.json"
    r = runner.invoke(
        app,
        [
            "calibrate",
            str(store),
            "--out",
            str(out),
            "--edge-host",
            "device-raspi4",
            "--cloud-host",
            "cloud-6700k(NoGPU)",
        ],
    )
    assert r.exit_code == 0, r.output
    m = load_calibration(out).model("vgg19")
    frame, _ = read_store(store)
    pi = frame[(frame["edge_host"] == "device-raspi4") & (frame["model"] == "vgg19")]
    cloud = frame[(frame["cloud_host"] == "cloud-6700k(NoGPU)") & (frame["model"] == "vgg19")]
    p = m.predict(0, 0, 0, 0, 1.6)
    # all-edge: every Pi block; all-cloud: every 6700K block; ping 100 ms as the overhead.
    assert p.edge_s[0, -1] == pytest.approx(pi["edge_s"].sum(), rel=1e-5)
    assert p.cloud_s[0, 0] == pytest.approx(cloud["cloud_s"].sum(), rel=1e-5)
    assert p.comm_s[0, 0] == pytest.approx(0.1 + 224 * 224 * 3 * 4 * 8 / 1.6e6, rel=1e-5)
    with pytest.raises(ExtrapolationError):
        m.predict(50, 0, 0, 0, 1.6)  # one stress level only: no silent extrapolation
    # Without hosts, the error names them.
    r = runner.invoke(app, ["calibrate", str(store), "--out", str(out)])
    assert r.exit_code == 2 and "--edge-host" in r.stderr and "device-raspi4" in r.stderr
