"""One entry point from any store to a calibration, and the choices it refuses.

The three kinds of store are real data: the AdaptiveDNN LeNet subset
(per-partition), a Scission subset (per-block) and this machine's own profiles
(docs/own_profiles). Choices a store cannot meet are refused before any fitting,
in the library's words; the CLI says the same with its flags.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from adaptsim.calibration.build import StoreKind, build_calibration, measured_rows, store_kind
from adaptsim.cli import app
from adaptsim.cli.flags import FLAGS
from adaptsim.importers import import_adaptivednn, import_scission
from adaptsim.store import ChoiceError, read_store

DATA = Path(__file__).parent / "data"
ROOT = Path(__file__).parent.parent
OWN = ROOT / "docs/own_profiles/own.parquet"
SCISSION_HOSTS = {"edge_host": "device-raspi4", "cloud_host": "cloud-6700k(NoGPU)"}
runner = CliRunner()


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("stores")
    import_adaptivednn([DATA / "adaptivednn/2020-05-27"], tmp / "adnn.parquet")
    import_scission(DATA / "scission/blocks.csv", tmp / "scission.parquet")
    return {"partition": tmp / "adnn.parquet", "blocks": tmp / "scission.parquet", "own": OWN}


def test_the_kind_of_store_comes_from_its_rows(stores):
    kinds = {k: store_kind(read_store(p)[0], hosts_given=k == "blocks") for k, p in stores.items()}
    assert kinds == {
        "partition": StoreKind.partition,
        "blocks": StoreKind.blocks,
        "own": StoreKind.profiles,
    }
    built = build_calibration(stores["blocks"], **SCISSION_HOSTS)
    assert built.kind is StoreKind.blocks and built.fit_rows is None
    assert built.calibration.provenance["edge_host"] == "device-raspi4"
    assert built.calibration.provenance["store"] == str(stores["blocks"].resolve())


def test_choices_read_in_words_in_the_library_and_as_flags_on_the_command_line(stores):
    with pytest.raises(ChoiceError) as exc:
        build_calibration(stores["blocks"])
    words, flags = str(exc.value), exc.value.render(FLAGS)
    assert "edge host" in words and "--edge-host" not in words
    assert "--edge-host" in flags and "--cloud-host" in flags and "device-raspi4" in flags
    with pytest.raises(ChoiceError, match="models: vgg99 not in the store's measurements"):
        build_calibration(stores["partition"], ["vgg99"])


@pytest.mark.parametrize(
    ("store", "args", "says"),
    [
        (
            "blocks",
            ["--check", "--edge-host", "device-raspi4", "--cloud-host", "cloud-6700k(GPU)"],
            "--check: per-block data has a single condition",
        ),
        (
            "blocks",
            ["--edge-host", "device-raspi4"],
            "needs both the --edge-host and the --cloud-host",
        ),
        (
            "blocks",
            ["--edge-host", "nope", "--cloud-host", "cloud-6700k(GPU)"],
            "--edge-host 'nope': no edge blocks timed on it",
        ),
        ("partition", ["--edge-host", "pi"], "--edge-host and --cloud-host apply to per-block"),
        ("partition", ["--summary", "median"], "--summary applies to own profiles"),
        ("partition", ["-m", "vgg99"], "--models: vgg99 not in the store's measurements"),
        ("own", ["--summary", "mode"], "--summary 'mode': choose one of trimmed-mean, median"),
        (
            "own",
            ["-m", "vgg99", "--cloud-host", "vm"],
            "--models: vgg99 not in the models profiled",
        ),
        ("own", ["--edge-host", "elsewhere"], "--edge-host 'elsewhere': no edge profile"),
    ],
)
def test_calibrate_refuses_a_choice_before_writing_anything(stores, tmp_path, store, args, says):
    out = tmp_path / "cal.json"
    r = runner.invoke(app, ["calibrate", str(stores[store]), "--out", str(out), *args])
    assert r.exit_code == 2, r.output
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and says in lines[0], r.stderr
    assert not out.exists() and not list(tmp_path.iterdir())


def test_unknown_models_are_refused_alike_by_every_command(stores, tmp_path):
    for cmd in (
        ["calibrate", str(stores["partition"]), "--out", str(tmp_path / "c.json")],
        ["study", str(stores["partition"]), "--out", str(tmp_path / "s")],
        ["study", "--out", str(tmp_path / "s")],  # the shipped calibration
        [
            "import",
            "adaptivednn",
            str(DATA / "adaptivednn/2020-05-27"),
            "--out",
            str(tmp_path / "i"),
        ],
    ):
        r = runner.invoke(app, [*cmd, "-m", "lenet", "-m", "vgg99"])
        assert r.exit_code == 2, (cmd, r.output)
        assert r.stderr.startswith("adaptsim: error: --models: vgg99 not in "), r.stderr
    assert not list(tmp_path.iterdir())


def test_measured_rows_leave_out_flagged_lines_of_the_chosen_models_only(tmp_path):
    store = tmp_path / "s.parquet"
    import_adaptivednn([DATA / "adaptivednn/2020-05-27", DATA / "adaptivednn/2021-08-20"], store)
    both = measured_rows(store)
    assert both.left_out_counts() == {"input_is_next_cut": 2}
    assert set(both.left_out["model"]) == {"vgg19"}
    lenet = measured_rows(store, ["lenet"])
    assert lenet.left_out_counts() == {} and set(lenet.rows["model"]) == {"lenet"}
    assert len(both.rows) == len(lenet.rows) + 3 * 25 - 2


def test_calibrate_checks_out_paths_before_the_work(stores, tmp_path):
    folder = tmp_path / "taken"
    folder.mkdir()
    r = runner.invoke(app, ["calibrate", str(stores["partition"]), "--out", str(folder)])
    assert r.exit_code == 2 and "--out" in r.stderr and "is a folder" in r.stderr
    r = runner.invoke(
        app,
        ["calibrate", str(stores["partition"]), "--out", str(tmp_path / "c.json"), "--check",
         "--check-out", str(folder)],
    )  # fmt: skip
    assert r.exit_code == 2 and "--check-out" in r.stderr and not (tmp_path / "c.json").exists()


def _imports(path: Path) -> list[tuple[str, str]]:
    """(module, name) of every ``from adaptsim... import name`` in a source file."""
    tree = ast.parse(path.read_text())
    return [
        (node.module, alias.name)
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("adaptsim")
        for alias in node.names
    ]


def test_calibration_modules_import_no_private_names_and_form_no_cycle():
    src = ROOT / "src/adaptsim"
    areas = ("calibration", "study", "store", "importers", "cli")
    private = [
        (f.relative_to(src), m, n)
        for area in areas
        for f in (src / area).rglob("*.py")
        for m, n in _imports(f)
        if n.startswith("_") and not n.startswith("__")
    ]
    assert private == []
    package = src / "calibration"
    graph = {
        f.stem: {
            m.rsplit(".", 1)[-1] for m, _ in _imports(f) if m.startswith("adaptsim.calibration.")
        }
        for f in package.glob("*.py")
        if f.stem != "__init__"
    }

    def reaches(start: str, goal: str, seen: set) -> bool:
        return any(
            n == goal or (n not in seen and reaches(n, goal, seen | {n}))
            for n in graph.get(start, ())
        )

    assert [m for m in graph if reaches(m, m, set())] == []


def test_models_are_taken_comma_separated_or_repeated_by_every_command(stores, tmp_path):
    """`profile -m alexnet,mobilenet` takes a comma list; calibrate, study and import took
    the same list as one name and refused "alexnet,mobilenet" while naming both as known."""
    for cmd in (
        ["calibrate", str(stores["partition"]), "--out", str(tmp_path / "c.json")],
        ["study", str(stores["partition"]), "--out", str(tmp_path / "s")],
        ["import", "adaptivednn", str(DATA / "adaptivednn/2020-05-27"),
         "--out", str(tmp_path / "i")],
    ):  # fmt: skip
        r = runner.invoke(app, [*cmd, "-m", "lenet, vgg99"])
        assert r.exit_code == 2, (cmd, r.output)
        assert r.stderr.startswith("adaptsim: error: --models: vgg99 not in "), r.stderr
    assert not list(tmp_path.iterdir())
    made = {}
    for name, models in (
        ("comma", ["-m", "lenet,alexnet"]),
        ("both", ["-m", "alexnet", "-m", "lenet"]),
    ):
        out = tmp_path / f"{name}.json"
        r = runner.invoke(app, ["calibrate", str(OWN), "--out", str(out), "--no-check",
                                "--cloud-host", "vm", *models])  # fmt: skip
        assert r.exit_code == 0, r.output
        made[name] = sorted(json.loads(out.read_text())["models"])
    assert made["comma"] == made["both"] == ["alexnet", "lenet"]
