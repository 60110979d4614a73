"""Content-addressed blob storage behind one small protocol.

A blob is named by the sha256 of its bytes. Backends: a local directory
(``blobs/sha256/ab/<digest>``), memory (for unit tests) and an S3 bucket (``modelreg.s3``).
Every write streams while hashing and publishes only complete, verified content; a digest
already present is never written again. Reads can start at an offset (HTTP Range requests).
"""

from __future__ import annotations

import contextlib
import errno
import functools
import hashlib
import io
import os
import re
import secrets
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import BinaryIO, Protocol

from modelreg.errors import IntegrityError, InvalidInput, NotFound, TooLarge
from modelreg.manifest import is_digest

CHUNK = 1 << 20


class BlobStore(Protocol):
    """What the registry needs from a blob backend."""

    def put(self, stream: BinaryIO, *, digest: str | None = None) -> tuple[str, int]:
        """Store the stream's bytes; return (digest, size).

        With ``digest`` given, a blob already present is not read or written again, and
        content that hashes to anything else is refused with IntegrityError, storing nothing.
        """

    def open(self, digest: str, *, offset: int = 0) -> BinaryIO:
        """Open a blob for reading from byte ``offset`` (0 to its size); raise NotFound if
        it is absent."""

    def exists(self, digest: str) -> bool: ...

    def refresh(self, digest: str) -> bool:
        """Mark a stored blob re-used now, so that gc's grace period keeps it for a version
        about to name it; False when it is not stored."""

    def size(self, digest: str) -> int: ...

    def modified(self, digest: str) -> float:
        """When the blob was last written, re-put or refreshed (seconds since the epoch)."""

    def delete(self, digest: str) -> None: ...

    def __iter__(self) -> Iterator[str]:
        """Every stored digest."""

    def check(self) -> None:
        """Raise OSError when the store cannot be used now (its directory is gone or read
        only, its bucket cannot be reached): what a server's health check asks."""

    # Packs: the objects that hold the chunks of large files (modelreg.chunk_store), kept
    # apart from the blobs under names the chunk store gives them; their chunks are checked
    # one by one, so their bytes are not hashed as a whole.

    def put_pack(self, name: str, parts: Sequence[bytes]) -> None:
        """Store a pack's bytes (``parts``, one after another) under ``name``, whole or not
        at all."""

    def read_pack(self, name: str, start: int, length: int) -> bytes:
        """``length`` bytes of a pack from ``start``; NotFound when it is absent,
        IntegrityError when it ends before them."""

    def delete_pack(self, name: str) -> None: ...

    def packs(self) -> Iterator[tuple[str, float]]:
        """Every stored pack's name, and when it was written (seconds since the epoch)."""


def hash_stream(stream: BinaryIO) -> tuple[str, int]:
    """Return (sha256 hex digest, size) of a stream, reading it in chunks."""
    h = hashlib.sha256()
    size = 0
    while chunk := stream.read(CHUNK):
        h.update(chunk)
        size += len(chunk)
    return h.hexdigest(), size


def hash_file(path: str | os.PathLike[str]) -> tuple[str, int]:
    with open(path, "rb") as f:
        return hash_stream(f)


class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


class Writable(Protocol):
    def write(self, data: bytes, /) -> int: ...


def take(buffer: bytearray, size: int) -> bytes:
    """Remove and return the first ``size`` bytes of ``buffer`` (all of it if ``size`` < 0):
    the read of a stream that buffers what arrives in pieces."""
    if size < 0 or size >= len(buffer):
        out = bytes(buffer)
        buffer.clear()
    else:
        out = bytes(buffer[:size])
        del buffer[:size]  # O(1) at a bytearray's front
    return out


def copy_hashing(stream: Readable, out: Writable) -> tuple[str, int]:
    """Copy ``stream`` to ``out`` and return (sha256, size) of what was copied.

    Past the first chunk, hashing runs in a second thread while the next chunk is read and
    written (hashlib releases the GIL), so a large copy costs little more than the copy.
    """
    h = hashlib.sha256()
    first = stream.read(CHUNK)
    second = stream.read(CHUNK) if first else b""
    if not second:
        h.update(first)
        out.write(first)
        return h.hexdigest(), len(first)
    size = 0
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="modelreg-hash") as pool:
        pending = pool.submit(h.update, first)
        out.write(first)
        chunk = second
        while chunk:
            pending.result()
            pending = pool.submit(h.update, chunk)
            out.write(chunk)
            size += len(chunk)
            chunk = stream.read(CHUNK)
        pending.result()
    return h.hexdigest(), size + len(first)


def verify(store: BlobStore, digest: str) -> bool:
    """Re-hash a stored blob; True when its bytes still match its name."""
    with store.open(digest) as f:
        return hash_stream(f)[0] == digest


