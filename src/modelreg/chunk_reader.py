"""Reading large files back from their chunks (see ``modelreg.chunk_store``): a chunked
file's pieces, a reader that fetches them from their packs a run at a time, each checked
against its name, and the window over a base file that delta pieces are XORed with."""

from __future__ import annotations

import bisect
import collections
import concurrent.futures
import io
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, BinaryIO

from modelreg import chunking
from modelreg.blobs import Readable
from modelreg.chunking import Piece
from modelreg.errors import IntegrityError, NotFound

if TYPE_CHECKING:
    from modelreg.chunk_store import ChunkedBlobStore

_GROUP = 16 << 20  # stored bytes read from a pack in one request
_WINDOW = 8 << 20  # base bytes read ahead for delta pieces

Location = tuple[str, int, int, int, int]  # (pack, offset, stored length, size, codec)


@dataclass
class ChunkedFile:
    """A stored chunked file: its pieces, and where each starts in the file."""

    digest: str
    size: int
    base: str | None
    pieces: list[Piece]
    starts: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        position = 0
        for piece in self.pieces:
            self.starts.append(position)
            position += piece.size
        if position != self.size:
            raise IntegrityError(
                f"the pieces of chunked file {self.digest} add up to {position} bytes, not"
                f" {self.size}"
            )


class ChunkedReader(io.RawIOBase):
    """A chunked file's bytes from ``offset``: chunks read from their packs a run at a
    time, each checked against its name, the next runs read and checked in a thread while
    the caller takes the ones before."""

    def __init__(self, store: ChunkedBlobStore, file: ChunkedFile, offset: int) -> None:
        self._store = store
        self._file = file
        self._where = store.locations(p.chunk for p in file.pieces)
        missing = {p.chunk for p in file.pieces} - set(self._where)
        if missing:
            raise IntegrityError(
                f"{len(missing)} chunks of file {file.digest} are missing from the store"
            )
        first = max(0, bisect.bisect_right(file.starts, offset) - 1)
        self._skip = offset - file.starts[first] if file.pieces else 0
        self._runs = collections.deque(self._plan(first))
        self._out: collections.deque[bytes] = collections.deque()
        self._buffered = 0
        self._base: BaseBytes | None = None
        if file.base is not None:
            root = store._base_for(file.base)
            if root is None:
                raise IntegrityError(
                    f"base file {file.base} of file {file.digest} is missing from the store"
                )
            self._base = BaseBytes(store, root)
        self._pool = concurrent.futures.ThreadPoolExecutor(1, "modelreg-read")
        self._ahead: collections.deque[concurrent.futures.Future[list[bytes]]] = collections.deque()
        self._read_ahead()

    def _plan(self, first: int) -> Iterator[tuple[int, int]]:
        """Runs of pieces stored back to back in one pack, up to ``_GROUP`` bytes each."""
        pieces, where = self._file.pieces, self._where
        while first < len(pieces):
            pack, start, length, _, _ = where[pieces[first].chunk]
            end = start + length
            last = first + 1
            while last < len(pieces) and end - start < _GROUP:
                p, o, n, _, _ = where[pieces[last].chunk]
                if p != pack or o != end:
                    break
                end += n
                last += 1
            yield first, last
            first = last

    def _read_ahead(self) -> None:
        while self._runs and len(self._ahead) < 2:
            self._ahead.append(self._pool.submit(self._run, *self._runs.popleft()))

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1, /) -> bytes:
        while (size < 0 or self._buffered < size) and self._ahead:
            for data in self._ahead.popleft().result():
                if self._skip:
                    data = data[self._skip :]
                    self._skip = 0
                self._out.append(data)
                self._buffered += len(data)
            self._read_ahead()
        return self._take(size)

    def _take(self, size: int) -> bytes:
        if size < 0 or size >= self._buffered:
            out = b"".join(self._out)
            self._out.clear()
            self._buffered = 0
            return out
        parts: list[bytes] = []
        want = size
        while want:
            head = self._out[0]
            if len(head) <= want:
                parts.append(self._out.popleft())
                want -= len(head)
            else:
                parts.append(head[:want])
                self._out[0] = head[want:]
                want = 0
        self._buffered -= size
        return b"".join(parts)

    def readinto(self, target: Any) -> int:
        data = self.read(len(target))
        target[: len(data)] = data
        return len(data)

    def _run(self, first: int, last: int) -> list[bytes]:
        """The bytes of pieces ``first`` to ``last``, read at once and each checked."""
        pieces, where = self._file.pieces, self._where
        pack, start, _, _, _ = where[pieces[first].chunk]
        _, o, n, _, _ = where[pieces[last - 1].chunk]
        try:
            stored = self._store.inner.read_pack(pack, start, o + n - start)
        except NotFound:
            raise IntegrityError(
                f"pack {pack} of file {self._file.digest} is missing from the store"
            ) from None
        view = memoryview(stored)
        out = []
        for i in range(first, last):
            piece = pieces[i]
            _, o, n, size, codec = where[piece.chunk]
            if size != piece.size:
                raise IntegrityError(
                    f"file {self._file.digest} names chunk {piece.chunk.hex()} as {piece.size}"
                    f" bytes: it holds {size}"
                )
            data = chunking.decompress(codec, view[o - start : o - start + n], size)
            data = chunking.check_chunk(piece.chunk, data)
            if piece.xor:
                assert self._base is not None
                around = self._base.read_at(self._file.starts[i], size)
                if around is None:
                    raise IntegrityError(
                        f"base file {self._file.base} ends before a delta piece of file"
                        f" {self._file.digest}"
                    )
                data = chunking.xor(data, around)
            out.append(data)
        return out

    def close(self) -> None:
        for future in self._ahead:
            future.cancel()
        self._pool.shutdown(wait=True)
        self._ahead.clear()
        if self._base is not None:
            self._base.close()
            self._base = None
        super().close()


