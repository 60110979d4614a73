"""The JSON API's core routes: models, versions, blobs, search, comparison and runs.

Each route is a few lines: read the request, call the registry, return its JSON. The rules,
the checks and the audit events are the registry's.
"""

from __future__ import annotations

import base64
import concurrent.futures
import hashlib
import json
import re
from collections.abc import Iterator
from typing import Annotated, Any, BinaryIO

import anyio
import anyio.from_thread
import anyio.to_thread
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.background import BackgroundTask
from starlette.requests import ClientDisconnect

from modelreg import metric_columns, signing, wire
from modelreg.blobs import take
from modelreg.errors import IntegrityError, InvalidInput, RangeNotSatisfiable
from modelreg.local import LocalRegistry
from modelreg.manifest import is_digest
from modelreg.metric_points import MAX_POINTS
from modelreg.records import Comparison, SignatureAdded
from modelreg.server.auth import allow, single_values
from modelreg.server.problems import PROBLEMS, CorruptBlobServed
from modelreg.values import MAX_OFFSET, MAX_PAGE

PAGE = 100  # the page size when a listing does not ask for one
CHUNK = 1024 * 1024

router = APIRouter(prefix="/api/v1", responses=PROBLEMS, dependencies=[Depends(single_values())])

Reader = Annotated[LocalRegistry, Depends(allow("reader"))]
Writer = Annotated[LocalRegistry, Depends(allow("writer"))]
Maintainer = Annotated[LocalRegistry, Depends(allow("maintainer"))]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE)]
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET)]
Text = Annotated[str, Query(max_length=4096)]
JSON = dict[str, Any]


def _json(content: Any) -> Response:
    """The JSON of what the registry returned, as it is: the hot read routes skip FastAPI's
    re-validation of their (already checked) result."""
    return Response(
        json.dumps(content, separators=(",", ":"), ensure_ascii=False).encode(),
        media_type="application/json",
    )


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)  # no "false" -> 0, "1" -> True


# -- models and versions ---------------------------------------------------------------------


@router.get("/models", tags=["models"])
def list_models(
    reg: Reader,
    limit: Limit = PAGE,
    offset: Offset = 0,
    after: Annotated[str | None, Query(max_length=128)] = None,
) -> list[JSON]:
    """Models by name, with version count, latest number and aliases; paginated by offset, or
    by ``after`` (the last name of the page before), which stays put as models are added."""
    return [m.to_dict() for m in reg.models(limit=limit, offset=offset, after=after)]


@router.get("/models/{name}/versions", tags=["models"], response_model=list[JSON])
def list_versions(
    reg: Reader,
    name: str,
    limit: Limit = PAGE,
    offset: Offset = 0,
    before: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
) -> Response:
    """A model's versions, newest first; paginated by offset, or by ``before`` (the last
    number of the page before), which stays put as versions are registered or deleted."""
    found = reg.versions(name, limit=limit, offset=offset, before=before)
    return _json([wire.version_to_json(v) for v in found])


class NewVersionBody(Body):
    files: list[dict[str, Any]]
    params: dict[str, Any] = Field(default_factory=dict)
    metrics: dict[str, Any] = Field(default_factory=dict)
    tags: dict[str, Any] = Field(default_factory=dict)
    description: str = ""
    parents: list[str] = Field(default_factory=list)
    datasets: list[dict[str, Any]] = Field(default_factory=list)
    code: dict[str, Any] = Field(default_factory=dict)
    command: str = ""
    hostname: str = ""
    environment: dict[str, Any] | None = None
    run_id: str | None = None
    signed_by: str | None = Field(default=None, pattern="^[0-9a-f]{64}$")
    public_key: str | None = Field(default=None, max_length=4096)
    signature: str | None = Field(default=None, max_length=4096)


