"""The FastAPI application: errors as problem+json, auth, limits, and the routes' wiring.

Every route states who may call it with ``Depends(allow(ROLE))``: the dependency checks the
caller's token (when auth is on) against the role and hands the route a registry whose audit
actor is the caller. ``tests/test_server_routes.py`` fails if a route lacks one.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import ipaddress
import logging
import os
import re
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import anyio.to_thread
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from fastapi.routing import APIRoute, RouteContext, iter_route_contexts
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from modelreg import tokens
from modelreg.errors import (
    InvalidInput,
    ModelregError,
    NotAuthenticated,
    PermissionDenied,
    RangeNotSatisfiable,
    TooLarge,
    Unavailable,
    error_details,
)
from modelreg.local import LocalRegistry
from modelreg.server.metrics import Metrics

MAX_BODY = 16 * 1024 * 1024  # JSON request bodies; blob uploads stream and are not capped
PUBLIC = "public"
ANONYMOUS = "anonymous"
ACTOR_HEADER = "x-modelreg-actor"
SESSION_COOKIE = "modelreg_session"
PROBLEM = "application/problem+json"
_UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
_log = logging.getLogger("modelreg.server")


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


_QUIET = _QuietCorruptBlob()


@dataclass(frozen=True)
class Settings:
    auth: bool = False
    max_body: int = MAX_BODY
    any_host: bool = False  # without auth, answer only requests addressed to loopback names


@dataclass(frozen=True)
class Caller:
    actor: str
    role: str


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


def allow(role: str) -> Callable[[Request], Awaitable[LocalRegistry]]:
    """The permission rule of a route: ``Depends(allow("writer"))`` and so on."""
    if role != PUBLIC:
        tokens.check_role(role)

    async def caller_registry(request: Request) -> LocalRegistry:
        state: AppState = request.app.state.modelreg
        # Guard has already authenticated the caller of a route that needs a role, before
        # the body was read.
        caller = getattr(request.state, "caller", None)
        if caller is None:
            caller = await state.caller_of(request, role)
            request.state.caller = caller  # the web UI shows only the controls the role allows
        elif role != PUBLIC:
            _check_role(caller, role)
        view = copy.copy(state.registry)
        view.actor = caller.actor
        return view

    caller_registry.role = role  # type: ignore[attr-defined]  # read by the route test
    return caller_registry


def _role(context: RouteContext) -> str | None:
    """The role of the ``allow(ROLE)`` dependency of a route, if it has one."""
    if not isinstance(context.original_route, APIRoute):
        return None
    pending = list(context.dependant.dependencies)
    while pending:
        dependency = pending.pop()
        role = getattr(dependency.call, "role", None)
        if role is not None:
            return str(role)
        pending += dependency.dependencies
    return None


def _check_role(caller: Caller, role: str) -> None:
    if not tokens.allows(caller.role, role):
        raise PermissionDenied(
            f"{caller.actor} has the {caller.role} role; this needs {role} or above"
        )


class AppState:
    def __init__(self, app: FastAPI, registry: LocalRegistry, settings: Settings) -> None:
        self.app = app
        self.registry = registry
        self.settings = settings
        self.metrics = Metrics()
        self.corrupt_blobs: set[str] = set()  # checked whole before they are sent again
        # (path pattern, methods, role) of every route, read at the first request
        self.routes: list[tuple[re.Pattern[str], set[str] | None, str | None]] | None = None

    def blob_failed(self, digest: str, actual: str) -> None:
        """Log and count a blob found damaged while it was served."""
        self.metrics.corrupt_blob()
        if len(self.corrupt_blobs) >= 10_000:
            self.corrupt_blobs.pop()
        self.corrupt_blobs.add(digest)
        _log.error(
            "blob %s does not match its digest (its bytes hash to %s): not served whole;"
            " run `modelreg fsck`",
            digest,
            actual,
        )

    def role_of(self, scope: Scope) -> str | None:
        """The role that the route which will answer this request needs: None for a path
        that no route with a rule of its own takes (a static file, an unknown path)."""
        if self.routes is None:
            self.routes = [
                (context.path_regex, context.methods, _role(context))
                for context in iter_route_contexts(self.app.routes)
            ]
        path, method = scope["path"], scope["method"]
        if method == "HEAD":
            method = "GET"
        # The lowest of the roles of every route that matches: never more than the router's
        # choice needs (the route's own dependency checks that again).
        found = [
            role
            for pattern, methods, role in self.routes
            if (methods is None or method in methods) and pattern.match(path)
        ]
        if not found or None in found:
            return None
        if PUBLIC in found:
            return PUBLIC
        return min(found, key=lambda role: tokens.ROLES.index(str(role)))

    async def caller_of(self, request: Request, role: str) -> Caller:
        """Who is calling a route that needs ``role``; refused unless they hold it."""
        # A load balancer's health check and a metrics scrape carry no token.
        if role == PUBLIC:
            return Caller(ANONYMOUS, PUBLIC)
        if self.settings.auth:  # a database read: off the event loop
            caller = await anyio.to_thread.run_sync(self.authenticate, request)
        else:
            caller = self.authenticate(request)
        _check_role(caller, role)
        return caller

    def authenticate(self, request: Request) -> Caller:
        if not self.settings.auth:
            actor = request.headers.get(ACTOR_HEADER, "").strip()[:200] or ANONYMOUS
            return Caller(actor, "admin")
        header = request.headers.get("authorization", "")
        scheme, _, secret = header.partition(" ")
        session = request.cookies.get(SESSION_COOKIE)
        if not header and session and _session_reaches(request):
            # The web UI's session (see tokens.open_session), in an HttpOnly, SameSite=Strict
            # cookie that another site's request never carries.
            found = self.registry.db.read(lambda conn: tokens.session_token(conn, session))
            if found is None:
                raise NotAuthenticated("the session has ended: sign in again")
            tokens.record_use(self.registry.db, found)
            return Caller(found.name, found.role)
        if scheme.lower() != "bearer" or not secret.strip():
            raise NotAuthenticated(
                "this server needs a token: set MODELREG_TOKEN (sent as Authorization: Bearer)"
            )
        found = self.registry.db.read(lambda conn: tokens.authenticate(conn, secret.strip()))
        if found is None:
            raise NotAuthenticated("the token is not valid: it is unknown or was revoked")
        tokens.record_use(self.registry.db, found)  # writes at most once a minute per token
        return Caller(found.name, found.role)


# What the web UI's session cookie may call besides the pages and their forms: reads the pages
# make after they load. Every other API route takes only an Authorization header.
_SESSION_API_READS = ("/api/v1/pages/", "/api/v1/audit/verify")


def _session_reaches(request: Request) -> bool:
    path = request.url.path
    if not path.startswith("/api/"):
        return True
    return request.method in ("GET", "HEAD") and path.startswith(_SESSION_API_READS)


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
        refusal = _cross_origin(method, headers)
        settings = self.state.settings
        if refusal is None and not settings.auth and not settings.any_host:
            refusal = _foreign_host(headers.get("host", ""))
        streaming = scope["path"].startswith("/api/v1/blobs/") and method == "PUT"
        limit = self.state.settings.max_body
        if refusal is None and not streaming:
            length = headers.get("content-length", "")
            if length.isdigit() and int(length) > limit:
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
    """problem+json for the API, an error page for the web UI."""
    from modelreg.ui import routes as ui

    request = Request(scope)
    return ui.error_page(request, refusal) if ui.is_page(request) else problem(refusal)


def _counting(send: Send, record: Any) -> Send:
    async def counted(message: Message) -> None:
        if message["type"] == "http.response.start":
            record.status = message["status"]
        elif message["type"] == "http.response.body":
            record.bytes_out += len(message.get("body", b""))
        await send(message)

    return counted


def _foreign_host(host: str) -> ModelregError | None:
    """Without auth every caller is admin: a request addressed to any name but ``localhost``
    or a loopback IP literal (a web page that rebinds its own DNS name to 127.0.0.1, such as
    ``127.0.0.1.nip.io``) is refused."""
    if is_loopback_host(host):
        return None
    return PermissionDenied(
        f"this server runs without auth and answers only requests to localhost or a loopback"
        f" address, not to {host[:100]!r} (start it with --auth, or --insecure-no-auth)"
    )


def is_loopback_host(host: str) -> bool:
    """True when a Host header names ``localhost`` or a loopback IP literal, with or without
    a port. No other name: whoever owns a DNS name can point it at 127.0.0.1."""
    if host.startswith("["):
        name, _, port = host[1:].partition("]")
        if port and not (port.startswith(":") and port[1:].isdigit()):
            return False
    else:
        name, colon, port = host.partition(":")
        if colon and not port.isdigit():
            return False
    if name.lower() == "localhost":
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address):
        if not host.startswith("[") or address.scope_id:
            return False
        address = address.ipv4_mapped or address
    return address.is_loopback


def _cross_origin(method: str, headers: dict[str, str]) -> ModelregError | None:
    """Refuse a state-changing request a browser sends from another site."""
    if method not in _UNSAFE_METHODS:
        return None
    if headers.get("sec-fetch-site", "") == "cross-site":
        return PermissionDenied("cross-origin requests may not change the registry")
    origin = headers.get("origin")
    if origin is None:
        return None
    # Host and port only: behind a proxy that ends TLS the scheme seen here is http.
    if origin.rstrip("/").partition("://")[2] != headers.get("host", ""):
        return PermissionDenied(
            f"cross-origin requests may not change the registry (origin {origin[:100]!r})"
        )
    return None


def create_app(registry: LocalRegistry, *, auth: bool = False, any_host: bool = False) -> FastAPI:
    """The server's ASGI application over one registry."""
    from modelreg import __version__
    from modelreg.server import api, api_governance
    from modelreg.ui import routes as ui

    app = FastAPI(
        title="modelreg",
        version=__version__,
        description="A model registry: immutable versions with lineage, search and audit.",
        openapi_url="/openapi.json",
        docs_url=None,  # served below, with Swagger UI from the package instead of a CDN
        redoc_url=None,
    )
    state = AppState(app, registry, Settings(auth=auth, any_host=any_host))
    app.state.modelreg = state

    def answer(request: Request, exc: ModelregError) -> Response:
        """problem+json for the API; a page for the web UI's requests."""
        if ui.is_page(request):
            return ui.error_page(request, exc)
        return problem(exc)

    @app.exception_handler(ModelregError)
    async def registry_error(request: Request, exc: ModelregError) -> Response:
        return answer(request, exc)

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> Response:
        return answer(request, InvalidInput(_validation_message(exc)))

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
    logging.getLogger("uvicorn.error").addFilter(_QUIET)  # once: filters are a set
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


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for error in exc.errors()[:3]:
        where = ".".join(str(p) for p in error.get("loc", ()) if p != "body")
        parts.append(f"{where or 'body'}: {error.get('msg', 'invalid')}")
    return "invalid request: " + "; ".join(parts)


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
    return create_app(
        registry,
        auth=os.environ.get("MODELREG_SERVER_AUTH") == "1",
        any_host=os.environ.get("MODELREG_SERVER_ANY_HOST") == "1",
    )
