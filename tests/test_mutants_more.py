"""Tests written for mutmut's last surviving importer and calibration mutants
(docs/testing.md, "Mutation testing").

Each test pins a behaviour a surviving mutant changed, on hand-made input whose
right answer is worked out by hand in the test. Each docstring names the mutant it
kills (from ``scripts/mutation.sh --sample 30 --seed 22 simulator calibration
importers analysis``); every kill was checked by applying the mutant's edit by hand
to ``src/``, seeing the test fail, and reverting.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from adaptsim.calibration import fit_model
from adaptsim.calibration.build import measured_rows
from adaptsim.calibration.profiles import split_half_floor
from adaptsim.cli import app
from adaptsim.errors import UserError
from adaptsim.importers import import_adaptivednn, import_scission
from adaptsim.store import COLUMNS, ChoiceError, read_store, write_store
from adaptsim.store.catalog import catalog_cuts

# -- the importer: the data's cuts that Keras 3 lacks -----------------------------------

# LeNet as the project's Keras 3 model has it (src/adaptsim/data/points_catalog.csv):
# ten cuts, by layer name, with the bytes each one sends.
KERAS3_LENET = [
    ("conv1", 62720),
    ("relu1", 62720),
    ("pool1", 15680),
    ("conv2", 39200),
    ("relu2", 39200),
    ("pool2", 9800),
    ("flatten", 9800),
    ("fc3", 2000),
    ("relu3", 2000),
    ("predictions", 4000),
]


def _cut_points_with_a_dropout(path: Path) -> Path:
    """The data's LeNet had a dropout after the flatten (Keras 2 numbering on its name):
    eleven cuts, the eighth of which Keras 3 lacks."""
    cuts = [*KERAS3_LENET[:7], ("dropout_2", 9800), *KERAS3_LENET[7:]]
    lines = ["model,cut_ordinal,cut_layer_index,cut_layer_name,output_bytes_fp32"]
    lines += [f"lenet,{k + 1},{k},{name},{b}" for k, (name, b) in enumerate(cuts)]
    path.write_text("\n".join(lines) + "\n")
    return path


def _lenet_files(root: Path, n: int) -> Path:
    """Two clean files of ``n`` lines (edge grows, cloud shrinks, the link takes 0.2 s,
    more than the 62,720 B of the largest cut need at 10 Mbit/s: 0.05 s)."""
    d = root / "run" / "outputs_lenet"
    d.mkdir(parents=True)
    for code in ("00000", "20000"):
        lines = []
        for k in range(n):
            edge, cloud = 0.004 + 0.002 * k, 0.004 + 0.002 * (n - k)
            lines.append(f"{edge + cloud + 0.2!r} {edge!r} {cloud!r} {k + 1}")
        (d / f"weights_{code}.txt").write_text("\n".join(lines) + "\n")
    return root / "run"


def test_the_data_cuts_that_keras_3_lacks_are_named_in_summary_store_and_cli(tmp_path):
    """Kills ``importers.adaptivednn._point_map_65`` (``unmatched = None``: the note
    said "data ordinals None" instead of naming the data's cuts Keras 3 lacks).

    By layer name (Keras numbering stripped), data cuts 1-7 are Keras 3's 1-7 and
    data cuts 9-11 are its 8-10; data cut 8 (``dropout_2``) has no counterpart, so
    its bytes come from cut_points.csv. The bytes of every matched cut agree with
    Keras 3's, and the files have one line per data cut: that note is the only one.
    """
    run = _lenet_files(tmp_path, 11)
    cuts = _cut_points_with_a_dropout(tmp_path / "cut_points.csv")
    store = tmp_path / "s.parquet"
    frame, summaries = import_adaptivednn([run], store, cut_points=cuts)
    note = (
        "lenet: the data's models had 11 cuts, Keras 3 has 10; aligned by layer name, "
        "data ordinals [8] have no Keras 3 counterpart (their bytes come from cut_points.csv)"
    )
    assert summaries["adaptivednn-run"].notes == [note]
    _, meta = read_store(store)
    assert meta["sources"]["adaptivednn-run"]["summary"]["notes"] == [note]
    # every line kept as the data's ordinal, with the data's names
    first = frame[frame["provenance"].str.startswith("outputs_lenet/weights_00000.txt")]
    assert first["point"].tolist() == list(range(1, 12))
    assert first["layer_name"].tolist()[6:9] == ["flatten", "dropout_2", "fc3"]
    assert first["output_bytes"].tolist() == [b for _, b in KERAS3_LENET[:7]] + [9800.0] + [
        b for _, b in KERAS3_LENET[7:]
    ]
    # the command line prints the note under the summary
    res = CliRunner().invoke(
        app,
        ["import", "adaptivednn", str(run), "--cut-points", str(cuts), "--out", str(store)],
    )
    assert res.exit_code == 0, res.output
    assert f"  note: {note}" in res.stderr.splitlines()


def test_a_binary_data_file_is_named_as_an_adaptivednn_file(tmp_path):
    """Kills ``importers.adaptivednn._parse_file_8`` (``read_text(path, None)``: the
    line began "None ..." instead of saying which kind of file is binary)."""
    run = _lenet_files(tmp_path, 10)
    bad = run / "outputs_lenet" / "weights_20000.txt"
    bad.write_bytes(b"\x00\x01\x02 not text")
    with pytest.raises(UserError) as err:
        import_adaptivednn([run], tmp_path / "s.parquet")
    assert str(err.value) == f"AdaptiveDNN file {bad} is a binary file, not text"
    assert not (tmp_path / "s.parquet").exists()


@pytest.mark.parametrize(
    "content, says",
    [(b"\x00\x00 binary", "is a binary file, not text"), (b"model\n\xff\n", "is not UTF-8")],
)
def test_a_cut_points_file_that_is_not_text_is_named_as_one(tmp_path, content, says):
    """Kills ``importers.adaptivednn._read_cut_points_27`` and ``_28`` (the file's
    label in the line changed to "XXcut points fileXX" and "CUT POINTS FILE")."""
    run = _lenet_files(tmp_path, 10)
    cuts = tmp_path / "cut_points.csv"
    cuts.write_bytes(content)
    with pytest.raises(UserError) as err:
        import_adaptivednn([run], tmp_path / "s.parquet", cut_points=cuts)
    assert str(err.value).startswith(f"cut points file {cuts} {says}")


def test_scission_rows_are_returned_as_stored_with_no_flags(tmp_path):
    """Kills ``importers.scission.import_scission_205`` (each row's flags None: the
    store wrote them as "", the rows returned held None).

    Scission data has nothing the importer flags: every row, as returned and as
    stored, has the empty flag list.
    """
    path = tmp_path / "blocks.csv"
    path.write_text(
        "system,model,block_index,input_layer,output_layer,latency_s,output_size_bytes\n"
        "device-raspi4,toy,0,0,1,0.5,1128\n"
        "cloud-6700k(NoGPU),toy,0,0,1,0.05,1128\n"
    )
    frame, _ = import_scission(path, tmp_path / "s.parquet")
    stored, _ = read_store(tmp_path / "s.parquet")
    assert frame["flags"].tolist() == ["", ""]
    assert stored["flags"].tolist() == ["", ""]


# -- the split-half floor of own profiles with two cloud hosts --------------------------


def _row(**values) -> dict:
    row = dict.fromkeys(COLUMNS, np.nan)
    row.update(flags="", provenance="test", edge_host="e", cloud_host="", repeats=1)
    row.update({k: "" for k in ("edge_arch", "edge_cpu", "cloud_arch", "cloud_cpu")})
    row.update(stat="sample", model="toy", layer_name="")
    row.update(values)
    return row


# Three points (0 all-cloud, 1 a cut, 2 all-edge), one condition each side (0 % stress)
# and one bandwidth. The link sends 1 us per byte, no overhead: 20, 10 and 0 ms.
BYTES = (20_000.0, 10_000.0, 0.0)
EDGE_S = (0.0, 0.010, 0.030)
# Cloud seconds per point of repeat 0 and repeat 1 (the two halves), per cloud host.
CLOUD_S = {
    # halves: totals (0.050, 0.040, 0.030) and (0.056, 0.040, 0.030): point 2 wins both
    "cloud-a": ((0.030, 0.020, 0.0), (0.036, 0.020, 0.0)),
    # halves: totals (0.060, 0.040, 0.030) and (0.060, 0.025, 0.030): point 2 against 1
    "cloud-b": ((0.040, 0.020, 0.0), (0.040, 0.005, 0.0)),
}


def _two_cloud_store(path: Path, s_per_byte: tuple[float, float] = (1e-6, 1e-6)) -> pd.DataFrame:
    """A hand-made profile store: one edge host, two cloud hosts whose times differ,
    each side and the link probes with two repeats (the link's seconds per byte in
    repeat 0 and repeat 1: ``s_per_byte``)."""
    rows = []
    for k in (0, 1):
        for p in range(3):
            common = dict(record="partition", point=p, layer_index=p - 1, output_bytes=BYTES[p])
            rows.append(
                _row(**common, source="profile:edge", host_role="edge", edge_cpu_pct=0.0,
                     edge_mem_pct=0.0, edge_cpu_quota=1.0, edge_s=EDGE_S[p])
            )  # fmt: skip
            for host, halves in CLOUD_S.items():
                rows.append(
                    _row(**common, source=f"profile:{host}", host_role="cloud", cloud_host=host,
                         cloud_cpu_pct=0.0, cloud_mem_pct=0.0, cloud_s=halves[k][p])
                )  # fmt: skip
        for size in (1_000.0, 100_000.0):
            rows.append(
                _row(source="profile:link", record="link", host_role="link", model="", point=0,
                     output_bytes=size, bandwidth_mbps=8.0, comm_s=size * s_per_byte[k])
            )  # fmt: skip
    frame = pd.DataFrame(rows)
    write_store(path, frame, {s: {} for s in frame["source"].unique()})
    return read_store(path)[0]


def test_the_split_half_floor_uses_the_cloud_host_asked_for(tmp_path):
    """Kills ``calibration.profiles.split_half_floor_6`` (the halves taken with
    ``cloud_host=None``: a store with two cloud hosts then refused the floor).

    Worked by hand (each half's time is its one repeat; the link law is exact):
    totals are edge + cloud + link (20, 10, 0 ms). On ``cloud-a`` both halves pick
    point 2 (30 ms): regret 0; the per-point errors |a / b - 1| are 50 / 56 - 1
    (0.107), 0 and 0: median 0, 90th percentile 0.8 x 6 / 56. On ``cloud-b`` half 0
    picks point 2 (30 ms) but half 1's best is point 1 (25 ms): regret 30 / 25 - 1 =
    0.2; errors 0, 40 / 25 - 1 = 0.6 and 0: median 0, 90th percentile 0.8 x 0.6.
    """
    frame = _two_cloud_store(tmp_path / "s.parquet")
    cond = ["edge_cpu_pct", "edge_mem_pct", "bandwidth_mbps", "cloud_cpu_pct", "cloud_mem_pct"]
    for host, regret, p90 in (("cloud-a", 0.0, 0.8 * 6 / 56), ("cloud-b", 0.2, 0.8 * 0.6)):
        floor = split_half_floor(frame, "toy", cloud_host=host)
        assert len(floor) == 1, host  # one condition
        got = floor.iloc[0]
        assert [got[c] for c in cond] == [0.0, 0.0, 8.0, 0.0, 0.0]
        assert got["model"] == "toy"
        assert got["regret"] == pytest.approx(regret, abs=1e-9), host
        assert got["ape"] == pytest.approx(0.0, abs=1e-9), host
        assert got["ape_p90"] == pytest.approx(p90, rel=1e-6), host
    # without a cloud host, two of them are a choice the user must make
    with pytest.raises(ChoiceError) as err:
        split_half_floor(frame, "toy")
    assert str(err.value) == (
        "the store has cloud profiles from ['cloud-a', 'cloud-b']: choose one with the cloud host"
    )


def test_the_split_half_floor_splits_the_link_probes_too(tmp_path):
    """Kills ``calibration.profiles._link_summary_6`` (the link law fitted to every
    probe in both halves: the parity not passed on).

    The link's repeat 0 takes 1 us per byte, repeat 1 2 us: half 1's link takes 40,
    20 and 0 ms at the three points. On ``cloud-a`` (see above) half 0's totals are
    (50, 40, 30) ms, half 1's (36 + 40, 10 + 20 + 20, 30) = (76, 50, 30) ms: both
    pick point 2 (regret 0); the errors are 26 / 76, 10 / 50 and 0: median 0.2,
    90th percentile 0.2 x 0.2 + 0.8 x 26 / 76. Pooling the probes (the mutant) gives
    both halves 1.5 us per byte: errors 6 / 66, 0, 0 and a median of 0.
    """
    frame = _two_cloud_store(tmp_path / "s.parquet", s_per_byte=(1e-6, 2e-6))
    got = split_half_floor(frame, "toy", cloud_host="cloud-a").iloc[0]
    assert got["regret"] == pytest.approx(0.0, abs=1e-9)
    assert got["ape"] == pytest.approx(0.2, rel=1e-6)
    assert got["ape_p90"] == pytest.approx(0.2 * 0.2 + 0.8 * 26 / 76, rel=1e-6)


# -- the ends a calibration adds to AdaptiveDNN data ------------------------------------


def test_a_calibration_of_adaptivednn_lenet_adds_the_input_named_as_the_zoo_has_it(tmp_path):
    """Kills ``calibration.fit._layout_46`` (the added all-cloud point named
    "XXinputXX").

    The AdaptiveDNN files measure LeNet's cuts 1-10 only; the calibration adds the
    ends from the project's catalog: point 0, the raw 28 x 28 x 1 float input
    (3,136 bytes) named ``input``, and point 11, the all-edge ``softmax`` (4,000
    bytes: its 1,000 scores).
    """
    store = tmp_path / "s.parquet"
    import_adaptivednn([Path(__file__).parent / "data/adaptivednn/2020-05-27"], store)
    cal = fit_model("lenet", measured_rows(store).rows)
    assert cal.ordinals.tolist() == list(range(12))
    assert (cal.kinds[0], cal.layer_names[0], cal.output_bytes[0]) == ("all_cloud", "input", 3136.0)
    assert (cal.kinds[-1], cal.layer_names[-1], cal.output_bytes[-1]) == (
        "all_edge",
        "softmax",
        4000.0,
    )


def _lenet_rows_at_two_edge_memory_levels() -> pd.DataFrame:
    """Per-partition rows of LeNet's cuts 1-10 (as AdaptiveDNN measures them: no
    all-cloud, no all-edge) from known block times, no noise: every block takes
    10 ms on the cloud and 20 ms on the edge, 40 ms under 100 % edge memory stress;
    the link 4 ms + the cut's bytes at 10 or 50 Mbit/s."""
    out_bytes = catalog_cuts("lenet")["output_bytes"].to_numpy(dtype=float)
    rows = []
    for mem, edge_block_s in ((0.0, 0.020), (100.0, 0.040)):
        for bw in (10.0, 50.0):
            for k in range(1, 11):
                edge, cloud = k * edge_block_s, (11 - k) * 0.010
                comm = 0.004 + out_bytes[k - 1] * 8 / (bw * 1e6)
                row = dict.fromkeys(COLUMNS, np.nan)
                row.update(
                    source="synthetic", provenance=f"f:{k}", record="partition",
                    host_role="edge+cloud", model="lenet", point=k, layer_index=float(k - 1),
                    layer_name=f"l{k}", output_bytes=out_bytes[k - 1], edge_cpu_pct=0.0,
                    edge_mem_pct=mem, cloud_cpu_pct=0.0, cloud_mem_pct=0.0, bandwidth_mbps=bw,
                    repeats=1, stat="mean", edge_s=edge, cloud_s=cloud, comm_s=comm,
                    total_s=edge + cloud + comm, flags="",
                )  # fmt: skip
                rows.append(row)
    return pd.DataFrame(rows)


def test_the_all_cloud_block_is_derived_from_the_unstressed_edge(tmp_path):
    """Kills ``calibration.fit.fit_model_99`` (the first block's cloud time derived
    from the edge at memory level 1, 100 %, instead of level 0).

    The data never runs LeNet's first block on the cloud (its cuts start at 1), so
    the calibration derives it: its unstressed edge time (20 ms) over the edge/cloud
    speed ratio of the other blocks (20 / 10 = 2): 10 ms. All-cloud then takes the
    eleven blocks' 10 ms each on the cloud: 110 ms (with the stressed edge's 40 ms,
    120 ms).
    """
    cal = fit_model("lenet", _lenet_rows_at_two_edge_memory_levels())
    assert cal.ordinals[0] == 0 and cal.kinds[0] == "all_cloud"
    p = cal.predict(0.0, 0.0, 0.0, 0.0, 10.0)
    assert p.cloud_s[0, 0] == pytest.approx(0.110, rel=1e-6)
