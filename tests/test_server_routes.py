"""The server's routes: every one states who may call it, and the server-level ones (health,
metrics, downloads, listings) behave as operators and clients rely on.

The rules are read from the application itself (``app.routes``), so a route added without
``Depends(allow(ROLE))`` fails here by name; the behaviour is checked over HTTP against a real
uvicorn server (``live_server``).
"""

from __future__ import annotations

import hashlib
import re
import time
import urllib.parse
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts

from modelreg.values import MAX_PAGE
from server_kit import CONTENT, DIGEST, PROBLEM, Server, make_server, registry_template

__all__ = ["make_server", "registry_template"]  # fixtures

# FastAPI's own page: the schema, served to anyone, outside our routers.
FRAMEWORK_PAGES = {"/openapi.json"}
# The only routes of ours anyone may call, token or not: a load balancer and Prometheus call them.
PUBLIC_ROUTES = {
    ("GET", "/healthz"),
    ("GET", "/metrics"),
    # the web UI's sign-in page and its packaged scripts and styles
    ("GET", "/login"),
    ("POST", "/login"),
    ("POST", "/logout"),
    ("GET", "/static/{name:path}"),
    ("GET", "/docs"),  # the API's documentation, which reads /openapi.json
}
# What a caller without a token gets from each public route (with ``x`` for each parameter).
PUBLIC_ANSWERS = {
    ("GET", "/login"): 200,
    ("POST", "/login"): 401,  # the sign-in page again: no token was given
    ("POST", "/logout"): 303,
    ("GET", "/static/{name:path}"): 404,  # there is no static file "x"
}
# POSTs that change nothing: they carry a body only because their input is large or structured.
READ_ONLY_POSTS = {
    ("POST", "/api/v1/trace"),
    ("POST", "/api/v1/verify"),
    # where a pull's chunks are: their names go in a POST body, many thousands of them
    ("POST", "/api/v1/chunks/locate"),
    # MLflow's searches take their filter in a POST body
    ("POST", "/api/2.0/mlflow/experiments/search"),
    ("POST", "/api/2.0/mlflow/runs/search"),
    ("POST", "/api/2.0/mlflow/logged-models/search"),
    ("POST", "/api/2.0/mlflow/registered-models/get-latest-versions"),
}
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
SIZE = len(CONTENT)


def roles_of(dependant: Dependant) -> set[str]:
    """The roles of every ``allow(ROLE)`` dependency under ``dependant``, at any depth."""
    found = set()
    for sub in dependant.dependencies:
        role = getattr(sub.call, "role", None)
        if role is not None:
            found.add(role)
        found |= roles_of(sub)
    return found


def api_routes(app: FastAPI) -> Iterator[tuple[str, str, Dependant | None]]:
    """``(method, path, dependant)`` of every route, through included routers; the dependant
    is the effective one (the router's own dependencies included), None for a plain route."""
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        dependant = context.dependant if isinstance(route, APIRoute) else None
        for method in sorted(context.methods or {"*"}):
            yield method, context.path, dependant


def route_rules(app: FastAPI) -> dict[tuple[str, str], set[str]]:
    """``{(method, path): roles}`` for every API route of ``app``."""
    return {
        (method, path): roles_of(dependant)
        for method, path, dependant in api_routes(app)
        if dependant is not None
    }


@pytest.fixture
def app(make_server: Callable[..., Server]) -> FastAPI:
    """The application of a server with auth on."""
    app: FastAPI = make_server(auth=True).app
    return app


# -- permission rules, read from the application ------------------------------------------


def test_every_route_states_exactly_one_permission_rule(app: FastAPI) -> None:
    without_rule = []
    ambiguous = []
    for method, path, dependant in api_routes(app):
        if dependant is None:
            assert path in FRAMEWORK_PAGES, (
                f"{method} {path} is not an API route and not one of FastAPI's pages:"
                " give it Depends(allow(ROLE)) or list it as public here"
            )
            continue
        roles = roles_of(dependant)
        if not roles:
            without_rule.append(f"{method} {path}")
        elif len(roles) > 1:
            ambiguous.append(f"{method} {path}: {sorted(roles)}")
    assert without_rule == [], "routes without Depends(allow(ROLE))"
    assert ambiguous == [], "routes with more than one role"
    assert len(route_rules(app)) > 50  # the walk went into the included routers


