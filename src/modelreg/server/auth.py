"""Who may call what: the caller of each request, the role each route needs, and the checks
that stand in for a token when auth is off.

Every route states who may call it with ``Depends(allow(ROLE))``: the dependency checks the
caller's token (when auth is on) against the role and hands the route a registry whose audit
actor is the caller. ``tests/test_server_routes.py`` fails if a route lacks one. With auth on,
the app's Guard asks :meth:`AppState.role_of` and authenticates before the body is read.
"""

from __future__ import annotations

import base64
import copy
import ipaddress
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import anyio.to_thread
from fastapi import FastAPI, Request
from fastapi.routing import APIRoute, RouteContext, iter_route_contexts
from starlette.types import Scope

from modelreg import tokens
from modelreg.errors import InvalidInput, ModelregError, NotAuthenticated, PermissionDenied
from modelreg.local import LocalRegistry
from modelreg.server.metrics import Metrics

MAX_BODY = 16 * 1024 * 1024  # JSON request bodies; blob uploads stream and are not capped
PUBLIC = "public"
ANONYMOUS = "anonymous"
ACTOR_HEADER = "x-modelreg-actor"
SESSION_COOKIE = "modelreg_session"
_UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
_log = logging.getLogger("modelreg.server")


@dataclass(frozen=True)
class Settings:
    auth: bool = False
    max_body: int = MAX_BODY
    any_host: bool = False  # without auth, answer only requests addressed to loopback names


@dataclass(frozen=True)
class Caller:
    actor: str
    role: str


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


def single_values(*lists: str) -> Callable[[Request], Awaitable[None]]:
    """A router's rule that a query parameter comes once, but for the ``lists`` it takes many
    of: ``?ref=a&ref=b`` is refused, not read as ``b``."""

    async def check(request: Request) -> None:  # async: no hop to a worker thread
        seen: set[str] = set()
        for key, _ in request.query_params.multi_items():
            if key in seen and key not in lists:
                raise InvalidInput(f"query parameter {key[:80]!r} is given more than once")
            seen.add(key)

    return check


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
        if scheme.lower() == "basic":  # MLflow's MLFLOW_TRACKING_USERNAME and _PASSWORD
            secret = _basic_password(secret)
        elif scheme.lower() != "bearer" or not secret.strip():
            raise NotAuthenticated(
                "this server needs a token: set MODELREG_TOKEN (sent as Authorization: Bearer)"
            )
        found = self.registry.db.read(lambda conn: tokens.authenticate(conn, secret.strip()))
        if found is None:
            raise NotAuthenticated("the token is not valid: it is unknown or was revoked")
        tokens.record_use(self.registry.db, found)  # writes at most once a minute per token
        return Caller(found.name, found.role)


def _basic_password(credentials: str) -> str:
    """The password of HTTP Basic credentials, which is a modelreg token (the user name is
    not used: the token names its holder)."""
    try:
        decoded = base64.b64decode(credentials.strip(), validate=True).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        raise NotAuthenticated("the Basic credentials are not base64 of user:password") from None
    _, colon, password = decoded.partition(":")
    if not colon or not password.strip():
        raise NotAuthenticated(
            "Basic credentials need a password: the password is a modelreg token"
            " (MLFLOW_TRACKING_PASSWORD, or MLFLOW_TRACKING_TOKEN alone)"
        )
    return password


# What the web UI's session cookie may call besides the pages and their forms: reads the pages
# make after they load, and the downloads of a run's files that a run's page links to (MLflow's
# artifact route: always an attachment). Every other API route takes only an Authorization header.
_SESSION_API_READS = (
    "/api/v1/pages/",
    "/api/v1/audit/verify",
    "/api/2.0/mlflow-artifacts/artifacts/",
)


def _session_reaches(request: Request) -> bool:
    path = request.url.path
    if not path.startswith("/api/"):
        return True
    return request.method in ("GET", "HEAD") and path.startswith(_SESSION_API_READS)


def foreign_host(host: str) -> ModelregError | None:
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
        if port and not (port.startswith(":") and port[1:].isascii() and port[1:].isdigit()):
            return False
    else:
        name, colon, port = host.partition(":")
        if colon and not (port.isascii() and port.isdigit()):
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


def cross_origin(method: str, headers: dict[str, str]) -> ModelregError | None:
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
