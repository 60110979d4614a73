"""MLflow's proxied artifact store (``/api/2.0/mlflow-artifacts``): the files of runs and of
logged models, each a blob of the one content-addressed store, and the files of versions.

A location is ``<experiment>/<run id>/artifacts/<path>`` or
``<experiment>/models/<logged model id>/artifacts/<path>`` (``refs.parse_artifact_location``);
its run or logged model must exist in that experiment. An upload streams into the blob store,
hashed on the way, and then names the blob under its path in one audited transaction; a
download is verified against the digest while it is sent (``api.blob_response``).

``versions/<version UUID>/<path>`` is a version's own files, read-only: where
``model-versions/get-download-uri`` sends MLflow's client to load ``models:/NAME/N`` (by
number, alias, latest or stage), so that it gets exactly the bytes the version holds,
whatever happened to the folder they were registered from. Listed and downloaded (verified)
like any other; an upload, a multipart upload or a deletion there is refused.

A run made through MLflow's API takes artifacts after it finished, as MLflow allows (they add
files beside what it recorded, each write audited); a run of modelreg's SDK takes them only
while it runs, and a deleted run none (``runs.check_writable``: the rule for params and
metrics). A logged model takes files whatever its status, as MLflow's do: a version
registered from it has copied its files already.

On an S3 blob store, ``server-info`` offers MLflow's multipart transfers: an upload's parts go
straight to the bucket, to a staging key, and completing it hashes what arrived there before
the bytes are stored under their digest (``S3BlobStore.finish_staged_upload``). A file of
``PRESIGN_AT`` bytes or more is downloaded straight from the bucket (a presigned URL, or a 302
to one); smaller files, and any blob this server has found damaged, go through the verifying
download.
"""

from __future__ import annotations

import posixpath
import urllib.parse
from typing import Annotated, Any

import anyio.to_thread
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import Field
from sqlalchemy.engine import Connection
from starlette.requests import ClientDisconnect

from modelreg import artifacts
from modelreg.errors import InvalidInput, NotFound
from modelreg.local import LocalRegistry
from modelreg.manifest import FileEntry, check_path
from modelreg.refs import RUN, ArtifactLocation, is_owner_id, parse_artifact_location
from modelreg.s3 import MAX_PARTS, S3BlobStore
from modelreg.server.api import BodyReader, Reader, Writer, blob_response
from modelreg.server.auth import single_values
from modelreg.server.mlflow.protocol import ARTIFACTS, ERRORS, Body

router = APIRouter(tags=["mlflow"], responses=ERRORS, dependencies=[Depends(single_values())])

JSON = dict[str, Any]
MPU = "/api/2.0/mlflow-artifacts/mpu"
PRESIGNED = "/api/2.0/mlflow-artifacts/presigned"
PRESIGN_AT = 500 << 20  # MLflow's own threshold for multipart transfers
PRESIGN_SECONDS = 300  # MLflow's default lifetime of a presigned download
# The client falls back to a plain upload when refused with exactly these words (as MLflow's
# own server refuses on stores without multipart uploads).
NO_MULTIPART = "Multipart upload is not supported for the current artifact repository"
Path = Annotated[str, Query(max_length=4096)]


# -- upload, download, listing, deletion -------------------------------------------------------


@router.put(f"{ARTIFACTS}/{{artifact_path:path}}")
async def upload_artifact(artifact_path: str, request: Request, reg: Writer) -> JSON:
    """Stream a file in as ``artifact_path``: hashed while stored (a digest already held is
    kept once), then named under its run or logged model; a file at that path is replaced."""
    where = parse_artifact_location(artifact_path, file=True)
    await anyio.to_thread.run_sync(
        lambda: reg.db.read(lambda c: artifacts.check_owner(c, where, writing=True))
    )
    reader = BodyReader(request)
    try:
        digest, size = await anyio.to_thread.run_sync(
            lambda: reg.blobs.put(reader)  # type: ignore[arg-type]
        )
    except ClientDisconnect:
        raise InvalidInput(
            f"the upload of {where.path!r} ended before its body did: the client disconnected"
        ) from None
    await anyio.to_thread.run_sync(_name, reg, where, digest, size)
    return {}


def _name(reg: LocalRegistry, where: ArtifactLocation, digest: str, size: int) -> None:
    """Name a stored blob as the file ``where``, in one audited transaction."""

    def write(conn: Connection) -> None:
        # gc deletes only while holding this lock, so the blob seen here stays named.
        reg.db.lock_blobs(conn)
        reg.blobs.size(digest)  # NotFound if it went since it was stored
        artifacts.check_owner(conn, where, writing=True)
        entry = FileEntry(where.path, digest, size)
        artifacts.put(conn, where.owner_id, entry, actor=reg.actor, kind=where.kind)

    reg.db.write(write)


