"""Packs of chunks: the writer that fills and stores them, and the layout a client's own
pack must have.

``PackWriter`` collects new chunks into a pack of about ``chunking.PACK_SIZE`` bytes and
stores it, then names its chunks, under the lock gc deletes with (see
``modelreg.chunk_store``, whose files these chunks make). ``check_layout`` checks the listing
a client sends with a pack it uploaded itself.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from modelreg import chunking, schema, timestamps
from modelreg.errors import InvalidInput

if TYPE_CHECKING:
    from modelreg.chunk_store import ChunkedBlobStore

_chunks, _packs = schema.chunks, schema.chunk_packs


class PackedChunk(NamedTuple):
    """A chunk in a pack a client uploaded: its name, where its stored bytes lie in the
    pack, its size and its codec."""

    name: bytes
    offset: int
    length: int
    size: int
    codec: int


MAX_UPLOADED_PACK = 256 << 20  # bytes of a pack a client uploads
MAX_PACKED_CHUNKS = 65_536  # chunks in it


def check_layout(chunks: list[PackedChunk]) -> int:
    """The size of a pack that holds ``chunks`` back to back from byte 0; InvalidInput
    naming the first that does not fit."""
    if not 1 <= len(chunks) <= MAX_PACKED_CHUNKS:
        raise InvalidInput(f"a pack holds 1 to {MAX_PACKED_CHUNKS} chunks, not {len(chunks)}")
    at = 0
    seen: set[bytes] = set()
    for i, c in enumerate(chunks):
        if c.offset != at:
            raise InvalidInput(
                f"chunks[{i}] starts at byte {c.offset}, not {at}: list them back to back"
            )
        if not 1 <= c.length <= chunking.MAX_CHUNK + 1024 or not 1 <= c.size <= chunking.MAX_CHUNK:
            raise InvalidInput(
                f"chunks[{i}] is {c.size} bytes stored in {c.length}: a chunk is 1 to"
                f" {chunking.MAX_CHUNK} bytes"
            )
        if c.codec not in (chunking.RAW, chunking.ZSTD):
            raise InvalidInput(
                f"chunks[{i}] has codec {c.codec}, not {chunking.RAW} or {chunking.ZSTD}"
            )
        if c.name in seen:
            raise InvalidInput(f"chunks[{i}] is chunk {c.name.hex()} again: a pack holds each once")
        seen.add(c.name)
        at += c.length
    if at > MAX_UPLOADED_PACK:
        raise InvalidInput(f"a pack holds at most {MAX_UPLOADED_PACK} bytes, not {at}")
    return at


class PackWriter:
    """Collects new chunks into a pack and stores it once it is full.

    The pack is stored first, its rows after, in a transaction holding the lock gc takes to
    delete: if gc took the new pack for an unreferenced blob meanwhile, it is stored again
    there, so no chunk is ever named before its bytes are stored and none is left named
    without them. With ``replace``, rows of chunks already stored elsewhere are moved to
    the new pack (gc's repacking); otherwise a chunk another writer stored meanwhile keeps
    its first place.
    """

    def __init__(self, store: ChunkedBlobStore, *, replace: bool = False) -> None:
        self._store = store
        self._replace = replace
        self._parts: list[bytes] = []
        self._size = 0
        self._rows: list[dict[str, Any]] = []
        self.ids: set[bytes] = set()
        self.written = 0  # stored bytes of the packs written so far

    def add(self, name: bytes, size: int, codec: int, stored: bytes) -> None:
        self._rows.append(
            {"id": name, "offset": self._size, "length": len(stored), "size": size, "codec": codec}
        )
        self._parts.append(stored)
        self._size += len(stored)
        self.ids.add(name)
        if self._size >= self._store.pack_size:
            self.flush()

    def flush(self) -> None:
        """Store the pack: its row first (so that gc, finding its object, knows it is being
        written), then its object, then its chunks' rows, in a transaction holding the lock
        gc deletes under, which stores the pack again if gc took it meanwhile."""
        if not self._rows:
            return
        store, parts = self._store, self._parts
        name = secrets.token_hex(16)
        pack_row = {"name": name, "size": self._size, "created_at": timestamps.now()}
        store.db.write(lambda conn: insert_missing(conn, _packs, [pack_row], "name"))
        store.inner.put_pack(name, parts)
        rows = [{**row, "pack": name} for row in self._rows]

        def record(conn: Connection) -> None:
            store.db.lock_blobs(conn)
            if not conn.execute(sa.select(_packs.c.name).where(_packs.c.name == name)).first():
                insert_missing(conn, _packs, [pack_row], "name")  # collected meanwhile
                store.inner.put_pack(name, parts)
            if self._replace:
                for row in rows:
                    conn.execute(
                        _chunks.update()
                        .where(_chunks.c.id == row["id"])
                        .values(pack=name, offset=row["offset"], length=row["length"])
                    )
            else:
                insert_missing(conn, _chunks, rows, "id")

        store.db.write(record)
        self.written += self._size
        self._parts = []
        self._size = 0
        self._rows = []


def insert_missing(conn: Connection, table: sa.Table, rows: list[dict[str, Any]], key: str) -> None:
    """INSERT the rows whose ``key`` is not in ``table`` yet (a concurrent writer's stays)."""
    from sqlalchemy.dialects import postgresql, sqlite

    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(table).on_conflict_do_nothing(index_elements=[key])
    conn.execute(statement, rows)
