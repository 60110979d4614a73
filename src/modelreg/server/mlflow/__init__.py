"""MLflow's REST API on modelreg's server: a team points ``MLFLOW_TRACKING_URI`` at a modelreg
server, and its unchanged MLflow client code logs runs, logs models, registers and loads them.

This is one more face on the rules layer, like ``/api/v1`` and the web UI: every request is
answered by the registry's own operations and stores, so what an MLflow client writes is an
ordinary modelreg record (immutable verified versions, lineage, the audit log, gates).

- ``protocol``: what the routers share: MLflow's error shape, times in milliseconds, bodies.
- ``tracking``: experiments, runs, params, metrics, tags, inputs, run search.
- ``artifacts``: the proxied artifact store (``/api/2.0/mlflow-artifacts``), files of runs and
  of logged models as blobs; ``server-info``.
- ``logged_models``: MLflow 3's logged models.
- ``registry``: registered models and their versions, aliases and stages.

docs/mlflow.md says what differs from MLflow's own server, and why.
"""

from __future__ import annotations

from fastapi import FastAPI

from modelreg.server.mlflow.protocol import error_response, is_mlflow

__all__ = ["error_response", "install", "is_mlflow"]


def install(app: FastAPI) -> None:
    """Add the MLflow routes to the app."""
    from modelreg.server.mlflow import artifacts, logged_models, protocol, registry, tracking

    for module in (protocol, tracking, artifacts, logged_models, registry):
        app.include_router(module.router)
