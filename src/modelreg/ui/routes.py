"""The web UI's routes: server-rendered pages, each with a JSON twin under ``/api/v1/pages``,
sign-in with a token, the forms that change a version, file downloads and the packaged
static files.

Pages are Jinja2 templates with autoescaping on, so every string from the registry shows as
text. Every HTML response carries a Content-Security-Policy that allows only this server's
scripts and styles: chart and graph data travel in ``<script type="application/json">``
blocks, never in inline code.
"""

from __future__ import annotations

import hashlib
import json
import mimetypes
import re
import urllib.parse
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import anyio.to_thread
import jinja2
import markdown_it
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from markupsafe import Markup

from modelreg import __version__, tokens
from modelreg.errors import InvalidInput, ModelregError, NotAuthenticated, NotFound
from modelreg.local import LocalRegistry
from modelreg.server.api import blob_response
from modelreg.server.auth import PUBLIC, SESSION_COOKIE, AppState, allow, single_values
from modelreg.server.problems import PROBLEMS
from modelreg.ui import pages, tracking
from modelreg.values import MAX_OFFSET

HERE = Path(__file__).parent
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
    " connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "private, no-cache",  # a page shows what its caller may see, as it is now
}
TWIN = "/api/v1/pages"

router = APIRouter(include_in_schema=False)
twins = APIRouter(
    prefix=TWIN, tags=["pages"], responses=PROBLEMS, dependencies=[Depends(single_values("v", "r"))]
)

Reader = Annotated[LocalRegistry, Depends(allow("reader"))]
Writer = Annotated[LocalRegistry, Depends(allow("writer"))]
Maintainer = Annotated[LocalRegistry, Depends(allow("maintainer"))]
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET)]
Text = Annotated[str, Query(max_length=4096)]
# Where a page of models or versions starts: the last model's name or version's id before it.
After = Annotated[str | None, Query(max_length=128)]
# Where a page of runs, experiments or datasets starts: the sort values of the row before.
Cursor = Annotated[str | None, Query(alias="after", max_length=pages.MAX_CURSOR)]


# -- static files -------------------------------------------------------------------------------


def _static_files() -> dict[str, tuple[bytes, str, str]]:
    """Every packaged static file by its path: (content, media type, short digest)."""
    root = HERE / "static"
    found = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.name.startswith("."):
            data = path.read_bytes()
            kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            if kind.startswith("text/") or kind.endswith("javascript"):
                kind += "; charset=utf-8"
            found[path.relative_to(root).as_posix()] = (
                data,
                kind,
                hashlib.sha256(data).hexdigest()[:16],
            )
    return found


STATIC = _static_files()


def static_url(name: str) -> str:
    """A static file's URL, which changes when its content does (so it can be cached)."""
    return f"/static/{name}?v={STATIC[name][2]}"


@router.get("/static/{name:path}", dependencies=[Depends(allow(PUBLIC))])
def static(name: str, v: Text = "") -> Response:
    found = STATIC.get(name)  # only the packaged files: a path is never opened from here
    if found is None:
        raise NotFound(f"no static file {name[:100]!r}")
    data, kind, digest = found
    cache = "public, max-age=31536000, immutable" if v == digest else "no-cache"
    headers = {"Cache-Control": cache, "ETag": f'"{digest}"', "X-Content-Type-Options": "nosniff"}
    return Response(data, media_type=kind, headers=headers)


# -- rendering ----------------------------------------------------------------------------------


def _when(value: Any) -> str:
    if not value:
        return ""
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return str(value)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def _num(value: Any) -> Any:
    if isinstance(value, float):
        return f"{value:.6g}"
    if value is None:
        return ""
    return value


def _delta(value: float) -> str:
    return f"{value:+.4g}"


def _duration(seconds: Any) -> str:
    if not isinstance(seconds, (int, float)) or seconds < 0:
        return ""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {rest} s"
    return f"{minutes // 60} h {minutes % 60} min"


def _bytes(size: Any) -> str:
    if not isinstance(size, int):
        return ""
    amount = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if amount < 1024 or unit == "TiB":
            return f"{size} B" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    return f"{size} B"


ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(HERE / "templates"),
    autoescape=True,
    trim_blocks=True,
    lstrip_blocks=True,
)
ENV.filters.update(
    when=_when,
    num=_num,
    delta=_delta,
    bytes=_bytes,
    duration=_duration,
    short=lambda digest: str(digest or "")[:12],
    version_href=pages.version_href,
    pretty=lambda value: json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False),
)
ENV.globals.update(static=static_url, version=__version__)


