"""Server hardening found in review: each input here once reached the server unchecked.

A manifest's sizes, a trace target that could name a path, a Host header of another name on
a server without auth, and inputs that raised inside the server instead of being refused.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from modelreg import runs
from modelreg.errors import IntegrityError
from server_kit import CONTENT, DIGEST, make_server, registry_template

__all__ = ["make_server", "registry_template"]


def test_a_manifest_whose_size_differs_from_the_blob_is_refused(
    make_server: Callable[..., Any],
) -> None:
    """The server checks the size a manifest states against the stored blob."""
    import hashlib

    server = make_server()
    data = b"twelve bytes"
    digest = hashlib.sha256(data).hexdigest()
    assert server.http.put(f"/api/v1/blobs/{digest}", content=data).status_code == 201
    files = [{"path": "m.bin", "digest": digest, "size": 5}]
    answer = server.http.post("/api/v1/models/liar/versions", json={"files": files})
    assert answer.status_code == 400
    assert "holds 12 bytes, not the 5" in answer.json()["detail"]
    assert "liar" not in [m.name for m in server.registry.models()]


def test_without_auth_a_request_to_a_foreign_host_name_is_refused(
    make_server: Callable[..., Any],
) -> None:
    """A page that rebinds its DNS name to 127.0.0.1 reaches a server without auth with its
    own Host header: refused, so that it cannot act as admin."""
    server = make_server()
    for name in ("evil.example:8080", "127.attacker.example:8080", "127.0.0.1.nip.io"):
        headers = {"Host": name, "Origin": f"http://{name}"}
        answer = server.http.post(
            "/api/v1/tokens", json={"name": "x", "role": "admin"}, headers=headers
        )
        assert answer.status_code == 403, name
        assert "loopback" in answer.json()["detail"]
    assert server.registry.tokens() == []
    assert server.http.get("/api/v1/models", headers={"Host": "evil.example"}).status_code == 403
    assert server.http.get("/api/v1/models", headers={"Host": "localhost:1"}).status_code == 200


NOT_LOOPBACK = [
    "127.attacker.example",
    "127.0.0.1.nip.io",
    "127.0.0.1.evil.example",
    "127.0.0.1.evil.example:8080",
    "localhost.evil",
    "localhost.evil:8080",
    "evil.localhost",
    "localhost.",
    "127.0.0.1.",
    "127.0.0.1.:8080",
    "0x7f.1",
    "0x7f000001",
    "2130706433",
    "127.1",
    "0177.0.0.1",
    "127.000.000.001",
    "0.0.0.0",
    "10.0.0.1",
    "::1",  # an IPv6 literal in a Host header has brackets
    "[::1]x",
    "[::1]:",
    "[::1]:80x",
    "[::2]",
    "[::]",
    "[fe80::1%25lo]",
    "[::ffff:10.0.0.1]",
    "[0:0:0:0:0:0:0:1]evil",
    "localhost:8080:1",
    "localhost:http",
    "127.0.0.1:80@evil.example",
    "",
    " localhost",
]
LOOPBACK = [
    "localhost",
    "LOCALHOST:8080",
    "127.0.0.1",
    "127.0.0.1:8080",
    "127.1.2.3:1",
    "[::1]",
    "[::1]:8080",
    "[0:0:0:0:0:0:0:1]:8080",
    "[::ffff:127.0.0.1]:8080",
]


@pytest.mark.parametrize("host", NOT_LOOPBACK)
def test_only_localhost_and_loopback_literals_count_as_loopback(host: str) -> None:
    from modelreg.server.auth import is_loopback_host

    assert not is_loopback_host(host)


@pytest.mark.parametrize("host", LOOPBACK)
def test_loopback_host_headers_are_answered(host: str) -> None:
    from modelreg.server.auth import is_loopback_host

    assert is_loopback_host(host)


def test_a_near_miss_of_a_loopback_name_is_refused_over_http(
    make_server: Callable[..., Any],
) -> None:
    server = make_server()
    for host in ("127.0.0.1.evil.example", "localhost.evil", "0x7f.1", "localhost.", "[::2]"):
        answer = server.http.get("/api/v1/models", headers={"Host": host})
        assert answer.status_code == 403, host
    for host in ("[::1]:9", "127.0.0.5"):
        assert server.http.get("/api/v1/models", headers={"Host": host}).status_code == 200


def test_trace_never_reads_a_path_the_client_names(make_server: Callable[..., Any]) -> None:
    server = make_server()
    for target in ("/etc/passwd", str(server.root), "../registry.db"):
        answer = server.http.post("/api/v1/trace", json={"id": target})
        assert answer.status_code == 400
        detail = answer.json()["detail"]
        assert "is not a UUID" in detail or "at most 64 characters" in detail, detail


EARLIEST = "0001-01-01T00:00:00+05:00"  # before year 1 in UTC
DEMO_FILE = {"path": "m.bin", "digest": DIGEST, "size": len(CONTENT)}  # demo/1's, stored


def test_inputs_that_once_raised_inside_the_server_are_4xx(
    make_server: Callable[..., Any],
) -> None:
    server = make_server()
    answers = [
        server.http.put("/api/v1/models/demo/aliases/production/policy", json={"name": 1}),
        server.http.get(
            "/api/v1/versions/demo@production", params={"at": "0001-01-01T00:00:00+05:00"}
        ),
        server.http.post(
            "/api/v1/models/demo/versions",
            json={"files": [DEMO_FILE], "run_id": "00000000-0000-0000-0000-000000000000"},
        ),
    ]
    assert [a.status_code for a in answers] == [400, 400, 404], [a.text for a in answers]


def test_a_metric_batch_is_checked_point_by_point(make_server: Callable[..., Any]) -> None:
    server = make_server()
    run = server.http.post("/api/v1/runs", json={"name": "r"}).json()["id"]
    url = f"/api/v1/runs/{run}/metrics"
    bad = [
        (b"not json", "not JSON"),
        (b'{"points": [], "more": 1}', '{"points"'),
        (b'[["loss", 1.0, 0]]', '{"points"'),
        (b'{"points": [["loss", 1.0]]}', "(key, value, step)"),
        (b'{"points": [[["loss"], 1.0, 0]]}', "key must be a string"),
        (b'{"points": [["loss", NaN, 0]]}', "finite"),
        (b'{"points": [["loss", "x", 0]]}', "must be a number"),
        (b'{"points": [["loss", 1.0, true]]}', "non-negative integer"),
        (b'{"points": [["loss", 1.0, 2147483648]]}', "from 0 to 2147483647"),
        (b'{"points": [["bad key!", 1.0, 0]]}', "is invalid"),
    ]
    for body, words in bad:
        answer = server.http.post(url, content=body, headers={"Content-Type": "application/json"})
        assert answer.status_code == 400, (body, answer.text)
        assert words in answer.json()["detail"], (body, answer.text)
    events = server.registry.verify_audit().events
    assert server.http.post(url, json={"points": []}).status_code == 200  # nothing to record
    assert server.registry.verify_audit().events == events
    good = {"points": [["loss", 0.5, 0], ["loss", 1, 1], ["acc", 0.9, 2147483647]]}
    assert server.http.post(url, json=good).status_code == 200
    history = server.registry.db.read(lambda conn: runs.record(conn, run))["metric_history"]
    assert [(p["step"], p["value"]) for p in history["loss"]] == [(0, 0.5), (1, 1.0)]
    assert history["acc"][0]["step"] == 2147483647


def test_the_longest_query_the_schema_allows_is_answered_not_dropped(
    make_server: Callable[..., Any],
) -> None:
    """4,096 four-byte characters make a 48 KiB request line, past h11's default 16 KiB:
    uvicorn closed the connection without an answer."""
    server = make_server()
    wide = "\U00010000" * 4096
    answer = server.http.get("/api/v1/search", params={"filter": wide})
    assert answer.status_code == 400
    assert answer.json()["code"] in ("invalid_input", "search_syntax")
    one_more = server.http.get("/api/v1/search", params={"filter": wide + "x"})
    assert one_more.status_code == 400
    assert "at most 4096 characters" in one_more.json()["detail"]


def test_a_held_blob_a_client_is_about_to_name_outlives_a_gc_in_between(
    make_server: Callable[..., Any], tmp_path: Any
) -> None:
    """/blobs/missing marks the blobs it reports held as re-used: an unreferenced blob older
    than gc's grace period (here a deleted version's) is not collected before the client's
    create request names it."""
    import os
    import time

    server = make_server()
    server.registry.delete_version("demo/1", reason="superseded")
    blob = server.root / "blobs" / "sha256" / DIGEST[:2] / DIGEST
    hours_ago = time.time() - 7200
    os.utime(blob, (hours_ago, hours_ago))
    asked = server.http.post("/api/v1/blobs/missing", json={"digests": [DIGEST]})
    assert asked.json() == {"missing": []}
    assert server.registry.gc(grace_seconds=3600)["removed"] == []
    (tmp_path / "model.bin").write_bytes(CONTENT)
    files = [{"path": "model.bin", "digest": DIGEST, "size": len(CONTENT)}]
    created = server.http.post("/api/v1/models/demo/versions", json={"files": files})
    assert created.status_code == 201
    assert created.json()["ref"] == "demo/2"
    os.utime(blob, (hours_ago, hours_ago))
    assert server.registry.gc(grace_seconds=3600)["removed"] == []  # demo/2 holds it now


def test_a_blob_gc_takes_between_upload_and_create_is_sent_again(
    make_server: Callable[..., Any], tmp_path: Any, monkeypatch: Any
) -> None:
    """With no grace period, gc can collect a blob /blobs/missing reported held before the
    create request names it: the client uploads what the server lacks and creates again."""
    server = make_server()
    server.registry.delete_version("demo/1", reason="superseded")  # its blob is unreferenced
    monkeypatch.chdir(tmp_path)  # outside any git repository: no diff blob to send
    client = server.remote()
    upload = client._upload
    collected: list[str] = []

    def upload_then_collect(*args: Any, **kwargs: Any) -> None:
        upload(*args, **kwargs)
        if not collected:
            collected.extend(server.registry.gc(grace_seconds=0)["removed"])

    client._upload = upload_then_collect  # type: ignore[method-assign]
    (tmp_path / "model.bin").write_bytes(CONTENT)
    version = client.register("demo", tmp_path / "model.bin")
    assert collected == [DIGEST], "gc did not run between the upload and the create"
    assert version.ref == "demo/2"
    assert server.registry.fsck()["ok"]


def test_a_listing_paged_while_versions_come_and_go_skips_and_repeats_nothing(
    make_server: Callable[..., Any], tmp_path: Any, monkeypatch: Any
) -> None:
    """Each page after the first starts below the last number read (``before``), not at an
    offset that a new or deleted version would shift."""
    from modelreg import remote

    server = make_server()
    (tmp_path / "m.bin").write_bytes(b"m")
    for _ in range(4):
        server.registry.register("demo", tmp_path / "m.bin")  # demo/2 .. demo/5
    monkeypatch.setattr(remote, "PAGE", 2)
    client = server.remote()
    call = client._call
    pages: list[Any] = []

    def call_then_change(*args: Any, **kwargs: Any) -> Any:
        found = call(*args, **kwargs)
        pages.append(kwargs.get("params"))
        if len(pages) == 1:  # after demo/5 and demo/4 were read
            server.registry.register("demo", tmp_path / "m.bin")  # demo/6, above them
            server.registry.delete_version("demo/5", reason="withdrawn")  # one already read
        return found

    client._call = call_then_change  # type: ignore[method-assign]
    listed = [v.ref for v in client.versions("demo")]
    assert listed == ["demo/5", "demo/4", "demo/3", "demo/2", "demo/1"]
    assert [p.get("before") for p in pages] == [None, 4, 2]
    assert [m.name for m in client.models(limit=1)] == ["demo"]


def test_a_remote_signed_registration_is_created_signed_in_one_request(
    make_server: Callable[..., Any], tmp_path: Any, monkeypatch: Any
) -> None:
    """The client signs the document the server says the version will have, then creates it
    with the signature: never visible unsigned, and a signature that does not match the body
    creates nothing."""
    import base64

    from modelreg import signing

    monkeypatch.chdir(tmp_path)
    server = make_server()
    kid = signing.create_keys(tmp_path / "k.key", tmp_path / "k.pub")
    client = server.remote()
    call = client._call
    calls: list[tuple[str, str]] = []

    def recorded(method: str, path: str, **kwargs: Any) -> Any:
        calls.append((method, path))
        return call(method, path, **kwargs)

    client._call = recorded  # type: ignore[method-assign]
    (tmp_path / "m.bin").write_bytes(b"signed model")
    version = client.register("demo", tmp_path / "m.bin", sign=tmp_path / "k.key")
    assert [c for c in calls if "versions" in c[1] or "signature" in c[1]] == [
        ("POST", "/models/demo/versions/signing-document"),
        ("POST", "/models/demo/versions"),
    ]
    assert server.registry.verify(version.ref, public_key=tmp_path / "k.pub")["ok"] is True
    (event,) = server.registry.audit(entity=version.ref, action="version.create")
    assert event.after["signed_by"] == kid

    files = [{"path": "model.bin", "digest": DIGEST, "size": len(CONTENT)}]
    asked = server.http.post(
        "/api/v1/models/demo/versions/signing-document", json={"files": files, "params": {"a": 1}}
    )
    document = base64.b64decode(asked.json()["document"])
    key = signing.private_key(tmp_path / "k.key")
    body = {
        "files": files,
        "params": {"a": 2},  # not what was signed
        "public_key": signing.public_pem(key.public_key()),
        "signature": signing.sign(key, document),
    }
    before = [v.ref for v in server.registry.versions("demo")]
    refused = server.http.post("/api/v1/models/demo/versions", json=body)
    assert refused.status_code == 400
    assert "does not match" in refused.json()["detail"]
    half = server.http.post(
        "/api/v1/models/demo/versions", json={"files": files, "signature": body["signature"]}
    )
    assert half.status_code == 400
    assert "give both public_key and signature" in half.json()["detail"]
    assert [v.ref for v in server.registry.versions("demo")] == before

    def lying_server(method: str, path: str, **kwargs: Any) -> Any:
        found = call(method, path, **kwargs)
        if path.endswith("/signing-document"):
            forged = {"format": 1, "model": "demo", "files": [], "params": {"evil": "1"}}
            found = {"document": base64.b64encode(json.dumps(forged).encode()).decode()}
        return found

    client._call = lying_server  # type: ignore[method-assign]
    (tmp_path / "n.bin").write_bytes(b"another model")
    with pytest.raises(IntegrityError, match="does not hold this version's files: not signed"):
        client.register("demo", tmp_path / "n.bin", sign=tmp_path / "k.key")
    assert [v.ref for v in server.registry.versions("demo")] == before


def test_many_digests_are_checked_at_once_and_answered_in_order(
    make_server: Callable[..., Any],
) -> None:
    import hashlib

    server = make_server()
    asked = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(20)]
    asked.insert(10, DIGEST)  # the one the server holds
    found = server.http.post("/api/v1/blobs/missing", json={"digests": [*asked, asked[0]]})
    assert found.json() == {"missing": [d for d in asked if d != DIGEST]}


def test_an_upload_the_client_abandons_is_answered_as_bad_input_and_keeps_nothing(
    make_server: Callable[..., Any],
) -> None:
    """A client gone mid-body (Ctrl-C) is not a server fault: the ASGI app answers 400 and
    keeps nothing, rather than raising into the server's log."""
    import hashlib

    import anyio

    server = make_server()
    digest = hashlib.sha256(b"a body that never arrives whole").hexdigest()
    sent: list[dict[str, Any]] = []
    incoming = iter(
        [
            {"type": "http.request", "body": b"only the first part", "more_body": True},
            {"type": "http.disconnect"},
        ]
    )

    async def receive() -> dict[str, Any]:
        return next(incoming)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "PUT",
        "scheme": "http",
        "path": f"/api/v1/blobs/{digest}",
        "raw_path": f"/api/v1/blobs/{digest}".encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1"), (b"content-length", b"1000000")],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 80),
    }
    anyio.run(server.app, scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    assert start["status"] == 400
    assert "the client disconnected" in json.loads(body)["detail"]
    assert not server.registry.blobs.exists(digest)
    assert not list((server.registry.root / "blobs").rglob(".tmp-*"))
