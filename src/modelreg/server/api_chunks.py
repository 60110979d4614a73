"""Large files moved as chunks: the client asks which chunks the server lacks, then sends the
file as its chunks in order, only those the server lacks in full, the others by name. The
server checks every chunk against its name and the whole file against its sha256 as they
arrive, and records the file only then (see ``modelreg.chunk_store``)."""

from __future__ import annotations

import re
from typing import Annotated

import anyio.to_thread
from fastapi import APIRouter, Depends, Query, Request
from pydantic import Field
from starlette.requests import ClientDisconnect

from modelreg.errors import InvalidInput
from modelreg.manifest import is_digest
from modelreg.server.api import JSON, Body, BodyReader, Writer
from modelreg.server.auth import single_values
from modelreg.server.problems import PROBLEMS

router = APIRouter(prefix="/api/v1", responses=PROBLEMS, dependencies=[Depends(single_values())])

_NAME = re.compile(r"[0-9a-f]{64}")
MAX_NAMES = 200_000  # chunk names in one question: 12 GiB of file at 64 KiB a chunk


class ChunkNames(Body):
    chunks: list[str] = Field(max_length=MAX_NAMES)


def _names(hexes: list[str]) -> list[bytes]:
    for i, name in enumerate(hexes):
        if not _NAME.fullmatch(name):
            raise InvalidInput(f"chunks[{i}] is {name[:80]!r}, not a BLAKE3 name (64 hex digits)")
    return [bytes.fromhex(name) for name in hexes]


@router.post("/chunks/missing", tags=["blobs"])
def missing_chunks(reg: Writer, body: ChunkNames) -> JSON:
    """Which of these chunks (BLAKE3 names, hex) the store does not hold: the only ones a
    client uploads."""
    return {"missing": [name.hex() for name in reg.blobs.missing_chunks(_names(body.chunks))]}


@router.put("/files/{digest}", status_code=201, tags=["blobs"])
async def upload_chunked_file(
    digest: str,
    request: Request,
    reg: Writer,
    base: Annotated[
        str | None,
        Query(description="a stored file to keep each new chunk against as an XOR delta"),
    ] = None,
) -> JSON:
    """Store a file sent as its chunks in file order (``chunking.frame`` each: name, offset,
    size, codec, stored length, bytes; codec 255 and no bytes for a chunk the server holds).
    Each chunk is checked against its name and the whole file against ``digest`` as they
    arrive; only then is the file recorded."""
    if not is_digest(digest):
        raise InvalidInput(f"{digest[:80]!r} is not a sha256 hex digest")
    if base is not None and not is_digest(base):
        raise InvalidInput(f"base {base[:80]!r} is not a sha256 hex digest")
    if await anyio.to_thread.run_sync(reg.blobs.refresh, digest):
        return {"digest": digest, "stored": 0}
    reader = BodyReader(request)
    try:
        _, stored = await anyio.to_thread.run_sync(
            lambda: reg.blobs.put_frames(reader, digest, base)
        )
    except ClientDisconnect:
        raise InvalidInput(f"the upload of {digest} ended before its body did") from None
    return {"digest": digest, "stored": stored}