def render(
    request: Request,
    template: str,
    page: dict[str, Any],
    *,
    nav: str = "",
    twin: str | None = None,
    status: int = 200,
    **extra: Any,
) -> HTMLResponse:
    caller = getattr(request.state, "caller", None)
    state: AppState = request.app.state.modelreg

    def can(role: str) -> bool:
        return caller is not None and tokens.allows(caller.role, role)

    html = ENV.get_template(template).render(
        page=page,
        caller=caller if caller is not None and caller.role != PUBLIC else None,
        auth=state.settings.auth,
        can=can,
        nav=nav,
        twin=twin,
        link_offset=_link(request, "offset"),
        **extra,
    )
    return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)


def _link(request: Request, key: str) -> Callable[..., str]:
    """This page's URL with one query parameter replaced, and the cursor of a list that
    pages by one (``after``) set, or dropped for a link that goes by offset alone."""

    def link(value: Any, after: str | None = None) -> str:
        query = dict(request.query_params)
        query[key] = str(value)
        query.pop("after", None)
        if after is not None:
            query["after"] = after
        return f"{request.url.path}?{urllib.parse.urlencode(query)}"

    return link


def _twin_of(request: Request) -> str:
    query = f"?{request.url.query}" if request.url.query else ""
    return f"{TWIN}{'/models' if request.url.path == '/' else request.url.path}{query}"


def is_page(request: Request) -> bool:
    """Whether a request is for the web UI (answered in HTML), not for the API."""
    path = request.url.path
    return not path.startswith(("/api/", "/openapi.json", "/docs", "/healthz", "/metrics"))


def error_page(request: Request, exc: ModelregError) -> Response:
    """A registry error as the web UI shows it; a missing sign-in goes to the sign-in page."""
    if isinstance(exc, NotAuthenticated) and request.method in ("GET", "HEAD"):
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?{urllib.parse.urlencode({'next': target})}", 303)
    title = {400: "Bad request", 401: "Sign-in needed", 403: "Not allowed", 404: "Not found",
             409: "Conflict", 410: "Deleted", 413: "Too large"}.get(exc.status, "Error")  # fmt: skip # noqa: E501
    message = exc.message
    if isinstance(exc, NotAuthenticated):
        message = "Your session has ended or the token was revoked: sign in again."
    return render(
        request,
        "error.html",
        {},
        status=exc.status,
        title=title,
        message=message,
        status_code=exc.status,
    )


# -- pages and their JSON twins -----------------------------------------------------------------


@router.get("/", response_class=HTMLResponse)
def models_page(
    request: Request, reg: Reader, q: Text = "", offset: Offset = 0, after: After = None
) -> Response:
    page = pages.models(reg, q=q.strip(), offset=offset, after=after)
    return render(request, "models.html", page, nav="models", twin=_twin_of(request))


def _search_language() -> Markup:
    """The search language's description, rendered once from the Markdown that
    docs/concepts.md repeats word for word (raw HTML in it is not passed through)."""
    text = (HERE / "templates" / "search_language.md").read_text(encoding="utf-8")
    # Our own packaged text, and markdown-it escapes every character of it that is not Markdown
    html = markdown_it.MarkdownIt("commonmark", {"html": False}).render(text)
    return Markup(html)  # noqa: S704


SEARCH_LANGUAGE = _search_language()


@router.get("/search-language", response_class=HTMLResponse)
def search_language_page(request: Request, reg: Reader) -> Response:
    """What the search box takes, with examples that match this registry."""
    page = {"examples": pages.search_examples(reg)}
    return render(request, "search_language.html", page, nav="models", text=SEARCH_LANGUAGE)


@twins.get("/models")
def models_twin(
    reg: Reader, q: Text = "", offset: Offset = 0, after: After = None
) -> dict[str, Any]:
    """The models page: every model, or with ``q`` the versions matching a search (the next
    page ``after`` the last model or version of the one before)."""
    return pages.models(reg, q=q.strip(), offset=offset, after=after)