def check_offset(digest: str, offset: int, size: int) -> int:
    """``offset`` when reading blob ``digest`` of ``size`` bytes can start there."""
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise InvalidInput(f"offset must be a whole number of bytes >= 0, not {offset!r}")
    if offset > size:
        raise InvalidInput(f"offset {offset} is past the end of blob {digest} ({size} bytes)")
    return offset


PACK_NAME = 32  # hex digits of a pack's name
_PACK_TOKEN = re.compile(r"[0-9a-f]{32}")


def is_pack_name(name: str) -> bool:
    return len(name) == PACK_NAME and all(c in "0123456789abcdef" for c in name)


def check_pack_name(name: str) -> str:
    if not is_pack_name(name):
        raise InvalidInput(f"{name!r} is not a pack name ({PACK_NAME} hex digits)")
    return name


def check_digest(digest: str) -> str:
    if not is_digest(digest):
        raise InvalidInput(f"{digest!r} is not a sha256 hex digest")
    return digest


class LocalBlobStore:
    """Blobs in a directory: ``<root>/sha256/<first two hex digits>/<digest>``."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self._base = self.root / "sha256"
        self._tmp = self.root / "tmp"
        self._packs = self.root / "packs"
        self._base.mkdir(parents=True, exist_ok=True)
        self._tmp.mkdir(parents=True, exist_ok=True)
        self._shards: set[Path] = set()  # shard folders known to exist: no mkdir per put

    def __repr__(self) -> str:
        return f"LocalBlobStore({str(self.root)!r})"

    def path(self, digest: str) -> Path:
        check_digest(digest)
        return self._base / digest[:2] / digest

    def put(self, stream: BinaryIO, *, digest: str | None = None) -> tuple[str, int]:
        if digest is not None:
            final = self.path(digest)
            try:
                # Refresh the time so that gc's grace period protects a blob being re-used.
                os.utime(final)
                return digest, final.stat().st_size
            except FileNotFoundError:
                pass
            tmp_dir = final.parent
        else:
            tmp_dir = self._tmp
        tmp = tmp_dir / f".tmp-{secrets.token_hex(8)}"
        try:
            with _create(tmp) as out:
                actual, size = copy_hashing(stream, FlushBehind(out))
                if digest is not None and actual != digest:
                    raise IntegrityError(
                        f"content does not match its digest: expected {digest}, got {actual}"
                    )
                final = self.path(actual)
                if digest is None and final.exists():
                    # Already stored: keep the one copy and drop this one before it is
                    # flushed to disk; refresh the stored one for gc's grace period.
                    os.utime(final)
                    return actual, size
                out.flush()
                os.fdatasync(out.fileno())
            if final.parent != tmp_dir and final.parent not in self._shards:
                final.parent.mkdir(exist_ok=True)
                self._shards.add(final.parent)
            try:
                os.replace(tmp, final)
            except FileNotFoundError:  # its shard folder was removed since: make it again
                final.parent.mkdir(exist_ok=True)
                os.replace(tmp, final)
            _fsync_dir(final.parent)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        return actual, size

    def open(self, digest: str, *, offset: int = 0) -> BinaryIO:
        try:
            f = open(self.path(digest), "rb")  # noqa: SIM115 (the caller closes it)
        except FileNotFoundError:
            raise NotFound(f"blob {digest} is missing from the blob store") from None
        if offset:
            try:
                f.seek(check_offset(digest, offset, os.fstat(f.fileno()).st_size))
            except BaseException:
                f.close()
                raise
        return f

    def exists(self, digest: str) -> bool:
        return self.path(digest).is_file()

    def refresh(self, digest: str) -> bool:
        try:
            os.utime(self.path(digest))
        except FileNotFoundError:
            return False
        return True

    def size(self, digest: str) -> int:
        try:
            return self.path(digest).stat().st_size
        except FileNotFoundError:
            raise NotFound(f"blob {digest} is missing from the blob store") from None

    def modified(self, digest: str) -> float:
        try:
            return self.path(digest).stat().st_mtime
        except FileNotFoundError:
            raise NotFound(f"blob {digest} is missing from the blob store") from None

    def delete(self, digest: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path(digest).unlink()

    def __iter__(self) -> Iterator[str]:
        for shard in sorted(self._base.iterdir()):
            if not shard.is_dir():
                continue
            for entry in sorted(shard.iterdir()):
                if is_digest(entry.name):
                    yield entry.name

    def check(self) -> None:
        for folder in (self._base, self._tmp):
            if not folder.is_dir():
                raise OSError(f"the blob directory {str(folder)!r} is missing")
            if not os.access(folder, os.W_OK | os.X_OK):
                raise OSError(f"the blob directory {str(folder)!r} is not writable")

    def pack_path(self, name: str) -> Path:
        return self._packs / check_pack_name(name)[:2] / name

    def put_pack(self, name: str, parts: Sequence[bytes]) -> None:
        final = self.pack_path(name)
        tmp = self._tmp / f".tmp-{secrets.token_hex(8)}"
        try:
            with _create(tmp) as out:
                writer = FlushBehind(out)
                for part in parts:
                    writer.write(part)
                out.flush()
                os.fdatasync(out.fileno())
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, final)
            _fsync_dir(final.parent)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()

    def read_pack(self, name: str, start: int, length: int) -> bytes:
        try:
            fd = os.open(self.pack_path(name), os.O_RDONLY)
        except FileNotFoundError:
            raise NotFound(f"pack {name} is missing from the blob store") from None
        try:
            data = os.pread(fd, length, start)
            while len(data) < length:
                more = os.pread(fd, length - len(data), start + len(data))
                if not more:
                    raise IntegrityError(f"pack {name} ends before byte {start + length}")
                data += more
            return data
        finally:
            os.close(fd)

    def delete_pack(self, name: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.pack_path(name).unlink()

    def packs(self) -> Iterator[tuple[str, float]]:
        if not self._packs.is_dir():
            return
        for shard in sorted(self._packs.iterdir()):
            for entry in sorted(shard.iterdir()) if shard.is_dir() else []:
                if is_pack_name(entry.name):
                    with contextlib.suppress(FileNotFoundError):
                        yield entry.name, entry.stat().st_mtime

    # -- packs a client uploads through the server (see ChunkedBlobStore) -------------------

    def start_pack_upload(self) -> tuple[str, None]:
        """An id for a pack a client sends through the server (``receive_pack_upload``);
        no URL: the bytes cannot bypass the server here."""
        return secrets.token_hex(16), None

    def _staged_pack(self, token: str) -> Path:
        if not isinstance(token, str) or not _PACK_TOKEN.fullmatch(token):
            raise InvalidInput(f"{str(token)[:80]!r} is not a pack upload id this server gave")
        return self._tmp / f".tmp-pack-{token}"

    def receive_pack_upload(self, token: str, stream: Readable, limit: int) -> int:
        """Write the pack a client sends for ``token`` to a staging file, at most ``limit``
        bytes (TooLarge beyond); its size. Sent again (a retry after a lost answer), the
        last complete one is what ``finish_pack_upload`` checks."""
        staged = self._staged_pack(token)
        part = self._tmp / f".tmp-{secrets.token_hex(8)}"
        try:
            with _create(part) as out:
                size = 0
                while block := stream.read(CHUNK):
                    size += len(block)
                    if size > limit:
                        raise TooLarge(f"a pack holds at most {limit} bytes")
                    out.write(block)
                out.flush()
                os.fdatasync(out.fileno())
            os.replace(part, staged)
        finally:
            with contextlib.suppress(FileNotFoundError):
                part.unlink()
        return size

    def finish_pack_upload(
        self, token: str, name: str, size: int, check: Callable[[Readable], int]
    ) -> int:
        """Store the pack sent for ``token`` as pack ``name`` once it holds ``size`` bytes
        and ``check`` (which reads it through, raises on anything wrong and returns its
        size) passes. The staging file is first renamed to a name no client knows, so what
        is checked is what is stored; a pack that fails is deleted."""
        staged = self._staged_pack(token)
        claimed = self._tmp / f".tmp-{secrets.token_hex(8)}"
        try:
            os.replace(staged, claimed)
        except FileNotFoundError:
            raise NotFound(
                f"nothing was uploaded for pack upload {token}, or it is finished"
            ) from None
        try:
            held = claimed.stat().st_size
            if held != size:
                raise InvalidInput(f"pack upload {token} holds {held} bytes, not the {size} listed")
            with open(claimed, "rb") as f:
                check(f)
            final = self.pack_path(name)
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(claimed, final)
            _fsync_dir(final.parent)
        finally:
            with contextlib.suppress(FileNotFoundError):
                claimed.unlink()
        return size

    def remove_stale_temporaries(self, older_than: float) -> int:
        """Delete temporary files left by interrupted writes; return how many."""
        cutoff = time.time() - older_than
        removed = 0
        for tmp in [*self._tmp.glob(".tmp-*"), *self._base.glob("*/.tmp-*")]:
            with contextlib.suppress(FileNotFoundError):
                if tmp.stat().st_mtime < cutoff:
                    tmp.unlink()
                    removed += 1
        return removed


class FlushBehind:
    """Writes to a file while the disk catches up: each time another ``STEP`` bytes are
    written, their writeback starts (Linux ``sync_file_range``), and the writer waits for
    the range it started the time before. The final ``fdatasync`` then has little left to
    wait for, and a large blob does not fill memory with dirty pages. Elsewhere, plain writes.
    """

    STEP = 8 << 20

    def __init__(self, out: BinaryIO) -> None:
        self._out = out
        self._written = 0
        self._started = 0  # bytes whose writeback has been started
        self._previous: tuple[int, int] | None = None  # the range started the time before
        self._sync = _sync_file_range()

    def write(self, data: bytes, /) -> int:
        n = self._out.write(data)
        self._written += n
        if self._sync is not None and self._written - self._started >= self.STEP:
            self._out.flush()
            fd = self._out.fileno()
            end = self._written - self._written % self.STEP
            started = (self._started, end - self._started)
            if not self._check(self._sync(fd, *started, _SYNC_WRITE)):
                return n
            if self._previous is not None:
                self._check(self._sync(fd, *self._previous, _SYNC_WAIT_ALL))
            self._previous, self._started = started, end
        return n

    def _check(self, result: int) -> bool:
        """True when the call worked; False, and plain writes from now on, when this file
        does not support it; a write error (EIO, ENOSPC) is raised here and now."""
        if result == 0:
            return True
        import ctypes

        code = ctypes.get_errno()
        if code in _UNSUPPORTED:
            self._sync = None
            return False
        raise OSError(code, f"writing the blob to disk failed: {os.strerror(code)}")


_SYNC_WRITE = 2  # SYNC_FILE_RANGE_WRITE
_SYNC_WAIT_ALL = 7  # WAIT_BEFORE | WRITE | WAIT_AFTER
_UNSUPPORTED = {errno.EINVAL, errno.ESPIPE, errno.ENOSYS, errno.EOPNOTSUPP}


@functools.cache
def _sync_file_range() -> Callable[[int, int, int, int], int] | None:
    """libc's ``sync_file_range`` on Linux, else None."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    try:
        call = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (OSError, AttributeError):
        return None
    call.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    call.restype = ctypes.c_int
    return call


