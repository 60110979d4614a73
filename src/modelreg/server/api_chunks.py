"""Large files moved as chunks: the client asks which chunks the server lacks, uploads only
those, then commits the file as the list of its pieces. The server checks every chunk against
its name as it arrives, and reads the whole file back against its sha256 before the file
exists (see ``modelreg.chunk_store``)."""

from __future__ import annotations

import base64
import binascii
import re
from typing import Annotated

import anyio.to_thread
from fastapi import APIRouter, Depends, Query, Request
from pydantic import Field
from starlette.requests import ClientDisconnect

from modelreg import chunking
from modelreg.errors import IntegrityError, InvalidInput
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


@router.put("/chunks", status_code=201, tags=["blobs"])
async def upload_chunks(
    request: Request,
    reg: Writer,
    base: Annotated[
        str | None,
        Query(description="a stored file to store each chunk against as an XOR delta"),
    ] = None,
) -> JSON:
    """Store the chunks of the body (``chunking.frame`` each: name, offset in its file,
    size, codec, stored length, bytes), each checked against its name. Answers, per chunk
    in order, the name it is stored under and whether that is a delta from ``base``."""
    if base is not None and not is_digest(base):
        raise InvalidInput(f"base {base[:80]!r} is not a sha256 hex digest")
    reader = BodyReader(request)
    try:
        stored = await anyio.to_thread.run_sync(lambda: reg.blobs.store_frames(reader, base))
    except ClientDisconnect:
        raise InvalidInput("the chunk upload ended before its body did") from None
    return {"stored": [[name.hex(), delta] for name, delta in stored]}


class ChunkedFileBody(Body):
    digest: str
    size: int = Field(ge=0)
    base: str | None = None
    pieces: str = Field(description="the pieces, base64 of 37 bytes each (chunking.Piece)")


@router.post("/files", status_code=201, tags=["blobs"])
def commit_file(reg: Writer, body: ChunkedFileBody) -> JSON:
    """Make a file out of stored chunks. It is read back, every chunk checked, and must
    hash to ``digest``; otherwise nothing is recorded."""
    for field, value in (("digest", body.digest), ("base", body.base)):
        if value is not None and not is_digest(value):
            raise InvalidInput(f"{field} {value[:80]!r} is not a sha256 hex digest")
    try:
        pieces = chunking.decode_pieces(base64.b64decode(body.pieces, validate=True))
    except (binascii.Error, IntegrityError) as exc:
        raise InvalidInput(f"pieces is not base64 of whole 37-byte pieces: {exc}") from None
    if not pieces:
        raise InvalidInput("a chunked file has at least one piece")
    try:
        reg.blobs.commit_pieces(body.digest, body.size, pieces, body.base)
    except IntegrityError as exc:
        raise InvalidInput(f"the chunks do not make file {body.digest}: {exc}") from None
    return {"digest": body.digest, "size": body.size}
