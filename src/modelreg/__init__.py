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

from modelreg.errors import (
    Conflict,
    IntegrityError,
    InvalidInput,
    LibraryVersionWarning,
    ModelregError,
    NotFound,
    PermissionDenied,
    PromotionRefused,
    RetiredDataWarning,
    SearchSyntaxError,
    UnsafeModel,
)
from modelreg.flavors.loading import load
from modelreg.registry import Registry, connect

__version__ = "0.1.0"

__all__ = [
    "Conflict",
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
    "UnsafeModel",
    "__version__",
    "connect",
    "load",
]