_FILE = re.compile(r"([^/]+)/versions/(\d{1,9})/files/(.+)")


@router.get("/models/{path:path}", response_class=HTMLResponse)
def model_or_version_page(
    request: Request,
    reg: Reader,
    path: str,
    sort: Text = "number",
    order: Text = "desc",
    offset: Offset = 0,
    after: After = None,
) -> Response:
    if not path.strip("/"):
        return RedirectResponse("/", status_code=307)
    file = _FILE.fullmatch(path)
    if file is not None:
        return _download(request, reg, f"{file[1]}/{file[2]}", file[3])
    kind, ref = pages.resolve_path(path)
    if kind == "model":
        page = pages.model(reg, ref, sort=sort, order=order, offset=offset, after=after)
        return render(
            request,
            "model.html",
            page,
            nav="models",
            twin=_twin_of(request),
            sort_link=lambda key, direction: _sort_link(request, key, direction),
        )
    page = pages.version(reg, ref)
    return render(request, "version.html", page, nav="models", twin=_twin_of(request))


@twins.get("/models/{path:path}")
def model_or_version_twin(
    reg: Reader,
    path: str,
    sort: Text = "number",
    order: Text = "desc",
    offset: Offset = 0,
    after: After = None,
) -> dict[str, Any]:
    """A model's page (``/models/NAME``, its versions from ``after`` the last of the page
    before) or a version's (``/models/NAME/versions/N``, ``/models/NAME@ALIAS``)."""
    kind, ref = pages.resolve_path(path)
    if kind == "model":
        return pages.model(reg, ref, sort=sort, order=order, offset=offset, after=after)
    return pages.version(reg, ref)


def _sort_link(request: Request, key: str, direction: str) -> str:
    query = dict(request.query_params)
    query.update(sort=key, order=direction, offset="0")
    query.pop("after", None)
    return f"{request.url.path}?{urllib.parse.urlencode(query)}"


def _download(request: Request, reg: LocalRegistry, ref: str, path: str) -> Response:
    """One file of a version, always as an attachment: never rendered as HTML or SVG."""
    found = {f.path: f for f in reg.get(ref).files}.get(path)
    if found is None:
        raise NotFound(f"{ref} has no file {path[:200]!r}")
    name = path.rsplit("/", 1)[-1]
    ascii_name = re.sub(r"[^A-Za-z0-9._-]", "_", name) or "file"
    disposition = (
        f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{urllib.parse.quote(name)}"
    )
    response = blob_response(request, reg, found.digest)
    response.headers["Content-Disposition"] = disposition
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


@router.get("/compare", response_class=HTMLResponse)
def compare_page(
    request: Request, reg: Reader, v: Annotated[list[str], Query(max_length=20)]
) -> Response:
    page = pages.compare(reg, [ref for ref in v if ref.strip()])
    return render(request, "compare.html", page, nav="models", twin=_twin_of(request))


@twins.get("/compare")
def compare_twin(reg: Reader, v: Annotated[list[str], Query(max_length=20)]) -> dict[str, Any]:
    """Two or more versions side by side (``?v=REF&v=REF...``)."""
    return pages.compare(reg, [ref for ref in v if ref.strip()])


@router.get("/datasets", response_class=HTMLResponse)
def datasets_page(
    request: Request, reg: Reader, offset: Offset = 0, after: Cursor = None
) -> Response:
    page = pages.datasets(reg, offset=offset, after=after)
    return render(request, "datasets.html", page, nav="datasets", twin=_twin_of(request))


@twins.get("/datasets")
def datasets_twin(reg: Reader, offset: Offset = 0, after: Cursor = None) -> dict[str, Any]:
    """Every recorded dataset version; ``after``: the ``page.after`` of the page before."""
    return pages.datasets(reg, offset=offset, after=after)


@router.get("/datasets/{name}", response_class=HTMLResponse)
def dataset_page(request: Request, reg: Reader, name: str, offset: Offset = 0) -> Response:
    page = pages.dataset(reg, name, offset=offset)
    return render(request, "dataset.html", page, nav="datasets", twin=_twin_of(request))


@twins.get("/datasets/{name}")
def dataset_twin(reg: Reader, name: str, offset: Offset = 0) -> dict[str, Any]:
    """A dataset's recorded versions and every model version that depends on it."""
    return pages.dataset(reg, name, offset=offset)


