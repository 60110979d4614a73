"""Errors as HTTP responses: the one mapping from a registry error to problem+json (RFC
9457), the OpenAPI entries of the statuses, and the cut of a download whose blob fails its
digest."""

from __future__ import annotations

import logging
from typing import Any

from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from modelreg.errors import (
    ModelregError,
    NotAuthenticated,
    RangeNotSatisfiable,
    error_details,
)

PROBLEM = "application/problem+json"
# The error statuses every API route may answer, for the OpenAPI document.
PROBLEMS: dict[int | str, dict[str, Any]] = {
    code: {"description": text, "content": {PROBLEM: {}}}
    for code, text in (
        (400, "Invalid input"),
        (401, "No valid token"),
        (403, "Not allowed"),
        (404, "Not found"),
        (409, "Conflict"),
        (410, "Gone: the version was deleted"),
        (413, "Request body too large"),
    )
}


def problem(exc: ModelregError) -> JSONResponse:
    """The one mapping from a registry error to an HTTP response (RFC 9457)."""
    body: dict[str, Any] = {
        "type": f"https://modelreg.dev/problems/{exc.code}",
        "title": type(exc).__name__,
        "status": exc.status,
        "detail": exc.message,
        "code": exc.code,
        **error_details(exc),
    }
    headers = None
    if isinstance(exc, NotAuthenticated):
        headers = {"WWW-Authenticate": "Bearer"}
    elif isinstance(exc, RangeNotSatisfiable):
        headers = {"Content-Range": f"bytes */{exc.size}"}
    return JSONResponse(body, status_code=exc.status, media_type=PROBLEM, headers=headers)


def validation_message(exc: RequestValidationError) -> str:
    parts = []
    for error in exc.errors()[:3]:
        where = ".".join(str(p) for p in error.get("loc", ()) if p != "body")
        parts.append(f"{where or 'body'}: {error.get('msg', 'invalid')}")
    return "invalid request: " + "; ".join(parts)


class CorruptBlobServed(Exception):
    """Raised while a blob is sent, when its bytes fail their digest: the server ends the
    response before its last bytes instead of finishing it. Logged once, by the sender."""

    def __init__(self, digest: str) -> None:
        super().__init__(f"blob {digest} does not match its digest")


class _QuietCorruptBlob(logging.Filter):
    """Drop uvicorn's traceback for a response cut on purpose (see CorruptBlobServed)."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, CorruptBlobServed)


QUIET_CORRUPT_BLOB = _QuietCorruptBlob()
