"""The blob store the registry uses: large files as deduplicated chunks in packs.

``ChunkedBlobStore`` wraps a plain blob store (a directory or a bucket) and keeps the same
protocol, so every reader of blobs works unchanged. A file smaller than
``chunking.CHUNKED_FROM`` is stored whole, as before. A larger one is cut into
content-defined chunks (``modelreg.chunking``); only chunks the store does not hold yet are
written, compressed, into packs: blobs of about ``chunking.PACK_SIZE`` bytes, so that a
bucket never holds millions of tiny objects. The database knows where each chunk lies
(``chunks``) and which pieces make each file (``chunked_files``).

Given a base (the registered parent's file at the same path), a new chunk is stored as its
XOR with the base's bytes at the same offset when that is smaller. A base is always a file
without a base of its own, so a read needs at most two files' chunks: the delta chain is at
most one long.

Integrity: every chunk is checked against its BLAKE3 name when it is stored and whenever it
is read; a file is committed only once the bytes it was cut from hash to its sha256, and a
read of a whole file checks that sha256 again before it ends. Files stored whole before
chunking existed stay where they are and are read as they are.
"""

from __future__ import annotations

import bisect
import hashlib
import io
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, BinaryIO

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from modelreg import chunking, schema, timestamps
from modelreg.blobs import BlobStore, Readable, check_digest, check_offset
from modelreg.chunking import Piece
from modelreg.errors import Conflict, IntegrityError, InvalidInput, NotFound
from modelreg.manifest import is_digest

if TYPE_CHECKING:
    from modelreg.db import Database

_files, _chunks, _packs = schema.chunked_files, schema.chunks, schema.chunk_packs
_BATCH = 500  # ids per IN (...) query
_GROUP = 16 << 20  # stored bytes read from a pack in one request
_WINDOW = 8 << 20  # base bytes read ahead for delta pieces
_REPACK_BELOW = 0.5  # a pack whose live chunks fill less than this share is rewritten


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


Location = tuple[str, int, int, int, int]  # (pack, offset, stored length, size, codec)


