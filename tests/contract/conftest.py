"""Probes for the contract suite, built from the SDK and the backend's blob probe only."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest


@pytest.fixture
def snapshot(backend: Any) -> Callable[[], dict[str, Any]]:
    """``snapshot()``: everything a refused call must leave unchanged, as one comparable dict."""
    reg = backend.registry

    def take() -> dict[str, Any]:
        return {
            "models": [(m.name, m.version_count, m.aliases) for m in reg.models()],
            "versions": sorted(v.id for v in reg.search("")),
            "datasets": sorted((d.name, d.digest) for d in reg.datasets()),
            "blobs": backend.blob_digests(),
            "audit_events": reg.verify_audit().events,
        }

    return take
