"""The model zoo, partition points and exact splitting, on real Keras models."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from adaptsim.cli import app
from adaptsim.errors import UserError
from adaptsim.models import (
    ZOO_NAMES,
    InvalidPointError,
    PointKind,
    analyse,
    build_model,
    load_model_file,
    split,
)
from adaptsim.models.catalog import CATALOG_PATH, write_catalog

# Valid cut points (ordinals 1..N), as the AdaptiveDNN data numbers them.
EXPECTED_CUTS = {
    "vgg16": 22,
    "vgg19": 25,
    "alexnet": 24,
    "lenet": 10,
    "densenet121": 22,
    "resnet50v2": 16,
    "resnet50": 24,
}

_cache: dict[str, object] = {}


def model(name):
    if name not in _cache:
        _cache[name] = build_model(name, seed=0)
    return _cache[name]


@pytest.mark.parametrize("name", ZOO_NAMES)
def test_point_counts(name):
    m = model(name)
    g = analyse(m)
    expected = EXPECTED_CUTS.get(name, len(m.layers) - 1)  # mobilenet: a chain
    assert len(g.cut_points) == expected
    assert [p.ordinal for p in g.cut_points] == list(range(1, expected + 1))
    assert g.points[-1].kind is PointKind.ALL_EDGE
    assert g.points[0].kind is PointKind.ALL_CLOUD
    assert g.points[-1].output_bytes == 4000  # 1000 classes, fp32


def test_mobilenet_has_90_points_in_keras3():
    assert len(model("mobilenet").layers) == 91
    assert len(analyse(model("mobilenet")).cut_points) == 90


def test_functional_point_one_sends_raw_input():
    g = analyse(model("resnet50"))
    p1 = g.point(1)
    assert (p1.kind, p1.layer_index, p1.output_bytes) == (PointKind.ALL_CLOUD, 0, 224 * 224 * 3 * 4)
    # Sequential models number their first layer as point 1 and add all-cloud as point 0.
    lenet = analyse(model("lenet"))
    assert lenet.point(0).kind is PointKind.ALL_CLOUD
    assert lenet.point(1).layer_name == "conv1"


def test_resnet_points_are_block_outputs_not_inside_blocks():
    g = analyse(model("resnet50"))
    names = [p.layer_name for p in g.cut_points]
    assert "conv2_block1_add" in names
    # After the block's activation its output feeds both the next conv and the
    # shortcut: two edges cross, so that is not a valid point.
    assert "conv2_block1_out" not in names
    assert names[-2:] == ["conv5_block3_out", "avg_pool"]


def test_flops_share_increases_to_one():
    g = analyse(model("vgg16"))
    flops = [p.edge_flops for p in g.points]
    assert flops == sorted(flops)
    assert flops[-1] == g.total_flops
    # VGG16 is about 15.5 GMACs = 31 GFLOPs at 224x224.
    assert 29e9 < g.total_flops < 33e9


def _assert_split_exact(m, ordinals, seed=0):
    g = analyse(m)
    rng = np.random.default_rng(seed)
    shape = (1, *m.inputs[0].shape[1:])
    x = rng.standard_normal(shape).astype("float32")
    full = np.asarray(m(x, training=False))
    for ordinal in ordinals:
        head, tail = split(m, ordinal, graph=g)
        mid = head(x, training=False)
        assert tuple(mid.shape[1:]) == g.point(ordinal).output_shape
        got = np.asarray(tail(mid, training=False))
        np.testing.assert_allclose(got, full, rtol=1e-5, atol=1e-7, err_msg=f"point {ordinal}")


@pytest.mark.parametrize("name", ["lenet", "alexnet", "mobilenet", "resnet50v2"])
def test_split_is_exact_at_every_point(name):
    m = model(name)
    _assert_split_exact(m, [p.ordinal for p in analyse(m).points])


@pytest.mark.slow
@pytest.mark.parametrize("name", ["vgg16", "vgg19", "densenet121", "resnet50"])
def test_split_is_exact_at_sampled_points(name):
    m = model(name)
    ordinals = [p.ordinal for p in analyse(m).points]
    rng = np.random.default_rng(7)
    sample = sorted({ordinals[0], ordinals[-1], *rng.choice(ordinals, size=3, replace=False)})
    _assert_split_exact(m, sample)


def test_invalid_points_name_the_nearest_valid_ones():
    m = model("resnet50")
    with pytest.raises(InvalidPointError, match=r"valid points are 1\.\.25"):
        split(m, 99)
    # layer 20 lies inside conv2_block2 (between add at 17 and add at 27).
    with pytest.raises(InvalidPointError, match=r"conv2_block1_add.*conv2_block2_add"):
        split(m, 20, by="layer")
    head, _ = split(m, 17, by="layer")
    assert head.outputs[0].shape[1:] == (56, 56, 256)


def test_same_seed_same_weights():
    a = build_model("lenet", seed=3).get_weights()
    b = build_model("lenet", seed=3).get_weights()
    c = build_model("lenet", seed=4).get_weights()
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c, strict=True))


def test_user_model_file_roundtrip(tmp_path):
    path = tmp_path / "lenet.keras"
    model("lenet").save(path)
    loaded = load_model_file(path)
    assert len(analyse(loaded).cut_points) == 10


@pytest.mark.parametrize(
    "content, suffix, message",
    [
        (None, ".keras", "does not exist"),
        (b"not a zip", ".keras", "not a loadable Keras model"),
        (b"x", ".txt", "expected a .keras or .h5"),
    ],
)
def test_bad_model_files(tmp_path, content, suffix, message):
    path = tmp_path / f"m{suffix}"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(UserError, match=message):
        load_model_file(path)


runner = CliRunner()


def test_cli_points_densenet_lists_22_points_and_all_edge():
    result = runner.invoke(app, ["points", "densenet121", "--format", "json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    cuts = [r for r in rows if r["kind"] != "all_edge"]
    assert len(cuts) == 22 and rows[-1]["kind"] == "all_edge"
    assert rows[0]["output_bytes"] == 602112
    assert rows[-2]["layer_name"] == "avg_pool"


def test_cli_points_csv_and_table():
    result = runner.invoke(app, ["points", "lenet", "--format", "csv"])
    assert result.exit_code == 0
    assert result.stdout.splitlines()[0].startswith("ordinal,kind,layer_index")
    assert len(result.stdout.splitlines()) == 1 + 12  # all-cloud, 10 cuts, all-edge
    table = runner.invoke(app, ["points", "lenet"])
    assert "conv1" in table.stdout


@pytest.fixture(scope="module")
def _built() -> dict:
    return {}


@pytest.fixture
def zoo_once(_built, monkeypatch):
    """Each zoo model built once for the two tests that analyse the whole zoo (the CLI's
    table and the catalog): building the eight models was most of each one's 11 s. The
    second of them reads the models the first built (Keras models are not changed by
    the analysis); only within these two tests (the patch is undone after each)."""
    from adaptsim import models
    from adaptsim.models import catalog

    real = models.build_model

    def build(name: str, seed: int = 0):
        if (name, seed) not in _built:
            _built[name, seed] = real(name, seed)
        return _built[name, seed]

    monkeypatch.setattr(models, "build_model", build)
    monkeypatch.setattr(catalog, "build_model", build)


def test_cli_models_table(zoo_once):
    result = runner.invoke(app, ["models", "--format", "csv"])
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert len(lines) == 1 + len(ZOO_NAMES)
    vgg16 = next(line for line in lines if line.startswith("vgg16,"))
    assert vgg16.split(",")[-2:] == ["22", "S"]
    assert next(line for line in lines if line.startswith("resnet50,")).endswith(",N")


@pytest.mark.parametrize(
    "args, message",
    [
        (["points", "foo"], "unknown model 'foo': known models are vgg16"),
        (["points", "--model-file", "/nonexistent/m.keras"], "does not exist"),
        (["points"], "name exactly one model"),
    ],
)
def test_cli_bad_input_is_one_line_exit_2(args, message):
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.output


@pytest.mark.slow
def test_shipped_catalog_is_current(tmp_path, zoo_once):
    fresh = write_catalog(tmp_path / "catalog.csv")
    shipped = pd.read_csv(CATALOG_PATH)
    pd.testing.assert_frame_equal(fresh.reset_index(drop=True), shipped, check_dtype=False)
