"""What the server does with a request body before and while it reads it.

With auth on, the caller's token is checked against the route's role before a byte of the
body is read; every route that parses its body itself answers a body it cannot parse with a
400, however it is malformed.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import anyio
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelreg import metric_columns, runs
from modelreg.errors import InvalidInput
from server_kit import DIGEST, make_server, registry_template

__all__ = ["make_server", "registry_template"]

BIG = 8 * 1024 * 1024  # a body the server would take, if it read it


def asgi_call(app: Any, method: str, path: str, headers: dict[str, str]) -> tuple[int, int]:
    """(status, body messages read) of a request sent straight to the ASGI app, whose body
    is an endless stream of JSON-looking bytes."""
    reads = 0

    async def receive() -> dict[str, Any]:
        nonlocal reads
        reads += 1
        return {"type": "http.request", "body": b"[" * 65536, "more_body": True}

    status = 0

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1"), (b"content-length", str(BIG).encode()), *raw],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 80),
    }
    anyio.run(app, scope, receive, send)
    return status, reads


RUN = "00000000-0000-4000-8000-000000000000"
WRITES = [
    ("POST", f"/api/v1/runs/{RUN}/metrics"),
    ("POST", "/api/v1/models/demo/versions"),
    ("PUT", "/api/v1/tags"),
    ("PUT", f"/api/v1/blobs/{DIGEST}"),
    ("POST", "/api/v1/tokens"),
    ("POST", "/models/demo/versions/1/tags"),
]


@pytest.mark.parametrize(("method", "path"), WRITES)
def test_a_request_without_a_valid_token_is_refused_before_its_body_is_read(
    make_server: Callable[..., Any], method: str, path: str
) -> None:
    server = make_server(auth=True)
    reader = server.token("reader", "reader")
    for headers, status in [
        ({}, 401),
        ({"Authorization": "Bearer not-a-token"}, 401),
        ({"Cookie": "modelreg_session=not-a-session"}, 401),
        ({"Authorization": f"Bearer {reader}"}, 403),
    ]:
        assert asgi_call(server.app, method, path, headers) == (status, 0), headers


def test_with_a_valid_token_the_body_is_read(make_server: Callable[..., Any]) -> None:
    server = make_server(auth=True)
    writer = server.token("writer", "writer")
    status, reads = asgi_call(
        server.app, "POST", f"/api/v1/runs/{RUN}/metrics", {"Authorization": f"Bearer {writer}"}
    )
    assert reads > 0
    assert status in (400, 404, 413)


# -- bodies a route cannot parse --------------------------------------------------------------

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=False) | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=20,
)
BODIES = st.one_of(
    st.binary(max_size=512),
    st.integers(1, 200_000).map(lambda n: b"[" * n + b"]" * n),  # nested past any recursion limit
    st.integers(1, 200_000).map(lambda n: b'{"points":' + b"[" * n),  # nested and cut short
    st.integers(1, 50_000).map(lambda n: b'{"a":' * n + b"1" + b"}" * n),
    JSON_VALUES.map(lambda v: json.dumps({"points": v}).encode()),
    JSON_VALUES.map(lambda v: json.dumps(v).encode()),
    st.text(max_size=200).map(lambda t: t.encode("utf-8", "surrogatepass")),
    st.sampled_from([b"key=%ff%fe", b"key=a&" * 5000, b"=&=&%", b"\x00\x01", b"token=%00"]),
)
CONTENT_TYPES = st.sampled_from(
    ["application/json", "application/x-www-form-urlencoded", "text/plain", "", "a/b; c=",
     metric_columns.MEDIA_TYPE]
)  # fmt: skip


@pytest.fixture
def parsing_routes(make_server: Callable[..., Any]) -> tuple[Any, list[str]]:
    """A server without auth, and the paths of the routes that parse their body themselves
    (plus one that FastAPI parses, for comparison)."""
    server = make_server()
    run = server.http.post("/api/v1/runs", json={"name": "r"}).json()["id"]
    return server, [
        f"/api/v1/runs/{run}/metrics",
        "/models/demo/versions/1/tags",
        "/models/demo/versions/1/description",
        "/models/demo/versions/1/alias",
        "/models/demo/versions/1/delete",
        "/login",
        "/api/v1/models/demo/versions",
    ]


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(body=BODIES, content_type=CONTENT_TYPES, which=st.integers(0, 6))
def test_a_body_a_route_cannot_parse_is_a_4xx(
    parsing_routes: tuple[Any, list[str]], body: bytes, content_type: str, which: int
) -> None:
    server, paths = parsing_routes
    path = paths[which]
    headers = {"Content-Type": content_type} if content_type else {}
    answer = server.http.post(path, content=body, headers=headers)
    assert answer.status_code < 500, (path, body[:100], answer.text[:300])
    if answer.status_code >= 400:
        assert answer.headers["content-type"].startswith(("application/problem+json", "text/html"))


def test_json_nested_past_the_recursion_limit_is_refused_naming_it(
    make_server: Callable[..., Any],
) -> None:
    server = make_server()
    run = server.http.post("/api/v1/runs", json={"name": "r"}).json()["id"]
    deep = b'{"points": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    answer = server.http.post(f"/api/v1/runs/{run}/metrics", content=deep)
    assert answer.status_code == 400
    assert "nested too deeply" in answer.json()["detail"]


@pytest.mark.parametrize(
    ("point", "message"),
    [
        (["loss", 0.5, 0, "yesterday"], "metric 'loss': the time must be whole milliseconds"),
        (["loss", 0.5, 0, 1.5], "metric 'loss': the time must be whole milliseconds"),
        (["loss", 0.5, 0, -1], "metric 'loss': time must be milliseconds from 1970 to 9999"),
        (["loss", 0.5, 0, 2**60], "metric 'loss': time must be milliseconds from 1970 to 9999"),
        (["loss", 0.5, 0, 1, 2], "a metric point is (key, value, step) or (key, value, step, ms)"),
        (["loss", 0.5, True], "metric 'loss': step must be a non-negative integer"),
    ],
)
def test_a_point_with_a_bad_time_or_shape_is_refused_with_its_batch(
    make_server: Callable[..., Any], point: list[Any], message: str
) -> None:
    server = make_server()
    run = server.http.post("/api/v1/runs", json={"name": "r"}).json()["id"]
    good = ["loss", 0.25, 0, 1_765_000_000_000]
    answer = server.http.post(f"/api/v1/runs/{run}/metrics", json={"points": [good, point]})
    assert answer.status_code == 400
    assert message in answer.json()["detail"]
    assert server.registry.audit(entity=run, action="run.metric") == []
    # A good batch keeps each point's time.
    answer = server.http.post(f"/api/v1/runs/{run}/metrics", json={"points": [good]})
    assert answer.status_code == 200
    (stored,) = server.registry.db.read(lambda c: runs.metric_history(c, run, "loss"))
    assert stored.timestamp == "2025-12-06T05:46:40.000000Z"


def _columns(header: dict[str, Any], codes: list[int], values: list[float], steps: list[int],
             times: list[int]) -> bytes:  # fmt: skip
    return b"".join([json.dumps(header).encode(), b"\n", np.array(codes, "<u4").tobytes(),
                     np.array(values, "<f8").tobytes(), np.array(steps, "<i8").tobytes(),
                     np.array(times, "<i8").tobytes()])  # fmt: skip


T = 1_765_000_000_000
ONE = {"keys": ["loss"], "count": 1, "times": True}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (_columns(ONE, [0], [0.5], [0], [T])[:-1], "takes 28 bytes after its first line, not 27"),
        (b'{"keys": ["loss"]', "starts with one line of JSON"),
        (b"{keys}\n" + bytes(28), "is not JSON"),
        (_columns({**ONE, "count": 0}, [], [], [], []), "from 1 to 100000 metric points, not 0"),
        (_columns({"keys": ["loss"], "count": 1}, [0], [0.5], [0], [T]), '{"keys": [...]'),
        (_columns(ONE, [0], [float("nan")], [0], [T]), "'loss' must be a finite number, not nan"),
        (_columns(ONE, [0], [0.5], [-1], [T]), "metric 'loss': step must be from 0 to"),
        (_columns(ONE, [0], [0.5], [2**31], [T]), "metric 'loss': step must be from 0 to"),
        (_columns(ONE, [0], [0.5], [0], [-1]), "'loss': time must be milliseconds from 1970"),
        (_columns(ONE, [1], [0.5], [0], [T]), "a point's key index is past the 1 keys given"),
        (_columns({**ONE, "keys": ["a", "a"]}, [0], [0.5], [0], [T]), "each metric key once"),
        (_columns({**ONE, "keys": ["a b "]}, [0], [0.5], [0], [T]), "metric key 'a b ' is"),
        (_columns({**ONE, "keys": [7]}, [0], [0.5], [0], [T]), "metric key must be a string"),
        (_columns({**ONE, "keys": ["a", "b"]}, [0], [0.5], [0], [T]), "no point is 'b'"),
        (
            b"[" * 100_000 + b"\n",
            "first line of a application/vnd.modelreg.metric-points body is nested too deeply",
        ),
    ],
)
def test_a_batch_of_columns_that_is_wrong_is_refused_naming_what(
    make_server: Callable[..., Any], body: bytes, message: str
) -> None:
    """The SDK's binary batches: each fault named, and nothing of the batch stored."""
    server = make_server()
    run = server.http.post("/api/v1/runs", json={"name": "r"}).json()["id"]
    headers = {"Content-Type": metric_columns.MEDIA_TYPE}
    answer = server.http.post(f"/api/v1/runs/{run}/metrics", content=body, headers=headers)
    assert answer.status_code == 400
    assert message in answer.json()["detail"]
    assert server.registry.audit(entity=run, action="run.metric") == []
    good = _columns({**ONE, "keys": ["acc", "loss"], "count": 2}, [1, 0], [0.5, 0.9], [3, 4],
                    [T, T + 1])  # fmt: skip
    answer = server.http.post(f"/api/v1/runs/{run}/metrics", content=good, headers=headers)
    assert answer.status_code == 200
    (stored,) = server.registry.db.read(lambda c: runs.metric_history(c, run, "loss"))
    assert (stored.value, stored.step, stored.timestamp) == (0.5, 3, "2025-12-06T05:46:40.000000Z")