def test_the_key_routes_need_the_documented_roles(app: FastAPI) -> None:
    rules = route_rules(app)
    assert rules[("PUT", "/api/v1/blobs/{digest}")] == {"writer"}
    assert rules[("POST", "/api/v1/blobs/missing")] == {"writer"}
    assert rules[("POST", "/api/v1/models/{name}/versions")] == {"writer"}
    assert rules[("PUT", "/api/v1/models/{name}/aliases/{alias}")] == {"maintainer"}
    assert rules[("DELETE", "/api/v1/models/{name}/aliases/{alias}")] == {"maintainer"}
    assert rules[("POST", "/api/v1/dataset/retire")] == {"maintainer"}
    assert rules[("DELETE", "/api/v1/versions/{ref:path}")] == {"maintainer"}
    assert rules[("POST", "/models/{name}/versions/{number}/delete")] == {"maintainer"}
    assert rules[("POST", "/api/v1/tokens")] == {"admin"}
    assert rules[("GET", "/api/v1/tokens")] == {"admin"}
    assert rules[("DELETE", "/api/v1/tokens/{name}")] == {"admin"}
    assert rules[("GET", "/api/v1/versions/{ref:path}")] == {"reader"}
    assert rules[("GET", "/api/v1/blobs/{digest}")] == {"reader"}


def test_only_health_metrics_sign_in_and_static_files_are_public(app: FastAPI) -> None:
    public = {key for key, roles in route_rules(app).items() if "public" in roles}
    assert public == PUBLIC_ROUTES


def test_every_route_that_changes_something_needs_a_writer_or_above(app: FastAPI) -> None:
    too_open = [
        f"{method} {path}: {sorted(roles)}"
        for (method, path), roles in route_rules(app).items()
        if method in UNSAFE and (method, path) not in READ_ONLY_POSTS and roles & {"reader"}
    ]
    assert too_open == []


def test_over_http_every_non_public_route_refuses_a_caller_without_a_token(
    make_server: Callable[..., Server],
) -> None:
    """The rules are enforced, not only declared: with auth on, each API route answers 401 and
    each web page sends the browser to sign in."""
    server = make_server(auth=True)
    answers = {}
    for method, path in route_rules(server.app):
        concrete = re.sub(r"\{[^}]+\}", "x", path)
        response = server.http.request(method, concrete, json={} if method in UNSAFE else None)
        answers[(method, path)] = (response.status_code, response.headers.get("location"))

    def expected(method: str, path: str) -> tuple[int, str | None]:
        if (method, path) in PUBLIC_ROUTES:
            location = "/login" if (method, path) == ("POST", "/logout") else None
            return PUBLIC_ANSWERS.get((method, path), 200), location
        if path.startswith("/api/") or method != "GET":
            return 401, None
        concrete = re.sub(r"\{[^}]+\}", "x", path)
        return 303, "/login?" + urllib.parse.urlencode({"next": concrete})

    wrong = {key: got for key, got in answers.items() if got != expected(*key)}
    assert wrong == {}


def test_a_method_a_route_does_not_have_is_a_405_naming_the_allowed_ones(
    make_server: Callable[..., Server],
) -> None:
    http = make_server(auth=True).http
    response = http.request("TRACE", "/api/v1/models")
    delete = http.delete("/healthz")
    assert response.status_code == 405
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["code"] == "method_not_allowed"
    assert response.headers["allow"] == "GET"  # required with a 405 (RFC 9110)
    assert delete.headers["allow"] == "GET"


# -- a populated server ------------------------------------------------------------------------


@pytest.fixture
def served(make_server: Callable[..., Server]) -> Server:
    """A server without auth over a registry holding ``demo/1`` (one file, CONTENT)."""
    return make_server()


# -- health and metrics -----------------------------------------------------------------------


