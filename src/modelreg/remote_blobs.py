"""The server's blobs as the remote client moves them: downloads streamed and resumed with
Range requests after a broken connection, uploads sent a chunk at a time, and the exception a
server's error response stands for."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import httpx

from modelreg.blobs import take
from modelreg.errors import IntegrityError, InvalidInput, ModelregError, error_from_wire

if TYPE_CHECKING:
    from modelreg.remote import RemoteRegistry

CHUNK = 1024 * 1024
RETRIES = 5  # reconnections per blob download before giving up


class RemoteBlobs:
    """The server's blobs as a source for pulls: streamed, resumed after a broken
    connection with a Range request from the byte it stopped at."""

    def __init__(self, registry: RemoteRegistry) -> None:
        self._registry = registry

    def open(self, digest: str) -> BinaryIO:
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
    upload sent again sends only what the server still lacks."""
    from modelreg import chunking

    names = list(dict.fromkeys(c.chunk for c in cuts))
    missing: set[bytes] = set()
    for start in range(0, len(names), _NAMES_AT_ONCE):
        asked = [n.hex() for n in names[start : start + _NAMES_AT_ONCE]]
        answer = registry._call("POST", "/chunks/missing", json={"chunks": asked})
        missing.update(bytes.fromhex(h) for h in answer["missing"])

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
                    frames.append(chunking.frame(name, at, size, *chunking.compress(data, hint)))
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