@router.get(f"{ARTIFACTS}/{{artifact_path:path}}", response_class=Response)
def download_artifact(artifact_path: str, request: Request, reg: Reader) -> Response:
    """A file's bytes, verified against its digest as they are sent (``Range`` resumes); a
    large file of an S3 store is a 302 to a short-lived presigned URL of its blob."""
    where = parse_artifact_location(artifact_path, file=True)
    entry = reg.db.read(lambda conn: _file(conn, where))
    url = _straight_from_bucket(request, reg, entry)
    if url is not None:
        return RedirectResponse(url, status_code=302)
    response = blob_response(request, reg, entry.digest)
    name = urllib.parse.quote(posixpath.basename(entry.path))
    response.headers["Content-Disposition"] = f"attachment; filename*=UTF-8''{name}"
    return response


def _file(conn: Connection, where: ArtifactLocation) -> FileEntry:
    artifacts.check_owner(conn, where)
    entry = artifacts.get(conn, where.owner_id, where.path, kind=where.kind)
    if entry is not None:
        return entry
    inside = artifacts.files(conn, where.owner_id, where.path, kind=where.kind)
    folder = " (it is a folder: list it)" if inside else ""
    noun = artifacts.NOUNS[where.kind]
    raise NotFound(f"{noun} {where.owner_id} has no artifact file {where.path!r}{folder}")


def _straight_from_bucket(request: Request, reg: LocalRegistry, entry: FileEntry) -> str | None:
    """A presigned URL of the file's blob when it is downloaded straight from the bucket:
    large, in an S3 store, stored whole (a chunked file is rebuilt by the server), and not
    found damaged by this server (that one fails verified)."""
    store = reg.blobs.inner
    if not isinstance(store, S3BlobStore) or entry.size < PRESIGN_AT:
        return None
    if reg.blobs.chunked(entry.digest) is not None:
        return None
    if entry.digest in request.app.state.modelreg.corrupt_blobs:
        return None
    return store.presigned_url(entry.digest, expires=PRESIGN_SECONDS)


@router.get(ARTIFACTS)
def list_artifacts(reg: Reader, path: Path = "") -> JSON:
    """The files and folders directly in the folder ``path``, named relative to it."""
    where = parse_artifact_location(path)
    listed = reg.db.read(lambda conn: _listing(conn, where))
    return {"files": [file_info(item.name, item.is_dir, item.size) for item in listed]}


def _listing(conn: Connection, where: ArtifactLocation) -> list[artifacts.Listed]:
    artifacts.check_owner(conn, where)
    return artifacts.listing(conn, where.owner_id, where.path, kind=where.kind)


def file_info(path: str, is_dir: bool, size: int | None) -> JSON:
    """An entry of a listing, as MLflow's ``FileInfo`` (a folder has no size)."""
    return (
        {"path": path, "is_dir": True}
        if is_dir
        else {"path": path, "is_dir": False, "file_size": size}
    )


@router.get("/api/2.0/mlflow/artifacts/list")
def list_run_artifacts(
    reg: Reader,
    run_id: Path = "",
    run_uuid: Path = "",
    path: Path = "",
    page_token: Path = "",
) -> JSON:
    """A run's files and folders directly in ``path``, named from the run's root (MLflow's
    tracking API; every entry comes in one page)."""
    del page_token  # one page holds the whole folder
    run = run_id or run_uuid
    if not run:
        raise InvalidInput("run_id is required")
    if not is_owner_id(RUN, run):  # names no run, and never reaches the database
        raise NotFound(f"run {run[:80]!r} not found: it is not a run id")
    folder = check_path(path.strip("/")) if path.strip("/") else ""

    def read(conn: Connection) -> tuple[ArtifactLocation, list[artifacts.Listed]]:
        where = artifacts.run_location(conn, run, folder)
        return where, artifacts.listing(conn, run, folder)

    where, listed = reg.db.read(read)
    root = ArtifactLocation(where.experiment_id, "run", run, "")
    return {
        "root_uri": root.uri,
        "files": [
            file_info(posixpath.join(folder, item.name), item.is_dir, item.size) for item in listed
        ],
    }


