"""The server's blobs as the remote client moves them: downloads streamed and resumed with
Range requests after a broken connection, uploads sent a chunk at a time, and the exception a
server's error response stands for."""

from __future__ import annotations

import base64
import bisect
import concurrent.futures
import contextlib
import io
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import httpx

from modelreg.blobs import take
from modelreg.chunk_cache import ChunkCache
from modelreg.errors import (
    Conflict,
    IntegrityError,
    InvalidInput,
    ModelregError,
    NotFound,
    error_from_wire,
)

if TYPE_CHECKING:
    from modelreg.remote import RemoteRegistry

CHUNK = 1024 * 1024
RETRIES = 5  # reconnections per blob download before giving up


class RemoteBlobs:
    """The server's blobs as a source for pulls: streamed, resumed after a broken
    connection with a Range request from the byte it stopped at."""

    def __init__(self, registry: RemoteRegistry) -> None:
        self._registry = registry
        self.sizes: dict[str, int] = {}  # of the files about to be pulled

    def open(self, digest: str) -> BinaryIO:
        """A large file is rebuilt from chunks, fetching only those not cached here; any
        other, or one the server holds whole, is downloaded as it is."""
        from modelreg.chunking import CHUNKED_FROM

        if self.sizes.get(digest, 0) >= CHUNKED_FROM:
            try:
                manifest = self._registry._call("GET", f"/files/{digest}")
            except NotFound:
                pass  # stored whole
            else:
                try:
                    cache = ChunkCache.default()
                    return ChunkedDownload(self._registry, manifest, cache)  # type: ignore[return-value]
                except NotFound:
                    pass  # its base is stored whole, or a chunk went with a repack: as is
        return Download(self._registry, digest)  # type: ignore[return-value]

    def exists(self, digest: str) -> bool:
        missing = self._registry._call("POST", "/blobs/missing", json={"digests": [digest]})
        return digest not in missing["missing"]


class Download(io.RawIOBase):
    """A blob's bytes from the server; reconnects with ``Range: bytes=N-`` when cut off."""

    def __init__(self, registry: RemoteRegistry, digest: str) -> None:
        self._registry = registry
        self._digest = digest
        self._position = 0
        self._retries = 0
        self._response: httpx.Response | None = None
        self._chunks: Iterator[bytes] | None = None
        self._buffer = bytearray()
        self._finished = False

    def readable(self) -> bool:
        return True

    def _connect(self) -> None:
        headers = {"Range": f"bytes={self._position}-"} if self._position else {}
        request = self._registry._http.build_request(
            "GET", f"/api/v1/blobs/{self._digest}", headers=headers
        )
        response = self._registry._http.send(request, stream=True)
        if response.is_error:
            response.read()
            raise error_of(response)
        if self._position and response.status_code != 206:
            response.close()
            raise IntegrityError(f"the server ignored the range request for {self._digest}")
        self._response = response
        self._chunks = response.iter_bytes()  # as received: a cut loses no counted byte

    def read(self, size: int = -1, /) -> bytes:
        while not self._finished and (size < 0 or len(self._buffer) < size):
            try:
                if self._chunks is None:
                    self._connect()
                assert self._chunks is not None
                chunk = next(self._chunks, None)
            except httpx.TransportError as exc:
                self._drop()
                self._retries += 1
                if self._retries > RETRIES:
                    raise ModelregError(
                        f"downloading blob {self._digest} failed {RETRIES} times: {exc}"
                    ) from None
                time.sleep(min(2.0, 0.1 * 2**self._retries))
                continue
            if chunk is None:
                self._finished = True
                break
            self._retries = 0  # a cut after progress starts the count again
            self._buffer += chunk
            self._position += len(chunk)
        return take(self._buffer, size)

    def _drop(self) -> None:
        if self._response is not None:
            self._response.close()
        self._response = None
        self._chunks = None

    def close(self) -> None:
        self._drop()
        super().close()