@router.post("/models/{name}/versions", status_code=201, tags=["models"])
def create_version(reg: Writer, name: str, body: NewVersionBody) -> JSON:
    """Create a version from a manifest of blobs already uploaded (see /blobs/missing).

    With ``public_key`` and ``signature`` (of the document that /signing-document gives for
    the same body), the version is created signed, in one transaction, or not at all."""
    fields = body.model_dump(exclude={"public_key", "signature"})
    new = wire.new_version_from_json(name, fields)
    if (body.public_key is None) != (body.signature is None):
        raise InvalidInput("give both public_key and signature, or neither")
    signature = None
    if body.public_key is not None and body.signature is not None:
        key = signing.public_from_pem(body.public_key.encode(), "the public key")
        signature = (key, body.signature)
    version = reg.commit_version(new, signed_by=body.signed_by, signature=signature)
    return wire.version_to_json(version)


@router.post("/models/{name}/versions/signing-document", tags=["signatures"])
def draft_signing_document(reg: Writer, name: str, body: NewVersionBody) -> JSON:
    """The canonical document the version this body would create will have: sign it, and
    send the signature with the same body to create the version signed."""
    if body.public_key is not None or body.signature is not None:
        raise InvalidInput("a signing document is asked for before there is a signature")
    new = wire.new_version_from_json(name, body.model_dump(exclude={"public_key", "signature"}))
    document = reg.draft_signing_document(new)
    return {"document": base64.b64encode(document).decode("ascii")}


@router.get("/versions/{ref:path}", tags=["versions"], response_model=JSON)
def get_version(reg: Reader, ref: str, at: Text | None = None, lineage: bool = True) -> Response:
    """A version by reference (``NAME``, ``NAME/N``, ``NAME@ALIAS`` or UUID), with lineage;
    ``lineage=false`` leaves it out (its ``datasets`` and ``parents`` come instead)."""
    return _json(wire.version_to_json(reg.get(ref, at=at, lineage=lineage)))


@router.get("/search", tags=["versions"], response_model=list[JSON])
def search(
    reg: Reader,
    filter: Text = "",
    model: Text | None = None,
    order_by: Text | None = None,
    limit: Limit = PAGE,
    offset: Offset = 0,
    after: Annotated[str | None, Query(max_length=36)] = None,
) -> Response:
    """Versions matching a filter in the search language; paginated by offset, or by
    ``after`` (the id of the last version of the page before), which stays put as versions
    are registered and is as fast on the thousandth page as on the first."""
    found = reg.search(
        filter, model=model, order_by=order_by, limit=limit, offset=offset, after=after
    )
    return _json([wire.version_to_json(v) for v in found])


@router.get("/compare", tags=["versions"])
def compare(reg: Reader, a: Text, b: Text) -> Comparison:
    """What changed from version ``a`` to version ``b``."""
    return reg.compare(a, b)


class TagBody(Body):
    ref: str
    key: str
    value: Any


@router.put("/tags", tags=["versions"])
def set_tag(reg: Writer, body: TagBody) -> JSON:
    reg.set_tag(body.ref, body.key, body.value)
    return {"ok": True}


@router.delete("/tags", tags=["versions"])
def delete_tag(reg: Writer, ref: Text, key: Text) -> JSON:
    reg.delete_tag(ref, key)
    return {"ok": True}


class DescriptionBody(Body):
    ref: str
    description: Any


@router.put("/description", tags=["versions"])
def set_description(reg: Writer, body: DescriptionBody) -> JSON:
    reg.set_description(body.ref, body.description)
    return {"ok": True}


# -- signatures made by the client ---------------------------------------------------------


@router.get("/signing-document", tags=["signatures"])
def signing_document(reg: Reader, ref: Text) -> JSON:
    """The canonical document a version's signature covers, for a client to sign."""
    return {"document": base64.b64encode(reg.signing_document(ref)).decode("ascii")}


class SignatureBody(Body):
    ref: str
    public_key: str = Field(max_length=4096)
    signature: str = Field(max_length=4096)


@router.post("/signatures", status_code=201, tags=["signatures"])
def add_signature(reg: Writer, body: SignatureBody) -> SignatureAdded:
    """Attach a signature made on the client (the private key never reaches the server);
    refused unless it verifies against the version's records."""
    key = signing.public_from_pem(body.public_key.encode(), "the public key")
    return reg.attach_signature(body.ref, key, body.signature)


# -- blobs --------------------------------------------------------------------------------------