def test_healthz_answers_ok(served: Server) -> None:
    response = served.http.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_health_and_metrics_need_no_token_when_auth_is_on(
    make_server: Callable[..., Server],
) -> None:
    """A load balancer's health check and a Prometheus scrape carry no token."""
    http = make_server(auth=True).http
    health = http.get("/healthz")
    metrics = http.get("/metrics")
    models = http.get("/api/v1/models")
    assert (health.status_code, health.json()) == (200, {"status": "ok"})
    assert metrics.status_code == 200
    assert "modelreg_http_requests_total" in metrics.text
    assert models.status_code == 401


def samples(text: str) -> dict[str, float]:
    """The samples of a Prometheus text exposition: ``{'name{labels}': value}``."""
    found = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            found[key] = float(value)
    return found


def test_metrics_count_requests_by_route_template_not_by_raw_path(served: Server) -> None:
    assert served.http.get("/api/v1/versions/demo/1").status_code == 200
    assert served.http.get("/api/v1/versions/demo/1").status_code == 200
    assert served.http.get("/api/v1/versions/demo/9").status_code == 404
    response = served.http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    found = samples(response.text)
    route = 'route="/api/v1/versions/{ref:path}"'
    assert found[f'modelreg_http_requests_total{{method="GET",{route},status="200"}}'] == 2
    assert found[f'modelreg_http_requests_total{{method="GET",{route},status="404"}}'] == 1
    assert (
        found[f'modelreg_http_request_duration_seconds_bucket{{method="GET",{route},le="+Inf"}}']
        == 3
    )
    assert found[f'modelreg_http_request_duration_seconds_count{{method="GET",{route}}}'] == 3
    assert "demo/1" not in response.text  # a raw path would grow the label set without bound


def test_metrics_count_the_bytes_of_uploads_and_downloads(served: Server) -> None:
    def counter(name: str) -> float:
        return samples(served.http.get("/metrics").text)[name]

    def grows_by(name: str, before: float, amount: int) -> bool:
        # A request is counted once its response is finished, just after the client has it.
        deadline = time.monotonic() + 5
        while counter(name) - before < amount and time.monotonic() < deadline:
            time.sleep(0.02)
        return counter(name) - before >= amount

    received = counter("modelreg_http_received_bytes_total")
    upload = b"u" * 200_000
    digest = hashlib.sha256(upload).hexdigest()
    assert served.http.put(f"/api/v1/blobs/{digest}", content=upload).status_code == 201
    assert grows_by("modelreg_http_received_bytes_total", received, len(upload))

    sent = counter("modelreg_http_sent_bytes_total")
    assert served.http.get(f"/api/v1/blobs/{DIGEST}").content == CONTENT
    assert grows_by("modelreg_http_sent_bytes_total", sent, len(CONTENT))


# -- downloads ---------------------------------------------------------------------------------


def test_a_download_is_an_attachment_the_browser_may_not_sniff(served: Server) -> None:
    response = served.http.get(f"/api/v1/blobs/{DIGEST}")
    assert response.status_code == 200
    assert response.content == CONTENT
    assert response.headers["content-disposition"].startswith("attachment")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["content-type"] == "application/octet-stream"
    assert response.headers["accept-ranges"] == "bytes"


@pytest.mark.parametrize("start", [1, 1000, SIZE - 1])
def test_an_open_range_resumes_a_download_from_its_first_byte(served: Server, start: int) -> None:
    size = len(CONTENT)
    response = served.http.get(f"/api/v1/blobs/{DIGEST}", headers={"Range": f"bytes={start}-"})
    assert response.status_code == 206
    assert response.content == CONTENT[start:]
    assert response.headers["content-range"] == f"bytes {start}-{size - 1}/{size}"
    assert response.headers["content-length"] == str(size - start)
    assert response.headers["content-disposition"].startswith("attachment")
    assert response.headers["x-content-type-options"] == "nosniff"


def test_a_range_to_the_last_byte_is_served(served: Server) -> None:
    size = len(CONTENT)
    response = served.http.get(f"/api/v1/blobs/{DIGEST}", headers={"Range": f"bytes=10-{size - 1}"})
    assert response.status_code == 206
    assert response.content == CONTENT[10:]


