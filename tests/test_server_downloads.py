"""Downloads: the bytes a plain HTTP client gets are the bytes of the digest, or no complete
response at all; the Range forms that are served, and the 416 for one past the end.

Each test runs on SQLite and a blob directory, and on PostgreSQL and S3 (SeaweedFS).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging

import httpx
import pytest

from server_kit import Server, any_server, make_server, overwrite_blob, registry_template

__all__ = ["any_server", "make_server", "registry_template"]

BIG = bytes(range(256)) * 10_000  # 2.5 MB: three chunks of the server's 1 MiB reads
BIG_DIGEST = hashlib.sha256(BIG).hexdigest()


def fetch(server: Server, path: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    """(status, body) of a GET; raises httpx.RemoteProtocolError when the server ends the
    response before the length it announced."""
    with server.http.stream("GET", path, headers=headers) as answer:
        return answer.status_code, answer.read()


def flipped(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1 :]


def mismatches(server: Server) -> int:
    text = server.http.get("/metrics").text
    line = next(x for x in text.splitlines() if x.startswith("modelreg_blob_digest_mismatches"))
    return int(line.split()[-1])


@pytest.mark.parametrize("at", [0, 1_500_000, len(BIG) - 1])
def test_a_blob_that_fails_its_digest_is_never_served_whole(
    any_server: Server, at: int, caplog: pytest.LogCaptureFixture
) -> None:
    """The first request is cut before its last bytes (they were on their way before the end
    was read); from then on this server checks the blob whole first, and answers why."""
    server = any_server
    server.registry.blobs.put(io.BytesIO(BIG), digest=BIG_DIGEST)
    overwrite_blob(server.registry, BIG_DIGEST, flipped(BIG, at))
    url = f"/api/v1/blobs/{BIG_DIGEST}"
    with (
        caplog.at_level(logging.ERROR, logger="modelreg.server"),
        pytest.raises(httpx.RemoteProtocolError),
    ):
        fetch(server, url)
    assert not [r for r in caplog.records if r.name == "uvicorn.error"]  # no traceback
    for headers in (None, {"Range": "bytes=100-"}):
        status, body = fetch(server, url, headers)
        assert status == 500
        assert json.loads(body)["code"] == "integrity_error"
        assert "does not match its digest" in json.loads(body)["detail"]
    assert mismatches(server) == 3
    logged = [r.getMessage() for r in caplog.records if r.name == "modelreg.server"]
    assert len(logged) == 3
    assert all(BIG_DIGEST in m and "does not match its digest" in m for m in logged)


def test_a_repaired_blob_is_served_again(any_server: Server) -> None:
    server = any_server
    server.registry.blobs.put(io.BytesIO(BIG), digest=BIG_DIGEST)
    overwrite_blob(server.registry, BIG_DIGEST, flipped(BIG, 7))
    with pytest.raises(httpx.RemoteProtocolError):
        fetch(server, f"/api/v1/blobs/{BIG_DIGEST}")
    overwrite_blob(server.registry, BIG_DIGEST, BIG)
    assert fetch(server, f"/api/v1/blobs/{BIG_DIGEST}") == (200, BIG)


def test_a_small_damaged_file_is_an_integrity_error_before_a_byte_is_sent(
    any_server: Server,
) -> None:
    """A blob of one read (1 MiB or less) is checked whole first, from the API and from the
    web UI's download link alike."""
    server = any_server
    digest = server.registry.get("demo/1").files[0].digest
    original = server.http.get(f"/api/v1/blobs/{digest}").content
    overwrite_blob(server.registry, digest, flipped(original, 5))
    answer = server.http.get(f"/api/v1/blobs/{digest}")
    assert answer.status_code == 500
    assert answer.json()["code"] == "integrity_error"
    page = server.http.get("/models/demo/versions/1/files/model.bin")
    assert page.status_code == 500
    assert page.headers["content-type"].startswith("text/html")
    assert "does not match its digest" in page.text
    assert mismatches(server) == 2