_DIGEST_LIST_MAX = 100_000
_ONE_BY_ONE = 8  # /blobs/missing checks this many digests in its own thread, more in a pool
_AT_ONCE = 8


class DigestsBody(Body):
    digests: list[str] = Field(max_length=_DIGEST_LIST_MAX)


@router.post("/blobs/missing", tags=["blobs"])
def missing_blobs(reg: Writer, body: DigestsBody) -> JSON:
    """Which of these digests the store does not hold: the only ones to upload. Those it
    holds are marked re-used, so that gc's grace period keeps them for the version that is
    about to name them."""
    for digest in body.digests:
        _check_digest(digest)
    digests = list(dict.fromkeys(body.digests))
    held = getattr(reg.blobs, "refresh", reg.blobs.exists)  # a store of another make: exists
    if len(digests) <= _ONE_BY_ONE:
        found = [held(d) for d in digests]
    else:  # on S3 each is a round trip or two: several at once
        with concurrent.futures.ThreadPoolExecutor(_AT_ONCE) as pool:
            found = list(pool.map(held, digests))
    return {"missing": [d for d, ok in zip(digests, found, strict=True) if not ok]}


@router.put("/blobs/{digest}", status_code=201, tags=["blobs"])
async def upload_blob(digest: str, request: Request, reg: Writer) -> JSON:
    """Stream a blob in; it is hashed while written and refused (nothing kept) unless its
    content matches ``digest``. A blob already held is not read again."""
    _check_digest(digest)
    if await anyio.to_thread.run_sync(reg.blobs.exists, digest):
        return {"digest": digest, "stored": False}
    reader = BodyReader(request)
    try:
        _, size = await anyio.to_thread.run_sync(
            lambda: reg.blobs.put(reader, digest=digest)  # type: ignore[arg-type]
        )
    except IntegrityError as exc:
        raise InvalidInput(f"the uploaded bytes do not match digest {digest}: {exc}") from None
    except ClientDisconnect:
        # An interrupted upload (Ctrl-C, a dropped link): nothing was kept, and there is no
        # one left to tell; answered as bad input rather than logged as a server fault.
        raise InvalidInput(
            f"the upload of {digest} ended before its body did: the client disconnected"
        ) from None
    return {"digest": digest, "stored": True, "size": size}


@router.get(
    "/blobs/{digest}",
    tags=["blobs"],
    response_class=Response,
    responses={416: {"description": "Range not satisfiable"}},
)
def download_blob(reg: Reader, digest: str, request: Request) -> Response:
    """A blob's bytes, verified against the digest as they are sent: a blob that fails it
    ends the response before its last bytes. ``Range: bytes=N-`` (also ``bytes=N-M`` with M
    the last byte or past it, and ``bytes=-N``) resumes an interrupted download."""
    _check_digest(digest)
    return blob_response(request, reg, digest)


def blob_response(request: Request, reg: LocalRegistry, digest: str) -> Response:
    """A blob's bytes (from where the request's Range starts), as an attachment that is never
    sniffed, verified against their digest before the response ends."""
    state = request.app.state.modelreg
    size = reg.blobs.size(digest)
    start = _range_start(request.headers.get("range"), size)
    headers = {
        "Accept-Ranges": "bytes",
        "Content-Length": str(size - start),
        "Content-Disposition": f'attachment; filename="{digest}"',
        "X-Content-Type-Options": "nosniff",
        "ETag": f'"{digest}"',
    }
    status = 200
    if request.headers.get("range"):
        status = 206
        headers["Content-Range"] = f"bytes {start}-{size - 1}/{size}"
    binary = "application/octet-stream"
    if size <= CHUNK or digest in state.corrupt_blobs:
        # Checked whole before a byte is sent, so that the client reads an integrity error
        # instead of a cut: a small blob, or one this server has found corrupt before.
        with reg.blobs.open(digest) as stream:
            data = _read_checked(stream, digest, size, state, keep=size <= CHUNK)
        if data is not None:
            return Response(data[start:], status_code=status, headers=headers, media_type=binary)
    stream = reg.blobs.open(digest)
    return StreamingResponse(
        _verified(stream, digest, start, size, state),
        status_code=status,
        headers=headers,
        media_type=binary,
        background=BackgroundTask(stream.close),  # also when the client goes away mid-way
    )


