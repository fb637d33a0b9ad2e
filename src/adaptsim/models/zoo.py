"""The model zoo: the eight DNNs of the study, and user model files.

Models are built with ``weights=None``: no weights can be downloaded here, and
inference latency does not depend on weight values. The same seed gives the same
weights (Keras initialisers draw from the seeded global Keras generator, which is
set right before building and is the only use of it).
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from pathlib import Path

import keras

from adaptsim.errors import UserError

__all__ = ["ZOO_NAMES", "build_model", "canonical_name", "load_model_file", "resolve_model"]


def _alexnet() -> keras.Model:
    """The classic AlexNet as the study wrote it: 5 conv, 3 dense, 25 layers."""
    L = keras.layers
    return keras.Sequential(
        [
            keras.Input((224, 224, 3)),
            L.Conv2D(96, 11, strides=4, name="conv1"),
            L.Activation("relu", name="relu1"),
            L.MaxPooling2D(2, name="pool1"),
            L.Conv2D(256, 11, name="conv2"),
            L.Activation("relu", name="relu2"),
            L.MaxPooling2D(2, name="pool2"),
            L.Conv2D(384, 3, name="conv3"),
            L.Activation("relu", name="relu3"),
            L.Conv2D(384, 3, name="conv4"),
            L.Activation("relu", name="relu4"),
            L.Conv2D(256, 3, name="conv5"),
            L.Activation("relu", name="relu5"),
            L.MaxPooling2D(2, name="pool5"),
            L.Flatten(name="flatten"),
            L.Dense(4096, name="fc6"),
            L.Activation("relu", name="relu6"),
            L.Dropout(0.4, name="drop6"),
            L.Dense(4096, name="fc7"),
            L.Activation("relu", name="relu7"),
            L.Dropout(0.4, name="drop7"),
            L.Dense(1000, name="fc8"),
            L.Activation("relu", name="relu8"),
            L.Dropout(0.4, name="drop8"),
            L.Dense(1000, name="predictions"),
            L.Activation("softmax", name="softmax"),
        ],
        name="alexnet",
    )


def _lenet() -> keras.Model:
    """LeNet-5 as the study wrote it: 28x28 grey input, 11 layers."""
    L = keras.layers
    return keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            L.Conv2D(20, 5, padding="same", name="conv1"),
            L.Activation("relu", name="relu1"),
            L.MaxPooling2D(2, name="pool1"),
            L.Conv2D(50, 5, padding="same", name="conv2"),
            L.Activation("relu", name="relu2"),
            L.MaxPooling2D(2, name="pool2"),
            L.Flatten(name="flatten"),
            L.Dense(500, name="fc3"),
            L.Activation("relu", name="relu3"),
            L.Dense(1000, name="predictions"),
            L.Activation("softmax", name="softmax"),
        ],
        name="lenet",
    )


def _application(factory: Callable[..., keras.Model]) -> Callable[[], keras.Model]:
    return lambda: factory(weights=None, input_shape=(224, 224, 3))


_BUILDERS: dict[str, Callable[[], keras.Model]] = {
    "vgg16": _application(keras.applications.VGG16),
    "vgg19": _application(keras.applications.VGG19),
    "mobilenet": _application(keras.applications.MobileNet),
    "alexnet": _alexnet,
    "densenet121": _application(keras.applications.DenseNet121),
    "resnet50": _application(keras.applications.ResNet50),
    "resnet50v2": _application(keras.applications.ResNet50V2),
    "lenet": _lenet,
}
_ALIASES = {"densenet": "densenet121", "lenet5": "lenet", "lenet-5": "lenet"}

ZOO_NAMES: tuple[str, ...] = tuple(_BUILDERS)


def canonical_name(name: str) -> str:
    """Map a zoo name or alias (any case) to its canonical name, or raise UserError."""
    key = name.strip().lower()
    key = _ALIASES.get(key, key)
    if key not in _BUILDERS:
        raise UserError(f"unknown model {name!r}: known models are {', '.join(ZOO_NAMES)}")
    return key


def build_model(name: str, seed: int = 0) -> keras.Model:
    """Build a zoo model with deterministic random weights."""
    key = canonical_name(name)
    # Keras numbers unnamed layers from global counters; resetting them keeps layer
    # names (global_average_pooling2d, ...) independent of what was built before.
    keras.backend.clear_session(free_memory=False)
    keras.utils.set_random_seed(seed)
    return _BUILDERS[key]()


def load_model_file(path: str | Path) -> keras.Model:
    """Load a user's ``.keras`` or ``.h5`` model with Keras safe mode on."""
    p = Path(path)
    if p.is_dir():
        raise UserError(f"model file {p} is a folder: pass a .keras or .h5 model file")
    if not p.is_file():
        raise UserError(f"model file {p} does not exist: pass a .keras or .h5 model file")
    if p.suffix not in (".keras", ".h5"):
        raise UserError(f"model file {p}: expected a .keras or .h5 file, got {p.suffix!r}")
    if p.suffix == ".keras" and not zipfile.is_zipfile(p):
        # Keras says "File not found" of a file that is there but is no zip archive
        raise UserError(
            f"model file {p} is not a loadable Keras model: a .keras file is a zip archive "
            "(as model.save('m.keras') writes it), this one is not"
        )
    try:
        model = keras.saving.load_model(p, compile=False, safe_mode=True)
    except Exception as exc:  # Keras raises many types for a bad file
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"model file {p} is not a loadable Keras model: {first}") from None
    if not isinstance(model, keras.Model):
        raise UserError(f"model file {p} holds a {type(model).__name__}, not a Keras model")
    return model


def resolve_model(name: str | None, model_file: str | Path | None, seed: int = 0) -> keras.Model:
    """The model a command names: a zoo name, or a model file (exactly one)."""
    if (name is None) == (model_file is None):
        raise UserError("name exactly one model: a zoo name or --model-file PATH")
    if model_file is not None:
        return load_model_file(model_file)
    try:  # only the commands that take a model file say so (profile, serve do not)
        canonical_name(name)
    except UserError as exc:
        raise UserError(f"{exc} (or pass --model-file PATH.keras|.h5)") from None
    return build_model(name, seed)