@router.get("/audit", response_class=HTMLResponse)
def audit_page(
    request: Request,
    reg: Reader,
    entity: Text = "",
    actor: Text = "",
    before: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
    full: bool = False,
) -> Response:
    page = pages.audit(reg, entity=entity.strip(), actor=actor.strip(), before=before, verify=False)
    return render(
        request,
        "audit.html",
        page,
        full=full,
        nav="audit",
        twin=_twin_of(request),
        older_link=_link(request, "before"),
    )


@twins.get("/audit")
def audit_twin(
    reg: Reader,
    entity: Text = "",
    actor: Text = "",
    before: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
) -> dict[str, Any]:
    """The audit log, newest first, filtered by entity and actor, with the chain's check."""
    return pages.audit(reg, entity=entity.strip(), actor=actor.strip(), before=before)


@router.get("/experiments", response_class=HTMLResponse)
def experiments_page(
    request: Request, reg: Reader, offset: Offset = 0, after: Cursor = None
) -> Response:
    page = tracking.experiments_page(reg, offset=offset, after=after)
    return render(request, "experiments.html", page, nav="experiments", twin=_twin_of(request))


@twins.get("/experiments")
def experiments_twin(reg: Reader, offset: Offset = 0, after: Cursor = None) -> dict[str, Any]:
    """Every experiment of tracked runs, with its number of runs and its latest run's start;
    ``after``: the ``page.after`` of the page before."""
    return tracking.experiments_page(reg, offset=offset, after=after)


@router.get("/experiments/{experiment_id}", response_class=HTMLResponse)
def experiment_page(
    request: Request,
    reg: Reader,
    experiment_id: str,
    q: Text = "",
    sort: Text = "start_time",
    order: Text = "desc",
    offset: Offset = 0,
    after: Cursor = None,
) -> Response:
    page = tracking.experiment(
        reg,
        experiment_id,
        q=q.strip(),
        sort=sort,
        order=order,
        offset=offset,
        after=after,
        tolerant=True,
    )
    return render(
        request,
        "experiment.html",
        page,
        nav="experiments",
        twin=_twin_of(request),
        status=400 if page["error"] else 200,
        sort_link=lambda key, direction: _sort_link(request, key, direction),
    )


@twins.get("/experiments/{experiment_id}")
def experiment_twin(
    reg: Reader,
    experiment_id: str,
    q: Text = "",
    sort: Text = "start_time",
    order: Text = "desc",
    offset: Offset = 0,
    after: Cursor = None,
) -> dict[str, Any]:
    """An experiment's runs (50 a page) with their params, metrics and tags, filtered by
    ``q`` in MLflow's filter grammar and sorted by ``sort`` (``start_time``, ``run_name``,
    ``metrics.KEY``, ``params.KEY``, ``tags.KEY``, ...); ``after``: the ``page.after`` of
    the page before."""
    return tracking.experiment(
        reg, experiment_id, q=q.strip(), sort=sort, order=order, offset=offset, after=after
    )


Runs = Annotated[list[str], Query(max_length=20)]


@router.get("/runs/compare", response_class=HTMLResponse)
def compare_runs_page(request: Request, reg: Reader, r: Runs) -> Response:
    page = tracking.compare_runs(reg, [run_id.strip() for run_id in r if run_id.strip()])
    return render(request, "run_compare.html", page, nav="experiments", twin=_twin_of(request))


@twins.get("/runs/compare")
def compare_runs_twin(reg: Reader, r: Runs) -> dict[str, Any]:
    """Two to eight runs side by side (``?r=RUN_ID&r=RUN_ID...``)."""
    return tracking.compare_runs(reg, [run_id.strip() for run_id in r if run_id.strip()])


@router.get("/runs/{run_id}", response_class=HTMLResponse)
def run_page(request: Request, reg: Reader, run_id: str) -> Response:
    page = tracking.run(reg, run_id)
    return render(request, "run.html", page, nav="experiments", twin=_twin_of(request))


@twins.get("/runs/{run_id}")
def run_twin(reg: Reader, run_id: str) -> dict[str, Any]:
    """A run: its record, source, params, metrics with their histories (downsampled), tags,
    datasets, artifacts, logged models and the versions registered from it."""
    return tracking.run(reg, run_id)


