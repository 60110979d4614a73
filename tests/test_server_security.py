"""The server under attack: hostile paths and bodies, cross-site requests, and what its error
responses may reveal (tokens and roles are in test_server_roles.py).

Everything runs over real HTTP against uvicorn. A hostile request must be answered with a 4xx
(never a 5xx), change nothing in the store, and read or write nothing outside it: a canary file
beside the store must stay as it was and no file may appear next to it.
"""

from __future__ import annotations

import http.client
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import pytest
import sqlalchemy as sa

from modelreg import schema
from modelreg.errors import (
    Conflict,
    InvalidInput,
    ModelregError,
    NotAuthenticated,
    NotFound,
    PermissionDenied,
    PromotionRefused,
    SearchSyntaxError,
)
from server_kit import (
    CONTENT,
    DIGEST,
    OTHER,
    OTHER_DIGEST,
    PROBLEM,
    Server,
    make_server,
    registry_template,
    state,
)

__all__ = ["make_server", "registry_template"]  # fixtures

MakeServer = Callable[..., Server]
CANARY = b"the canary: nothing may read or change this file\n"


def raw(url: str, method: str, target: str, body: bytes = b"") -> Any:
    """Send ``target`` as the request line's path byte for byte: httpx (like browsers)
    removes ``..`` segments before sending, which would hide what an attacker sends."""
    conn = http.client.HTTPConnection(urlsplit(url).netloc, timeout=30)
    try:
        conn.request(method, target, body=body)
        response = conn.getresponse()
        return response.status, response.getheader("content-type"), response.read()
    finally:
        conn.close()


def is_problem(status: int, content_type: str | None, body: bytes) -> bool:
    if content_type != PROBLEM:
        return False
    data = json.loads(body)
    return data["status"] == status and {"type", "title", "detail", "code"} <= set(data)


