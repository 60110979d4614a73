"""The scikit-learn flavor: estimators and pipelines saved with skops, never with pickle.

skops stores an object as JSON plus plain arrays and rebuilds it without running code from
the file, provided it is told which types to trust. This flavor trusts the scikit-learn,
NumPy and SciPy classes (and NumPy ufuncs) that skops does not trust by default; any other
type or function a file names (a custom transformer, ``os.system``) needs ``trust=True``.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from modelreg.errors import UnsafeModel

MODEL_FILE = "model.skops"
TRUSTED_PACKAGES = ("sklearn", "numpy", "scipy")


class SklearnFlavor:
    name = "sklearn"

    def detect(self, obj: Any) -> bool:
        if not type(obj).__module__.startswith("sklearn."):
            return False
        from sklearn.base import BaseEstimator

        return isinstance(obj, BaseEstimator)

    def save(self, obj: Any, directory: Path, *, input_example: Any = None) -> dict[str, Any]:
        import skops.io

        skops.io.dump(obj, directory / MODEL_FILE)
        stabilise(directory / MODEL_FILE)
        return {"file": MODEL_FILE}

    def libraries(self, obj: Any) -> dict[str, str]:
        from importlib.metadata import version

        return {"scikit-learn": version("scikit-learn"), "skops": version("skops")}

    def load(self, directory: Path, metadata: dict[str, Any], *, trust: bool) -> Any:
        import skops.io

        path = directory / str(metadata.get("file", MODEL_FILE))
        untrusted: list[str] = list(skops.io.get_untrusted_types(file=path))
        refused = [name for name in untrusted if not _trusted(name)]
        if refused and not trust:
            relative = path.relative_to(directory).as_posix()
            raise UnsafeModel(
                f"{relative} names types skops does not trust ({', '.join(refused)}): loading"
                " it may run their code; pass trust=True if you trust its author",
                files={relative: f"untrusted types {', '.join(refused)}"},
            )
        return skops.io.load(path, trusted=untrusted)


def _trusted(dotted: str) -> bool:
    """A class from scikit-learn, NumPy or SciPy, or a NumPy ufunc: things skops rebuilds
    without calling into the file's choice of code. Functions (even NumPy's) are not."""
    if dotted.split(".")[0] not in TRUSTED_PACKAGES:
        return False
    module_name, _, attr = dotted.rpartition(".")
    try:
        found = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError, ValueError):
        return False
    if isinstance(found, type):
        return True
    import numpy as np

    return isinstance(found, np.ufunc)


def stabilise(path: Path) -> None:
    """Rewrite a skops archive so the same model always gives the same bytes.

    skops names objects (and the ``.npy`` members holding arrays) by their ``id()`` in the
    saving process and stamps members with the current time, so a deterministic training
    would never reproduce its file byte for byte. Ids are renumbered in schema order, members
    are renamed to match, sorted, and dated 1980-01-01. Anything unexpected (an id left in
    the text, a member nothing references) leaves the file as skops wrote it.
    """
    import json
    import zipfile

    with zipfile.ZipFile(path) as archive:
        infos = {info.filename: info for info in archive.infolist()}
        data = {name: archive.read(name) for name in infos}
    if "schema.json" not in data:
        return
    schema = json.loads(data["schema.json"])
    ids: dict[int, int] = {}
    files: dict[str, str] = {}

    def renumber(node: Any) -> Any:
        if isinstance(node, list):
            return [renumber(item) for item in node]
        if not isinstance(node, dict):
            return node
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key == "__id__" and isinstance(value, int) and not isinstance(value, bool):
                out[key] = ids.setdefault(value, len(ids) + 1)
            elif key == "file" and isinstance(value, str) and value in data:
                suffix = Path(value).suffix
                out[key] = files.setdefault(value, f"member-{len(files) + 1}{suffix}")
            else:
                out[key] = renumber(value)
        return out

    text = json.dumps(renumber(schema), indent=2)
    if set(files) != set(data) - {"schema.json"} or any(str(old) in text for old in ids):
        return
    sources = {new: old for old, new in files.items()} | {"schema.json": "schema.json"}
    contents = {new: data[old] for new, old in sources.items()} | {"schema.json": text.encode()}
    with zipfile.ZipFile(path, "w") as archive:
        for name in sorted(sources):
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = infos[sources[name]].compress_type
            info.create_system = 3
            info.external_attr = 0o644 << 16
            archive.writestr(info, contents[name])
