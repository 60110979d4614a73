"""The chunks this machine has pulled, kept so that a later pull fetches only what it lacks.

A folder (``MODELREG_CACHE``, by default ``~/.cache/modelreg/chunks``) of segments: files
that hold chunks as the server stores them (compressed or not), back to back, each written
once by one fetch. ``index.sqlite`` says where each chunk is. A chunk is checked against its
BLAKE3 name when it is kept and whenever it is read; one that fails is forgotten, and the
next pull fetches it again. The folder can be deleted at any time; it fills again as needed.
After each pull the segments used least recently are deleted until the cache holds at most
``MODELREG_CACHE_GB`` gigabytes (20 by default), sparing those used within the last hour (a
pull running meanwhile reads them).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from modelreg import chunking
from modelreg.errors import IntegrityError, InvalidInput

CACHE_LIMIT = 20 * 10**9  # bytes a chunk cache keeps, by default
SPARED_SECONDS = 3600  # segments used this recently are never trimmed
_SCHEMA = """
CREATE TABLE IF NOT EXISTS chunks (
    name BLOB PRIMARY KEY, segment TEXT NOT NULL, offset INTEGER NOT NULL,
    length INTEGER NOT NULL, size INTEGER NOT NULL, codec INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS chunks_segment ON chunks (segment);
"""
_BATCH = 500
_OPEN_SEGMENTS = 16  # segment files kept open for reads


class ChunkCache:
    """Chunks kept on this machine, in segments; see the module's docstring."""

    def __init__(self, root: str | os.PathLike[str], limit: int = CACHE_LIMIT) -> None:
        self.root = Path(root)
        self.limit = limit
        self._segments = self.root / "segments"
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        self._open: dict[str, int] = {}  # segment -> file descriptor, for reads
        self._used: set[str] = set()  # segments read since the last trim

    @classmethod
    def default(cls) -> ChunkCache:
        """The cache ``MODELREG_CACHE`` names (else ``~/.cache/modelreg/chunks``), kept to
        ``MODELREG_CACHE_GB`` gigabytes (else 20)."""
        limit = os.environ.get("MODELREG_CACHE_GB")
        try:
            size = CACHE_LIMIT if not limit else int(float(limit) * 1e9)
        except ValueError:
            raise InvalidInput(f"MODELREG_CACHE_GB is {limit!r}, not a number of GB") from None
        found = os.environ.get("MODELREG_CACHE")
        if found:
            return cls(found, size)
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        return cls(Path(base) / "modelreg" / "chunks", size)

    @contextlib.contextmanager
    def _index(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            if self._db is None:
                self._segments.mkdir(parents=True, exist_ok=True)
                db = sqlite3.connect(
                    self.root / "index.sqlite", timeout=60, check_same_thread=False
                )
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=NORMAL")
                db.executescript(_SCHEMA)
                self._db = db
            with self._db:
                yield self._db

    def missing(self, names: Iterable[bytes]) -> list[bytes]:
        """The chunks of ``names`` the cache does not hold, in their order. The segments of
        those it holds are marked used now, so that no trim meanwhile deletes them."""
        wanted = list(dict.fromkeys(names))
        held: set[bytes] = set()
        segments: set[str] = set()
        with self._index() as db:
            for start in range(0, len(wanted), _BATCH):
                batch = wanted[start : start + _BATCH]
                marks = ",".join("?" * len(batch))
                query = f"SELECT name, segment FROM chunks WHERE name IN ({marks})"  # noqa: S608
                for name, segment in db.execute(query, batch):
                    held.add(bytes(name))
                    segments.add(segment)
        for segment in segments:
            with contextlib.suppress(FileNotFoundError):
                os.utime(self._segments / segment)
        return [name for name in wanted if name not in held]

    def has(self, name: bytes) -> bool:
        return not self.missing([name])

    def segment(self) -> Segment:
        """A new segment to keep fetched chunks in."""
        self._segments.mkdir(parents=True, exist_ok=True)
        return Segment(self)

    def put(self, name: bytes, size: int, codec: int, stored: bytes) -> None:
        """Keep one chunk, once it is checked against its name."""
        with self.segment() as segment:
            segment.add(name, size, codec, stored)

    def get(self, name: bytes) -> bytes:
        """A chunk's bytes, checked; IntegrityError (and the chunk forgotten) when it is
        gone or damaged."""
        with self._index() as db:
            row = db.execute(
                "SELECT segment, offset, length, size, codec FROM chunks WHERE name = ?", [name]
            ).fetchone()
        if row is None:
            raise IntegrityError(f"cached chunk {name.hex()} is gone from {self.root}: pull again")
        segment, offset, length, size, codec = row
        try:
            stored = self._pread(segment, length, offset)
            if len(stored) != length:
                raise IntegrityError(f"segment {segment} ends before byte {offset + length}")
            return chunking.check_chunk(name, chunking.decompress(codec, stored, size))
        except (IntegrityError, FileNotFoundError) as exc:
            with self._index() as db:
                db.execute("DELETE FROM chunks WHERE name = ?", [name])
            raise IntegrityError(
                f"cached chunk {name.hex()} is damaged ({exc}) and was removed: pull again"
            ) from None

    def _pread(self, segment: str, length: int, offset: int) -> bytes:
        """Bytes of ``segment``, read from an open file of it; the few used last stay open
        (a file is read in order, a segment after another)."""
        with self._lock:
            fd = self._open.pop(segment, None)
            if fd is None:
                fd = os.open(self._segments / segment, os.O_RDONLY)
                if len(self._open) >= _OPEN_SEGMENTS:
                    oldest = next(iter(self._open))
                    os.close(self._open.pop(oldest))
            self._open[segment] = fd  # now the newest
            self._used.add(segment)
            return os.pread(fd, length, offset)

    def close(self) -> None:
        """Mark the segments read as used now, and let go of open files."""
        with self._lock:
            for fd in self._open.values():
                os.close(fd)
            for segment in self._used:
                with contextlib.suppress(FileNotFoundError):
                    os.utime(self._segments / segment)
            self._open.clear()
            self._used.clear()
            if self._db is not None:
                self._db.close()
                self._db = None

    def trim(self) -> int:
        """Delete the segments used least recently until the cache holds at most ``limit``
        bytes, sparing those used within the last hour; how many were deleted."""
        spared = time.time() - SPARED_SECONDS
        entries = []
        total = 0
        with contextlib.suppress(FileNotFoundError):
            for entry in os.scandir(self._segments):
                try:
                    stat = entry.stat()
                except FileNotFoundError:
                    continue
                entries.append((stat.st_mtime, stat.st_size, entry.name))
                total += stat.st_size
        removed = 0
        for used, size, segment in sorted(entries):
            if total <= self.limit or used >= spared:
                break
            with self._index() as db:
                db.execute("DELETE FROM chunks WHERE segment = ?", [segment])
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._segments / segment)
            removed += 1
            total -= size
        return removed


class Segment:
    """A segment being written: chunks are appended as they are checked, and named in the
    index when it is closed (so the index never names bytes not written yet)."""

    def __init__(self, cache: ChunkCache) -> None:
        self._cache = cache
        self.name = secrets.token_hex(16)
        self._file = open(cache._segments / self.name, "wb")  # noqa: SIM115
        self._rows: list[tuple[bytes, str, int, int, int, int]] = []
        self._at = 0

    def add(self, name: bytes, size: int, codec: int, stored: bytes) -> None:
        """Keep a chunk, once it is checked against its name (IntegrityError otherwise)."""
        chunking.check_chunk(name, chunking.decompress(codec, stored, size))
        self._file.write(stored)
        self._rows.append((name, self.name, self._at, len(stored), size, codec))
        self._at += len(stored)

    def close(self) -> None:
        if self._file.closed:
            return
        self._file.close()
        if not self._rows:
            os.unlink(self._file.name)
            return
        with self._cache._index() as db:
            db.executemany("INSERT OR IGNORE INTO chunks VALUES (?, ?, ?, ?, ?, ?)", self._rows)

    def __enter__(self) -> Segment:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
