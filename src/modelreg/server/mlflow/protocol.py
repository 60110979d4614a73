"""What the MLflow routers share: the paths they answer, MLflow's error shape, times as
milliseconds since the epoch, request bodies, and the server's self-description.

MLflow's client reads an error as ``{"error_code": ..., "message": ...}`` and decides on its
code: a missing resource is 404 ``RESOURCE_DOES_NOT_EXIST`` (its ``runs:/`` fallback depends
on it), a duplicate 400 ``RESOURCE_ALREADY_EXISTS``. Each registry error maps to one code.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict

from modelreg.errors import (
    AlreadyExists,
    Conflict,
    InvalidInput,
    ModelregError,
    NotAuthenticated,
    NotFound,
    PermissionDenied,
    PromotionRefused,
    Unavailable,
)
from modelreg.local import LocalRegistry
from modelreg.s3 import S3BlobStore
from modelreg.server.auth import allow

PREFIXES = ("/api/2.0/mlflow", "/api/3.0/mlflow", "/ajax-api/2.0/mlflow")
ARTIFACTS = "/api/2.0/mlflow-artifacts/artifacts"


def is_mlflow(path: str) -> bool:
    """True for a path MLflow's client calls (its errors are answered in MLflow's shape)."""
    return path.startswith(PREFIXES) or path.startswith("/api/2.0/mlflow-artifacts")


def error_code(exc: ModelregError) -> tuple[int, str]:
    """The HTTP status and MLflow error code a registry error is answered with."""
    if isinstance(exc, NotFound):  # a deleted version (Gone) too: the client knows no 410
        return 404, "RESOURCE_DOES_NOT_EXIST"
    if isinstance(exc, AlreadyExists):
        return 400, "RESOURCE_ALREADY_EXISTS"
    if isinstance(exc, Conflict):  # a refused promotion, a finished run, an immutable field
        return 400, "INVALID_STATE"
    if isinstance(exc, NotAuthenticated):
        return 401, "UNAUTHENTICATED"
    if isinstance(exc, PermissionDenied):
        return 403, "PERMISSION_DENIED"
    if isinstance(exc, InvalidInput):
        return exc.status, "INVALID_PARAMETER_VALUE"  # 413 and 416 keep their status
    if isinstance(exc, Unavailable):
        return 503, "TEMPORARILY_UNAVAILABLE"
    if exc.status in (404, 405):  # no route takes this path or method
        return exc.status, "ENDPOINT_NOT_FOUND"
    return (exc.status if exc.status >= 400 else 500), "INTERNAL_ERROR"


def error_response(exc: ModelregError) -> JSONResponse:
    """A registry error in MLflow's shape; a refused promotion also lists its checks."""
    status, code = error_code(exc)
    body: dict[str, Any] = {"error_code": code, "message": exc.message}
    if isinstance(exc, PromotionRefused):
        body["checks"] = exc.checks
    headers = {"WWW-Authenticate": 'Bearer, Basic realm="modelreg"'} if status == 401 else None
    return JSONResponse(body, status_code=status, headers=headers)


_ERROR_SCHEMA = {
    "type": "object",
    "properties": {
        "error_code": {"type": "string"},
        "message": {"type": "string"},
        "checks": {"type": "array", "items": {"type": "object"}},
    },
    "required": ["error_code", "message"],
}
#: The errors a router's routes may answer, for its ``responses=`` (so /docs shows them).
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"description": text, "content": {"application/json": {"schema": _ERROR_SCHEMA}}}
    for code, text in (
        (400, "Invalid input or state (INVALID_PARAMETER_VALUE, RESOURCE_ALREADY_EXISTS, ...)"),
        (401, "No valid token (UNAUTHENTICATED)"),
        (403, "Not allowed (PERMISSION_DENIED)"),
        (404, "Not found (RESOURCE_DOES_NOT_EXIST)"),
        (413, "Request body too large"),
    )
}


class Body(BaseModel):
    """A request body: fields MLflow's client sends that a route does not use are ignored,
    as MLflow's server ignores them."""

    model_config = ConfigDict(extra="ignore")


router = APIRouter(tags=["mlflow"], responses=ERRORS)


@router.get("/api/3.0/mlflow/server-info")
def server_info(reg: Annotated[LocalRegistry, Depends(allow("reader"))]) -> dict[str, Any]:
    """What the server offers an MLflow client: multipart transfers straight to and from the
    bucket where the blobs are in S3 (see ``artifacts``)."""
    in_bucket = isinstance(reg.blobs.inner, S3BlobStore)
    return {
        "store_type": "SqlStore",
        "workspaces_enabled": False,
        "trace_archival_enabled": False,
        "multipart_uploads_enabled": in_bucket,
        "multipart_downloads_enabled": in_bucket,
        "presigned_upload_run_id_supported": False,
        "presigned_upload_model_id_supported": False,
        "features_enabled": {},
    }
