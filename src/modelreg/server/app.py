"""The FastAPI application, assembled: the routers, the web UI, the error handlers, the
Guard middleware (limits, cross-origin and Host checks, authentication before the body,
metrics), /healthz, /metrics and /docs, and how uvicorn runs it.

Routers and the UI import what they share from ``auth`` and ``problems``, never from here.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import socket
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import PlainTextResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from modelreg.errors import InvalidInput, ModelregError, TooLarge, Unavailable
from modelreg.local import LocalRegistry
from modelreg.server import api, api_chunks, api_governance, mlflow
from modelreg.server.auth import (
    PUBLIC,
    AppState,
    Settings,
    allow,
    cross_origin,
    foreign_host,
)
from modelreg.server.problems import PROBLEM, QUIET_CORRUPT_BLOB, problem, validation_message
from modelreg.ui import routes as ui

_log = logging.getLogger("modelreg.server")


# Uploads streamed into the blob store, hashed on the way, without the JSON body limit.
_STREAMED_UPLOADS = (
    "/api/v1/blobs/",
    "/api/v1/files/",
    "/api/v1/packs/uploads/",
    "/api/2.0/mlflow-artifacts/artifacts/",
)


class Guard:
    """ASGI middleware: body size limit, cross-origin refusal, metrics."""

    def __init__(self, app: ASGIApp, state: AppState) -> None:
        self.app = app
        self.state = state

    async def _authenticate(self, scope: Scope) -> ModelregError | None:
        """Check the caller's token against the route's role before the body is read: a
        request without one costs a header lookup, not a 16 MiB parse."""
        role = self.state.role_of(scope)
        if role is None or role == PUBLIC:
            return None
        request = Request(scope)
        try:
            request.state.caller = await self.state.caller_of(request, role)
        except ModelregError as exc:
            return exc
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        method = scope["method"]
        refusal = cross_origin(method, headers)
        settings = self.state.settings
        if refusal is None and not settings.auth and not settings.any_host:
            refusal = foreign_host(headers.get("host", ""))
        streaming = method == "PUT" and scope["path"].startswith(_STREAMED_UPLOADS)
        limit = self.state.settings.max_body
        if refusal is None and not streaming:
            length = headers.get("content-length", "")
            if length.isascii() and length.isdigit() and int(length) > limit:
                refusal = TooLarge(f"the request body is {length} bytes; the limit is {limit}")
        record = self.state.metrics.start(method, scope)
        if refusal is None and settings.auth:
            refusal = await self._authenticate(scope)
        if refusal is not None:
            await _refusal(scope, refusal)(scope, receive, _counting(send, record))
            record.finish()
            return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            body = message.get("body", b"")
            received += len(body)
            record.bytes_in += len(body)
            if not streaming and received > limit:
                raise TooLarge(f"the request body is over the limit of {limit} bytes")
            return message

        try:
            await self.app(scope, limited, _counting(send, record))
        except Exception:
            record.status = 500  # answered by the server-error handler, outside this one
            raise
        finally:
            record.finish()


def _refusal(scope: Scope, refusal: ModelregError) -> Response:
    """problem+json for the API, MLflow's error shape for its routes, an error page for the
    web UI."""
    request = Request(scope)
    if mlflow.is_mlflow(request.url.path):
        return mlflow.error_response(refusal)
    return ui.error_page(request, refusal) if ui.is_page(request) else problem(refusal)


def _counting(send: Send, record: Any) -> Send:
    async def counted(message: Message) -> None:
        if message["type"] == "http.response.start":
            record.status = message["status"]
        elif message["type"] == "http.response.body":
            record.bytes_out += len(message.get("body", b""))
        await send(message)

    return counted


def create_app(registry: LocalRegistry, *, auth: bool = False, any_host: bool = False) -> FastAPI:
    """The server's ASGI application over one registry."""
    from modelreg import __version__

    app = FastAPI(
        title="modelreg",
        version=__version__,
        description="A model registry: immutable versions with lineage, search and audit.",
        openapi_url="/openapi.json",
        docs_url=None,  # served below, with Swagger UI from the package instead of a CDN
        redoc_url=None,
    )
    # Errors do not show where the server keeps its data; its clients name the server.
    registry.db.where = None
    state = AppState(app, registry, Settings(auth=auth, any_host=any_host))
    app.state.modelreg = state

    def answer(request: Request, exc: ModelregError) -> Response:
        """problem+json for the API; MLflow's error shape for its routes; a page for the web
        UI's requests."""
        if mlflow.is_mlflow(request.url.path):
            return mlflow.error_response(exc)
        if ui.is_page(request):
            return ui.error_page(request, exc)
        return problem(exc)

    @app.exception_handler(ModelregError)
    async def registry_error(request: Request, exc: ModelregError) -> Response:
        return answer(request, exc)

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> Response:
        return answer(request, InvalidInput(validation_message(exc)))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if isinstance(exc.__cause__, ModelregError):  # raised by Guard while the body was read
            return answer(request, exc.__cause__)
        error = ModelregError(str(exc.detail))
        error.status = exc.status_code
        error.code = {400: "invalid_input", 404: "not_found", 405: "method_not_allowed",
                      413: "too_large"}.get(exc.status_code, "error")  # fmt: skip
        response = answer(request, error)
        response.headers.update(exc.headers or {})  # a 405's Allow
        return response

    @app.exception_handler(Exception)
    async def internal(request: Request, exc: Exception) -> Response:
        # Never the exception's text: it may hold a database URL or a credential.
        response = answer(request, ModelregError("internal server error (see the server's log)"))
        response.headers["Connection"] = "close"  # uvicorn drops it after logging the error
        return response

    app.include_router(api.router)
    app.include_router(api_governance.router)
    app.include_router(api_chunks.router)
    mlflow.install(app)
    ui.install(app)

    @app.get(
        "/healthz",
        tags=["server"],
        dependencies=[Depends(allow(PUBLIC))],
        responses={503: {"description": "Not ready", "content": {PROBLEM: {}}}},
    )
    def healthz() -> dict[str, str]:
        """Ready when the database answers with this modelreg's schema and the blob store
        can be used; a 503 (``unavailable``) names what is not, so that a load balancer
        stops sending requests to this replica."""
        state.registry.db.check_ready()
        try:
            state.registry.blobs.check()
        except OSError as exc:
            _log.error("health check: %s", exc)
            raise Unavailable("the blob store cannot be used (see the server's log)") from None
        return {"status": "ok"}

    @app.get(
        "/metrics",
        tags=["server"],
        dependencies=[Depends(allow(PUBLIC))],
        response_class=PlainTextResponse,
    )
    def metrics() -> Any:
        """Prometheus metrics: requests by route and status, latencies, bytes in and out."""
        from fastapi.responses import PlainTextResponse

        return PlainTextResponse(state.metrics.render(), media_type="text/plain; version=0.0.4")

    @app.get("/docs", include_in_schema=False, dependencies=[Depends(allow(PUBLIC))])
    def docs() -> Response:
        """The API's interactive documentation (Swagger UI, shipped in the package), under
        the pages' Content-Security-Policy: its start-up script is a file, not inline."""
        from fastapi.responses import HTMLResponse

        return HTMLResponse(
            DOCS_PAGE.format(
                css=ui.static_url("vendor/swagger-ui.css"),
                bundle=ui.static_url("vendor/swagger-ui-bundle.js"),
                start=ui.static_url("docs.js"),
            ),
            headers=ui.SECURITY_HEADERS,
        )

    app.add_middleware(Guard, state=state)
    logging.getLogger("uvicorn.error").addFilter(QUIET_CORRUPT_BLOB)  # once: filters are a set
    return app


