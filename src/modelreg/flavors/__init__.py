"""Flavors: how a trained model object becomes files in a version, and back.

A flavor is a small plugin with a name and three operations: ``detect`` (is this object
mine?), ``save`` (write it into a folder, return what loading needs) and ``load`` (read it
back). Built-in flavors live in this package; others are found through the
``modelreg.flavors`` entry point group, so a library can ship its own:

    [project.entry-points."modelreg.flavors"]
    mylib = "mylib.modelreg_flavor:MyLibFlavor"

Each saved version holds a ``flavor.json`` (see :data:`FLAVOR_FILE`): the flavor's name, the
library versions it needs, how to load it, and the input/output signature when an input
example was given. It is one of the version's files, so it is as immutable as the model.
"""

from __future__ import annotations

import functools
import importlib
import json
import platform
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from modelreg.errors import InvalidInput

FLAVOR_FILE = "flavor.json"
ENTRY_POINT_GROUP = "modelreg.flavors"

# Built-in flavors, as "module:Class", most specific first; "files" and "pickle" come last.
BUILTIN = (
    "modelreg.flavors.sklearn:SklearnFlavor",
    "modelreg.flavors.pytorch:PytorchFlavor",
    "modelreg.flavors.onnx:OnnxFlavor",
    "modelreg.flavors.xgboost:XGBoostFlavor",
    "modelreg.flavors.lightgbm:LightGBMFlavor",
    "modelreg.flavors.transformers:TransformersFlavor",
    "modelreg.flavors.pickle:PickleFlavor",
    "modelreg.flavors.files:FilesFlavor",
)


@runtime_checkable
class Flavor(Protocol):
    """What a flavor plugin provides. ``detect`` must not import heavy libraries unless the
    object's type already comes from them (check ``type(obj).__module__`` first)."""

    name: str

    def detect(self, obj: Any) -> bool:
        """True when this flavor can save ``obj``."""

    def save(self, obj: Any, directory: Path, *, input_example: Any = None) -> dict[str, Any]:
        """Write ``obj`` into the empty ``directory``; return the metadata ``load`` needs.

        The result is stored in flavor.json under "load" (any JSON). Library versions and the
        signature are added by :func:`describe`.
        """

    def libraries(self, obj: Any) -> dict[str, str]:
        """The libraries (distribution name -> version) needed to load ``obj``."""

    def load(self, directory: Path, metadata: dict[str, Any], *, trust: bool) -> Any:
        """Read the model back from ``directory`` (a pulled, verified version)."""


def _instantiate(spec: str) -> Flavor | None:
    module_name, _, class_name = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name:  # a built-in not written yet, or an optional plugin
            return None
        raise
    flavor = getattr(module, class_name)()
    if not isinstance(flavor, Flavor):
        raise TypeError(f"{spec} is not a modelreg flavor (needs name, detect, save, load)")
    return flavor


@functools.lru_cache(maxsize=1)
def available() -> tuple[Flavor, ...]:
    """Every flavor: plugins from entry points first (they may specialise), then built-ins."""
    from importlib.metadata import entry_points

    found: list[Flavor] = []
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        flavor = _instantiate(ep.value)
        if flavor is not None:
            found.append(flavor)
    for spec in BUILTIN:
        flavor = _instantiate(spec)
        if flavor is not None and all(f.name != flavor.name for f in found):
            found.append(flavor)
    return tuple(found)


def by_name(name: str) -> Flavor:
    for flavor in available():
        if flavor.name == name:
            return flavor
    known = ", ".join(f.name for f in available())
    raise InvalidInput(f"unknown flavor {name!r}: known flavors are {known}")


def for_object(obj: Any) -> Flavor:
    """The first flavor that recognises ``obj``."""
    for flavor in available():
        if flavor.detect(obj):
            return flavor
    raise InvalidInput(
        f"no flavor can save an object of type {type(obj).__module__}.{type(obj).__qualname__}"
    )


def is_model_object(files: Any) -> bool:
    """True when ``register`` was handed a model object rather than paths."""
    if isinstance(files, (str, Path)) or hasattr(files, "__fspath__"):
        return False
    if isinstance(files, (type(None), bool, int, float, complex, bytes, bytearray)):
        return False  # not a model: ``register`` refuses it as a files argument
    if isinstance(files, dict):  # a mapping of names to paths, or e.g. {"model":, "tokenizer":}
        return not all(_is_path(f) for f in files.values())
    if isinstance(files, (list, tuple)):
        return not all(_is_path(f) for f in files)
    return True


def _is_path(value: Any) -> bool:
    return isinstance(value, (str, Path)) or hasattr(value, "__fspath__")


def save(
    obj: Any, directory: Path, *, flavor: str | None = None, input_example: Any = None
) -> dict[str, Any]:
    """Save ``obj`` into the empty ``directory`` with its flavor.json; return that record."""
    chosen = by_name(flavor) if flavor is not None else for_object(obj)
    if flavor is not None and not chosen.detect(obj):
        raise InvalidInput(
            f"the {chosen.name} flavor cannot save an object of type {type(obj).__qualname__}"
        )
    load = chosen.save(obj, directory, input_example=input_example)
    record = describe(chosen, obj, load, input_example=input_example)
    if (directory / FLAVOR_FILE).exists():
        raise InvalidInput(f"the {chosen.name} flavor wrote a file named {FLAVOR_FILE}")
    (directory / FLAVOR_FILE).write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    return record


def describe(
    flavor: Flavor, obj: Any, load: dict[str, Any], *, input_example: Any = None
) -> dict[str, Any]:
    """The flavor.json record: flavor, libraries, how to load, signature and Python version."""
    from modelreg.flavors import signature

    described = None
    if input_example is not None:
        described = {
            "inputs": signature.infer(input_example),
            "outputs": signature.outputs(obj, input_example),
        }
    return {
        "flavor": flavor.name,
        "libraries": flavor.libraries(obj),
        "load": load,
        "signature": described,
        "python": platform.python_version(),
    }


def read_metadata(directory: Path) -> dict[str, Any]:
    path = directory / FLAVOR_FILE
    if not path.is_file():
        raise InvalidInput(f"{directory} holds no {FLAVOR_FILE}: it was not saved by a flavor")
    data: dict[str, Any] = json.loads(path.read_text())
    return data
