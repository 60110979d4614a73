"""Moving files to and from a server: only missing blobs go up, downloads resume after a
broken connection, run in parallel and are verified before anything is moved into place.

The server is real (uvicorn on loopback); the transport wrapper below only injects faults
(a connection cut mid-download) and counts what crosses the wire.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from live import LiveServer
from modelreg import IntegrityError, InvalidInput
from modelreg.local import LocalRegistry
from modelreg.remote import RemoteRegistry
from modelreg.server import create_app


class Wire(httpx.HTTPTransport):
    """Counts requests and uploaded bytes; cuts the next ``cut`` downloads after 100 KiB."""

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[tuple[str, str, str | None]] = []
        self.sent = 0
        self.put_lengths: list[str | None] = []  # a PUT's stated length (None if chunked)
        self.cut = 0
        self.in_flight = 0
        self.most_in_flight = 0
        self._lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            self.requests.append((request.method, request.url.path, request.headers.get("range")))
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            if request.method == "PUT" and "/blobs/" in request.url.path:
                self.put_lengths.append(request.headers.get("content-length"))
                body = request.read()
                self.sent += len(body)
            response = super().handle_request(request)
        finally:
            with self._lock:
                self.in_flight -= 1
        if request.method == "GET" and "/blobs/" in request.url.path and self.cut:
            self.cut -= 1
            response.stream = _CutAfter(response.stream, 100 * 1024)  # type: ignore[arg-type]
        return response


class _CutAfter(httpx.SyncByteStream):
    def __init__(self, stream: Any, limit: int) -> None:
        self._stream = stream
        self._limit = limit

    def __iter__(self) -> Iterator[bytes]:
        sent = 0
        for chunk in self._stream:
            if sent + len(chunk) > self._limit:
                yield chunk[: self._limit - sent]
                raise httpx.ReadError("connection reset by peer (injected)")
            sent += len(chunk)
            yield chunk

    def close(self) -> None:
        self._stream.close()


@pytest.fixture
def server(tmp_path: Path, live_server: LiveServer) -> Iterator[tuple[LocalRegistry, str]]:
    store = LocalRegistry(tmp_path / "server-reg")
    try:
        yield store, live_server.mount(create_app(store))
    finally:
        store.close()


@pytest.fixture
def wire() -> Wire:
    return Wire()


@pytest.fixture
def client(
    server: tuple[LocalRegistry, str], wire: Wire, workdir: Path
) -> Iterator[RemoteRegistry]:
    reg = RemoteRegistry(server[1], actor="tester", transport=wire)
    try:
        yield reg
    finally:
        reg.close()


def _files(folder: Path, count: int, size: int) -> Path:
    folder.mkdir()
    for i in range(count):
        (folder / f"part-{i}.bin").write_bytes(bytes([i]) * size)
    return folder


def test_only_missing_blobs_are_uploaded_and_identical_content_sends_nothing(
    tmp_path: Path, client: RemoteRegistry, wire: Wire
) -> None:
    model = _files(tmp_path / "model", 3, 300_000)
    client.register("churn", model)
    assert wire.sent == 3 * 300_000

    wire.sent = 0
    again = client.register("churn", model)
    assert again.number == 2
    assert wire.sent == 0
    assert not [r for r in wire.requests[-3:] if r[0] == "PUT"]

    (model / "part-0.bin").write_bytes(b"changed")
    wire.sent = 0
    client.register("churn", model)
    assert wire.sent == len(b"changed")


def test_a_file_is_uploaded_with_its_length_and_a_file_cut_short_meanwhile_is_refused(
    tmp_path: Path, server: tuple[LocalRegistry, str], client: RemoteRegistry, wire: Wire
) -> None:
    store = server[0]
    model = tmp_path / "model.bin"
    model.write_bytes(b"w" * 3_000_000)
    client.register("churn", model)
    assert wire.put_lengths == ["3000000"]  # a stated length, not chunked encoding

    digest = hashlib.sha256(b"x" * 2_500_000).hexdigest()
    model.write_bytes(b"x" * 2_500_000)

    def cut_short(sent: int) -> None:  # while the upload reads the file
        with open(model, "r+b") as f:
            f.truncate(1_500_000)

    with pytest.raises(IntegrityError, match=r"model\.bin.* changed while it was uploaded"):
        client._upload({digest: model}, progress=cut_short)
    assert not store.blobs.exists(digest)

    model.write_bytes(b"x" * 2_500_000 + b"appended since")  # grew after it was hashed
    with pytest.raises(InvalidInput, match="do not match digest"):
        client._upload({digest: model})
    assert not store.blobs.exists(digest)
    model.write_bytes(b"x" * 2_500_000)
    client._upload({digest: model})
    assert store.blobs.size(digest) == 2_500_000


def test_an_interrupted_download_resumes_where_it_stopped(
    tmp_path: Path, client: RemoteRegistry, wire: Wire
) -> None:
    data = bytes(range(256)) * 8192  # 2 MiB
    (tmp_path / "big.bin").write_bytes(data)
    client.register("churn", tmp_path / "big.bin")
    wire.cut = 2
    wire.requests.clear()

    out = client.pull("churn/1", tmp_path / "out")

    assert (out / "big.bin").read_bytes() == data
    ranges = [r[2] for r in wire.requests if r[0] == "GET" and "/blobs/" in r[1]]
    assert ranges[0] is None
    assert ranges[1:] == ["bytes=102400-", "bytes=204800-"]


def test_a_corrupt_blob_on_the_server_is_refused_and_nothing_is_written(
    tmp_path: Path, client: RemoteRegistry, server: tuple[LocalRegistry, str]
) -> None:
    (tmp_path / "m.bin").write_bytes(b"the real model")
    version = client.register("churn", tmp_path / "m.bin")
    blob = server[0].blobs.path(version.files[0].digest)  # type: ignore[attr-defined]
    blob.write_bytes(b"the evil model")

    with pytest.raises(IntegrityError, match="does not match its digest"):
        client.pull("churn/1", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_several_files_download_at_once(tmp_path: Path, client: RemoteRegistry, wire: Wire) -> None:
    model = _files(tmp_path / "model", 8, 2_000_000)
    client.register("churn", model)
    wire.most_in_flight = 0

    out = client.pull("churn/1", tmp_path / "out")

    assert sorted(p.name for p in out.glob("part-*")) == [f"part-{i}.bin" for i in range(8)]
    assert all((out / f"part-{i}.bin").read_bytes() == bytes([i]) * 2_000_000 for i in range(8))
    assert wire.most_in_flight > 1
