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