class ChunkedBlobStore:
    """Large files as chunks in packs in ``inner``, small ones as ``inner``'s own blobs."""

    def __init__(self, inner: BlobStore, db: Database) -> None:
        self.inner = inner
        self.db = db
        self.pack_size = chunking.PACK_SIZE

    def __repr__(self) -> str:
        return f"ChunkedBlobStore({self.inner!r})"

    # -- the blob store protocol -----------------------------------------------------------

    def put(
        self, stream: BinaryIO, *, digest: str | None = None, base: str | None = None
    ) -> tuple[str, int]:
        """Store a stream; a large one as chunks, as XOR deltas against file ``base`` where
        that is smaller (``base`` must be stored here; otherwise it is not used)."""
        if digest is not None:
            check_digest(digest)
            if self.refresh(digest):
                return digest, self.size(digest)
        head = chunking.read_up_to(stream, chunking.CHUNKED_FROM)
        if len(head) < chunking.CHUNKED_FROM:
            return self.inner.put(io.BytesIO(head), digest=digest)
        return self._put_chunked(_Prefixed(head, stream), digest, base)

    def open(self, digest: str, *, offset: int = 0) -> BinaryIO:
        found = self.chunked(digest)
        if found is None:
            return self.inner.open(digest, offset=offset)
        check_offset(digest, offset, found.size)
        return ChunkedReader(self, found, offset)  # type: ignore[return-value]

    def exists(self, digest: str) -> bool:
        return self._row(digest) is not None or self.inner.exists(digest)

    def refresh(self, digest: str) -> bool:
        check_digest(digest)
        if self.inner.refresh(digest):
            return True
        stamp = timestamps.now()
        touched = self.db.write(
            lambda conn: (
                conn.execute(
                    _files.update().where(_files.c.digest == digest).values(modified_at=stamp)
                ).rowcount
            )
        )
        return bool(touched)

    def size(self, digest: str) -> int:
        row = self._row(digest)
        return int(row.size) if row is not None else self.inner.size(digest)

    def modified(self, digest: str) -> float:
        row = self._row(digest)
        if row is None:
            return self.inner.modified(digest)
        return (timestamps.to_ms(row.modified_at) or 0) / 1000

    def delete(self, digest: str) -> None:
        """Forget a file; the chunks only it used go with their pack at the next gc."""
        gone = self.db.write(
            lambda conn: conn.execute(_files.delete().where(_files.c.digest == digest)).rowcount
        )
        if not gone:
            self.inner.delete(digest)

    def __iter__(self) -> Iterator[str]:
        packs = set(self.db.read(lambda conn: conn.execute(sa.select(_packs.c.digest)).scalars()))
        chunked = sorted(
            self.db.read(lambda conn: list(conn.execute(sa.select(_files.c.digest)).scalars()))
        )
        seen = set(chunked)
        for digest in self.inner:
            if digest not in packs and digest not in seen:
                yield digest
        yield from chunked

    def check(self) -> None:
        self.inner.check()

    def remove_stale_temporaries(self, older_than: float) -> int:
        remove = getattr(self.inner, "remove_stale_temporaries", None)
        return int(remove(older_than)) if remove is not None else 0

    # -- chunked files ---------------------------------------------------------------------

    def _row(self, digest: str) -> Any:
        query = sa.select(_files.c.size, _files.c.base, _files.c.modified_at).where(
            _files.c.digest == digest
        )
        return self.db.read(lambda conn: conn.execute(query).first())

    def chunked(self, digest: str) -> ChunkedFile | None:
        """The stored chunked file ``digest``; None when it is a whole blob or absent."""
        check_digest(digest)
        query = sa.select(_files.c.size, _files.c.base, _files.c.pieces).where(
            _files.c.digest == digest
        )
        row = self.db.read(lambda conn: conn.execute(query).first())
        if row is None:
            return None
        return ChunkedFile(digest, int(row.size), row.base, chunking.decode_pieces(row.pieces))

    def locations(self, ids: Iterable[bytes]) -> dict[bytes, Location]:
        """Where each of the chunks ``ids`` is stored (absent ones are left out)."""
        wanted = list(dict.fromkeys(ids))
        c = _chunks.c

        def read(conn: Connection) -> dict[bytes, Location]:
            found: dict[bytes, Location] = {}
            for start in range(0, len(wanted), _BATCH):
                query = sa.select(c.id, c.pack, c.offset, c.length, c.size, c.codec).where(
                    c.id.in_(wanted[start : start + _BATCH])
                )
                for row in conn.execute(query):
                    found[bytes(row.id)] = (row.pack, row.offset, row.length, row.size, row.codec)
            return found

        return self.db.read(read)

    def missing_chunks(self, ids: Sequence[bytes]) -> list[bytes]:
        """The chunks of ``ids`` this store does not hold, in their order."""
        held = self.locations(ids)
        return [i for i in dict.fromkeys(ids) if i not in held]

    def _base_for(self, base: str | None) -> ChunkedFile | str | None:
        """What delta pieces are taken against: a chunked file without a base of its own (a
        base's base when it has one, so the chain stays one long), or a whole blob."""
        if base is None or not is_digest(base):
            return None
        found = self.chunked(base)
        if found is not None and found.base is not None:
            found = self.chunked(found.base)
        if found is not None:
            return found
        return base if self.inner.exists(base) else None

    def _put_chunked(
        self, stream: Readable, digest: str | None, base: str | None
    ) -> tuple[str, int]:
        sha = hashlib.sha256()
        hashing = _Hashing(stream, sha)
        root = self._base_for(base)
        reader = _BaseBytes(self, root) if root is not None else None
        writer = PackWriter(self)
        pieces: list[Piece] = []
        batch: list[bytes] = []
        offset = 0
        try:
            for data in chunking.cut(hashing):
                batch.append(data)
                if len(batch) >= 256:
                    offset = self._add_batch(batch, offset, pieces, writer, reader)
                    batch = []
            if batch:
                offset = self._add_batch(batch, offset, pieces, writer, reader)
            writer.flush()
        finally:
            if reader is not None:
                reader.close()
        actual = sha.hexdigest()
        if digest is not None and actual != digest:
            raise IntegrityError(
                f"content does not match its digest: expected {digest}, got {actual}"
            )
        if digest is None and self.inner.refresh(actual):
            return actual, offset  # held whole already (stored before chunking): kept so
        used = None
        if root is not None and any(p.xor for p in pieces):
            used = root.digest if isinstance(root, ChunkedFile) else root
        self._commit(ChunkedFile(actual, offset, used, pieces))
        return actual, offset

    def _add_batch(
        self,
        batch: list[bytes],
        offset: int,
        pieces: list[Piece],
        writer: PackWriter,
        reader: _BaseBytes | None,
    ) -> int:
        ids = [chunking.chunk_id(data) for data in batch]
        held = set(self.locations(ids)) | writer.ids
        new: list[chunking.Encoded] = []
        for name, data in zip(ids, batch, strict=True):
            if name in held:
                pieces.append(Piece(name, len(data), False))
            else:
                around = reader.read_at(offset, len(data)) if reader is not None else None
                encoded = chunking.encode(data, name, around)
                new.append(encoded)
                pieces.append(encoded.piece)
            offset += len(data)
        deltas = [e.piece.chunk for e in new if e.piece.xor]
        held_deltas = set(self.locations(deltas)) if deltas else set()
        for encoded in new:
            name = encoded.piece.chunk
            if name not in held_deltas and name not in writer.ids:
                writer.add(name, encoded.piece.size, encoded.codec, encoded.stored)
        return offset

    def _commit(self, file: ChunkedFile) -> None:
        """Make a chunked file visible once every chunk it names is stored."""
        names = list(dict.fromkeys(p.chunk for p in file.pieces))
        row = {
            "digest": file.digest,
            "size": file.size,
            "base": file.base,
            "pieces": chunking.encode_pieces(file.pieces),
            "modified_at": timestamps.now(),
        }

        def commit(conn: Connection) -> None:
            # the lock gc takes to delete: the chunks seen here stay until this is committed
            self.db.lock_blobs(conn)
            held: set[bytes] = set()
            for start in range(0, len(names), _BATCH):
                batch = names[start : start + _BATCH]
                query = sa.select(_chunks.c.id).where(_chunks.c.id.in_(batch))
                held.update(bytes(i) for i in conn.execute(query).scalars())
            if len(held) != len(names):
                raise Conflict(
                    f"{len(names) - len(held)} chunks of file {file.digest} were collected while"
                    " it was stored: store it again"
                )
            same = sa.select(_files.c.digest).where(_files.c.digest == file.digest)
            if conn.execute(same).first():
                conn.execute(
                    _files.update()
                    .where(_files.c.digest == file.digest)
                    .values(modified_at=row["modified_at"])
                )
            else:
                conn.execute(_files.insert().values(**row))

        self.db.write(commit)

    def store_frames(self, stream: Readable, base: str | None = None) -> list[tuple[bytes, bool]]:
        """Store the chunks a client uploaded (``chunking.frame`` each), every one checked
        against its name; with ``base``, each is stored as its XOR with the base file's
        bytes at its offset where that is smaller. Returns, per chunk in order, the name it
        is stored under and whether that is a delta piece: what the client's manifest
        names when it commits the file."""
        root = self._base_for(base)
        if base is not None and root is None:
            raise InvalidInput(f"base file {base} is not in the store")
        reader = _BaseBytes(self, root) if root is not None else None
        writer = PackWriter(self)
        stored: list[tuple[bytes, bool]] = []
        batch: list[chunking.Frame] = []
        try:
            for frame in chunking.read_frames(stream):
                batch.append(frame)
                if len(batch) >= 256:
                    stored += self._store_batch(batch, writer, reader)
                    batch = []
            stored += self._store_batch(batch, writer, reader)
            writer.flush()
        finally:
            if reader is not None:
                reader.close()
        return stored

    def _store_batch(
        self, frames: list[chunking.Frame], writer: PackWriter, reader: _BaseBytes | None
    ) -> list[tuple[bytes, bool]]:
        out: list[tuple[bytes, bool]] = []
        new: list[tuple[chunking.Frame, chunking.Encoded | None]] = []
        for frame in frames:
            try:
                data = chunking.decompress(frame.codec, frame.stored, frame.size)
                chunking.check_chunk(frame.chunk, data)
            except IntegrityError as exc:
                raise InvalidInput(f"an uploaded chunk was refused: {exc}") from None
            around = reader.read_at(frame.offset, frame.size) if reader is not None else None
            encoded = chunking.encode(data, frame.chunk, around) if around is not None else None
            if encoded is not None and encoded.piece.xor:
                out.append((encoded.piece.chunk, True))
                new.append((frame, encoded))
            else:
                out.append((frame.chunk, False))
                new.append((frame, None))
        held = set(self.locations(name for name, _ in out)) | writer.ids
        for (name, _), (frame, encoded) in zip(out, new, strict=True):
            if name in held:
                continue
            if encoded is not None:
                writer.add(name, frame.size, encoded.codec, encoded.stored)
            else:  # kept as the client compressed it
                writer.add(name, frame.size, frame.codec, frame.stored)
            held.add(name)
        return out

    def commit_pieces(self, digest: str, size: int, pieces: list[Piece], base: str | None) -> None:
        """Make a file a client uploaded as chunks visible: its pieces are read back (every
        chunk checked) and must hash to ``digest``; IntegrityError names a mismatch."""
        check_digest(digest)
        file = ChunkedFile(digest, size, base, pieces)
        if base is not None:
            root = self._base_for(base)
            if (
                root is None
                or (isinstance(root, ChunkedFile) and root.digest != base)
                or (isinstance(root, str) and root != base)
            ):
                raise InvalidInput(f"base {base} is not a stored file without a base of its own")
        with ChunkedReader(self, file, 0) as reader:
            while reader.read(_GROUP):
                pass  # the reader raises IntegrityError at its end on a digest mismatch
        self._commit(file)

    # -- gc and fsck -----------------------------------------------------------------------

    def bases(self) -> dict[str, str]:
        """Each chunked file with delta pieces, and the base file it needs."""
        query = sa.select(_files.c.digest, _files.c.base).where(_files.c.base.is_not(None))
        return dict(self.db.read(lambda conn: [tuple(r) for r in conn.execute(query)]))

    def is_base(self, conn: Connection, digest: str) -> bool:
        query = sa.select(_files.c.digest).where(_files.c.base == digest).limit(1)
        return conn.execute(query).first() is not None

    def _live_chunks(self, conn: Connection) -> set[bytes]:
        query = sa.select(_files.c.pieces)
        live: set[bytes] = set()
        for pieces in conn.execute(query).scalars():
            live.update(p.chunk for p in chunking.decode_pieces(pieces))
        return live

    def collect_packs(self, *, grace_seconds: float, dry_run: bool) -> PackReport:
        """Delete packs none of whose chunks a stored file uses, and rewrite packs that
        live chunks fill less than half of. Packs written within the grace period stay."""
        cutoff = timestamps.from_ms(max(0, int((_now_seconds() - grace_seconds) * 1000)), "cutoff")
        live = self.db.read(self._live_chunks)
        packs = self.db.read(
            lambda conn: list(
                conn.execute(sa.select(_packs.c.digest, _packs.c.size, _packs.c.created_at))
            )
        )
        report = PackReport()
        for pack in packs:
            if pack.created_at >= cutoff:
                continue
            rows = self._pack_chunks(pack.digest)
            used = [r for r in rows if bytes(r.id) in live]
            used_bytes = sum(r.length for r in used)
            if used and used_bytes >= pack.size * _REPACK_BELOW:
                continue
            if dry_run:
                (report.repacked if used else report.removed).append(pack.digest)
                continue
            if used:
                self._repack(pack.digest, used)
            if self._drop_pack(pack.digest):
                (report.repacked if used else report.removed).append(pack.digest)
                report.freed += pack.size - used_bytes
        return report

    def _repack(self, pack: str, rows: list[Any]) -> None:
        """Copy a sparse pack's live chunks into new packs and point their rows there."""
        writer = PackWriter(self, replace=True)
        with self.inner.open(pack) as f:
            data = f.read()
        for row in rows:
            stored = data[row.offset : row.offset + row.length]
            name = bytes(row.id)
            chunking.check_chunk(name, chunking.decompress(row.codec, stored, row.size))
            writer.add(name, row.size, row.codec, stored)
        writer.flush()

    def _pack_chunks(self, pack: str) -> list[Any]:
        c = _chunks.c
        query = sa.select(c.id, c.offset, c.length, c.size, c.codec).where(c.pack == pack)
        return self.db.read(lambda conn: list(conn.execute(query)))

    def _drop_pack(self, pack: str) -> bool:
        """Delete a pack when no chunk row left in it is used by a file (checked again under
        the lock that file commits take); False when it is still needed."""

        def drop(conn: Connection) -> bool:
            self.db.lock_blobs(conn)
            remaining = [
                bytes(i)
                for i in conn.execute(
                    sa.select(_chunks.c.id).where(_chunks.c.pack == pack)
                ).scalars()
            ]
            if remaining:
                # files committed since the first look count as users too
                live = self._live_chunks(conn)
                if any(i in live for i in remaining):
                    return False
                conn.execute(_chunks.delete().where(_chunks.c.pack == pack))
            conn.execute(_packs.delete().where(_packs.c.digest == pack))
            self.inner.delete(pack)
            return True

        return self.db.write(drop)

    def check_packs(self) -> PackCheck:
        """Re-hash every pack that holds chunks, and find chunks that files name but no pack
        holds. (A pack whose chunks were never recorded is a write that did not finish: gc
        removes it, fsck does not count it.)"""
        holding = sa.select(_packs.c.digest).where(
            sa.exists().where(_chunks.c.pack == _packs.c.digest)
        )
        packs = self.db.read(lambda conn: list(conn.execute(holding).scalars()))
        check = PackCheck(packs=len(packs))
        for pack in packs:
            try:
                with self.inner.open(pack) as f:
                    sha = hashlib.sha256()
                    while block := f.read(_GROUP):
                        sha.update(block)
            except NotFound:
                check.missing.append(pack)
                continue
            if sha.hexdigest() != pack:
                check.corrupt.append(pack)
        live = self.db.read(self._live_chunks)
        check.chunks = len(live)
        held = self.locations(live)
        check.missing_chunks = len(live) - len(held)
        return check


