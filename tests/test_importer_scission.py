"""The Scission importer on hand-made files: every cell of every row, and each bad input.

The blocks file is written here row by row, so each expected value follows from
the row it came from (the .npy header of 128 bytes taken off the output size, the
block index shifted to a 1-based point, the host's role and facts from its name).
"""

from __future__ import annotations

import math

import pytest

from adaptsim.errors import UserError
from adaptsim.importers import import_scission
from adaptsim.store import read_store

HEADER = (
    "system,model,block_index,input_layer,output_layer,latency_s,output_size_bytes,device_field"
)


def _write(folder, *rows: str, header: str = HEADER):
    path = folder / "blocks.csv"
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def test_every_cell_of_edge_cloud_and_unknown_hosts(tmp_path):
    path = _write(
        tmp_path,
        "device-raspi4,toy,0,0,1,0.5,1128,",
        "cloud-6700k(NoGPU),toy,0,0,1,0.05,1128,",
        ",,,,,,,",  # an empty row is skipped
        "device-raspi4,toy,1,2,3,0.25,100,x",  # smaller than the header: 0 bytes
        "Unknown-Box,toy,1,2,3,0.125,628",  # the last column may be missing
    )
    frame, summary = import_scission(path, tmp_path / "s.parquet")
    assert len(frame) == 4
    assert frame["provenance"].tolist() == [
        "blocks.csv:2",
        "blocks.csv:3",
        "blocks.csv:5",
        "blocks.csv:6",
    ]
    assert set(frame["source"]) == {"scission"} and set(frame["record"]) == {"block"}
    assert frame["host_role"].tolist() == ["edge", "cloud", "edge", "edge"]
    assert frame["point"].tolist() == [1, 1, 2, 2]  # block index + 1
    assert frame["layer_index"].tolist() == [1.0, 1.0, 3.0, 3.0]  # the block's last layer
    assert frame["output_bytes"].tolist() == [1000.0, 1000.0, 0.0, 500.0]
    assert set(frame["repeats"]) == {10} and set(frame["stat"]) == {"mean"}
    for col in ("edge_cpu_pct", "edge_mem_pct", "cloud_cpu_pct", "cloud_mem_pct"):
        assert (frame[col] == 0.0).all()
    for col in ("bandwidth_mbps", "comm_s", "total_s", "edge_cpu_quota"):
        assert frame[col].isna().all(), col
    edge, cloud, small, unknown = (frame.iloc[i] for i in range(4))
    # an edge row: its time and host facts on the edge side, nothing on the cloud side
    assert (edge["edge_host"], edge["edge_arch"], edge["edge_cores"]) == (
        "device-raspi4",
        "aarch64",
        4.0,
    )
    assert edge["edge_cpu"] == "ARM Cortex-A72 (Raspberry Pi 4)"
    assert edge["edge_s"] == 0.5 and math.isnan(edge["cloud_s"])
    assert (edge["cloud_host"], edge["cloud_arch"], edge["cloud_cpu"]) == ("", "", "")
    assert math.isnan(edge["cloud_cores"]) and math.isnan(edge["edge_memory_bytes"])
    # a cloud row: the mirror image
    assert (cloud["cloud_host"], cloud["cloud_arch"], cloud["cloud_cores"]) == (
        "cloud-6700k(NoGPU)",
        "x86_64",
        4.0,
    )
    assert cloud["cloud_cpu"] == "Intel Core i7-6700K"
    assert cloud["cloud_s"] == 0.05 and math.isnan(cloud["edge_s"])
    assert (cloud["edge_host"], cloud["edge_arch"]) == ("", "")
    assert math.isnan(cloud["edge_cores"]) and math.isnan(cloud["cloud_memory_bytes"])
    assert small["edge_s"] == 0.25
    # a host the importer does not know is an edge with no facts
    assert (unknown["edge_host"], unknown["edge_arch"], unknown["edge_cpu"]) == (
        "Unknown-Box",
        "",
        "",
    )
    assert math.isnan(unknown["edge_cores"]) and unknown["edge_s"] == 0.125
    assert summary == {
        "rows": 4,
        "systems": ["Unknown-Box", "cloud-6700k(NoGPU)", "device-raspi4"],
        "models": ["toy"],
    }
    back, meta = read_store(tmp_path / "s.parquet")
    assert len(back) == 4 and back["output_bytes"].tolist() == [1000.0, 1000.0, 0.0, 500.0]
    src = meta["sources"]["scission"]
    assert src["importer"] == "scission" and src["summary"] == summary
    assert src["paths"] == [str(path.resolve())] and src["network"] == []
    assert "Lockhart" in src["citation"]