DOCS_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>modelreg API</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="{css}">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{bundle}"></script>
<script src="{start}"></script>
</body>
</html>
"""


class NoDelayH11Protocol(H11Protocol):
    """uvicorn's HTTP/1.1 protocol with TCP_NODELAY on every connection.

    With ``--workers`` uvicorn binds the socket itself, with protocol 0, and asyncio then
    never sets TCP_NODELAY on accepted connections: Nagle's algorithm and the client's delayed
    ACK hold each response back about 40 ms.
    """

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        set_nodelay(transport)
        super().connection_made(transport)


#: The longest request line and headers accepted. A query value may hold 4,096 characters,
#: each up to 12 bytes once UTF-8 and percent-encoded, and a search sends three: past h11's
#: default of 16 KiB the connection was dropped instead of answered.
MAX_REQUEST_HEAD = 256 * 1024

#: How ``modelreg server`` runs uvicorn, whatever the number of workers.
UVICORN_OPTIONS: dict[str, Any] = {
    "http": NoDelayH11Protocol,
    "h11_max_incomplete_event_size": MAX_REQUEST_HEAD,
    "log_level": "warning",
}


def set_nodelay(transport: asyncio.BaseTransport) -> None:
    """Send small writes at once on a TCP connection (no Nagle delay)."""
    sock = transport.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def app_from_environment() -> FastAPI:
    """The app ``modelreg server --workers N`` starts in each worker, configured by the
    parent through environment variables."""
    db = os.environ.get("MODELREG_SERVER_DB", "")
    blobs = os.environ.get("MODELREG_SERVER_BLOBS", "")
    if db:
        from modelreg import backends

        registry = LocalRegistry(db_url=backends.database_url(db), blobs=backends.blob_store(blobs))
    else:
        registry = LocalRegistry(os.environ["MODELREG_SERVER_ROOT"])
    app = create_app(
        registry,
        auth=os.environ.get("MODELREG_SERVER_AUTH") == "1",
        any_host=os.environ.get("MODELREG_SERVER_ANY_HOST") == "1",
    )
    # What starting made (modules, the app, the engine) lives as long as the process: set it
    # aside from the cyclic collector, so that a full collection, which a request building
    # many objects (a batch of 10,000 metric points) sets off, does not walk it all again.
    # Measured: such a batch took 40 ms, and 120-150 ms when a full collection ran.
    gc.collect()
    gc.freeze()
    return app