class Surroundings:
    """The files around a store: a canary beside it and a snapshot of everything else in the
    test's directory, to prove a request touched nothing outside the store."""

    def __init__(self, tmp_path: Path, store: Path) -> None:
        self.tmp_path = tmp_path
        self.store = store
        self.canary = tmp_path / "canary.txt"
        self.canary.write_bytes(CANARY)
        self.before = self.snapshot()

    def snapshot(self) -> dict[str, tuple[int, int]]:
        return {
            str(p.relative_to(self.tmp_path)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in self.tmp_path.rglob("*")
            if self.store not in p.parents and p != self.store
        }

    def untouched(self) -> bool:
        return self.canary.read_bytes() == CANARY and self.snapshot() == self.before


# -- hostile paths ----------------------------------------------------------------------------


@pytest.fixture
def exposed(make_server: MakeServer, tmp_path: Path) -> tuple[Server, Surroundings]:
    """A server without auth (every caller an admin) and the files around its store."""
    server = make_server(auth=False)
    return server, Surroundings(tmp_path, server.root)


UP = "../" * 6  # from the blob directory's shards to well above the test's directory


def hostile_segments(canary: Path) -> list[str]:
    """Path segments, as they appear on the request line, that aim at ``canary``."""
    absolute = str(canary)
    return [
        UP + "canary.txt",
        UP.replace("/", "%2f") + "canary.txt",
        UP.replace("..", "%2e%2e").replace("/", "%2f") + "canary.txt",
        UP.replace("..", "%252e%252e").replace("/", "%252f") + "canary.txt",  # double-encoded
        UP.replace("/", "\\") + "canary.txt",
        UP.replace("/", "%5c") + "canary.txt",
        absolute,  # the request line then holds "//tmp/..."
        quote(absolute, safe=""),
        quote(absolute, safe="") + "%00",
        "canary.txt%00" + "a" * 50,
        "%00",
    ]


def assert_refused_without_trace(
    server: Server,
    around: Surroundings,
    before: dict[str, Any],
    answer: tuple[Any, ...],
    request: str,
) -> None:
    status, content_type, body = answer
    assert 400 <= status < 500, (request, status, body)
    if content_type == "text/html; charset=utf-8":
        # A client resolved the dots and what is left is a path of the web UI (outside
        # /api/), which answers with an error page.
        assert not request.split(" ")[-1].startswith("/api/"), request
        assert b'role="alert"' in body, request
    else:
        assert is_problem(status, content_type, body), (request, body)
    assert CANARY.strip() not in body, request
    assert around.untouched(), request
    assert state(server) == before, request


@pytest.mark.parametrize("method", ["GET", "PUT"])
def test_a_blob_digest_that_is_a_path_is_refused(
    exposed: tuple[Server, Surroundings], method: str
) -> None:
    server, around = exposed
    before = state(server)
    for segment in hostile_segments(around.canary):
        target = "/api/v1/blobs/" + segment
        answer = raw(server.url, method, target, body=CANARY if method == "PUT" else b"")
        assert_refused_without_trace(server, around, before, answer, f"{method} {target}")


@pytest.mark.parametrize("method", ["GET", "PUT"])
def test_a_blob_digest_that_is_a_path_is_refused_through_httpx(
    exposed: tuple[Server, Surroundings], method: str
) -> None:
    """The same segments through an HTTP client: percent-escapes are sent as they are."""
    server, around = exposed
    before = state(server)
    for segment in hostile_segments(around.canary):
        request = httpx.Request(method, server.url + "/api/v1/blobs/" + segment, content=CANARY)
        response = server.http.send(request)
        answer = (response.status_code, response.headers.get("content-type"), response.content)
        sent = f"{method} {request.url.raw_path.decode()}"
        assert_refused_without_trace(server, around, before, answer, sent)


def test_a_version_ref_that_is_a_path_is_refused(exposed: tuple[Server, Surroundings]) -> None:
    server, around = exposed
    before = state(server)
    for segment in [*hostile_segments(around.canary), "demo/" + UP + "canary.txt"]:
        target = "/api/v1/versions/" + segment
        answer = raw(server.url, "GET", target)
        assert_refused_without_trace(server, around, before, answer, f"GET {target}")


@pytest.mark.parametrize(
    "path",
    [
        "../canary.txt",
        UP + "canary.txt",
        "model/../../canary.txt",
        "..\\canary.txt",
        "model\\..\\..\\canary.txt",
        "/tmp/canary.txt",
        "C:/canary.txt",
        "model.bin\x00.txt",
        "./model.bin",
        "",
    ],
)
def test_a_manifest_file_path_that_escapes_the_version_is_refused(
    exposed: tuple[Server, Surroundings], path: str
) -> None:
    server, around = exposed
    before = state(server)
    entry = {"path": path, "digest": DIGEST, "size": len(CONTENT)}
    response = server.http.post("/api/v1/models/demo/versions", json={"files": [entry]})
    answer = (response.status_code, response.headers["content-type"], response.content)
    assert_refused_without_trace(server, around, before, answer, f"file path {path!r}")
    assert response.json()["code"] == "invalid_input"


def test_percent_escapes_in_a_manifest_path_are_a_name_not_a_path(
    exposed: tuple[Server, Surroundings], tmp_path: Path
) -> None:
    """JSON is not URL-decoded: ``%2e%2e%2f`` in a file path is nine characters of a name, not
    ``../``, so the file lands inside the pulled folder under that name."""
    server, around = exposed
    names = ["%2e%2e%2fcanary.txt", "%252e%252e%252fcanary.txt", "~/canary.txt"]
    files = [{"path": name, "digest": DIGEST, "size": len(CONTENT)} for name in names]
    response = server.http.post("/api/v1/models/demo/versions", json={"files": files})
    assert response.status_code == 201, response.text
    dest = tmp_path / "pulled"
    server.remote().pull("demo/2", dest)
    assert sorted(str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file()) == sorted(
        [*names, "modelreg.json"]
    )
    assert around.canary.read_bytes() == CANARY


# -- hostile bodies ---------------------------------------------------------------------------


def test_an_upload_that_does_not_match_its_digest_is_refused_and_not_kept(
    exposed: tuple[Server, Surroundings],
) -> None:
    server, around = exposed
    before = state(server)
    response = server.http.put(f"/api/v1/blobs/{OTHER_DIGEST}", content=OTHER * 10_000)
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_input"
    assert OTHER_DIGEST in response.json()["detail"]
    assert not server.registry.blobs.exists(OTHER_DIGEST)
    assert server.blob_files() == before["blobs"]  # no temporary file left behind
    assert state(server) == before
    assert around.untouched()


def test_a_manifest_naming_a_blob_the_server_lacks_is_refused_naming_it(
    exposed: tuple[Server, Surroundings],
) -> None:
    server, _ = exposed
    before = state(server)
    files = [
        {"path": "model.bin", "digest": DIGEST, "size": len(CONTENT)},
        {"path": "weights.bin", "digest": OTHER_DIGEST, "size": 10},
    ]
    response = server.http.post("/api/v1/models/demo/versions", json={"files": files})
    assert response.status_code == 400
    assert OTHER_DIGEST in response.json()["detail"]
    assert state(server) == before


def test_a_ten_megabyte_tag_value_is_refused(exposed: tuple[Server, Surroundings]) -> None:
    server, _ = exposed
    before = state(server)
    huge = "x" * (10 * 1024 * 1024)
    on_a_version = server.http.put(
        "/api/v1/tags", json={"ref": "demo/1", "key": "k", "value": huge}
    )
    entry = {"path": "model.bin", "digest": DIGEST, "size": len(CONTENT)}
    at_creation = server.http.post(
        "/api/v1/models/demo/versions", json={"files": [entry], "tags": {"k": huge}}
    )
    for response in (on_a_version, at_creation):
        assert response.status_code in (400, 413), response.text[:200]
        assert response.headers["content-type"] == PROBLEM
    assert state(server) == before


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/api/v1/gc", {"grace_seconds": False}),  # coerced, it would be 0 seconds
        ("POST", "/api/v1/gc", {"grace_seconds": "0"}),
        ("POST", "/api/v1/gc", {"dry_run": "no"}),
        ("PUT", "/api/v1/models/demo/aliases/production", {"ref": "demo/1", "force": 1}),
        ("PUT", "/api/v1/models/demo/aliases/production", {"ref": 1}),
        ("POST", "/api/v1/tokens", {"name": "ops", "role": True}),
    ],
)
def test_a_json_value_of_the_wrong_type_is_refused_not_coerced(
    exposed: tuple[Server, Surroundings], method: str, path: str, body: Any
) -> None:
    """The embedded registry refuses these; over HTTP they must not turn into another value
    (``false`` into a gc without grace period, which deletes blobs being uploaded)."""
    server, _ = exposed
    fresh, _ = server.registry.blobs.put(io.BytesIO(OTHER))  # uploaded, not yet in a version
    before = state(server)
    response = server.http.request(method, path, json=body)
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "invalid_input"
    assert server.registry.blobs.exists(fresh)
    assert state(server) == before


