"""modelreg: a model registry with lineage, search, diff and a tamper-evident audit log.

import modelreg
reg = modelreg.connect()
v = reg.register("churn", "model.skops", params={"C": 0.1}, metrics={"accuracy": 0.93})
reg.set_alias("churn", "production", v.ref)
reg.get("churn@production").pull("deploy/")

model = LogisticRegression().fit(X, y)
reg.register("iris", model, input_example=X[:5])  # saved with skops, signature recorded
modelreg.load("iris").predict(X[:5])              # pickles are refused unless trust=True
"""

from __future__ import annotations

import os
from typing import Any

from modelreg.errors import (
    Conflict,
    Gone,
    IntegrityError,
    InvalidInput,
    LibraryVersionWarning,
    ModelregError,
    NotFound,
    PermissionDenied,
    PromotionRefused,
    RetiredDataWarning,
    SearchSyntaxError,
    SecretInCommandWarning,
    UnsafeModel,
)
from modelreg.locations import connect
from modelreg.registry import Registry

__version__ = "0.1.0"


def load(
    ref: str,
    *,
    registry: Any = None,
    trust: bool = False,
    dest: str | os.PathLike[str] | None = None,
) -> Any:
    """Load the model version ``ref`` names, verified (see modelreg.flavors.loading.load),
    from ``registry``, else from ``connect()``'s default registry (``reg.load(ref)`` loads
    from a registry already connected).

    Files that run code when loaded are refused unless ``trust=True``.
    """
    from modelreg.flavors.loading import load as load_version

    if registry is not None:
        return load_version(ref, registry=registry, trust=trust, dest=dest)
    default = connect()
    try:
        return load_version(ref, registry=default, trust=trust, dest=dest)
    finally:
        default.close()


__all__ = [
    "Conflict",
    "Gone",
    "IntegrityError",
    "InvalidInput",
    "LibraryVersionWarning",
    "ModelregError",
    "NotFound",
    "PermissionDenied",
    "PromotionRefused",
    "Registry",
    "RetiredDataWarning",
    "SearchSyntaxError",
    "SecretInCommandWarning",
    "UnsafeModel",
    "__version__",
    "connect",
    "load",
]