@router.delete(f"{ARTIFACTS}/{{artifact_path:path}}")
def delete_artifact(artifact_path: str, reg: Writer) -> JSON:
    """Remove a file, or a folder with everything in it (audited; the blobs stay until gc
    finds nothing else names them)."""
    where = parse_artifact_location(artifact_path, file=True)

    def write(conn: Connection) -> None:
        artifacts.check_owner(conn, where, writing=True)
        artifacts.delete(conn, where.owner_id, where.path, actor=reg.actor, kind=where.kind)

    reg.db.write(write)
    return {}


# -- large files, straight to and from an S3 bucket --------------------------------------------


class CreateUploadBody(Body):
    path: str = Field(max_length=4096)  # the client's local file: its name is the artifact's
    num_parts: int = Field(default=1, ge=1, le=MAX_PARTS)


class UploadedPart(Body):
    part_number: int = Field(ge=1, le=MAX_PARTS)
    etag: str = Field(min_length=1, max_length=1024)


class CompleteUploadBody(Body):
    path: str = Field(max_length=4096)
    upload_id: str = Field(max_length=2048)
    parts: list[UploadedPart] = Field(min_length=1, max_length=MAX_PARTS)


class AbortUploadBody(Body):
    path: str = Field(default="", max_length=4096)
    upload_id: str = Field(max_length=2048)


@router.post(f"{MPU}/create/{{artifact_path:path}}")
def create_multipart_upload(artifact_path: str, body: CreateUploadBody, reg: Writer) -> JSON:
    """Start an upload whose parts the client sends straight to the bucket (S3 stores only)."""
    store = _bucket(reg)
    where = _upload_target(artifact_path, body.path)
    reg.db.read(lambda conn: artifacts.check_owner(conn, where, writing=True))
    upload_id, urls = store.start_staged_upload(body.num_parts)
    credentials = [{"url": url, "part_number": n, "headers": {}} for n, url in enumerate(urls, 1)]
    return {"upload_id": upload_id, "credentials": credentials}


@router.post(f"{MPU}/complete/{{artifact_path:path}}")
def complete_multipart_upload(artifact_path: str, body: CompleteUploadBody, reg: Writer) -> JSON:
    """Assemble the parts, hash the result in the bucket, store it under its digest and name
    it as the file: bytes reach a blob's key only once they are known to match it."""
    store = _bucket(reg)
    where = _upload_target(artifact_path, body.path)
    numbers = [part.part_number for part in body.parts]
    if numbers != sorted(set(numbers)):
        raise InvalidInput("the parts of a multipart upload are listed once each, in order")
    etags = [(part.part_number, part.etag) for part in body.parts]
    digest, size = store.finish_staged_upload(body.upload_id, etags)
    _name(reg, where, digest, size)
    return {}


@router.post(f"{MPU}/abort/{{artifact_path:path}}")
def abort_multipart_upload(artifact_path: str, body: AbortUploadBody, reg: Writer) -> JSON:
    """Drop an unfinished upload and the parts sent so far."""
    store = _bucket(reg)
    parse_artifact_location(artifact_path)
    store.abort_staged_upload(body.upload_id)
    return {}


def _bucket(reg: LocalRegistry) -> S3BlobStore:
    if not isinstance(reg.blobs.inner, S3BlobStore):
        raise InvalidInput(
            f"{NO_MULTIPART}: this server's blobs are not in S3, send the file whole"
        )
    return reg.blobs.inner


def _upload_target(folder: str, local_file: str) -> ArtifactLocation:
    """The file a multipart upload writes: the folder of the route's path, and the name of
    the client's local file."""
    where = parse_artifact_location(folder)
    name = local_file.replace("\\", "/").rsplit("/", 1)[-1]
    if not name:
        raise InvalidInput(f"path {local_file[:200]!r} names no file")
    path = check_path(posixpath.join(where.path, name))
    return ArtifactLocation(where.experiment_id, where.kind, where.owner_id, path)


@router.get(f"{PRESIGNED}/{{artifact_path:path}}")
def presigned_download(artifact_path: str, request: Request, reg: Reader) -> JSON:
    """Where to download a file: for a large file of an S3 store, a presigned URL of its
    blob with its size (the client fetches it in ranges); otherwise the verifying download
    of this server, without a size, which the client then uses as for any download."""
    where = parse_artifact_location(artifact_path, file=True)
    entry = reg.db.read(lambda conn: _file(conn, where))
    url = _straight_from_bucket(request, reg, entry)
    if url is not None:
        return {"url": url, "headers": {}, "file_size": entry.size}
    here = str(request.base_url).rstrip("/") + ARTIFACTS + "/" + urllib.parse.quote(str(where))
    return {"url": here, "headers": {}}