def _read_checked(
    stream: BinaryIO, digest: str, size: int, state: Any, *, keep: bool
) -> bytes | None:
    """The blob's ``size`` bytes (None unless ``keep``) once their digest matches;
    IntegrityError when it does not, or when the blob holds more than ``size`` bytes."""
    hashed = hashlib.sha256()
    kept = bytearray()
    left = size
    while left and (chunk := stream.read(min(CHUNK, left))):
        hashed.update(chunk)
        left -= len(chunk)
        if keep:
            kept += chunk
    if hashed.hexdigest() != digest or left or stream.read(1):  # shorter or longer: damage
        state.blob_failed(digest, hashed.hexdigest())
        raise IntegrityError(
            f"blob {digest} on the server does not match its digest: its bytes are damaged"
            " (the server's `modelreg fsck` lists them)"
        )
    state.corrupt_blobs.discard(digest)  # repaired since
    return bytes(kept) if keep else None


def _verified(stream: BinaryIO, digest: str, start: int, size: int, state: Any) -> Iterator[bytes]:
    """The blob's bytes from ``start`` to the ``size`` announced, hashing all of it (the
    bytes before ``start`` too, unsent); the last chunk is held back until the whole digest
    matches, so that a client never receives a complete response of damaged bytes. A blob
    that holds more than ``size`` bytes (changed since it was measured) is damaged too."""
    hashed = hashlib.sha256()
    held = b""
    skip = start
    left = size - start
    with stream:
        while skip and (chunk := stream.read(min(CHUNK, skip))):
            hashed.update(chunk)
            skip -= len(chunk)
        while left and (chunk := stream.read(min(CHUNK, left))):
            hashed.update(chunk)
            left -= len(chunk)
            if held:
                yield held
            held = chunk
        extra = stream.read(1)
    if hashed.hexdigest() != digest or left or extra:
        state.blob_failed(digest, hashed.hexdigest())
        raise CorruptBlobServed(digest)
    if held:
        yield held


_RANGE = re.compile(r"bytes=(\d{0,19})-(\d{0,19})")


def _range_start(header: str | None, size: int) -> int:
    """Where a ``Range`` header starts the response. Served: one range that runs to the end,
    ``bytes=N-``, ``bytes=N-M`` with M >= the last byte, and ``bytes=-N`` (the last N)."""
    if not header:
        return 0
    found = _RANGE.fullmatch(header.strip())
    if found is None or found.group(1) == found.group(2) == "":
        raise InvalidInput(
            f"only one range that runs to the end of the blob ('bytes=N-', 'bytes=-N') is"
            f" served, not {header[:80]!r}"
        )
    first, last = found.group(1), found.group(2)
    if first == "":  # a suffix: the last N bytes
        if int(last) == 0 or size == 0:
            raise RangeNotSatisfiable(f"a range of the last {last} bytes of {size}", size=size)
        return max(0, size - int(last))
    start = int(first)
    if start >= size:
        raise RangeNotSatisfiable(
            f"range start {start} is past the end of the blob ({size} bytes)", size=size
        )
    if last and int(last) < size - 1:
        if int(last) < start:
            raise InvalidInput(f"the range {header[:80]!r} ends before it starts")
        raise InvalidInput(
            "only ranges that run to the end of the blob are served ('bytes=N-', 'bytes=-N')"
        )
    return start


def _check_digest(digest: str) -> None:
    if not is_digest(digest):
        raise InvalidInput(f"{digest[:80]!r} is not a sha256 hex digest (64 lowercase hex digits)")


class BodyReader:
    """A blocking ``read`` over the request's streamed body, for the blob store's thread.

    Each hop to the event loop gathers as many body chunks as the read asks for, so a large
    upload costs one hop per read, not one per network chunk.
    """

    def __init__(self, request: Request) -> None:
        self._chunks = request.stream().__aiter__()
        self._buffer = bytearray()
        self._done = False

    async def _fill(self, size: int) -> None:
        while not self._done and (size < 0 or len(self._buffer) < size):
            try:
                self._buffer += await self._chunks.__anext__()
            except StopAsyncIteration:
                self._done = True

    def read(self, size: int = -1, /) -> bytes:
        if not self._done and (size < 0 or len(self._buffer) < size):
            anyio.from_thread.run(self._fill, size)
        return take(self._buffer, size)