def test_host_names_match_whatever_their_case_and_spaces(tmp_path):
    path = _write(tmp_path, " CLOUD-6700K(nogpu) , toy ,0,0,1,0.05,1128,")
    frame, _ = import_scission(path, tmp_path / "s.parquet")
    r = frame.iloc[0]
    assert r["host_role"] == "cloud" and r["cloud_host"] == "CLOUD-6700K(nogpu)"
    assert r["cloud_arch"] == "x86_64" and r["model"] == "toy"


def test_network_facts_beside_the_blocks_are_kept_cell_by_cell(tmp_path):
    path = _write(tmp_path, "device-raspi4,toy,0,0,1,0.5,1128,")
    (tmp_path / "network_stats.csv").write_text(
        "source,destination,ping(ms),bandwidth(mbps)\nraspi4, 6700k(NoGPU),   100,  1.6\n"
    )
    (tmp_path / "network_stats_wifi.csv").write_text("source,destination,ping(ms)\na,b,\n")
    (tmp_path / "other.csv").write_text("source,destination\nx,y\n")  # not a network file
    import_scission(path, tmp_path / "s.parquet")
    _, meta = read_store(tmp_path / "s.parquet")
    assert meta["sources"]["scission"]["network"] == [
        {
            "file": "network_stats.csv",
            "source": "raspi4",
            "destination": "6700k(NoGPU)",
            "ping(ms)": "100",
            "bandwidth(mbps)": "1.6",
        },
        {"file": "network_stats_wifi.csv", "source": "a", "destination": "b", "ping(ms)": ""},
    ]


@pytest.mark.parametrize(
    ("rows", "header", "message"),
    [
        ((), "", "blocks.csv: empty file"),
        ((), HEADER, "blocks.csv: no data rows"),
        (
            ("device-raspi4,toy,0,0,1,0.5,1128,",),
            HEADER.replace("latency_s", "seconds"),
            "blocks.csv:1: missing columns ['latency_s']; is this a Scission CSV?",
        ),
        (("device-raspi4,toy,0,0,1,0.5",), HEADER, "blocks.csv:2: 6 columns, expected 8"),
        (
            ("device-raspi4,toy,0,0,1,0.5,1128,", "device-raspi4,toy,1,0,1,fast,1128,"),
            HEADER,
            "blocks.csv:3: latency_s 'fast' is not a number",
        ),
        (
            ("device-raspi4,toy,0,0,1,-0.5,1128,",),
            HEADER,
            "blocks.csv:2: latency_s must be finite and non-negative",
        ),
        (
            ("device-raspi4,toy,0,0,1,0.5,inf,",),
            HEADER,
            "blocks.csv:2: output_size_bytes must be finite and non-negative",
        ),
    ],
)
def test_bad_files_are_refused_in_one_line_and_write_nothing(tmp_path, rows, header, message):
    path = tmp_path / "blocks.csv"
    path.write_text("\n".join([header, *rows]) + "\n" if header else "")
    with pytest.raises(UserError) as err:
        import_scission(path, tmp_path / "s.parquet")
    assert str(err.value) == f"{tmp_path}/{message}"
    assert not (tmp_path / "s.parquet").exists()


def test_a_missing_file_names_what_to_pass(tmp_path):
    with pytest.raises(UserError) as err:
        import_scission(tmp_path / "none.csv", tmp_path / "s.parquet")
    assert (
        str(err.value) == f"{tmp_path}/none.csv: no such file; pass scission_benchmark_blocks.csv"
    )