SQL = "x' OR 1=1 --"


@pytest.mark.parametrize(
    ("filter", "order_by"),
    [
        (SQL, None),
        ("", SQL),
        ("name = 'demo'; DROP TABLE versions; --", None),
        ("", "number; DROP TABLE versions"),
        ("metrics.accuracy > 0 UNION SELECT * FROM api_tokens", None),
    ],
)
def test_sql_in_a_search_is_a_syntax_error(
    exposed: tuple[Server, Surroundings], filter: str, order_by: str | None
) -> None:
    server, _ = exposed
    before = state(server)
    params = {"filter": filter, **({"order_by": order_by} if order_by else {})}
    response = server.http.get("/api/v1/search", params=params)
    assert response.status_code == 400
    assert response.json()["code"] == "search_syntax"
    assert state(server) == before


@pytest.mark.parametrize(
    "filter",
    [
        "name = 'x'' OR 1=1 --'",
        "tags.team = 'core'' OR ''1''=''1'",
        "params.x = '1''; DROP TABLE versions; --'",
        "description like '%'' OR 1=1 --%'",
    ],
)
def test_sql_quoted_inside_a_search_string_is_only_text(
    exposed: tuple[Server, Surroundings], filter: str
) -> None:
    server, _ = exposed
    response = server.http.get("/api/v1/search", params={"filter": filter})
    assert response.status_code == 200, response.text
    assert response.json() == []
    count = server.registry.db.read(
        lambda conn: conn.execute(sa.select(sa.func.count()).select_from(schema.versions)).scalar()
    )
    assert count == 1