def error_of(response: httpx.Response) -> ModelregError:
    """The exception a server's error response stands for."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("code"), str):
        details = {k: v for k, v in body.items() if k not in _PROBLEM_FIELDS}
        return error_from_wire(body["code"], str(body.get("detail", "")), details)
    return ModelregError(f"the server answered {response.status_code} {response.reason_phrase}")


_PROBLEM_FIELDS = {"type", "title", "status", "detail", "code"}


def chunks(f: BinaryIO, size: int, progress: Any = None) -> Iterator[bytes]:
    """The first ``size`` bytes of a file as an upload's body (sent with that length), a
    chunk at a time; ``progress`` gets each chunk's size. A file cut shorter meanwhile is
    refused here with IntegrityError; what a file that grew sends, the server checks
    against its digest like any upload."""
    left = size
    while left > 0:
        chunk = f.read(min(CHUNK, left))
        if not chunk:
            raise IntegrityError(
                f"file {getattr(f, 'name', '?')!r} changed while it was uploaded: it ends"
                f" {left} bytes short of the {size} it held when the upload began"
            )
        left -= len(chunk)
        if progress is not None:
            progress(len(chunk))
        yield chunk


def upload_chunked(
    registry: RemoteRegistry,
    digest: str,
    path: Path,
    cuts: list[Any],
    base: str | None = None,
    progress: Any = None,
) -> None:
    """Upload a large file as its chunks (``cuts``, from ``chunking.hash_and_cut``), in
    order: those the server lacks in full (compressed where that pays), the others by name
    only. With ``base`` (the parent's file at the same path) the server keeps each new chunk
    as a delta from it where that is smaller. The server checks every chunk and the whole
    file against ``digest``; a file changed since it was cut is refused there. A broken
    upload sent again sends only what the server still lacks. One whose chunks the server
    collected meanwhile (an upload that outlasted gc's grace period) is sent again once."""
    try:
        _upload_chunked(registry, digest, path, cuts, base, progress)
    except Conflict:
        _upload_chunked(registry, digest, path, cuts, base, None)


def _upload_chunked(
    registry: RemoteRegistry,
    digest: str,
    path: Path,
    cuts: list[Any],
    base: str | None,
    progress: Any,
) -> None:
    from modelreg import chunking

    names = list(dict.fromkeys(c.chunk for c in cuts))
    missing: set[bytes] = set()
    for start in range(0, len(names), _NAMES_AT_ONCE):
        asked = [n.hex() for n in names[start : start + _NAMES_AT_ONCE]]
        answer = registry._call("POST", "/chunks/missing", json={"chunks": asked})
        missing.update(bytes.fromhex(h) for h in answer["missing"])

    first = None
    if base is None and missing:
        # a store that takes no pack uploads says 409 (and a server from before them 404):
        # the chunks go in the body below
        with contextlib.suppress(Conflict, NotFound):
            first = registry._call("POST", "/packs/uploads")
    if first is not None:
        upload_packs(registry, path, cuts, missing, first, progress)
        missing, progress = set(), None  # all held now, and counted

    def body() -> Iterator[bytes]:
        hint = chunking.Compressibility()
        frames: list[bytes] = []
        filled = 0
        with open(path, "rb") as f:
            for name, at, size in cuts:
                if name not in missing:
                    frames.append(chunking.frame(name, at, size, chunking.REF, b""))
                else:
                    f.seek(at)
                    data = f.read(size)
                    # with a base, the server stores the chunk's XOR with it, compressed
                    # there: compressing it here too would be undone at once
                    codec, stored = (
                        (chunking.RAW, data) if base is not None else chunking.compress(data, hint)
                    )
                    frames.append(chunking.frame(name, at, size, codec, stored))
                filled += len(frames[-1])
                if progress is not None:
                    progress(size)
                if filled >= CHUNK:
                    yield b"".join(frames)
                    frames, filled = [], 0
        if frames:
            yield b"".join(frames)

    params = {"base": base} if base is not None else None
    try:
        registry._call("PUT", f"/files/{digest}", content=body(), params=params)
    except InvalidInput as exc:
        if "make a file of sha256" in str(exc):
            raise IntegrityError(f"file {str(path)!r} changed while it was uploaded") from None
        raise


_NAMES_AT_ONCE = 100_000
PACK_BYTES = 16 << 20  # stored bytes of a pack uploaded straight to the bucket
PACK_UPLOADS = 3  # packs uploaded at once (and one more waiting)


def upload_packs(
    registry: RemoteRegistry,
    path: Path,
    cuts: list[Any],
    missing: set[bytes],
    upload: dict[str, str] | None,
    progress: Any = None,
) -> None:
    """Upload a file's ``missing`` chunks in packs, several at once: straight to the
    server's bucket where it hands out presigned URLs, else to the server (which reads what
    arrived and checks every chunk against its name before it counts as held). Memory
    stays within a few packs. ``upload`` is the first pack's (``POST /packs/uploads``)."""
    from modelreg import chunking

    hint = chunking.Compressibility()
    slots = threading.Semaphore(PACK_UPLOADS + 1)
    sent: set[bytes] = set()
    parts: list[bytes] = []
    listed: list[list[Any]] = []
    filled = 0
    with (
        httpx.Client(timeout=httpx.Timeout(120.0, connect=10.0)) as direct,
        concurrent.futures.ThreadPoolExecutor(PACK_UPLOADS, "modelreg-pack") as pool,
    ):
        pending: list[concurrent.futures.Future[None]] = []

        def ship() -> None:
            nonlocal upload, parts, listed, filled
            for done in [f for f in pending if f.done()]:
                done.result()  # the first failure ends the upload
            if upload is None:
                upload = registry._call("POST", "/packs/uploads")
            slots.acquire()
            job = (upload, parts, listed)
            pending.append(pool.submit(_send_pack, registry, direct, *job, slots))
            upload, parts, listed, filled = None, [], [], 0

        with open(path, "rb") as f:
            for name, at, size in cuts:
                if name in missing and name not in sent:
                    f.seek(at)
                    codec, stored = chunking.compress(f.read(size), hint)
                    listed.append([name.hex(), filled, len(stored), size, codec])
                    parts.append(stored)
                    filled += len(stored)
                    sent.add(name)
                    if filled >= PACK_BYTES:
                        ship()
                if progress is not None:
                    progress(size)
        if parts:
            ship()
        for job in pending:
            job.result()


_BUSY = {429, 500, 502, 503, 504}


def _sent(request: Any, what: str) -> httpx.Response:
    """The response to ``request()``, sent again after a broken connection or an answer
    that the server is busy or failing for now (429, 5xx), waiting longer each time."""
    import random

    for attempt in range(RETRIES + 1):
        try:
            response: httpx.Response = request()
        except httpx.TransportError as exc:
            if attempt == RETRIES:
                raise ModelregError(f"{what} failed {RETRIES + 1} times: {exc}") from None
        else:
            if response.status_code not in _BUSY or attempt == RETRIES:
                return response
            response.close()  # its connection goes back to the pool
        time.sleep(min(10.0, 0.25 * 2**attempt) * (0.5 + random.random()))
    raise AssertionError("unreachable")


def _send_pack(
    registry: RemoteRegistry,
    direct: httpx.Client,
    upload: dict[str, str],
    parts: list[bytes],
    listed: list[list[Any]],
    slots: threading.Semaphore,
) -> None:
    """PUT one pack to its URL (again after a broken connection), then have the
    server check it and take it in. The pack is sent as its chunks, never joined into one
    large buffer (which the allocator would keep hold of)."""
    length = {"Content-Length": str(sum(len(part) for part in parts))}
    url = upload["url"]
    # the server's own URL goes with the registry's credentials; a presigned one never sees them
    client = registry._http if url.startswith("/") else direct
    try:
        response = _sent(
            lambda: client.put(url, content=iter(parts), headers=length), "uploading a pack"
        )
        if response.is_error and client is direct:
            raise ModelregError(
                f"uploading a pack to the bucket failed: HTTP {response.status_code}"
                f" {response.text[:200]}"
            )
        if response.is_error:
            raise error_of(response)
        try:
            registry._call("POST", f"/packs/uploads/{upload['id']}", json={"chunks": listed})
        except InvalidInput as exc:
            if "does not match its hash" in str(exc):
                raise IntegrityError(f"a file changed while it was uploaded: {exc}") from None
            raise
    finally:
        slots.release()


LOCATE_AT_ONCE = 20_000  # chunk names asked about at once: about 1.2 GiB of file
RANGE_BYTES = 16 << 20  # stored bytes one request reads, at most
GAP = 256 << 10  # unwanted bytes of a pack read through rather than starting another range
FETCHES = 4  # ranges read at once


class _Moved(Exception):
    """A pack is not where it was located (gc rewrote it) or its URL expired."""


@dataclass
class _Span:
    """A range of one pack to read, and the chunks (located) it holds."""

    pack: str
    start: int
    end: int
    chunks: list[list[Any]]


def _spans(located: list[list[Any]]) -> list[_Span]:
    """Ranges of packs that hold the chunks ``located`` (``[name, pack, offset, length, size,
    codec]`` each, from ``POST /chunks/locate``): neighbours read in one request when the gap
    between them is small and the range stays under RANGE_BYTES. In the order of the first
    chunk each holds in ``located`` (the file's order: a reader waits for them in turn)."""
    rank = {chunk[0]: i for i, chunk in reversed(list(enumerate(located)))}
    spans: list[_Span] = []
    for chunk in sorted(located, key=lambda c: (c[1], c[2])):
        _, pack, offset, length = chunk[:4]
        last = spans[-1] if spans else None
        if (
            last is not None
            and last.pack == pack
            and offset <= last.end + GAP
            and offset + length - last.start <= RANGE_BYTES
        ):
            last.end = max(last.end, offset + length)
            last.chunks.append(chunk)
        else:
            spans.append(_Span(pack, offset, offset + length, [chunk]))
    return sorted(spans, key=lambda span: min(rank[chunk[0]] for chunk in span.chunks))


class ChunkedDownload(io.RawIOBase):
    """A chunked file rebuilt here from its pieces: the chunks the cache lacks are fetched
    in a second thread (several ranges at once) and kept, while the file is read out of the
    cache in order, each read waiting for its chunk to arrive; each chunk is checked, delta
    pieces XORed with the base file's bytes at the same offset. The caller checks the whole
    file against its digest, as for any download."""

    def __init__(self, registry: RemoteRegistry, manifest: dict[str, Any], cache: ChunkCache):
        from modelreg import chunking

        self._cache = cache
        self._pieces = chunking.decode_pieces(base64.b64decode(manifest["pieces"]))
        self._base: list[Any] = []
        self._base_starts: list[int] = []
        if manifest["base"] is not None and any(p.xor for p in self._pieces):
            found = registry._call("GET", f"/files/{manifest['base']}")
            self._base = chunking.decode_pieces(base64.b64decode(found["pieces"]))
            at = 0
            for piece in self._base:
                self._base_starts.append(at)
                at += piece.size
        needed: dict[bytes, None] = {}  # in the order they are read
        at = 0
        for piece in self._pieces:
            if piece.xor:
                needed.update(dict.fromkeys(b.chunk for b in self._base_under(at, piece.size)))
            needed[piece.chunk] = None
            at += piece.size
        self._why = ""
        self._waiting: set[bytes] = set()  # chunks being fetched, not in the cache yet
        self._arrived = threading.Condition()
        self._failure: BaseException | None = None
        self._stopping = False
        self._fetcher: threading.Thread | None = None
        try:
            missing = cache.missing(needed)
            # the first batch is located here, so that a server that cannot (a chunk gone,
            # a server from before ranges) has the file downloaded as it is instead
            first = self._locate(registry, missing[:LOCATE_AT_ONCE]) if missing else None
        except BaseException:
            cache.close()
            raise
        self.fetched = len(missing)
        if first is not None:
            self._waiting = set(missing)
            self._fetcher = threading.Thread(
                target=self._fetch_all, args=(registry, missing, first), name="modelreg-pull"
            )
            self._fetcher.start()
        self._recent: dict[int, bytes] = {}
        self._index = 0
        self._at = 0
        self._buffer = bytearray()

    def _base_under(self, start: int, size: int) -> list[Any]:
        """The base's pieces that cover bytes ``start`` to ``start + size``."""
        first = max(0, bisect.bisect_right(self._base_starts, start) - 1)
        out = []
        for i in range(first, len(self._base)):
            if self._base_starts[i] >= start + size:
                break
            out.append(self._base[i])
        return out

    def _fetch_all(self, registry: RemoteRegistry, names: list[bytes], first: Any) -> None:
        try:
            self._fetch(registry, names, first)
        except BaseException as exc:
            with self._arrived:
                self._failure = exc
                self._arrived.notify_all()
        else:
            with self._arrived:
                self._waiting.clear()
                self._arrived.notify_all()

    def _arrive(self, names: list[bytes]) -> None:
        with self._arrived:
            self._waiting.difference_update(names)
            self._arrived.notify_all()

    def _ready(self, name: bytes) -> None:
        """Wait until chunk ``name`` is in the cache, or its fetch failed (raised here)."""
        if not self._waiting:
            return
        with self._arrived:
            while name in self._waiting:
                if self._failure is not None:
                    raise self._failure
                self._arrived.wait()

    def _locate(self, registry: RemoteRegistry, names: list[bytes]) -> Any:
        return registry._call(
            "POST", "/chunks/locate", json={"chunks": [name.hex() for name in names]}
        )

    def _fetch(self, registry: RemoteRegistry, names: list[bytes], first: Any) -> None:
        """Fetch chunks into the cache: ask where they are stored, then read those ranges of
        their packs, several at once, straight from the bucket when the server hands out
        presigned URLs. Located a batch at a time, just before it is read, so that no URL
        expires first; a range whose pack moved (gc rewrote it) or whose URL expired is
        located again, once. Chunks already fetched stay cached, so a pull that broke off
        fetches only the rest when run again."""
        with (
            httpx.Client(timeout=httpx.Timeout(60.0, connect=10.0)) as direct,
            concurrent.futures.ThreadPoolExecutor(FETCHES, "modelreg-fetch") as pool,
        ):
            for start in range(0, len(names), LOCATE_AT_ONCE):
                batch = names[start : start + LOCATE_AT_ONCE]
                answer = first if start == 0 else self._locate(registry, batch)
                moved = self._fetch_located(registry, direct, pool, answer)
                if moved and self._fetch_located(
                    registry, direct, pool, self._locate(registry, moved)
                ):
                    raise ModelregError(
                        f"chunks of {registry.url} were not where it placed them, twice (their"
                        f" pack answered {self._why}): pull again"
                    )

    def _fetch_located(
        self,
        registry: RemoteRegistry,
        direct: httpx.Client,
        pool: concurrent.futures.ThreadPoolExecutor,
        answer: Any,
    ) -> list[bytes]:
        """Read located chunks (``POST /chunks/locate``'s answer); the names of those whose
        range was gone."""
        urls: dict[str, str] = answer["packs"]
        spans = _spans(answer["chunks"])
        moved: list[bytes] = []
        for span, gone in zip(
            spans,
            pool.map(lambda s: self._read_span(registry, direct, urls, s), spans),
            strict=True,
        ):
            if gone:
                moved.extend(bytes.fromhex(chunk[0]) for chunk in span.chunks)
        return moved

    def _read_span(
        self, registry: RemoteRegistry, direct: httpx.Client, urls: dict[str, str], span: _Span
    ) -> bool:
        """Read one range of a pack and keep each chunk in it as its bytes arrive, once
        checked against its name; after a broken connection, the rest of the range is
        asked for again. True, reading nothing, when the pack is gone from there or the
        URL expired."""
        url = urls[span.pack]
        # the server's own URL goes with the registry's credentials; a bucket's presigned
        # one is complete as it is, and never sees them
        client = registry._http if url.startswith("/") else direct
        if self._stopping:
            return False
        with self._cache.segment() as segment:
            moved = self._fill(client, url, span, segment)
        if not moved:
            self._arrive([bytes.fromhex(chunk[0]) for chunk in span.chunks])
        return moved

    def _fill(self, client: httpx.Client, url: str, span: _Span, segment: Any) -> bool:
        """Read a span's chunks into ``segment``, resuming after a broken connection from the
        first chunk not yet kept; True when its pack was gone from there."""
        left = sorted(span.chunks, key=lambda c: c[2])
        breaks = 0  # in a row without progress
        while True:
            try:
                rest, failure = self._stream_span(client, url, span.pack, left, segment)
            except _Moved as exc:
                self._why = str(exc)
                return True
            if not rest:
                return False
            breaks = 1 if len(rest) < len(left) else breaks + 1
            left = rest
            if breaks > RETRIES:
                raise ModelregError(f"reading pack {span.pack} broke off {breaks} times: {failure}")
            time.sleep(min(10.0, 0.25 * 2**breaks))

    def _stream_span(
        self, client: httpx.Client, url: str, pack: str, chunks: list[list[Any]], segment: Any
    ) -> tuple[list[list[Any]], Exception | None]:
        """Read the range of ``pack`` that holds ``chunks`` (in offset order) into
        ``segment``: the chunks left unread when the connection broke, and why."""
        start = chunks[0][2]
        end = max(c[2] + c[3] for c in chunks)
        request = client.build_request("GET", url, headers={"Range": f"bytes={start}-{end - 1}"})
        response = _sent(lambda: client.send(request, stream=True), f"reading pack {pack}")
        index = 0
        with contextlib.closing(response):
            if response.status_code == 404 or (
                response.status_code == 403 and not url.startswith("/")
            ):
                response.read()
                raise _Moved(f"HTTP {response.status_code} {response.text[:200]}")
            if response.is_error:
                response.read()
                if not url.startswith("/"):
                    raise ModelregError(
                        f"reading pack {pack} from the bucket failed: HTTP"
                        f" {response.status_code} {response.text[:200]}"
                    )
                raise error_of(response)
            at = 0 if response.status_code == 200 else start  # the pack's byte at buffer[0]
            buffer = bytearray()
            try:
                for piece in response.iter_bytes():
                    if index == len(chunks):
                        break  # a server that sent more than the range: the rest is not needed
                    buffer += piece
                    while index < len(chunks):
                        name, _, offset, length, size, codec = chunks[index]
                        if offset + length > at + len(buffer):
                            break
                        stored = bytes(buffer[offset - at : offset - at + length])
                        segment.add(bytes.fromhex(name), size, codec, stored)
                        index += 1
                    upto = chunks[index][2] if index < len(chunks) else at + len(buffer)
                    drop = min(max(0, upto - at), len(buffer))
                    del buffer[:drop]
                    at += drop
            except httpx.TransportError as exc:
                return chunks[index:], exc
        if index < len(chunks):
            raise IntegrityError(
                f"pack {pack} ended before chunk {chunks[index][0]} (byte {chunks[index][2]})"
            )
        return [], None

    def close(self) -> None:
        if not self.closed:
            self._stopping = True  # a reader that gave up: the ranges not begun are not read
            if self._fetcher is not None:
                self._fetcher.join()
            try:
                self._cache.trim()
            finally:
                self._cache.close()
        super().close()

    def _base_chunk(self, index: int) -> bytes:
        """A base piece's bytes; the last few are kept, as delta pieces straddle them."""
        found = self._recent.get(index)
        if found is None:
            self._ready(self._base[index].chunk)
            found = self._recent[index] = self._cache.get(self._base[index].chunk)
            if len(self._recent) > 8:
                del self._recent[min(self._recent)]
        return found

    def _base_bytes(self, start: int, size: int) -> bytes:
        parts = []
        for i in range(max(0, bisect.bisect_right(self._base_starts, start) - 1), len(self._base)):
            piece_at = self._base_starts[i]
            if piece_at >= start + size:
                break
            data = self._base_chunk(i)
            parts.append(data[max(0, start - piece_at) : start + size - piece_at])
        joined = b"".join(parts)
        if len(joined) != size:
            raise IntegrityError("the base file ends before a delta piece")
        return joined

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1, /) -> bytes:
        from modelreg import chunking

        while (size < 0 or len(self._buffer) < size) and self._index < len(self._pieces):
            piece = self._pieces[self._index]
            self._ready(piece.chunk)
            data = self._cache.get(piece.chunk)
            if piece.xor:
                data = chunking.xor(data, self._base_bytes(self._at, piece.size))
            self._buffer += data
            self._at += piece.size
            self._index += 1
        return take(self._buffer, size)