@pytest.mark.parametrize(
    "header",
    [
        "bytes=x-",
        "bytes=0-10",  # a range that stops before the end
        "bytes=5-1",
        "bytes=99999999999999999999-",
        "bytes=0-1,5-",
        "items=0-",
        "bytes=1 -",
    ],
)
def test_a_range_the_server_does_not_serve_is_a_400_not_a_500(served: Server, header: str) -> None:
    response = served.http.get(f"/api/v1/blobs/{DIGEST}", headers={"Range": header})
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["code"] == "invalid_input"


# -- listings ----------------------------------------------------------------------------------

LISTINGS = [
    "/api/v1/models",
    "/api/v1/models/demo/versions",
    "/api/v1/search",
    "/api/v1/audit",
    "/api/v1/webhook-deliveries",
]


@pytest.mark.parametrize("path", LISTINGS)
@pytest.mark.parametrize("limit", [MAX_PAGE + 1, 10**12, 0, -1, "ten"])
def test_a_listing_refuses_a_page_size_out_of_bounds(served: Server, path: str, limit: Any) -> None:
    response = served.http.get(path, params={"limit": limit})
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "invalid_input"


@pytest.mark.parametrize("path", LISTINGS)
def test_a_listing_accepts_the_largest_page_size(served: Server, path: str) -> None:
    assert served.http.get(path, params={"limit": MAX_PAGE}).status_code == 200


@pytest.mark.parametrize("path", ["/api/v1/models", "/api/v1/search"])
def test_a_listing_refuses_a_negative_offset(served: Server, path: str) -> None:
    response = served.http.get(path, params={"offset": -1})
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_input"


def test_a_listing_without_a_limit_answers_one_default_page(served: Server) -> None:
    entry = {"path": "model.bin", "digest": DIGEST, "size": len(CONTENT)}
    for i in range(101):
        created = served.http.post(f"/api/v1/models/m{i:03d}/versions", json={"files": [entry]})
        assert created.status_code == 201, created.text
    first = served.http.get("/api/v1/models").json()
    assert len(first) == 100
    rest = served.http.get("/api/v1/models", params={"offset": 100}).json()
    assert [m["name"] for m in first + rest] == sorted(["demo"] + [f"m{i:03d}" for i in range(101)])
    assert len(served.http.get("/api/v1/search").json()) == 100
    assert len(served.http.get("/api/v1/audit").json()) == 100


def test_show_json_and_the_api_give_one_json_form_of_a_version(
    served: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from modelreg.cli import main

    assert main(["--registry", str(served.root), "show", "demo/1", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown == served.http.get("/api/v1/versions/demo/1").json()
    light = served.http.get("/api/v1/versions/demo", params={"lineage": "false"})
    assert "lineage" not in light.json()
    assert light.json()["files"] == shown["files"]


def test_a_query_parameter_given_twice_is_refused_not_read_as_the_last(served: Server) -> None:
    """A schema-checked client sends a value once; two are a malformed request (only the
    comparison page takes several versions)."""
    twice = served.http.get("/api/v1/audit", params=[("actor", "a"), ("actor", "b")])
    assert twice.status_code == 400
    assert "'actor' is given more than once" in twice.json()["detail"]
    for path in ("/api/v1/versions/demo/1", "/api/v1/pages/models"):
        assert served.http.get(path, params=[("at", "x"), ("at", "y")]).status_code == 400
    many = served.http.get("/api/v1/pages/compare", params=[("v", "demo/1"), ("v", "nope/1")])
    assert "model 'nope' not found" in many.json()["detail"]  # both were read


def test_the_audit_check_over_http_starts_from_the_last_sound_event_or_walks_all(
    make_server: Callable[..., Server],
) -> None:
    server = make_server()
    client = server.remote()
    first = client.verify_audit()
    assert (first.ok, first.since) == (True, 0)
    assert client.verify_audit().since == first.events  # nothing new to walk
    assert client.verify_audit(full=True).since == 0
    refused = server.http.get("/api/v1/audit/verify", params={"full": "maybe"})
    assert refused.status_code == 400
    assert "full" in refused.text
