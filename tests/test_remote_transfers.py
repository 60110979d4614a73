"""Moving files to and from a server: only missing blobs go up, downloads resume after a
broken connection, run in parallel and are verified before anything is moved into place.

The server is real (uvicorn on loopback); the transport wrapper below only injects faults
(a connection cut mid-download) and counts what crosses the wire.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import secrets
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from live import LiveServer
from modelreg import IntegrityError, InvalidInput
from modelreg.chunk_cache import ChunkCache
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
        self.lose = 0  # pack reads answered 404 next, as after gc rewrote the pack
        self.in_flight = 0
        self.most_in_flight = 0
        self._lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            self.requests.append((request.method, request.url.path, request.headers.get("range")))
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            if request.method == "PUT" and any(
                part in request.url.path for part in ("/blobs/", "/files/", "/packs/")
            ):
                self.put_lengths.append(request.headers.get("content-length"))
                body = request.read()
                self.sent += len(body)
            if "/packs/" in request.url.path and request.method == "GET" and self.lose:
                self.lose -= 1
                return httpx.Response(404, json={"detail": "pack moved (injected)"})
            response = super().handle_request(request)
        finally:
            with self._lock:
                self.in_flight -= 1
        path = request.url.path
        if request.method == "GET" and ("/blobs/" in path or "/packs/" in path) and self.cut:
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


# Requests of the tests' own: httpx's default timeout is 5 s, which a server that answers in
# milliseconds can pass on a machine busy with the rest of the suite.
http = SimpleNamespace(
    get=functools.partial(httpx.get, timeout=60),
    put=functools.partial(httpx.put, timeout=60),
    post=functools.partial(httpx.post, timeout=60),
)


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
    blob = server[0].blobs.inner.path(version.files[0].digest)  # type: ignore[attr-defined]
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


# -- large files, moved as chunks ------------------------------------------------------------

LARGE = (8 << 20) + (4 << 20)  # chunked from 8 MiB


def bf16(count: int, seed: int = 0) -> bytes:
    """bf16 weights (normal, std 0.02) as bytes."""
    import numpy as np

    rng = np.random.default_rng(seed)
    values = rng.standard_normal(count, dtype=np.float32) * np.float32(0.02)
    return ((values.view(np.uint32) >> 16).astype(np.uint16)).tobytes()


def nudged(data: bytes, seed: int = 1) -> bytes:
    """Every bf16 value moved by a relative 0.5%, as a full fine-tune does."""
    import numpy as np

    rng = np.random.default_rng(seed)
    wide = (np.frombuffer(data, dtype=np.uint16).astype(np.uint32) << 16).view(np.float32)
    moved = wide * (1 + rng.standard_normal(wide.size, dtype=np.float32) * np.float32(5e-3))
    return ((moved.view(np.uint32) >> 16).astype(np.uint16)).tobytes()


def chunked_row(server: LocalRegistry, digest: str) -> Any:
    import sqlalchemy as sa

    from modelreg import schema

    f = schema.chunked_files.c
    query = sa.select(f.size, f.base).where(f.digest == digest)
    return server.db.read(lambda conn: conn.execute(query).first())


def test_a_large_file_goes_up_as_chunks_and_comes_back_whole(
    tmp_path: Path, client: RemoteRegistry, server: tuple[LocalRegistry, str], wire: Wire
) -> None:
    data = bf16(LARGE // 2)
    (tmp_path / "m.bin").write_bytes(data)
    version = client.register("llm", {"model.safetensors": tmp_path / "m.bin"})
    digest = version.files[0].digest
    assert chunked_row(server[0], digest).size == LARGE
    puts = [path for method, path, _ in wire.requests if method == "PUT"]
    assert puts[-1] == f"/api/v1/files/{digest}"  # naming the chunks the packs before held
    assert len(puts) > 1
    assert all(path.startswith("/api/v1/packs/uploads/") for path in puts[:-1])
    assert wire.sent < LARGE  # compressed on the way
    client.pull("llm/1", tmp_path / "out")
    assert (tmp_path / "out" / "model.safetensors").read_bytes() == data
    # and a plain HTTP client reads it, from an offset too, with its sha256 as ETag
    got = http.get(f"{server[1]}/api/v1/blobs/{digest}", headers={"Range": "bytes=1000-"})
    assert got.status_code == 206
    assert got.content == data[1000:]
    assert got.headers["etag"] == f'"{digest}"'


def test_a_re_saved_file_sends_only_the_chunks_around_its_edit(
    tmp_path: Path, client: RemoteRegistry, wire: Wire
) -> None:
    data = bf16(LARGE // 2)
    (tmp_path / "a.bin").write_bytes(data)
    client.register("llm", {"model.safetensors": tmp_path / "a.bin"})
    (tmp_path / "b.bin").write_bytes(b'{"__metadata__":{"epoch":"2"}}' + data)
    wire.sent = 0
    client.register("llm", {"model.safetensors": tmp_path / "b.bin"})
    assert 0 < wire.sent < LARGE * 0.02
    client.pull("llm/2", tmp_path / "out")
    pulled = (tmp_path / "out" / "model.safetensors").read_bytes()
    assert pulled == (tmp_path / "b.bin").read_bytes()


def test_a_fine_tune_registered_with_its_parent_is_kept_as_a_delta_on_the_server(
    tmp_path: Path, client: RemoteRegistry, server: tuple[LocalRegistry, str]
) -> None:
    data = bf16(LARGE // 2)
    tuned = nudged(data)
    (tmp_path / "a.bin").write_bytes(data)
    (tmp_path / "b.bin").write_bytes(tuned)
    parent = client.register("llm", {"model.safetensors": tmp_path / "a.bin"})
    child = client.register("llm", {"model.safetensors": tmp_path / "b.bin"}, parents=["llm/1"])
    assert chunked_row(server[0], child.files[0].digest).base == parent.files[0].digest
    client.pull("llm/2", tmp_path / "out")
    assert (tmp_path / "out" / "model.safetensors").read_bytes() == tuned


def _reads_pack(method: str, path: str) -> bool:
    return method == "GET" and path.startswith("/api/v1/packs/")


def _frame(data: bytes, offset: int = 0, name: bytes | None = None) -> bytes:
    from modelreg import chunking

    name = name or chunking.chunk_id(data)
    return chunking.frame(name, offset, len(data), chunking.RAW, data)


def _ref(data: bytes, offset: int = 0) -> bytes:
    from modelreg import chunking

    return chunking.frame(chunking.chunk_id(data), offset, len(data), chunking.REF, b"")


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (_frame(b"a" * 1000) + _frame(b"b" * 1000, 1000, b"\x01" * 32), "does not match its hash"),
        (_frame(b"a" * 1000)[:-10], "cut short"),
        (  # a size field of 1 GiB
            _frame(b"a" * 10)[:40] + (1 << 30).to_bytes(4, "little") + _frame(b"a" * 10)[44:],
            "a chunk holds 1 to",
        ),
        (_frame(b"a" * 1000) + _frame(b"b" * 1000, 5), "starts at byte 5, not 1000"),
        (_ref(b"never stored"), "which the store does not hold"),
        (_frame(b"a" * 1000), "make a file of sha256"),
    ],
    ids=["wrong-name", "cut-short", "too-large", "out-of-order", "unknown-ref", "wrong-digest"],
)
def test_a_chunked_upload_that_is_not_its_file_is_refused_and_records_nothing(
    server: tuple[LocalRegistry, str], body: bytes, words: str
) -> None:
    digest = "e" * 64
    refused = http.put(f"{server[1]}/api/v1/files/{digest}", content=body)
    # 409 for a reference to a chunk not held: it may have been collected meanwhile, and
    # the client sends the file again
    assert refused.status_code == (409 if body.endswith(_ref(b"never stored")) else 400)
    assert words in refused.json()["detail"]
    assert chunked_row(server[0], digest) is None


def test_a_file_sent_as_chunks_and_references_is_recorded_once_it_hashes_right(
    server: tuple[LocalRegistry, str],
) -> None:
    first, second = b"x" * 5000, b"y" * 7000
    digest = hashlib.sha256(first + second).hexdigest()
    url = f"{server[1]}/api/v1/files/{digest}"
    assert http.put(url, content=_frame(first) + _frame(second, 5000)).status_code == 201
    assert http.get(f"{server[1]}/api/v1/blobs/{digest}").content == first + second
    # the same bytes again, this time the held chunks by name only
    again = hashlib.sha256(second + first).hexdigest()
    answer = http.put(f"{server[1]}/api/v1/files/{again}", content=_ref(second) + _ref(first, 7000))
    assert answer.status_code == 201
    assert answer.json()["stored"] == 0
    assert http.get(f"{server[1]}/api/v1/blobs/{again}").content == second + first
    missing = http.post(f"{server[1]}/api/v1/chunks/missing", json={"chunks": ["xyz"]})
    assert missing.status_code == 400
    assert "chunks[0]" in missing.json()["detail"]


def test_a_pull_fetches_only_the_chunks_the_cache_lacks(
    tmp_path: Path,
    client: RemoteRegistry,
    wire: Wire,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A fine-tune pulled after its base fetches its own new chunks and nothing of the base;
    a damaged cached chunk is noticed and fetched again."""
    monkeypatch.setenv("MODELREG_CACHE", str(tmp_path / "cache"))
    data = bf16(LARGE // 2)
    edited = data[: LARGE // 2] + bf16(LARGE // 8, seed=3) + data[LARGE // 2 + LARGE // 4 :]
    tuned = nudged(data)
    for name, content in (("a", data), ("b", edited), ("c", tuned)):
        (tmp_path / f"{name}.bin").write_bytes(content)
    client.register("llm", {"model.safetensors": tmp_path / "a.bin"})
    client.register("llm", {"model.safetensors": tmp_path / "b.bin"}, parents=["llm/1"])
    client.register("llm", {"model.safetensors": tmp_path / "c.bin"}, parents=["llm/1"])

    def fetched() -> int:
        return sum(1 for method, path, _ in wire.requests if _reads_pack(method, path))

    def received(ref: str) -> bytes:
        out = tmp_path / f"{ref.replace('/', '-')}-{secrets.token_hex(4)}"
        client.pull(ref, out)
        return (out / "model.safetensors").read_bytes()

    assert received("llm/1") == data
    first = fetched()
    assert first >= 1
    cached = sorted((tmp_path / "cache").rglob("*"))
    assert received("llm/2") == edited  # a quarter of it differs
    assert 0 < len(sorted((tmp_path / "cache").rglob("*"))) - len(cached) < len(cached) / 2
    assert received("llm/3") == tuned  # deltas against llm/1's file, which is cached
    # a cached chunk of llm/1 flipped on disk: the pull fails, the damaged chunk goes, and a
    # second pull fetches that one again
    first_chunk = client._call("GET", f"/files/{client.get('llm/1').files[0].digest}")
    name = base64.b64decode(first_chunk["pieces"])[:32]
    with sqlite3.connect(tmp_path / "cache" / "index.sqlite") as index:
        segment, offset = index.execute(
            "SELECT segment, offset FROM chunks WHERE name = ?", [name]
        ).fetchone()
    victim = tmp_path / "cache" / "segments" / segment
    damaged = bytearray(victim.read_bytes())
    damaged[offset] ^= 1
    victim.write_bytes(bytes(damaged))
    before = fetched()
    with pytest.raises(IntegrityError, match="damaged"):
        received("llm/1")
    assert ChunkCache(tmp_path / "cache").missing([name]) == [name]  # forgotten
    assert received("llm/1") == data
    assert fetched() == before + 1


def test_a_held_chunk_named_with_another_size_is_refused(
    server: tuple[LocalRegistry, str],
) -> None:
    """A reference must state the size the chunk holds: a file made of held chunks cut at
    other sizes would hash right and then read back wrong."""
    first, second = b"p" * 5000, b"q" * 7000
    held = hashlib.sha256(first + second).hexdigest()
    assert http.put(
        f"{server[1]}/api/v1/files/{held}", content=_frame(first) + _frame(second, 5000)
    ).is_success
    from modelreg import chunking

    shrunk = chunking.frame(chunking.chunk_id(first), 0, 4999, chunking.REF, b"")
    refused = http.put(f"{server[1]}/api/v1/files/{'d' * 64}", content=shrunk)
    assert refused.status_code == 400
    assert "as 4999 bytes: it holds 5000" in refused.json()["detail"]


def test_chunks_are_located_and_read_from_their_pack_by_range(
    server: tuple[LocalRegistry, str],
) -> None:
    """``POST /chunks/locate`` says where each chunk lies; ``GET /packs/{name}`` serves
    those bytes (a Range of them too), which a client checks against the chunk's name."""
    from modelreg import chunking

    first, second = b"p" * 5000, bytes(range(256)) * 30
    held = hashlib.sha256(first + second).hexdigest()
    put = http.put(f"{server[1]}/api/v1/files/{held}", content=_frame(first) + _frame(second, 5000))
    assert put.is_success
    names = [chunking.chunk_id(second).hex(), chunking.chunk_id(first).hex()]
    located = http.post(f"{server[1]}/api/v1/chunks/locate", json={"chunks": names}).json()
    assert [c[0] for c in located["chunks"]] == names  # in the order asked
    for name, pack, offset, length, size, codec in located["chunks"]:
        url = server[1] + located["packs"][pack]
        got = http.get(url, headers={"Range": f"bytes={offset}-{offset + length - 1}"})
        assert got.status_code == 206
        data = chunking.decompress(codec, got.content, size)
        assert chunking.chunk_id(data).hex() == name
    absent = http.post(f"{server[1]}/api/v1/chunks/locate", json={"chunks": ["ab" * 32]})
    assert absent.status_code == 404
    assert "ab" * 32 in absent.json()["detail"]
    bad = http.post(f"{server[1]}/api/v1/chunks/locate", json={"chunks": ["xyz"]})
    assert bad.status_code == 400
    assert "chunks[0]" in bad.json()["detail"]
    assert http.get(f"{server[1]}/api/v1/packs/..%2Fetc").status_code in (400, 404)
    assert http.get(f"{server[1]}/api/v1/packs/nothex").status_code == 400
    assert http.get(f"{server[1]}/api/v1/packs/{'0' * 32}").status_code == 404


def test_a_pull_survives_a_broken_pack_read_and_refuses_a_damaged_pack(
    tmp_path: Path,
    client: RemoteRegistry,
    server: tuple[LocalRegistry, str],
    wire: Wire,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MODELREG_CACHE", str(tmp_path / "cache"))
    data = bf16(LARGE // 2)
    (tmp_path / "m.bin").write_bytes(data)
    client.register("llm", {"model.safetensors": tmp_path / "m.bin"})
    wire.cut = 1  # the first range read breaks off after 100 KiB: it is read again
    client.pull("llm/1", tmp_path / "out")
    assert (tmp_path / "out" / "model.safetensors").read_bytes() == data
    ranges = [r for method, path, r in wire.requests if _reads_pack(method, path)]
    assert wire.cut == 0  # the cut happened
    # the range that broke was asked for again from a later byte: the chunks that had
    # arrived were kept
    starts = [int(r.split("=")[1].split("-")[0]) for r in ranges]
    ends = [r.split("-")[1] for r in ranges]
    assert len(ends) > len(set(ends))
    assert len(set(starts)) == len(starts)
    # a byte flipped in the server's pack: the chunk there fails its name and nothing is
    # written
    import shutil

    shutil.rmtree(tmp_path / "cache")
    pack = next((server[0].blobs.inner.root / "packs").rglob("*"))
    while pack.is_dir():
        pack = next(pack.iterdir())
    damaged = bytearray(pack.read_bytes())
    damaged[len(damaged) // 2] ^= 1
    pack.write_bytes(bytes(damaged))
    with pytest.raises(IntegrityError, match="chunk"):
        client.pull("llm/1", tmp_path / "again")
    assert not (tmp_path / "again" / "model.safetensors").exists()


def test_a_pack_gone_from_where_it_was_located_is_located_again(
    tmp_path: Path, client: RemoteRegistry, wire: Wire, monkeypatch: pytest.MonkeyPatch
) -> None:
    from modelreg import remote_blobs

    monkeypatch.setenv("MODELREG_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(remote_blobs, "RANGE_BYTES", 1 << 20)  # many ranges, read 4 at once
    data = bf16(LARGE // 2)
    (tmp_path / "m.bin").write_bytes(data)
    client.register("llm", {"model.safetensors": tmp_path / "m.bin"})
    wire.lose = 1
    wire.most_in_flight = 0
    client.pull("llm/1", tmp_path / "out")
    assert (tmp_path / "out" / "model.safetensors").read_bytes() == data
    paths = [path for _, path, _ in wire.requests]
    assert paths.count("/api/v1/chunks/locate") == 2
    assert sum(1 for method, p, _ in wire.requests if _reads_pack(method, p)) > 4
    assert wire.most_in_flight > 1


def test_a_server_on_s3_has_chunks_sent_and_read_straight_from_the_bucket(
    tmp_path: Path,
    seaweedfs: Any,
    live_server: LiveServer,
    wire: Wire,
    workdir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The server hands out presigned URLs: the client PUTs packs of new chunks to the
    bucket, and reads ranges of packs from it; the server checks what arrived, and no
    chunk's bytes pass through it either way."""
    from modelreg import remote_blobs
    from modelreg.s3 import S3BlobStore

    monkeypatch.setenv("MODELREG_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(remote_blobs, "PACK_BYTES", 4 << 20)  # several packs, sent at once
    blobs = S3BlobStore(seaweedfs.new_bucket(), "reg", client=seaweedfs.client())
    data = bf16(LARGE // 2)
    (tmp_path / "m.bin").write_bytes(data)
    with LocalRegistry(db_url=f"sqlite:///{tmp_path / 'reg.db'}", blobs=blobs) as store:
        url = live_server.mount(create_app(store))
        with RemoteRegistry(url, actor="tester", transport=wire) as reg:
            version = reg.register("llm", {"model.safetensors": tmp_path / "m.bin"})
            reg.pull("llm/1", tmp_path / "out")
        assert store.fsck()["ok"]
        packs = len(list(blobs.packs()))
        assert packs >= 2
        assert store.blobs.pack_bytes() < LARGE  # compressed by the client
    assert (tmp_path / "out" / "model.safetensors").read_bytes() == data
    paths = [path for _, path, _ in wire.requests]
    assert paths.count("/api/v1/packs/uploads") == packs
    assert sum(1 for p in paths if p.startswith("/api/v1/packs/uploads/")) == packs
    assert wire.sent < LARGE // 100  # the file's PUT names chunks only
    assert chunked_row(store, version.files[0].digest).size == LARGE
    assert any(path.endswith("/chunks/locate") for path in paths)
    assert not [p for p in paths if p.startswith("/api/v1/packs/") and "uploads" not in p]


def test_an_uploaded_pack_that_is_not_what_it_lists_is_refused_and_not_kept(
    tmp_path: Path, seaweedfs: Any, live_server: LiveServer
) -> None:
    from modelreg import chunking
    from modelreg.s3 import S3BlobStore

    blobs = S3BlobStore(seaweedfs.new_bucket(), "reg", client=seaweedfs.client())
    good, other = b"g" * 20_000, b"o" * 20_000
    with LocalRegistry(db_url=f"sqlite:///{tmp_path / 'reg.db'}", blobs=blobs) as store:
        url = live_server.mount(create_app(store)) + "/api/v1/packs/uploads"

        def upload(content: bytes, chunks: list[list[Any]]) -> httpx.Response:
            started = http.post(url).json()
            assert http.put(started["url"], content=content).is_success
            return http.post(f"{url}/{started['id']}", json={"chunks": chunks})

        listed = [[chunking.chunk_id(good).hex(), 0, len(good), len(good), chunking.RAW]]
        refused = upload(other, listed)  # other bytes than the chunk named
        assert refused.status_code == 400
        assert "does not match its hash" in refused.json()["detail"]
        longer = upload(good + b"x", listed)
        assert longer.status_code == 400
        assert "holds 20001 bytes, not the 20000 listed" in longer.json()["detail"]
        gapped = [[listed[0][0], 5, len(good), len(good), chunking.RAW]]
        bad = http.post(f"{url}/{http.post(url).json()['id']}", json={"chunks": gapped})
        assert bad.status_code == 400
        assert "chunks[0] starts at byte 5, not 0" in bad.json()["detail"]
        for wrong in ([listed[0][0], 0, 1], ["zz", 0, 1, 1, 0], [listed[0][0], 0, -1, 1, 0]):
            bad = http.post(f"{url}/{'1' * 32}", json={"chunks": [listed[0], wrong]})
            assert bad.status_code == 400
            assert "chunks[1] is not [name, offset, length, size, codec]" in bad.json()["detail"]
        assert store.blobs.missing_chunks([chunking.chunk_id(good)])  # nothing was taken in
        started = http.post(url).json()
        assert http.put(started["url"], content=good).is_success
        taken = http.post(f"{url}/{started['id']}", json={"chunks": listed})
        assert taken.status_code == 200
        assert not store.blobs.missing_chunks([chunking.chunk_id(good)])
        # the URL still works for a while: what it stores now is never read
        assert http.put(started["url"], content=other).is_success
        (located,) = store.blobs.locations([chunking.chunk_id(good)]).values()
        assert store.blobs.read_pack(located[0], 0, len(good)) == good
        assert store.blobs.pack_bytes() == len(good)  # the refused packs left no row
        # a pack in a bucket is read a range at a time through the server
        pack_url = url.replace("/uploads", f"/{located[0]}")
        assert http.get(pack_url, headers={"Range": "bytes=5-9"}).content == good[5:10]
        tail = http.get(pack_url, headers={"Range": "bytes=19990-99999"})
        assert tail.status_code == 206
        assert tail.headers["content-range"] == "bytes 19990-19999/20000"
        assert tail.content == good[19990:]
        beyond = http.get(pack_url, headers={"Range": "bytes=20000-20001"})
        assert beyond.status_code == 416
        whole = http.get(pack_url)
        assert whole.status_code == 400
        assert "a range at a time" in whole.json()["detail"]
        again = http.post(f"{url}/{'0' * 32}", json={"chunks": listed})
        assert again.status_code == 404
        through = http.put(f"{url}/{http.post(url).json()['id']}", content=good)
        assert through.status_code == 409
        assert "straight to this server's bucket" in through.json()["detail"]
        assert http.post(f"{url}/nothex", json={"chunks": listed}).status_code == 400
        store.gc(grace_seconds=0)  # the packs refused, rows without chunks, go
        assert len(list(blobs.packs())) == 0  # and the one taken in, which no file uses


def test_a_server_on_a_folder_takes_packs_through_itself(
    server: tuple[LocalRegistry, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from modelreg import chunk_store, chunking

    base = f"{server[1]}/api/v1/packs/uploads"
    good = b"g" * 20_000
    listed = [[chunking.chunk_id(good).hex(), 0, len(good), len(good), chunking.RAW]]
    started = http.post(base).json()
    assert started["url"] == f"/api/v1/packs/uploads/{started['id']}"
    assert http.put(server[1] + started["url"], content=b"other").status_code == 201
    # sent again (a retry after a lost answer): the last complete one is what is checked
    assert http.put(server[1] + started["url"], content=good).status_code == 201
    assert http.post(f"{base}/{started['id']}", json={"chunks": listed}).status_code == 200
    assert not server[0].blobs.missing_chunks([chunking.chunk_id(good)])
    finished = http.post(f"{base}/{started['id']}", json={"chunks": listed})
    assert finished.status_code == 404
    assert http.put(f"{base}/not-an-id", content=good).status_code == 400
    monkeypatch.setattr(chunk_store, "MAX_UPLOADED_PACK", 1000)
    large = http.put(server[1] + http.post(base).json()["url"], content=good)
    assert large.status_code == 413
    assert "at most 1000 bytes" in large.json()["detail"]


def test_a_fine_tune_of_a_parent_stored_whole_is_pulled_whole(
    tmp_path: Path, client: RemoteRegistry, server: tuple[LocalRegistry, str]
) -> None:
    """A parent's file stored whole (before chunking) is the base of its child's deltas;
    the child cannot be rebuilt from chunks alone, so it is downloaded as it is."""
    import io

    data = bf16(LARGE // 2, seed=11)
    tuned = nudged(data)
    digest, _ = server[0].blobs.inner.put(io.BytesIO(data))
    (tmp_path / "a.bin").write_bytes(data)
    (tmp_path / "b.bin").write_bytes(tuned)
    client.register("llm", {"model.safetensors": tmp_path / "a.bin"})
    child = client.register("llm", {"model.safetensors": tmp_path / "b.bin"}, parents=["llm/1"])
    assert chunked_row(server[0], child.files[0].digest).base == digest
    client.pull("llm/2", tmp_path / "out")
    assert (tmp_path / "out" / "model.safetensors").read_bytes() == tuned


def test_repack_through_the_server(
    tmp_path: Path, client: RemoteRegistry, server: tuple[LocalRegistry, str]
) -> None:
    import io

    data = bf16(LARGE // 2, seed=9)
    digest, _ = server[0].blobs.inner.put(io.BytesIO(data))  # as stored before chunking
    assert client.repack(dry_run=True)["converted"] == [digest]
    done = client.repack()
    assert done["converted"] == [digest]
    assert done["bytes"] == LARGE
    assert 0 < done["pack_bytes"] < LARGE
    assert chunked_row(server[0], digest).size == LARGE


def test_the_chunk_cache_keeps_to_its_size_dropping_what_was_used_least_recently(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os
    import time

    from modelreg import chunking

    cache = ChunkCache(tmp_path / "cache", limit=25_000)
    chunks = [bytes([i]) * 10_000 for i in range(4)]
    names = [chunking.chunk_id(c) for c in chunks]
    for name, data in zip(names, chunks, strict=True):
        cache.put(name, len(data), chunking.RAW, data)  # a segment each
    segments = sorted((tmp_path / "cache" / "segments").iterdir(), key=lambda p: p.stat().st_mtime)
    assert len(segments) == 4
    hours_ago = time.time() - 7200
    for i, segment in enumerate(segments[:3]):  # the fourth was written just now
        os.utime(segment, (hours_ago + i, hours_ago + i))
    assert cache.get(names[1]) == chunks[1]
    cache.close()  # marks the segment read as used now: it stays
    assert cache.trim() == 2
    assert cache.missing(names) == [names[0], names[2]]
    assert cache.trim() == 0
    with pytest.raises(IntegrityError, match="is gone"):
        cache.get(names[0])
    with pytest.raises(IntegrityError, match="does not match its hash"):
        cache.put(names[0], len(chunks[1]), chunking.RAW, chunks[1])

    monkeypatch.setenv("MODELREG_CACHE_GB", "0.5")
    assert ChunkCache.default().limit == 500_000_000
    monkeypatch.setenv("MODELREG_CACHE_GB", "lots")
    with pytest.raises(InvalidInput, match="MODELREG_CACHE_GB is 'lots'"):
        ChunkCache.default()