# -- requests from another site -----------------------------------------------------------------

CHANGES = [
    ("PUT", f"/api/v1/blobs/{OTHER_DIGEST}", None),
    ("POST", "/api/v1/models/demo/versions", {"files": []}),
    ("PUT", "/api/v1/tags", {"ref": "demo/1", "key": "stage", "value": "pwned"}),
    ("DELETE", "/api/v1/tags?ref=demo/1&key=team", None),
    ("PUT", "/api/v1/models/demo/aliases/production", {"ref": "demo/1"}),
    ("POST", "/api/v1/tokens", {"name": "evil", "role": "admin"}),
]


@pytest.mark.parametrize(("method", "path", "body"), CHANGES)
@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "http://evil.example"},
        {"Origin": "null"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"},
    ],
)
def test_a_change_sent_from_another_site_is_refused(
    exposed: tuple[Server, Surroundings],
    method: str,
    path: str,
    body: Any,
    headers: dict[str, str],
) -> None:
    server, _ = exposed
    before = state(server)
    content = OTHER if body is None else json.dumps(body).encode()
    response = server.http.request(method, path, content=content, headers=headers)
    assert response.status_code == 403
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["code"] == "permission_denied"
    assert state(server) == before


def test_a_change_from_the_servers_own_origin_is_accepted(
    exposed: tuple[Server, Surroundings],
) -> None:
    server, _ = exposed
    headers = {"Origin": server.url, "Sec-Fetch-Site": "same-origin"}
    body = {"ref": "demo/1", "key": "stage", "value": "candidate"}
    response = server.http.put("/api/v1/tags", json=body, headers=headers)
    assert response.status_code == 200, response.text
    assert server.registry.get("demo/1").tags["stage"] == "candidate"


def test_a_cross_site_read_is_served_without_opening_it_to_the_other_site(
    exposed: tuple[Server, Surroundings],
) -> None:
    server, _ = exposed
    response = server.http.get("/api/v1/versions/demo/1", headers={"Origin": "http://evil.example"})
    assert response.status_code == 200
    assert "access-control-allow-origin" not in response.headers


# -- oversized and malformed bodies -------------------------------------------------------------

OVER_LIMIT = 17 * 1024 * 1024


def big_json() -> bytes:
    return json.dumps({"name": "run", "params": {"blob": "x" * OVER_LIMIT}}).encode()


