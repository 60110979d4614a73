"""modelreg: a model registry with lineage, search, diff and a tamper-evident audit log.

import modelreg
reg = modelreg.connect()
v = reg.register("churn", "model.skops", params={"C": 0.1}, metrics={"accuracy": 0.93})
reg.set_alias("churn", "production", v.ref)
reg.get("churn@production").pull("deploy/")
"""

from __future__ import annotations

from modelreg.errors import (
    Conflict,
    IntegrityError,
    InvalidInput,
    ModelregError,
    NotFound,
    PermissionDenied,
    PromotionRefused,
    RetiredDataWarning,
    SearchSyntaxError,
)
from modelreg.registry import Registry, connect

__version__ = "0.1.0"

__all__ = [
    "Conflict",
    "IntegrityError",
    "InvalidInput",
    "ModelregError",
    "NotFound",
    "PermissionDenied",
    "PromotionRefused",
    "Registry",
    "RetiredDataWarning",
    "SearchSyntaxError",
    "__version__",
    "connect",
]