def test_the_client_sends_plain_points_as_columns_and_others_as_json(
    make_server: Callable[..., Any],
) -> None:
    """What a training loop logs goes as columns; a point the server must convert or refuse
    (a value given as text) goes as JSON; both land in one history, each batch audited."""
    from modelreg.remote import RemoteRegistry

    server = make_server()
    run = server.http.post("/api/v1/runs", json={"name": "r"}).json()["id"]
    sent: list[str] = []
    with RemoteRegistry(server.url) as client:
        client._http.event_hooks["request"].append(
            lambda request: sent.append(request.headers["content-type"])
        )
        client.record_run_metrics(run, [("loss", 0.5, 1, T), ("loss", 1, 2, T + 1)])
        client.record_run_metrics(run, [("loss", "0.25", 3)])
        with pytest.raises(InvalidInput, match="'loss' must be a finite number, not nan"):
            client.record_run_metrics(run, [("loss", float("nan"), 4, T)])
    assert sent == [metric_columns.MEDIA_TYPE, "application/json", metric_columns.MEDIA_TYPE]
    history = server.registry.db.read(lambda c: runs.metric_history(c, run, "loss"))
    assert [(p.step, p.value) for p in history] == [(1, 0.5), (2, 1.0), (3, 0.25)]
    assert len(server.registry.audit(entity=run, action="run.metric")) == 2
