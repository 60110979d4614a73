"""The team server: a FastAPI skin over :class:`modelreg.local.LocalRegistry`.

``create_app(registry, auth=...)`` builds the ASGI application (``app``, which assembles the
rest); ``modelreg server`` runs it on uvicorn. The routes live in ``api`` (models, versions,
blobs, runs) and ``api_governance`` (aliases, datasets, evaluations, audit, tokens, webhooks,
maintenance); what routes and the web UI share is in ``auth`` (who may call what) and
``problems`` (errors as responses).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from modelreg.server.app import create_app

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    # Loaded when asked for: importing a router (``modelreg.server.api``) does not assemble
    # the whole application, so the routers never depend on the module that imports them.
    if name == "create_app":
        from modelreg.server.app import create_app

        return create_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
