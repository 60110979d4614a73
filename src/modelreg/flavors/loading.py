"""``modelreg.load``: a registered version back as a model object, checked before it runs.

    model = modelreg.load("churn@production")
    model.predict(rows)

The version is pulled (every file verified against its digest) into ``dest`` or a cache
folder named by its manifest digest, every file's content is checked for formats that run
code when loaded (see :mod:`modelreg.flavors.safety`), the recorded library versions are
compared with the installed ones, and only then does the flavor load it. A version without a
flavor.json (plain files) loads as the folder it was pulled into.
"""

from __future__ import annotations

import os
import warnings
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from modelreg.errors import InvalidInput, LibraryVersionWarning
from modelreg.flavors import FLAVOR_FILE, by_name, read_metadata, safety

# The extra that installs a library a flavor records, for the message when it is missing.
EXTRAS = {
    "scikit-learn": "sklearn",
    "skops": "sklearn",
    "torch": "torch",
    "safetensors": "torch",
    "onnx": "onnx",
    "onnxruntime": "onnx",
    "xgboost": "xgboost",
    "lightgbm": "lightgbm",
    "transformers": "transformers",
}


def load(
    ref: str,
    *,
    registry: Any,
    trust: bool = False,
    dest: str | os.PathLike[str] | None = None,
) -> Any:
    """Load the version ``ref`` names in ``registry``: the model object, or the folder for
    plain files (``modelreg.load`` and ``reg.load`` call it).

    Files that run code when loaded (pickle, joblib, ``torch.save`` archives) raise
    UnsafeModel unless ``trust=True``. A library installed in another version than the
    recorded one warns (LibraryVersionWarning); one that is not installed raises InvalidInput.
    """
    found = registry.get(ref)
    target = Path(dest) if dest is not None else cache_dir() / found.manifest_digest
    # The cache is ours: a file changed there since is replaced by the verified bytes.
    root: Path = registry.pull(found.id, target, force=dest is None)
    paths = [f.path for f in found.files]
    safety.check(root, paths, trust=trust)
    if FLAVOR_FILE not in paths:
        return by_name("files").load(root, {}, trust=trust)
    metadata = read_metadata(root)
    check_libraries(found.ref, metadata.get("libraries") or {})
    flavor = by_name(str(metadata.get("flavor")))
    return flavor.load(root, metadata.get("load") or {}, trust=trust)


def cache_dir() -> Path:
    """``$XDG_CACHE_HOME/modelreg``, else ``~/.cache/modelreg``."""
    base = os.environ.get("XDG_CACHE_HOME", "")
    root = Path(base) if base and Path(base).is_absolute() else Path.home() / ".cache"
    return root / "modelreg"


def check_libraries(ref: str, recorded: dict[str, Any]) -> None:
    for dist, wanted in sorted(recorded.items()):
        try:
            installed = version(dist)
        except PackageNotFoundError:
            extra = EXTRAS.get(dist)
            how = f"pip install 'modelreg[{extra}]'" if extra else f"pip install {dist}"
            raise InvalidInput(
                f"{ref} needs {dist} {wanted}, which is not installed: {how}"
            ) from None
        if installed != str(wanted):
            warnings.warn(
                LibraryVersionWarning(
                    f"{ref} was saved with {dist} {wanted}, but {dist} {installed} is"
                    " installed: the model may behave differently or fail to load"
                ),
                stacklevel=3,
            )