class BaseBytes:
    """Ranges of a base file, read ahead in windows (delta pieces ask for them in order)."""

    def __init__(self, store: ChunkedBlobStore, base: ChunkedFile | str) -> None:
        self._store = store
        self._digest = base.digest if isinstance(base, ChunkedFile) else base
        self._size = base.size if isinstance(base, ChunkedFile) else store.inner.size(base)
        self._stream: BinaryIO | None = None
        self._at = 0  # where the open stream is
        self._window = b""
        self._window_at = 0
        self._lock = threading.Lock()

    def read_at(self, offset: int, size: int) -> bytes | None:
        """``size`` bytes from ``offset``; None when the base ends before that."""
        if offset + size > self._size:
            return None
        with self._lock:
            end = self._window_at + len(self._window)
            if not (self._window_at <= offset and offset + size <= end):
                self._fill(offset, max(size, _WINDOW))
            start = offset - self._window_at
            return self._window[start : start + size]

    def _fill(self, offset: int, size: int) -> None:
        """Make the window cover ``offset`` to ``offset + size``: a request that runs past
        the window's end keeps its tail and reads on; the stream is opened again only to
        go back, or to skip far ahead."""
        end = self._window_at + len(self._window)
        if self._window_at <= offset <= end and self._stream is not None:
            kept = self._window[offset - self._window_at :]
            more = min(size, self._size - offset) - len(kept)
            self._window = kept + (self._stream.read(more) if more > 0 else b"")
            self._window_at = offset
            self._at = offset + len(self._window)
            return
        if self._stream is None or not (self._at <= offset < self._at + _WINDOW * 4):
            self.close()
            self._stream = self._store.open(self._digest, offset=offset)
            self._at = offset
        if offset > self._at:
            _read_exactly(self._stream, offset - self._at, self._digest)
        self._window = self._stream.read(min(size, self._size - offset))
        self._window_at = offset
        self._at = offset + len(self._window)

    def close(self) -> None:
        if self._stream is not None:
            self._stream.close()
            self._stream = None


def _read_exactly(stream: Readable, size: int, name: str) -> bytes:
    data = chunking.read_up_to(stream, size)
    if len(data) != size:
        raise IntegrityError(f"blob {name} ends {size - len(data)} bytes early")
    return data