@dataclass
class PackReport:
    removed: list[str] = field(default_factory=list)
    repacked: list[str] = field(default_factory=list)
    freed: int = 0


@dataclass
class PackCheck:
    packs: int = 0
    chunks: int = 0
    corrupt: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    missing_chunks: int = 0

    @property
    def ok(self) -> bool:
        return not self.corrupt and not self.missing and not self.missing_chunks


def _now_seconds() -> float:
    import time

    return time.time()


class PackWriter:
    """Collects new chunks into a pack and stores it once it is full.

    The pack's row is written before its blob, so that gc, which never lists a known pack
    as a loose blob, cannot take it for garbage while it is being stored; the chunks' rows
    follow the blob, so no chunk is ever named before its bytes are stored. With
    ``replace``, rows of chunks already stored elsewhere are moved to the new pack (gc's
    repacking); otherwise a chunk another writer stored meanwhile keeps its first place.
    """

    def __init__(self, store: ChunkedBlobStore, *, replace: bool = False) -> None:
        self._store = store
        self._replace = replace
        self._buffer = bytearray()
        self._rows: list[dict[str, Any]] = []
        self.ids: set[bytes] = set()
        self.written = 0  # stored bytes of the packs written so far

    def add(self, name: bytes, size: int, codec: int, stored: bytes) -> None:
        self._rows.append(
            {
                "id": name,
                "offset": len(self._buffer),
                "length": len(stored),
                "size": size,
                "codec": codec,
            }
        )
        self._buffer += stored
        self.ids.add(name)
        if len(self._buffer) >= self._store.pack_size:
            self.flush()

    def flush(self) -> None:
        if not self._rows:
            return
        data = bytes(self._buffer)
        digest = hashlib.sha256(data).hexdigest()
        store = self._store
        pack_row = {"digest": digest, "size": len(data), "created_at": timestamps.now()}
        store.db.write(lambda conn: _insert_missing(conn, _packs, [pack_row], "digest"))
        store.inner.put(io.BytesIO(data), digest=digest)
        rows = [{**row, "pack": digest} for row in self._rows]

        def record(conn: Connection) -> None:
            if self._replace:
                for row in rows:
                    conn.execute(
                        _chunks.update()
                        .where(_chunks.c.id == row["id"])
                        .values(pack=digest, offset=row["offset"], length=row["length"])
                    )
            else:
                _insert_missing(conn, _chunks, rows, "id")

        store.db.write(record)
        self.written += len(data)
        self._buffer = bytearray()
        self._rows = []