# -- forms that change a version ----------------------------------------------------------------


async def _form(request: Request) -> dict[str, str]:
    try:
        body = (await request.body()).decode("utf-8")
        fields = urllib.parse.parse_qs(body, keep_blank_values=True, errors="strict")
    except UnicodeDecodeError:
        raise InvalidInput("the form is not UTF-8 text") from None
    return {k: v[-1] for k, v in fields.items()}


def _back_to(ref: str) -> RedirectResponse:
    return RedirectResponse(pages.version_href(ref), status_code=303)


@router.post("/models/{name}/versions/{number}/tags")
async def tag_form(request: Request, reg: Writer, name: str, number: int) -> Response:
    form = await _form(request)
    ref = f"{name}/{number}"
    key = form.get("key", "").strip()
    if not key:
        raise InvalidInput("a tag needs a key")
    await anyio.to_thread.run_sync(reg.set_tag, ref, key, form.get("value", ""))
    return _back_to(ref)


@router.post("/models/{name}/versions/{number}/description")
async def description_form(request: Request, reg: Writer, name: str, number: int) -> Response:
    form = await _form(request)
    ref = f"{name}/{number}"
    await anyio.to_thread.run_sync(reg.set_description, ref, form.get("description", ""))
    return _back_to(ref)


@router.post("/models/{name}/versions/{number}/alias")
async def alias_form(request: Request, reg: Maintainer, name: str, number: int) -> Response:
    form = await _form(request)
    ref = f"{name}/{number}"
    alias = form.get("alias", "").strip()
    await anyio.to_thread.run_sync(lambda: reg.set_alias(name, alias, ref))
    return _back_to(ref)


@router.post("/models/{name}/versions/{number}/delete")
async def delete_form(request: Request, reg: Maintainer, name: str, number: int) -> Response:
    form = await _form(request)
    ref = f"{name}/{number}"
    await anyio.to_thread.run_sync(lambda: reg.delete_version(ref, reason=form.get("reason", "")))
    return RedirectResponse(f"/models/{urllib.parse.quote(name)}", status_code=303)


# -- signing in ---------------------------------------------------------------------------------


def _local(target: str) -> str:
    """Where to go after signing in: a path on this server, never another site."""
    if target.startswith("/") and not target.startswith(("//", "/\\")) and "\n" not in target:
        return target
    return "/"


@router.get("/login", response_class=HTMLResponse, dependencies=[Depends(allow(PUBLIC))])
def login_page(request: Request, next: Text = "/") -> Response:
    return render(request, "login.html", {}, next=_local(next), error=None)


@router.post("/login", dependencies=[Depends(allow(PUBLIC))])
async def login(request: Request) -> Response:
    """Check a token and open a session for it, kept in an HttpOnly, SameSite=Strict cookie
    (the session's own secret, not the token: see tokens.open_session)."""
    form = await _form(request)
    target = _local(form.get("next", "/"))
    state: AppState = request.app.state.modelreg
    secret = form.get("token", "").strip()
    if not state.settings.auth:
        return RedirectResponse(target, status_code=303)
    db = state.registry.db

    def open_session() -> str | None:
        # Checked in a read first: a wrong token never waits for, nor holds, the write lock.
        if db.read(lambda conn: tokens.authenticate(conn, secret)) is None:
            return None
        return db.write(lambda conn: tokens.open_session(conn, secret))

    session = await anyio.to_thread.run_sync(open_session) if secret else None
    if session is None:
        return render(
            request,
            "login.html",
            {},
            status=401,
            next=target,
            error="That token is not valid: it is unknown or was revoked.",
        )
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        session,
        max_age=tokens.SESSION_HOURS * 3600,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )
    return response


@router.post("/logout", dependencies=[Depends(allow(PUBLIC))])
def logout(request: Request) -> Response:
    """End the session on the server, and drop its cookie."""
    session = request.cookies.get(SESSION_COOKIE)
    db = request.app.state.modelreg.registry.db
    if session and db.read(lambda conn: tokens.session_token(conn, session)) is not None:
        db.write(lambda conn: tokens.close_session(conn, session))
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
    return response


def install(app: Any) -> None:
    """Add the web UI to the server's application."""
    app.include_router(twins)
    app.include_router(router)


__all__ = ["error_page", "install", "is_page", "render"]