def test_a_json_body_over_the_limit_is_refused_with_413(
    exposed: tuple[Server, Surroundings],
) -> None:
    server, _ = exposed
    before = state(server)
    response = server.http.post(
        "/api/v1/runs", content=big_json(), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json()["code"] == "too_large"
    assert state(server) == before


def test_a_streamed_json_body_over_the_limit_is_refused_with_413(
    exposed: tuple[Server, Surroundings],
) -> None:
    """Without a Content-Length (chunked), the limit is found while reading."""
    server, _ = exposed
    before = state(server)
    data = big_json()

    def chunks() -> Any:
        for start in range(0, len(data), 1024 * 1024):
            yield data[start : start + 1024 * 1024]

    response = server.http.post(
        "/api/v1/runs", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413, response.text
    assert response.json()["code"] == "too_large"
    assert state(server) == before


@pytest.mark.parametrize(
    "body",
    [b"{not json", b'{"name": "run"', b"\xff\xfe", b'{"name": "run"}}', b"[1, 2", b"NaNa"],
)
def test_malformed_json_is_a_400(exposed: tuple[Server, Surroundings], body: bytes) -> None:
    server, _ = exposed
    before = state(server)
    response = server.http.post(
        "/api/v1/runs", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_input"
    assert state(server) == before


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", ""],
)
def test_a_body_that_is_not_declared_json_is_refused(
    exposed: tuple[Server, Surroundings], content_type: str
) -> None:
    server, _ = exposed
    before = state(server)
    body = json.dumps({"ref": "demo/1", "key": "stage", "value": "x"}).encode()
    response = server.http.put("/api/v1/tags", content=body, headers={"Content-Type": content_type})
    assert 400 <= response.status_code < 500
    assert response.headers["content-type"] == PROBLEM
    assert state(server) == before


@pytest.mark.parametrize("body", [b"[]", b'"text"', b"42", b"null", b'{"ref": "demo/1"}'])
def test_json_of_the_wrong_shape_is_a_400(
    exposed: tuple[Server, Surroundings], body: bytes
) -> None:
    server, _ = exposed
    response = server.http.put(
        "/api/v1/tags", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_input"


# -- what error responses may reveal -----------------------------------------------------------

DB_URL = "postgresql://modelreg:secret-password@db.internal:5432/registry"
STORE_DIR = "private-store-4f2a9c"  # a directory name that must never reach a client


@pytest.fixture
def discreet(make_server: MakeServer, tmp_path: Path) -> Server:
    return make_server(where=tmp_path / STORE_DIR / "reg")


def assert_reveals_nothing(server: Server, response: httpx.Response) -> None:
    text = response.text
    for secret in (STORE_DIR, str(server.root), "secret", "postgresql://", "registry.db"):
        assert secret not in text, f"{response.request.method} {response.request.url}: {text}"


ERRORS = [
    ("GET", "/api/v1/versions/nothing/1", None, 404),
    ("GET", f"/api/v1/blobs/{OTHER_DIGEST}", None, 404),
    ("GET", "/api/v1/versions/..%2f..%2fetc", None, 400),
    ("GET", "/api/v1/search?filter=metrics.", None, 400),
    ("POST", "/api/v1/models/demo/versions", {"files": [{"path": "m", "digest": "0" * 64}]}, 400),
    ("PUT", f"/api/v1/blobs/{OTHER_DIGEST}", b"wrong bytes", 400),
    ("POST", "/api/v1/runs", b"{not json", 400),
    ("GET", "/api/v1/no-such-route", None, 404),
    ("DELETE", "/healthz", None, 405),
    ("POST", "/api/v1/tokens", {"name": "ops", "role": "owner"}, 400),
]


def send(server: Server, method: str, path: str, body: Any) -> httpx.Response:
    if isinstance(body, bytes):
        return server.http.request(
            method, path, content=body, headers={"Content-Type": "application/json"}
        )
    return server.http.request(method, path, json=body)


@pytest.mark.parametrize(("method", "path", "body", "status"), ERRORS)
def test_an_error_response_reveals_no_path_or_credential(
    discreet: Server, method: str, path: str, body: Any, status: int
) -> None:
    response = send(discreet, method, path, body)
    assert response.status_code == status, response.text
    assert_reveals_nothing(discreet, response)


@pytest.mark.parametrize(
    "fault",
    [
        RuntimeError(f"could not connect to {DB_URL}"),
        sa.exc.OperationalError("SELECT 1", {}, Exception(f"connection to {DB_URL} refused")),
        OSError(13, "Permission denied", f"/srv/{STORE_DIR}/registry.db"),
    ],
    ids=["runtime", "database", "filesystem"],
)
def test_an_unexpected_failure_is_a_500_problem_without_its_message(
    discreet: Server, monkeypatch: pytest.MonkeyPatch, fault: Exception
) -> None:
    def fail(*args: Any, **kwargs: Any) -> Any:
        raise fault

    monkeypatch.setattr(discreet.registry.db, "read", fail)
    monkeypatch.setattr(discreet.registry.blobs, "open", fail)
    responses = [
        discreet.http.get("/api/v1/models"),
        discreet.http.get("/api/v1/versions/demo/1"),
        discreet.http.get("/api/v1/search", params={"filter": "name = 'demo'"}),
        discreet.http.get(f"/api/v1/blobs/{DIGEST}"),
    ]
    for response in responses:
        assert response.status_code == 500, response.text
        assert response.headers["content-type"] == PROBLEM
        problem = response.json()
        assert problem["code"] == "error"
        assert problem["status"] == 500
        assert_reveals_nothing(discreet, response)
    # The health check says the database does not answer, and no more.
    health = discreet.http.get("/healthz")
    if isinstance(fault, sa.exc.DBAPIError):
        assert (health.status_code, health.json()["code"]) == (503, "unavailable")
    else:
        assert (health.status_code, health.json()["code"]) == (500, "error")
    assert_reveals_nothing(discreet, health)


def test_a_client_carries_on_after_a_500(discreet: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    """The connection of a failed request is closed by the server; the client must know it,
    or its next request on that connection is reset."""
    models = discreet.registry.models
    failures = [RuntimeError(f"could not connect to {DB_URL}")]

    def fail_once(**options: Any) -> Any:
        if failures:
            raise failures.pop()
        return models(**options)

    monkeypatch.setattr(discreet.registry, "models", fail_once)
    remote = discreet.remote()
    with pytest.raises(ModelregError, match="internal server error") as failed:
        remote.models()
    assert type(failed.value) is ModelregError
    for _ in range(5):
        assert remote.get("demo/1").ref == "demo/1"
    assert [m.name for m in remote.models()] == ["demo"]


# -- problem details, and the client's reading of them --------------------------------------------


@pytest.mark.parametrize(("method", "path", "body", "status"), ERRORS)
def test_every_error_is_a_problem_document(
    exposed: tuple[Server, Surroundings], method: str, path: str, body: Any, status: int
) -> None:
    server, _ = exposed
    response = send(server, method, path, body)
    assert response.status_code == status
    assert response.headers["content-type"] == PROBLEM
    problem = response.json()
    assert {"type", "title", "status", "detail", "code"} <= set(problem)
    assert problem["status"] == status
    assert problem["type"].endswith("/" + problem["code"])
    assert isinstance(problem["detail"], str)
    assert problem["detail"]


def test_the_client_raises_what_the_registry_raises(
    make_server: MakeServer,
) -> None:
    """The same call, in process and over HTTP, fails with the same class and message."""
    server = make_server(auth=False)
    local, remote = server.registry, server.remote()
    local.set_policy("demo", "production", approvals=1)
    local.create_token("taken", role="reader")

    calls: list[tuple[type[ModelregError], Callable[[Any], Any]]] = [
        (NotFound, lambda reg: reg.get("demo/7")),
        (NotFound, lambda reg: reg.revoke_token("nobody")),
        (Conflict, lambda reg: reg.create_token("taken")),
        (InvalidInput, lambda reg: reg.set_tag("demo/1", "k", "x" * 10_000)),
        (SearchSyntaxError, lambda reg: reg.search("metrics.accuracy >")),
        (PromotionRefused, lambda reg: reg.set_alias("demo", "production", "demo/1")),
    ]
    for cls, call in calls:
        with pytest.raises(cls) as in_process:
            call(local)
        with pytest.raises(cls) as over_http:
            call(remote)
        assert type(over_http.value) is type(in_process.value)
        # The client names the server it asked when something is not found there.
        where = f" in the registry at {remote.url}" if cls is NotFound else ""
        assert str(over_http.value) == str(in_process.value) + where
        if isinstance(in_process.value, SearchSyntaxError):
            assert isinstance(over_http.value, SearchSyntaxError)
            assert over_http.value.column == in_process.value.column > 0
            assert over_http.value.text == in_process.value.text
        if isinstance(in_process.value, PromotionRefused):
            assert isinstance(over_http.value, PromotionRefused)
            assert over_http.value.checks == in_process.value.checks
            assert [c["name"] for c in over_http.value.checks if not c["ok"]] == ["approvals"]


def test_the_client_raises_permission_errors_by_class(make_server: MakeServer) -> None:
    server = make_server(auth=True)
    with pytest.raises(NotAuthenticated, match="needs a token"):
        server.remote().get("demo/1")
    with pytest.raises(NotAuthenticated, match="not valid"):
        server.remote(token="mr_" + "A" * 43).get("demo/1")
    reader = server.remote(token=server.token("dashboards", "reader"))
    with pytest.raises(PermissionDenied) as denied:
        reader.set_tag("demo/1", "stage", "x")
    assert type(denied.value) is PermissionDenied
