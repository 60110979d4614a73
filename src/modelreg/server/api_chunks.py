"""Large files moved as chunks: the client asks which chunks the server lacks, then sends the
file as its chunks in order, only those the server lacks in full, the others by name. The
server checks every chunk against its name and the whole file against its sha256 as they
arrive, and records the file only then (see ``modelreg.chunk_store``)."""

from __future__ import annotations

import base64
import re
from typing import Annotated

import anyio.to_thread
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import Field
from starlette.requests import ClientDisconnect

from modelreg import chunking
from modelreg.errors import InvalidInput, NotFound
from modelreg.manifest import is_digest
from modelreg.server.api import JSON, Body, BodyReader, Reader, Writer
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


@router.get("/files/{digest}", tags=["blobs"])
def chunked_file(reg: Reader, digest: str) -> JSON:
    """How a file stored as chunks is made: its size, the base file its delta pieces are
    XORed with, and its pieces (base64, 37 bytes each: BLAKE3 name, size, delta flag). A
    client rebuilds it from the chunks it holds and those it fetches with
    ``POST /chunks/read``. 404 for a file stored whole: read it with ``GET /blobs/{digest}``."""
    if not is_digest(digest):
        raise InvalidInput(f"{digest[:80]!r} is not a sha256 hex digest")
    found = reg.blobs.chunked(digest)
    if found is None:
        raise NotFound(f"file {digest} is not stored as chunks")
    return {
        "digest": digest,
        "size": found.size,
        "base": found.base,
        "pieces": base64.b64encode(chunking.encode_pieces(found.pieces)).decode("ascii"),
    }


MAX_READ = 4096  # chunks in one read: about 256 MiB of file


@router.post(
    "/chunks/read",
    tags=["blobs"],
    response_class=Response,
    responses={200: {"content": {"application/octet-stream": {}}}},
)
def read_chunks(reg: Reader, body: ChunkNames) -> Response:
    """The chunks named, in that order, as they are stored (``chunking.frame`` each, offset
    0): the client checks each against its name. 404 names a chunk the store does not hold;
    chunks holding more than 64 MiB in all are refused (ask for fewer)."""
    if len(body.chunks) > MAX_READ:
        raise InvalidInput(f"at most {MAX_READ} chunks are read at once, not {len(body.chunks)}")
    names = _names(body.chunks)
    if len(set(names)) != len(names):
        raise InvalidInput("a chunk is named twice: name each chunk once")
    frames = [
        chunking.frame(name, 0, size, codec, stored)
        for name, size, codec, stored in reg.blobs.stored_chunks(names)
    ]
    return Response(b"".join(frames), media_type="application/octet-stream")