# -- runs ---------------------------------------------------------------------------------------


class RunBody(Body):
    name: str = Field(default="", max_length=256)
    params: dict[str, Any] = Field(default_factory=dict)
    code: dict[str, Any] = Field(default_factory=dict)
    environment: dict[str, Any] = Field(default_factory=dict)
    facts: dict[str, Any] = Field(default_factory=dict)


@router.post("/runs", status_code=201, tags=["runs"])
def open_run(reg: Writer, body: RunBody) -> JSON:
    """Record a run as started, with the code and environment its process captured."""
    run_id = reg.open_run(
        name=body.name,
        params=body.params,
        code=wire.code_from_json(body.code),
        environment=wire.environment_from_json(body.environment).data,
        facts=wire.facts_from_json(body.facts),
    )
    return {"id": run_id}


class RunEndBody(Body):
    status: str
    error: str | None = Field(default=None, max_length=20_000)
    metrics: dict[str, Any] = Field(default_factory=dict)
    datasets: list[dict[str, Any]] = Field(default_factory=list, max_length=1000)


@router.post("/runs/{run_id}/end", tags=["runs"])
def close_run(reg: Writer, run_id: str, body: RunEndBody) -> JSON:
    reg.close_run(
        wire.check_uuid(run_id, "run id"),
        status=body.status,
        error=body.error,
        metrics=body.metrics,
        datasets=[wire.dataset_use_from_json(d) for d in body.datasets],
    )
    return {"ok": True}


class RunParamsBody(Body):
    params: dict[str, Any]
    new: dict[str, Any]


@router.post("/runs/{run_id}/params", tags=["runs"])
def run_params(reg: Writer, run_id: str, body: RunParamsBody) -> JSON:
    reg.record_run_params(wire.check_uuid(run_id, "run id"), body.params, body.new)
    return {"ok": True}


class RunMetricsBody(Body):
    points: list[list[Any]] = Field(max_length=MAX_POINTS)


@router.post(
    "/runs/{run_id}/metrics",
    tags=["runs"],
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": RunMetricsBody.model_json_schema()},
                metric_columns.MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}},
            },
        }
    },
)
async def run_metrics(reg: Writer, run_id: str, request: Request) -> JSON:
    """Append metric points ``[key, value, step]`` (or ``[key, value, step, ms]``) to a run's
    history.

    The body is read as plain JSON and each point checked once, by the registry: a batch of
    100,000 points is the hot path of a training loop. The SDK sends its batches as columns
    instead, ``application/vnd.modelreg.metric-points`` (``metric_columns``): no JSON to parse.
    """
    run = wire.check_uuid(run_id, "run id")
    kind = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if kind == metric_columns.MEDIA_TYPE:
        batch = metric_columns.decode(await request.body(), limit=MAX_POINTS)
        await anyio.to_thread.run_sync(reg.record_run_metrics, run, batch)
        return {"ok": True}
    try:
        body = json.loads(await request.body())
    except RecursionError:
        raise InvalidInput("invalid request: the body's JSON is nested too deeply") from None
    except ValueError as exc:  # not UTF-8, not JSON
        raise InvalidInput(f"invalid request: the body is not JSON ({exc})") from None
    if not isinstance(body, dict) or set(body) != {"points"}:
        raise InvalidInput('invalid request: the body is {"points": [[key, value, step], ...]}')
    await anyio.to_thread.run_sync(reg.record_run_metrics, run, body["points"])
    return {"ok": True}


class RunDatasetBody(Body):
    dataset: dict[str, Any]


@router.post("/runs/{run_id}/datasets", tags=["runs"])
def run_dataset(reg: Writer, run_id: str, body: RunDatasetBody) -> JSON:
    use = wire.dataset_use_from_json(body.dataset)
    reg.record_run_dataset(wire.check_uuid(run_id, "run id"), use)
    return {"ok": True}