def test_an_intact_blob_is_served_whole_and_by_each_range_form(any_server: Server) -> None:
    server = any_server
    server.registry.blobs.put(io.BytesIO(BIG), digest=BIG_DIGEST)
    url = f"/api/v1/blobs/{BIG_DIGEST}"
    size = len(BIG)
    assert fetch(server, url) == (200, BIG)
    for header, start in [
        ("bytes=0-", 0),
        ("bytes=1048576-", 1048576),
        (f"bytes={size - 1}-", size - 1),
        (f"bytes=7-{size - 1}", 7),
        (f"bytes=7-{size + 1000}", 7),  # a last byte past the end means the end
        ("bytes=-10", size - 10),
        (f"bytes=-{size * 2}", 0),
    ]:
        with server.http.stream("GET", url, headers={"Range": header}) as answer:
            body = answer.read()
            assert answer.status_code == 206, header
            assert answer.headers["content-range"] == f"bytes {start}-{size - 1}/{size}"
        assert body == BIG[start:], header
    assert mismatches(server) == 0


@pytest.mark.parametrize("header", ["bytes=2560000-", "bytes=99999999999-", "bytes=-0"])
def test_a_range_past_the_end_is_416_with_the_length(any_server: Server, header: str) -> None:
    server = any_server
    server.registry.blobs.put(io.BytesIO(BIG), digest=BIG_DIGEST)
    answer = server.http.get(f"/api/v1/blobs/{BIG_DIGEST}", headers={"Range": header})
    assert answer.status_code == 416
    assert answer.headers["content-range"] == f"bytes */{len(BIG)}"
    assert answer.json()["code"] == "range_not_satisfiable"


@pytest.mark.parametrize(
    ("header", "words"),
    [
        ("bytes=0-10", "run to the end"),
        ("bytes=5-1", "ends before it starts"),
        ("bytes=0-1,5-", "only one range"),
        ("bytes=-", "only one range"),
        ("items=0-", "only one range"),
        ("bytes=x-", "only one range"),
    ],
)
def test_a_range_form_that_is_not_served_is_refused_naming_the_forms(
    make_server: Server, header: str, words: str
) -> None:
    server = make_server()
    digest = server.registry.get("demo/1").files[0].digest
    answer = server.http.get(f"/api/v1/blobs/{digest}", headers={"Range": header})
    assert answer.status_code == 400
    assert words in answer.json()["detail"]


def test_an_empty_blob_has_no_range_to_serve(make_server: Server) -> None:
    server = make_server()
    empty = hashlib.sha256(b"").hexdigest()
    server.registry.blobs.put(io.BytesIO(b""), digest=empty)
    assert fetch(server, f"/api/v1/blobs/{empty}") == (200, b"")
    for header in ("bytes=-5", "bytes=0-"):
        answer = server.http.get(f"/api/v1/blobs/{empty}", headers={"Range": header})
        assert answer.status_code == 416, header
        assert answer.headers["content-range"] == "bytes */0"


@pytest.mark.parametrize("grown", [1, 2 * 1024 * 1024])
def test_a_blob_that_changed_size_since_it_was_measured_is_never_served_whole(
    make_server: Server, monkeypatch: pytest.MonkeyPatch, grown: int
) -> None:
    """The bytes past the length announced are not sent, and count as damage: the client
    never gets a complete response whose bytes were not checked."""
    server = make_server()
    server.registry.blobs.put(io.BytesIO(BIG), digest=BIG_DIGEST)
    store = server.registry.blobs
    real_size = store.size

    def measured_then_grown(digest: str) -> int:
        size = real_size(digest)
        if digest == BIG_DIGEST:
            overwrite_blob(server.registry, digest, BIG + b"x" * grown)
        return size

    monkeypatch.setattr(store, "size", measured_then_grown)
    with pytest.raises(httpx.RemoteProtocolError):
        fetch(server, f"/api/v1/blobs/{BIG_DIGEST}")