def _create(path: Path) -> BinaryIO:
    """Open a new file for writing, making its shard directory on first use."""
    try:
        return open(path, "xb")
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        return open(path, "xb")


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class MemoryBlobStore:
    """Blobs in a dict, for unit tests."""

    def __init__(self) -> None:
        self._blobs: dict[str, tuple[bytes, float]] = {}
        self._packs: dict[str, tuple[bytes, float]] = {}

    def put(self, stream: BinaryIO, *, digest: str | None = None) -> tuple[str, int]:
        if digest is not None and check_digest(digest) in self._blobs:
            data = self._blobs[digest][0]
            self._blobs[digest] = (data, time.time())
            return digest, len(data)
        data = stream.read()
        actual = hashlib.sha256(data).hexdigest()
        if digest is not None and actual != digest:
            raise IntegrityError(
                f"content does not match its digest: expected {digest}, got {actual}"
            )
        self._blobs[actual] = (data, time.time())
        return actual, len(data)

    def open(self, digest: str, *, offset: int = 0) -> BinaryIO:
        try:
            data = self._blobs[check_digest(digest)][0]
        except KeyError:
            raise NotFound(f"blob {digest} is missing") from None
        stream = io.BytesIO(data)
        stream.seek(check_offset(digest, offset, len(data)))
        return stream

    def exists(self, digest: str) -> bool:
        return check_digest(digest) in self._blobs

    def refresh(self, digest: str) -> bool:
        if check_digest(digest) not in self._blobs:
            return False
        self._blobs[digest] = (self._blobs[digest][0], time.time())
        return True

    def size(self, digest: str) -> int:
        with self.open(digest) as f:
            return len(f.read())

    def modified(self, digest: str) -> float:
        if digest not in self._blobs:
            raise NotFound(f"blob {digest} is missing")
        return self._blobs[digest][1]

    def delete(self, digest: str) -> None:
        self._blobs.pop(digest, None)

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._blobs))

    def check(self) -> None:
        pass  # memory is always there

    def put_pack(self, name: str, parts: Sequence[bytes]) -> None:
        self._packs[check_pack_name(name)] = (b"".join(parts), time.time())

    def read_pack(self, name: str, start: int, length: int) -> bytes:
        if name not in self._packs:
            raise NotFound(f"pack {name} is missing")
        data = self._packs[name][0][start : start + length]
        if len(data) < length:
            raise IntegrityError(f"pack {name} ends before byte {start + length}")
        return data

    def delete_pack(self, name: str) -> None:
        self._packs.pop(name, None)

    def packs(self) -> Iterator[tuple[str, float]]:
        return iter([(name, stamp) for name, (_, stamp) in sorted(self._packs.items())])

    def corrupt(self, digest: str, data: bytes) -> None:
        """Replace a blob's bytes without renaming it (for tests of fsck and verified reads)."""
        self._blobs[digest] = (data, self._blobs[digest][1])
