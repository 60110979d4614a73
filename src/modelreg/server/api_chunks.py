"""Large files moved as chunks (see docs/storage.md and ``modelreg.chunk_store``).

Up: the client asks which chunks the server lacks, sends those in packs (straight to the
bucket on S3, by presigned URL), which the server checks chunk by chunk before they count as
held, then sends the file as its chunks in order, by name (or, with a base, the new ones in
full). The server checks the whole file against its sha256 and records it only then.

Down: the client asks where the chunks it lacks are stored and reads those ranges of their
packs, from the bucket or from this server, checking each chunk against its name."""

from __future__ import annotations

import base64
import re
from typing import Annotated

import anyio.to_thread
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse, Response
from pydantic import Field
from starlette.requests import ClientDisconnect

from modelreg import chunking
from modelreg.blobs import LocalBlobStore, is_pack_name
from modelreg.chunk_packs import MAX_PACKED_CHUNKS, PackedChunk
from modelreg.errors import InvalidInput, NotFound
from modelreg.manifest import is_digest
from modelreg.s3 import S3BlobStore
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
    client rebuilds it from the chunks it holds and those it reads where
    ``POST /chunks/locate`` says they are. 404 for a file stored whole: read it with
    ``GET /blobs/{digest}``."""
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


PACK_URL_SECONDS = 900  # how long a presigned URL of a pack on S3 reads


@router.post("/chunks/locate", tags=["blobs"])
def locate_chunks(reg: Reader, body: ChunkNames) -> JSON:
    """Where each chunk named is stored, in the order asked: ``[name, pack, offset, length,
    size, codec]`` (its stored bytes are ``length`` bytes of the pack from ``offset``;
    ``size`` bytes once decompressed by ``codec``), and for each pack a URL that serves
    Range requests: presigned straight to the bucket on S3 (for 15 minutes), else this
    server's ``GET /packs/{name}``. The client reads ranges, several at once, and checks
    each chunk against its name. 404 names a chunk the store does not hold."""
    names = _names(body.chunks)
    where = reg.blobs.locations(names)
    for name in names:
        if name not in where:
            raise NotFound(f"chunk {name.hex()} is not in the store")
    inner = reg.blobs.inner
    urls = {}
    for pack in sorted({where[name][0] for name in names}):
        if isinstance(inner, S3BlobStore):
            urls[pack] = inner.presigned_pack_url(pack, expires=PACK_URL_SECONDS)
        else:
            urls[pack] = f"/api/v1/packs/{pack}"
    return {"chunks": [[name.hex(), *where[name]] for name in names], "packs": urls}


MAX_RANGE = 16 << 20  # bytes of a pack one request reads from a store that is not a folder


class _PackFile(FileResponse):
    chunk_size = 1 << 20


@router.get(
    "/packs/{name}",
    tags=["blobs"],
    response_class=Response,
    responses={
        200: {"content": {"application/octet-stream": {}}},
        206: {"description": "The range asked for"},
        416: {"description": "Range not satisfiable"},
    },
)
def read_pack(reg: Reader, name: str, request: Request) -> Response:
    """A pack's stored bytes, or the range asked for (``Range: bytes=A-B``): compressed chunks
    one after another, as ``POST /chunks/locate`` places them. Not checked here: whoever
    reads a chunk checks it against its name. A pack in a folder is sent as a file (without
    a copy through Python where the ASGI server can); from another store, a range is
    required, and at most 16 MiB of it is sent (its Content-Range says how much)."""
    if not is_pack_name(name):
        raise InvalidInput(f"{name[:80]!r} is not a pack name (32 hex digits)")
    inner = reg.blobs.inner
    binary = "application/octet-stream"
    if isinstance(inner, LocalBlobStore):
        path = inner.pack_path(name)
        if not path.is_file():
            raise NotFound(f"pack {name} is not in the store")
        return _PackFile(path, media_type=binary)
    asked = request.headers.get("range")
    found = _RANGE.fullmatch(asked or "")
    if found is None:
        raise InvalidInput(
            f"a pack in this store is read a range at a time (Range: bytes=A-B), not {asked!r}"
        )
    start, end = int(found.group(1)), int(found.group(2))
    size = reg.blobs.pack_length(name)
    if size is None:
        raise NotFound(f"pack {name} is not in the store")
    if start >= size or end < start:
        return Response(status_code=416, headers={"Content-Range": f"bytes */{size}"})
    end = min(end, size - 1, start + MAX_RANGE - 1)
    data = reg.blobs.read_pack(name, start, end - start + 1)
    headers = {"Content-Range": f"bytes {start}-{end}/{size}", "Accept-Ranges": "bytes"}
    return Response(data, status_code=206, headers=headers, media_type=binary)


@router.post("/packs/uploads", status_code=201, tags=["blobs"])
def start_pack_upload(reg: Writer) -> JSON:
    """Where to send a pack of new chunks, and the id that finishes it: on S3 a presigned URL
    to PUT it straight to the bucket (for an hour), else this server's
    ``PUT /packs/uploads/{id}``. A client sends several packs at once."""
    upload, url = reg.blobs.start_pack_upload()
    return {"id": upload, "url": url if url is not None else f"/api/v1/packs/uploads/{upload}"}


@router.put("/packs/uploads/{upload}", status_code=201, tags=["blobs"])
async def receive_pack_upload(upload: str, request: Request, reg: Writer) -> JSON:
    """The bytes of a pack, where packs are not in S3: kept aside, unchecked, until
    ``POST /packs/uploads/{id}`` lists and checks them. Sent once per id; at most 256 MiB."""
    reader = BodyReader(request)
    try:
        size = await anyio.to_thread.run_sync(lambda: reg.blobs.receive_pack_upload(upload, reader))
    except ClientDisconnect:
        raise InvalidInput(f"the pack of upload {upload[:80]} ended before its body did") from None
    return {"id": upload, "size": size}


class PackChunks(Body):
    chunks: list[list[str | int]] = Field(max_length=MAX_PACKED_CHUNKS)


def _packed(listed: list[list[str | int]]) -> list[PackedChunk]:
    chunks = []
    for i, item in enumerate(listed):
        name, numbers = (item[0], item[1:]) if len(item) == 5 else ("", [])
        offset, length, size, codec = [n if isinstance(n, int) else -1 for n in numbers] or [-1] * 4
        if (
            not isinstance(name, str)
            or not _NAME.fullmatch(name)
            or min(offset, length, size, codec) < 0
        ):
            raise InvalidInput(
                f"chunks[{i}] is not [name, offset, length, size, codec]: a BLAKE3 name (64 hex"
                " digits), then four whole numbers"
            )
        chunks.append(PackedChunk(bytes.fromhex(name), offset, length, size, codec))
    return chunks


@router.post("/packs/uploads/{upload}", tags=["blobs"])
def finish_pack_upload(reg: Writer, upload: str, body: PackChunks) -> JSON:
    """Take an uploaded pack into the store: ``chunks`` lists what it holds, back to back
    from byte 0, as ``[name, offset, length, size, codec]``. The server reads the pack
    from the bucket and checks every chunk against its name first; then the chunks count
    as held, for ``PUT /files/{digest}`` to name. A pack that fails is dropped (400)."""
    chunks = _packed(body.chunks)
    pack, size = reg.blobs.finish_pack_upload(upload, chunks)
    return {"pack": pack, "size": size, "chunks": len(chunks)}


_RANGE = re.compile(r"bytes=(\d{1,15})-(\d{1,15})")
