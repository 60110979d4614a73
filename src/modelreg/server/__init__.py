"""The team server: a FastAPI skin over :class:`modelreg.local.LocalRegistry`.

``create_app(registry, auth=...)`` builds the ASGI application; ``modelreg server`` runs it
on uvicorn. The routes live in ``api`` (models, versions, blobs, runs) and
``api_governance`` (aliases, datasets, evaluations, audit, tokens, webhooks, maintenance).
"""

from modelreg.server.app import create_app

__all__ = ["create_app"]