def _insert_missing(
    conn: Connection, table: sa.Table, rows: list[dict[str, Any]], key: str
) -> None:
    """INSERT the rows whose ``key`` is not in ``table`` yet (a concurrent writer's stays)."""
    from sqlalchemy.dialects import postgresql, sqlite

    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(table).on_conflict_do_nothing(index_elements=[key])
    conn.execute(statement, rows)


class ChunkedReader(io.RawIOBase):
    """A chunked file's bytes from ``offset``: chunks read from their packs a group at a
    time, each checked against its name; read from the start, the whole file is checked
    against its sha256 before the read that reaches its end returns."""

    def __init__(self, store: ChunkedBlobStore, file: ChunkedFile, offset: int) -> None:
        self._store = store
        self._file = file
        self._where = store.locations(p.chunk for p in file.pieces)
        missing = {p.chunk for p in file.pieces} - set(self._where)
        if missing:
            raise IntegrityError(
                f"{len(missing)} chunks of file {file.digest} are missing from the store"
            )
        self._index = max(0, bisect.bisect_right(file.starts, offset) - 1)
        self._skip = offset - file.starts[self._index] if file.pieces else 0
        self._sha = hashlib.sha256() if offset == 0 else None
        self._buffer = bytearray()
        self._base: _BaseBytes | None = None
        if file.base is not None:
            root = store._base_for(file.base)
            if root is None:
                raise IntegrityError(
                    f"base file {file.base} of file {file.digest} is missing from the store"
                )
            self._base = _BaseBytes(store, root)

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1, /) -> bytes:
        while (size < 0 or len(self._buffer) < size) and self._index < len(self._file.pieces):
            self._next_group()
        if size < 0 or size >= len(self._buffer):
            out = bytes(self._buffer)
            self._buffer.clear()
        else:
            out = bytes(self._buffer[:size])
            del self._buffer[:size]
        return out

    def readinto(self, target: Any) -> int:
        data = self.read(len(target))
        target[: len(data)] = data
        return len(data)

    def _next_group(self) -> None:
        """Read the next run of pieces stored back to back in one pack."""
        pieces, where = self._file.pieces, self._where
        first = self._index
        pack, start, length, _, _ = where[pieces[first].chunk]
        end = start + length
        last = first + 1
        while last < len(pieces) and end - start < _GROUP:
            p, o, n, _, _ = where[pieces[last].chunk]
            if p != pack or o != end:
                break
            end += n
            last += 1
        with self._store.inner.open(pack, offset=start) as f:
            stored = _read_exactly(f, end - start, pack)
        for i in range(first, last):
            piece = pieces[i]
            _, o, n, size, codec = where[piece.chunk]
            data = chunking.decompress(codec, stored[o - start : o - start + n], size)
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
            if self._sha is not None:
                self._sha.update(data)
            if self._skip:
                data = data[self._skip :]
                self._skip = 0
            self._buffer += data
        self._index = last
        finished = last == len(pieces) and self._sha is not None
        if finished and self._sha.hexdigest() != self._file.digest:  # type: ignore[union-attr]
            self._buffer.clear()
            raise IntegrityError(
                f"file {self._file.digest} rebuilt from its chunks does not match its digest"
            )

    def close(self) -> None:
        if self._base is not None:
            self._base.close()
            self._base = None
        super().close()


class _BaseBytes:
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


class _Prefixed:
    """Bytes already read from a stream, then the rest of it."""

    def __init__(self, head: bytes, rest: Readable) -> None:
        self._head = head
        self._rest = rest

    def read(self, size: int = -1, /) -> bytes:
        if self._head:
            if size < 0 or size >= len(self._head):
                out, self._head = self._head, b""
                return out
            out, self._head = self._head[:size], self._head[size:]
            return out
        return self._rest.read(size)


class _Hashing:
    """A stream that feeds what is read from it to a hash."""

    def __init__(self, stream: Readable, sha: Any) -> None:
        self._stream = stream
        self._sha = sha

    def read(self, size: int = -1, /) -> bytes:
        data = self._stream.read(size)
        self._sha.update(data)
        return data


def _read_exactly(stream: Readable, size: int, name: str) -> bytes:
    data = chunking.read_up_to(stream, size)
    if len(data) != size:
        raise IntegrityError(f"blob {name} ends {size - len(data)} bytes early")
    return data
