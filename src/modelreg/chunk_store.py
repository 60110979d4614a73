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
is read, and a file is committed only once the bytes it was cut from hash to its sha256; so a
read gives back the bytes committed, and whoever receives a whole file checks its sha256 as
for any blob. Files stored whole before chunking existed stay where they are and are read as
they are.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import io
import secrets
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, BinaryIO

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from modelreg import chunking, schema, timestamps
from modelreg.blobs import BlobStore, Readable, check_digest, check_offset
from modelreg.chunk_packs import (
    MAX_UPLOADED_PACK,
    PackedChunk,
    PackWriter,
    check_layout,
    insert_missing,
)
from modelreg.chunk_reader import BaseBytes, ChunkedFile, ChunkedReader, Location
from modelreg.chunking import Piece
from modelreg.errors import Conflict, IntegrityError, InvalidInput, NotFound
from modelreg.manifest import is_digest

if TYPE_CHECKING:
    from modelreg.db import Database

_files, _chunks, _packs = schema.chunked_files, schema.chunks, schema.chunk_packs
_BATCH = 500  # ids per IN (...) query
_FRAMES_BYTES = 16 << 20  # frame bytes of an upload checked and stored at a time
_REPACK_BELOW = 0.5  # a pack whose live chunks fill less than this share is rewritten


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
        chunked = sorted(
            self.db.read(lambda conn: list(conn.execute(sa.select(_files.c.digest)).scalars()))
        )
        seen = set(chunked)
        for digest in self.inner:
            if digest not in seen:
                yield digest
        yield from chunked

    def check(self) -> None:
        self.inner.check()

    def put_pack(self, name: str, parts: Sequence[bytes]) -> None:
        self.inner.put_pack(name, parts)

    def read_pack(self, name: str, start: int, length: int) -> bytes:
        return self.inner.read_pack(name, start, length)

    def delete_pack(self, name: str) -> None:
        self.inner.delete_pack(name)

    def packs(self) -> Iterator[tuple[str, float]]:
        return self.inner.packs()

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

    def pack_length(self, name: str) -> int | None:
        """The size of pack ``name`` as recorded; None for a pack without a row."""
        query = sa.select(_packs.c.size).where(_packs.c.name == name)
        found = self.db.read(lambda conn: conn.execute(query).scalar())
        return None if found is None else int(found)

    def pack_bytes(self) -> int:
        """The bytes of every pack recorded."""
        query = sa.select(sa.func.coalesce(sa.func.sum(_packs.c.size), 0))
        return int(self.db.read(lambda conn: conn.execute(query).scalar_one()))

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

    def _base_to_write(self, base: str | None) -> ChunkedFile | str | None:
        """The base a new file's deltas are taken against, marked re-used now so that gc's
        grace period keeps it while the file is stored (the commit checks it is still
        there)."""
        root = self._base_for(base)
        if root is not None:
            self.refresh(root.digest if isinstance(root, ChunkedFile) else root)
        return root

    def _put_chunked(
        self, stream: Readable, digest: str | None, base: str | None
    ) -> tuple[str, int]:
        """Cut, name and store a stream's new chunks; each block read is hashed in a
        second thread while its chunks are named and stored."""
        sha = hashlib.sha256()
        root = self._base_to_write(base)
        reader = BaseBytes(self, root) if root is not None else None
        writer = PackWriter(self)
        hint = chunking.Compressibility()
        pieces: list[Piece] = []
        offset = 0
        hashing: concurrent.futures.Future[None] | None = None
        try:
            with concurrent.futures.ThreadPoolExecutor(1, "modelreg-sha256") as hasher:
                for data, _, chunks in chunking.blocks(stream):
                    if hashing is not None:
                        hashing.result()
                    hashing = hasher.submit(sha.update, data)
                    names = [chunking.chunk_id(chunk) for chunk in chunks]
                    offset = self._add_chunks(chunks, names, offset, pieces, writer, reader, hint)
                if hashing is not None:
                    hashing.result()
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

    def _add_chunks(
        self,
        chunks: list[memoryview],
        names: list[bytes],
        offset: int,
        pieces: list[Piece],
        writer: PackWriter,
        reader: BaseBytes | None,
        hint: chunking.Compressibility,
    ) -> int:
        """Add a block's chunks to a file's pieces, storing those the store lacks."""
        held = set(self.locations(names)) | writer.ids
        todo: list[tuple[int, memoryview, bytes, bytes | None]] = []
        for name, data in zip(names, chunks, strict=True):
            if name in held:
                pieces.append(Piece(name, len(data), False))
            else:
                around = reader.read_at(offset, len(data)) if reader is not None else None
                todo.append((len(pieces), data, name, around))
                pieces.append(Piece(name, len(data), False))  # replaced once encoded
            offset += len(data)
        encoded = [chunking.encode(data, name, around, hint) for _, data, name, around in todo]
        deltas = [e.piece.chunk for e in encoded if e.piece.xor]
        held_deltas = set(self.locations(deltas)) if deltas else set()
        for (index, _, _, _), done in zip(todo, encoded, strict=True):
            pieces[index] = done.piece
            name = done.piece.chunk
            if name not in held_deltas and name not in writer.ids:
                writer.add(name, done.piece.size, done.codec, done.stored)
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
            if file.base is not None:
                base_row = sa.select(_files.c.digest).where(_files.c.digest == file.base)
                if not conn.execute(base_row).first() and not self.inner.exists(file.base):
                    raise Conflict(
                        f"base file {file.base} of file {file.digest} was collected while it"
                        " was stored: store it again"
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

    def put_frames(self, stream: Readable, digest: str, base: str | None = None) -> tuple[int, int]:
        """Store file ``digest`` from a client's upload: its chunks in file order
        (``chunking.frame`` each), a chunk the store holds sent as a reference only. Every
        chunk is checked against its name and the file against ``digest`` as they arrive,
        in one pass; with ``base``, a new chunk is stored as its XOR with the base file's
        bytes at its offset where that is smaller. Returns (size, bytes of new chunks
        stored). A chunk that fails, a reference to a chunk not held, or a file that does
        not hash to ``digest`` is refused with InvalidInput, and no file is recorded (new
        chunks stored meanwhile stay, to be reused or collected by gc)."""
        check_digest(digest)
        root = self._base_to_write(base)
        if base is not None and root is None:
            raise InvalidInput(f"base file {base} is not in the store")
        reader = BaseBytes(self, root) if root is not None else None
        writer = PackWriter(self)
        hint = chunking.Compressibility()
        sha = hashlib.sha256()
        pieces: list[Piece] = []
        batch: list[chunking.Frame] = []
        offset = filled = 0
        try:
            for frame in chunking.read_frames(stream):
                if frame.offset != offset:
                    raise InvalidInput(
                        f"chunk {len(pieces) + len(batch)} of the upload starts at byte"
                        f" {frame.offset}, not {offset}: chunks are sent in file order"
                    )
                batch.append(frame)
                offset += frame.size
                filled += frame.size
                if len(batch) >= 256 or filled >= _FRAMES_BYTES:
                    self._put_frames(batch, sha, pieces, writer, reader, hint)
                    batch, filled = [], 0
            self._put_frames(batch, sha, pieces, writer, reader, hint)
            writer.flush()
        finally:
            if reader is not None:
                reader.close()
        if sha.hexdigest() != digest:
            raise InvalidInput(
                f"the uploaded chunks make a file of sha256 {sha.hexdigest()}, not {digest}"
            )
        if not pieces:
            raise InvalidInput("an upload of a chunked file has at least one chunk")
        used = None
        if root is not None and any(p.xor for p in pieces):
            used = root.digest if isinstance(root, ChunkedFile) else root
        self._commit(ChunkedFile(digest, offset, used, pieces))
        return offset, writer.written

    def _put_frames(
        self,
        frames: list[chunking.Frame],
        sha: Any,
        pieces: list[Piece],
        writer: PackWriter,
        reader: BaseBytes | None,
        hint: chunking.Compressibility,
    ) -> None:
        refs = [Piece(f.chunk, f.size, False) for f in frames if f.codec == chunking.REF]
        where = self.locations(p.chunk for p in refs)
        for ref in refs:
            if ref.chunk not in where:
                raise Conflict(
                    f"an upload names chunk {ref.chunk.hex()}, which the store does not hold"
                    " (never sent, or collected while the upload ran): upload the file again"
                )
            if where[ref.chunk][3] != ref.size:
                raise InvalidInput(
                    f"an upload names chunk {ref.chunk.hex()} as {ref.size} bytes: it holds"
                    f" {where[ref.chunk][3]}"
                )
        try:
            held_bytes = iter(self.read_pieces(refs))
        except IntegrityError as exc:
            raise InvalidInput(f"an upload names a chunk the store cannot give: {exc}") from None
        held = set(self.locations(f.chunk for f in frames if f.codec != chunking.REF))
        for frame in frames:
            if frame.codec == chunking.REF:
                data = next(held_bytes)
                sha.update(data)
                pieces.append(Piece(frame.chunk, frame.size, False))
                continue
            try:
                data = chunking.decompress(frame.codec, frame.stored, frame.size)
                chunking.check_chunk(frame.chunk, data)
            except IntegrityError as exc:
                raise InvalidInput(f"an uploaded chunk was refused: {exc}") from None
            sha.update(data)
            if frame.chunk in held or frame.chunk in writer.ids:
                pieces.append(Piece(frame.chunk, frame.size, False))
                continue
            around = reader.read_at(frame.offset, frame.size) if reader is not None else None
            if around is None:  # kept as the client compressed it
                pieces.append(Piece(frame.chunk, frame.size, False))
                writer.add(frame.chunk, frame.size, frame.codec, frame.stored)
                continue
            encoded = chunking.encode(data, frame.chunk, around, hint)
            pieces.append(encoded.piece)
            name = encoded.piece.chunk
            if name not in writer.ids and not (encoded.piece.xor and self.locations([name])):
                writer.add(name, frame.size, encoded.codec, encoded.stored)

    # -- packs a client uploads straight to the bucket ------------------------------------

    def start_pack_upload(self) -> tuple[str, str | None]:
        """Where a client sends a pack of new chunks itself: (upload id, presigned URL), the
        URL None when the pack comes through the server (``receive_pack_upload``). Conflict
        from a store that takes no pack uploads (chunks then go with ``put_frames``)."""
        start = getattr(self.inner, "start_pack_upload", None)
        if start is None:
            raise Conflict(
                "this store takes no pack uploads: send the chunks with PUT /files/{digest}"
            )
        token, url = start()
        return str(token), None if url is None else str(url)

    def receive_pack_upload(self, token: str, stream: Readable) -> int:
        """Take the bytes of the pack for ``token`` when they come through the server."""
        receive = getattr(self.inner, "receive_pack_upload", None)
        if receive is None:
            raise Conflict(
                "packs are uploaded straight to this server's bucket: PUT the pack to the URL"
                " that POST /packs/uploads gave"
            )
        return int(receive(token, stream, MAX_UPLOADED_PACK))

    def finish_pack_upload(self, token: str, chunks: list[PackedChunk]) -> tuple[str, int]:
        """Take the pack uploaded for ``token`` into the store once every chunk in it is
        checked against its name: ``chunks`` lists them back to back from byte 0, the
        pack's whole content. Returns the new pack's name and size. Until this returns,
        nothing names the pack's chunks; a pack that fails is not kept."""
        finish = getattr(self.inner, "finish_pack_upload", None)
        if finish is None:
            raise Conflict("this store takes no pack uploads: no pack upload to finish")
        size = check_layout(chunks)
        name = secrets.token_hex(16)
        pack_row = {"name": name, "size": size, "created_at": timestamps.now()}
        # the row first, as PackWriter does: gc leaves a pack with a row alone for its grace
        # period, and drops it (a row without chunks) after that
        self.db.write(lambda conn: insert_missing(conn, _packs, [pack_row], "name"))

        def check(stream: Readable) -> int:
            for i, chunk in enumerate(chunks):
                stored = chunking.read_up_to(stream, chunk.length)
                try:
                    if len(stored) != chunk.length:
                        raise IntegrityError(f"the pack ends inside chunk {i}")
                    raw = chunking.decompress(chunk.codec, stored, chunk.size)
                    chunking.check_chunk(chunk.name, raw)
                except IntegrityError as exc:
                    raise InvalidInput(f"uploaded pack {token} was refused: {exc}") from None
            if stream.read(1):
                raise InvalidInput(f"uploaded pack {token} holds more than the {size} bytes listed")
            return size

        try:
            finish(token, name, size, check)
        except BaseException:
            self.db.write(lambda conn: conn.execute(_packs.delete().where(_packs.c.name == name)))
            raise
        rows = [
            {
                "id": c.name,
                "pack": name,
                "offset": c.offset,
                "length": c.length,
                "size": c.size,
                "codec": c.codec,
            }
            for c in chunks
        ]

        def record(conn: Connection) -> None:
            self.db.lock_blobs(conn)
            if not conn.execute(sa.select(_packs.c.name).where(_packs.c.name == name)).first():
                raise Conflict(f"pack {name} was collected while it was checked: upload it again")
            insert_missing(conn, _chunks, rows, "id")

        self.db.write(record)
        return name, size

    def read_pieces(self, pieces: list[Piece]) -> list[bytes]:
        """The bytes of plain pieces, each checked against its name."""
        if not pieces:
            return []
        total = sum(p.size for p in pieces)
        with ChunkedReader(self, ChunkedFile("0" * 64, total, None, pieces), 0) as reader:
            return [chunking.read_up_to(reader, p.size) for p in pieces]

    def convert(self, digest: str) -> bool:
        """Store whole blob ``digest`` as chunks, then delete the whole blob; False (nothing
        done) when it is not a whole blob or is smaller than ``chunking.CHUNKED_FROM``. Its
        bytes are checked against ``digest`` on the way (IntegrityError, and the blob kept,
        when they fail), and readers see the same file throughout: the chunked file is
        committed before the whole blob goes. A conversion that stopped between the two is
        finished."""
        if not self.inner.exists(digest) or self.inner.size(digest) < chunking.CHUNKED_FROM:
            return False
        if self.chunked(digest) is None:
            with self.inner.open(digest) as stream:
                self._put_chunked(stream, digest, None)

        def drop(conn: Connection) -> None:
            self.db.lock_blobs(conn, delete=True)
            if self._row(digest) is not None:
                self.inner.delete(digest)

        self.db.write(drop)
        return True

    # -- gc and fsck -----------------------------------------------------------------------

    def _live_chunks(self, conn: Connection) -> set[bytes]:
        query = sa.select(_files.c.pieces)
        live: set[bytes] = set()
        for pieces in conn.execute(query).scalars():
            live.update(p.chunk for p in chunking.decode_pieces(pieces))
        return live

    def collect_packs(self, *, grace_seconds: float, dry_run: bool) -> PackReport:
        """Delete packs none of whose chunks a stored file uses, and rewrite packs that
        live chunks fill less than half of. Packs written within the grace period stay, and
        so does a pack object without a row that is that recent (a write in progress)."""
        cutoff_seconds = _now_seconds() - grace_seconds
        cutoff = timestamps.from_ms(max(0, int(cutoff_seconds * 1000)), "cutoff")
        live = self.db.read(self._live_chunks)
        packs = self.db.read(
            lambda conn: list(
                conn.execute(sa.select(_packs.c.name, _packs.c.size, _packs.c.created_at))
            )
        )
        report = PackReport()
        for pack in packs:
            if pack.created_at >= cutoff:
                continue
            rows = self._pack_chunks(pack.name)
            used = [r for r in rows if bytes(r.id) in live]
            used_bytes = sum(r.length for r in used)
            if used and used_bytes >= pack.size * _REPACK_BELOW:
                continue
            if dry_run:
                (report.repacked if used else report.removed).append(pack.name)
                continue
            if used:
                self._repack(pack.name, pack.size, used)
            if self._drop_pack(pack.name):
                (report.repacked if used else report.removed).append(pack.name)
                report.freed += pack.size - used_bytes
        known = {pack.name for pack in packs}
        for name, written in list(self.inner.packs()):
            if name in known or written >= cutoff_seconds:
                continue
            if dry_run or self._drop_orphan(name):
                report.removed.append(name)
        return report

    def _drop_orphan(self, name: str) -> bool:
        """Delete a pack object that has no row, checked under the lock that a writer's
        transaction holds until its pack's row is committed."""

        def orphan(conn: Connection) -> bool:
            self.db.lock_blobs(conn, delete=True)
            query = sa.select(_packs.c.name).where(_packs.c.name == name)
            return conn.execute(query).first() is None

        if not self.db.write(orphan):
            return False
        self.inner.delete_pack(name)
        return True

    def _repack(self, pack: str, size: int, rows: list[Any]) -> None:
        """Copy a sparse pack's live chunks into new packs and point their rows there."""
        writer = PackWriter(self, replace=True)
        data = self.inner.read_pack(pack, 0, size)
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
            self.db.lock_blobs(conn, delete=True)
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
            conn.execute(_packs.delete().where(_packs.c.name == pack))
            return True

        if not self.db.write(drop):
            return False
        # After the commit: a gc that fails here leaves an object without a row, which the
        # next one removes, never a row without its object.
        self.inner.delete_pack(pack)
        return True

    def check_packs(self) -> PackCheck:
        """Read every pack that holds chunks and check each of its chunks against its name,
        and find chunks that files name but no pack holds. (A pack whose chunks were never
        recorded is a write that did not finish: gc removes it, fsck does not count it.)"""
        holding = sa.select(_packs.c.name, _packs.c.size).where(
            sa.exists().where(_chunks.c.pack == _packs.c.name)
        )
        packs = self.db.read(lambda conn: list(conn.execute(holding)))
        check = PackCheck(packs=len(packs))
        for pack in packs:
            try:
                data = self.inner.read_pack(pack.name, 0, pack.size)
                for row in self._pack_chunks(pack.name):
                    stored = data[row.offset : row.offset + row.length]
                    raw = chunking.decompress(row.codec, stored, row.size)
                    chunking.check_chunk(bytes(row.id), raw)
            except NotFound:
                check.missing.append(pack.name)
            except IntegrityError:
                check.corrupt.append(pack.name)
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
