"""Blobs in an S3 bucket: AWS, or any S3-compatible store (SeaweedFS, MinIO, Ceph).

Keys follow the local layout: ``<prefix>/sha256/<first two hex digits>/<digest>``.

A put streams the content in parts, hashing as it reads, and the object appears only once it
is complete and verified. Content that fits in one part is checked, then stored with one
PutObject. Larger content goes up as a multipart upload to the final key, completed only
when its sha256 equals the expected digest, and aborted on a mismatch, an error or an
interrupt: a half-written or wrong object is never visible under a digest. One part uploads
while the next is read, so memory holds a few parts: 8 MiB each up to 8 GiB of content, then
doubling every 1,000 parts so that the 10,000 parts S3 allows reach its 5 TiB object limit
(a 5 GB put peaked at 131 MB RSS; see benchmarks/s3_memory.py).

A stream given without its digest is hashed first when it can be re-read (one more local
read, and nothing is uploaded when the bucket holds it already); a stream that cannot be
re-read is spooled to a temporary file while hashed. So every upload knows its digest
before it starts, and needs no staging object and no server-side copy.

A client may also send a large file straight to the bucket (MLflow's multipart upload, through
presigned part URLs): its parts go to a staging key ``<prefix>/staging/<token>``, never to a
blob's, since the digest is not known yet. Completing it hashes the assembled object (read back
from the bucket), copies it under its digest inside the bucket, and deletes the staged object,
so a blob's key still only ever holds bytes that match it.

S3 cannot touch an object without copying it, so a re-put of a stored blob writes an empty
marker ``<prefix>/touched/<ab>/<digest>``; a blob's ``modified`` time is the later of the
two. An interrupted process can leave a multipart upload behind (invisible, but billed): gc
aborts those older than its grace period (``remove_stale_temporaries``), and a bucket
lifecycle rule ``AbortIncompleteMultipartUpload`` does it without gc.

    >>> store = S3BlobStore("models", "team-a")  # doctest: +SKIP
    >>> digest, size = store.put(open("model.safetensors", "rb"))  # doctest: +SKIP
    >>> with store.open(digest, offset=1024) as f:  # doctest: +SKIP
    ...     rest = f.read()
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import re
import secrets
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, BinaryIO

from modelreg.blobs import (
    CHUNK,
    Readable,
    check_offset,
    check_pack_name,
    copy_hashing,
    hash_stream,
    is_pack_name,
)
from modelreg.errors import IntegrityError, InvalidInput, NotFound
from modelreg.manifest import is_digest

PART_SIZE = 8 << 20
MIN_PART_SIZE = 5 << 20  # S3's smallest part (all but the last)
MAX_PART_SIZE = 5 << 30
MAX_PARTS = 10_000
PARTS_PER_SIZE = 1_000  # the part size doubles after every 1,000 parts
COPY_PART_SIZE = 512 << 20  # a server-side copy larger than S3's 5 GiB CopyObject, in parts
UPLOAD_URL_SECONDS = 3600  # how long a presigned part URL of a staged upload works
_STAGED_ID = re.compile(r"([0-9a-f]{32})\.(.{1,1024})", re.DOTALL)
_MISSING = ("404", "NoSuchKey", "NotFound")
_TOKEN = re.compile(r"[0-9a-f]{32}")


class S3Error(OSError):
    """S3 refused or failed a request (no such bucket, no access, unreachable): the message
    says what, where and why. Not a ModelregError: it is the server's fault, not the
    caller's, and a server logs it instead of showing the bucket to clients."""


class S3BlobStore:
    """Blobs under ``prefix`` in ``bucket``.

    ``endpoint_url`` points at an S3-compatible server (addressed path-style); ``region``
    defaults to the AWS configuration, else us-east-1; credentials come from the usual AWS
    variables and files. ``client`` is a ready boto3 S3 client to use instead.
    """

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        client: Any = None,
        part_size: int = PART_SIZE,
    ) -> None:
        if not bucket or "/" in bucket:
            raise InvalidInput(f"{bucket!r} is not an S3 bucket name")
        if not MIN_PART_SIZE <= part_size <= MAX_PART_SIZE:
            raise InvalidInput(
                f"part size must be {MIN_PART_SIZE} to {MAX_PART_SIZE} bytes, not {part_size}"
            )
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.part_size = part_size
        self.client = client if client is not None else _client(endpoint_url, region)
        root = f"{self.prefix}/" if self.prefix else ""
        self._blobs = f"{root}sha256/"
        self._touched = f"{root}touched/"
        self._staging = f"{root}staging/"
        self._packs = f"{root}packs/"

    def __repr__(self) -> str:
        return f"S3BlobStore({self.uri!r})"

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}".rstrip("/")

    def key(self, digest: str) -> str:
        """The object key of a blob."""
        _check_digest(digest)
        return f"{self._blobs}{digest[:2]}/{digest}"

    # -- writing ----------------------------------------------------------------------------

    def put(self, stream: BinaryIO, *, digest: str | None = None) -> tuple[str, int]:
        if digest is not None:
            size = self._refresh(digest)
            if size is not None:
                return digest, size
            return self._upload(stream, digest)
        start = _position(stream)
        if start is not None:
            digest, _ = hash_stream(stream)
            stream.seek(start)
            return self.put(stream, digest=digest)
        with tempfile.SpooledTemporaryFile(max_size=self.part_size) as spool:
            digest, _ = copy_hashing(stream, spool)
            spool.seek(0)
            return self.put(spool, digest=digest)  # type: ignore[arg-type]

    def refresh(self, digest: str) -> bool:
        return self._refresh(digest) is not None

    def _refresh(self, digest: str) -> int | None:
        """The size of a stored blob, after marking it re-used; None when it is absent."""
        head = self._head(self.key(digest))
        if head is None:
            return None
        with self._errors("mark as re-used", digest):
            self.client.put_object(Bucket=self.bucket, Key=self._touched_key(digest), Body=b"")
        return int(head["ContentLength"])

    def _upload(self, stream: Readable, digest: str) -> tuple[str, int]:
        parts = self._parts(stream)
        first = next(parts, b"")
        second = next(parts, b"") if len(first) == self.part_size else b""
        h = hashlib.sha256(first)
        if not second:
            _compare(digest, h.hexdigest())
            with self._errors("store", digest):
                self.client.put_object(Bucket=self.bucket, Key=self.key(digest), Body=first)
            return digest, len(first)
        key = self.key(digest)
        with self._errors("start uploading", digest):
            upload = self.client.create_multipart_upload(Bucket=self.bucket, Key=key)
        upload_id = upload["UploadId"]
        etags: list[str] = []
        size = len(first)
        try:
            # One part uploads in a thread while the next is read and hashed.
            with ThreadPoolExecutor(1, thread_name_prefix="modelreg-s3") as pool:
                pending = pool.submit(self._upload_part, key, upload_id, 1, first)
                del first
                for chunk in _chain(second, parts):
                    h.update(chunk)
                    size += len(chunk)
                    etags.append(pending.result())
                    if len(etags) >= MAX_PARTS:
                        raise InvalidInput(f"content is larger than S3 allows ({size}+ bytes)")
                    pending = pool.submit(self._upload_part, key, upload_id, len(etags) + 1, chunk)
                    del chunk
                etags.append(pending.result())
            _compare(digest, h.hexdigest())
            with self._errors("finish uploading", digest):
                self.client.complete_multipart_upload(
                    Bucket=self.bucket,
                    Key=key,
                    UploadId=upload_id,
                    MultipartUpload={
                        "Parts": [{"PartNumber": n, "ETag": e} for n, e in enumerate(etags, 1)]
                    },
                )
        except BaseException:
            # Reached only after the pool has waited for the part in flight.
            with contextlib.suppress(Exception):
                self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
            raise
        return digest, size

    def _upload_part(self, key: str, upload_id: str, number: int, data: bytes) -> str:
        with self._errors(f"upload part {number} of", key.rsplit("/", 1)[-1]):
            done = self.client.upload_part(
                Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=data
            )
        return str(done["ETag"])

    def _parts(self, stream: Readable) -> Iterator[bytes]:
        number = 1
        while chunk := _read_full(stream, self._part_size(number)):
            yield chunk
            number += 1

    def _part_size(self, number: int) -> int:
        return min(MAX_PART_SIZE, self.part_size << ((number - 1) // PARTS_PER_SIZE))

    # -- uploads a client sends straight to the bucket ----------------------------------------

    def start_staged_upload(
        self, parts: int, *, expires: int = UPLOAD_URL_SECONDS
    ) -> tuple[str, list[str]]:
        """Begin a multipart upload that a client sends straight to the bucket, in ``parts``
        parts, to a staging key; the upload's id and a presigned URL for each part."""
        if isinstance(parts, bool) or not isinstance(parts, int) or not 1 <= parts <= MAX_PARTS:
            raise InvalidInput(f"a multipart upload has 1 to {MAX_PARTS} parts, not {parts!r}")
        token = secrets.token_hex(16)
        key = self._staging + token
        with self._errors("start the staged upload", token):
            upload_id = str(
                self.client.create_multipart_upload(Bucket=self.bucket, Key=key)["UploadId"]
            )
            urls = [
                str(
                    self.client.generate_presigned_url(
                        "upload_part",
                        Params={
                            "Bucket": self.bucket,
                            "Key": key,
                            "UploadId": upload_id,
                            "PartNumber": number,
                        },
                        ExpiresIn=expires,
                    )
                )
                for number in range(1, parts + 1)
            ]
        return f"{token}.{upload_id}", urls

    def finish_staged_upload(self, upload_id: str, etags: list[tuple[int, str]]) -> tuple[str, int]:
        """Complete a staged upload from its parts' (number, ETag), hash what it assembled,
        and store that as a blob (copied inside the bucket, unless the digest is held
        already); (digest, size). The staged object is deleted whatever happens."""
        key, s3_id = self._staged(upload_id)
        with (
            self._refused(upload_id),
            self._errors("complete the staged upload", key.rsplit("/", 1)[-1]),
        ):
            self.client.complete_multipart_upload(
                Bucket=self.bucket,
                Key=key,
                UploadId=s3_id,
                MultipartUpload={"Parts": [{"PartNumber": n, "ETag": e} for n, e in etags]},
            )
        try:
            with self._errors("read the staged upload", key.rsplit("/", 1)[-1]):
                got = self.client.get_object(Bucket=self.bucket, Key=key)
                etag = str(got["ETag"])
                with contextlib.closing(got["Body"]) as body:
                    digest, size = hash_stream(body)
            if self._refresh(digest) is None:
                self._copy(key, etag, size, self.key(digest))
        finally:
            with contextlib.suppress(Exception):
                self.client.delete_object(Bucket=self.bucket, Key=key)
        return digest, size

    def abort_staged_upload(self, upload_id: str) -> None:
        """Drop a staged upload and the parts sent so far."""
        key, s3_id = self._staged(upload_id)
        with (
            self._refused(upload_id),
            self._errors("abort the staged upload", key.rsplit("/", 1)[-1]),
        ):
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=s3_id)

    @contextlib.contextmanager
    def _refused(self, upload_id: str) -> Iterator[None]:
        """S3's refusals of what a client sent for a staged upload (an unknown or finished
        upload, parts it does not hold), as the client's errors rather than the server's."""
        try:
            yield
        except S3Error as exc:
            code = _code(exc.__cause__) if hasattr(exc.__cause__, "response") else ""
            # Said without the bucket's name, which S3Error's message gives.
            if code == "NoSuchUpload":
                raise NotFound(
                    f"upload {upload_id[:80]!r} is finished, aborted or unknown"
                ) from None
            if code in ("InvalidPart", "InvalidPartOrder", "EntityTooSmall"):
                raise InvalidInput(f"the parts listed do not make the upload ({code})") from None
            raise

    def _staged(self, upload_id: str) -> tuple[str, str]:
        found = _STAGED_ID.fullmatch(upload_id) if isinstance(upload_id, str) else None
        if found is None:
            raise InvalidInput(f"{str(upload_id)[:80]!r} is not an upload id this server gave")
        return self._staging + found.group(1), found.group(2)

    def _copy(self, source: str, etag: str, size: int, target: str) -> None:
        """Copy ``source`` to ``target`` inside the bucket, only while ``source`` is still
        the object that was hashed (its ETag); in parts past S3's 5 GiB CopyObject limit."""
        what = target.rsplit("/", 1)[-1]
        copy_source = {"Bucket": self.bucket, "Key": source}
        if size <= MAX_PART_SIZE:
            with self._errors("store", what):
                self.client.copy_object(
                    Bucket=self.bucket, Key=target, CopySource=copy_source, CopySourceIfMatch=etag
                )
            return
        with self._errors("start copying", what):
            upload_id = self.client.create_multipart_upload(Bucket=self.bucket, Key=target)[
                "UploadId"
            ]
        try:
            parts = []
            for number, start in enumerate(range(0, size, COPY_PART_SIZE), 1):
                end = min(start + COPY_PART_SIZE, size) - 1
                with self._errors(f"copy part {number} of", what):
                    done = self.client.upload_part_copy(
                        Bucket=self.bucket,
                        Key=target,
                        UploadId=upload_id,
                        PartNumber=number,
                        CopySource=copy_source,
                        CopySourceRange=f"bytes={start}-{end}",
                        CopySourceIfMatch=etag,
                    )
                parts.append({"PartNumber": number, "ETag": done["CopyPartResult"]["ETag"]})
            with self._errors("finish copying", what):
                self.client.complete_multipart_upload(
                    Bucket=self.bucket,
                    Key=target,
                    UploadId=upload_id,
                    MultipartUpload={"Parts": parts},
                )
        except BaseException:
            with contextlib.suppress(Exception):
                self.client.abort_multipart_upload(
                    Bucket=self.bucket, Key=target, UploadId=upload_id
                )
            raise

    def presigned_url(self, digest: str, *, expires: int = 300) -> str:
        """A URL that downloads the blob straight from the bucket for ``expires`` seconds,
        without credentials (the client verifies nothing: see docs/mlflow.md)."""
        with self._errors("sign a download of", digest):
            return str(
                self.client.generate_presigned_url(
                    "get_object",
                    Params={"Bucket": self.bucket, "Key": self.key(digest)},
                    ExpiresIn=expires,
                )
            )

    # -- reading ----------------------------------------------------------------------------

    def open(self, digest: str, *, offset: int = 0) -> BinaryIO:
        """A streaming reader of the blob from byte ``offset``; it can also seek."""
        reader = _ObjectReader(self, digest, offset)
        return io.BufferedReader(reader, buffer_size=CHUNK)

    def exists(self, digest: str) -> bool:
        return self._head(self.key(digest)) is not None

    def size(self, digest: str) -> int:
        return int(self._stat(digest)["ContentLength"])

    def modified(self, digest: str) -> float:
        stored = float(self._stat(digest)["LastModified"].timestamp())
        touched = self._head(self._touched_key(digest))
        return max(stored, float(touched["LastModified"].timestamp()) if touched else stored)

    def delete(self, digest: str) -> None:
        with self._errors("delete", digest):
            self.client.delete_object(Bucket=self.bucket, Key=self._touched_key(digest))
            self.client.delete_object(Bucket=self.bucket, Key=self.key(digest))

    def __iter__(self) -> Iterator[str]:
        with self._errors("list", self._blobs):
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self._blobs
            )
            for page in pages:
                for item in page.get("Contents", []):
                    shard, _, name = item["Key"].removeprefix(self._blobs).partition("/")
                    if is_digest(name) and shard == name[:2]:
                        yield name

    def check(self) -> None:
        with self._errors("reach the bucket", self.bucket):
            self.client.head_bucket(Bucket=self.bucket)

    # -- packs (see BlobStore) ----------------------------------------------------------------

    def _pack_key(self, name: str) -> str:
        return self._packs + check_pack_name(name)

    def put_pack(self, name: str, parts: Sequence[bytes]) -> None:
        """One PutObject: a pack is tens of MiB, and S3 makes it visible whole or not."""
        with self._errors("store", f"pack {name}"):
            self.client.put_object(
                Bucket=self.bucket, Key=self._pack_key(name), Body=b"".join(parts)
            )

    def read_pack(self, name: str, start: int, length: int) -> bytes:
        from botocore.exceptions import ClientError

        if length <= 0:
            return b""
        key = self._pack_key(name)
        with self._errors("read", f"pack {name}"):
            try:
                answer = self.client.get_object(
                    Bucket=self.bucket, Key=key, Range=f"bytes={start}-{start + length - 1}"
                )
            except ClientError as exc:
                if _code(exc) in _MISSING:
                    raise NotFound(f"pack {name} is missing from the blob store") from None
                raise
            data: bytes = answer["Body"].read()
        if len(data) != length:
            raise IntegrityError(f"pack {name} ends before byte {start + length}")
        return data

    def start_pack_upload(self, *, expires: int = UPLOAD_URL_SECONDS) -> tuple[str, str]:
        """A staging key that a client PUTs a pack to, straight to the bucket: its token,
        and a presigned URL for the PUT."""
        token = secrets.token_hex(16)
        with self._errors("sign the upload of", f"staged pack {token}"):
            url = self.client.generate_presigned_url(
                "put_object",
                Params={"Bucket": self.bucket, "Key": self._staging + token},
                ExpiresIn=expires,
            )
        return token, str(url)

    def finish_pack_upload(
        self, token: str, name: str, size: int, check: Callable[[Readable], int]
    ) -> int:
        """Store the pack a client PUT for ``token`` as pack ``name`` once it holds ``size``
        bytes and ``check`` (which reads it through, raises on anything wrong and returns
        its size) passes. The pack is copied inside the bucket first, to a key no client can
        write, and the copy is what is read: a PUT sent again to the staging key changes
        nothing checked. A pack that fails is deleted; the staged object is deleted
        whatever happens."""
        from botocore.exceptions import ClientError

        if not isinstance(token, str) or not _TOKEN.fullmatch(token):
            raise InvalidInput(f"{str(token)[:80]!r} is not a pack upload id this server gave")
        staged, key = self._staging + token, self._pack_key(name)
        try:
            found = self._head(staged)
            if found is None:
                raise NotFound(f"nothing was uploaded for pack upload {token}, or it is finished")
            if int(found["ContentLength"]) != size:
                raise InvalidInput(
                    f"pack upload {token} holds {found['ContentLength']} bytes, not the {size}"
                    " listed"
                )
            with self._errors("store", f"staged pack {token}"):
                try:
                    self.client.copy_object(
                        Bucket=self.bucket,
                        Key=key,
                        CopySource={"Bucket": self.bucket, "Key": staged},
                    )
                except ClientError as exc:
                    if _code(exc) in _MISSING:
                        raise NotFound(
                            f"nothing was uploaded for pack upload {token}, or it is finished"
                        ) from None
                    raise
        finally:
            with contextlib.suppress(Exception):
                self.client.delete_object(Bucket=self.bucket, Key=staged)
        try:
            with self._errors("read", f"pack {name}"):
                got = self.client.get_object(Bucket=self.bucket, Key=key)
                with contextlib.closing(got["Body"]) as body:
                    return check(body)
        except BaseException:
            with contextlib.suppress(Exception):
                self.client.delete_object(Bucket=self.bucket, Key=key)
            raise

    def presigned_pack_url(self, name: str, *, expires: int = 900) -> str:
        """A URL that reads pack ``name`` (Range requests too) straight from the bucket for
        ``expires`` seconds, without credentials: the reader checks every chunk it takes
        from it against the chunk's name."""
        with self._errors("sign a read of", f"pack {name}"):
            return str(
                self.client.generate_presigned_url(
                    "get_object",
                    Params={"Bucket": self.bucket, "Key": self._pack_key(name)},
                    ExpiresIn=expires,
                )
            )

    def delete_pack(self, name: str) -> None:
        with self._errors("delete", f"pack {name}"):
            self.client.delete_object(Bucket=self.bucket, Key=self._pack_key(name))

    def packs(self) -> Iterator[tuple[str, float]]:
        with self._errors("list", self._packs):
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self._packs
            )
            for page in pages:
                for item in page.get("Contents", []):
                    name = item["Key"].removeprefix(self._packs)
                    if is_pack_name(name):
                        yield name, float(item["LastModified"].timestamp())

    def remove_stale_temporaries(self, older_than: float) -> int:
        """Abort the multipart uploads under the prefix that interrupted processes (or
        clients, for staged uploads) left, started more than ``older_than`` seconds ago, and
        delete the staged objects older than that and the touched markers older than that
        whose blob is gone (a re-use racing the blob's deletion leaves one); how many."""
        cutoff = time.time() - older_than
        removed = self._remove_orphan_markers(cutoff) + self._remove_old_staged(cutoff)
        for prefix in (self._blobs, self._staging):
            with self._errors("list the unfinished uploads in", prefix):
                pages = self.client.get_paginator("list_multipart_uploads").paginate(
                    Bucket=self.bucket, Prefix=prefix
                )
                for page in pages:
                    for upload in page.get("Uploads", []):
                        if upload["Initiated"].timestamp() < cutoff:
                            self.client.abort_multipart_upload(
                                Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                            )
                            removed += 1
        return removed

    def _remove_old_staged(self, cutoff: float) -> int:
        """Delete staged uploads a crash left assembled but never stored as blobs."""
        with self._errors("list the staged uploads in", self._staging):
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self._staging
            )
            old = [
                item["Key"]
                for page in pages
                for item in page.get("Contents", [])
                if item["LastModified"].timestamp() < cutoff
            ]
        for key in old:
            with self._errors("delete the staged upload", key.rsplit("/", 1)[-1]):
                self.client.delete_object(Bucket=self.bucket, Key=key)
        return len(old)

    def _remove_orphan_markers(self, cutoff: float) -> int:
        with self._errors("list the touched markers in", self._touched):
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self._touched
            )
            old = {
                item["Key"].rsplit("/", 1)[-1]: item["Key"]
                for page in pages
                for item in page.get("Contents", [])
                if item["LastModified"].timestamp() < cutoff
            }
        if not old:
            return 0
        stored = set(self)
        orphans = [key for digest, key in old.items() if digest not in stored]
        for key in orphans:
            with self._errors("delete the touched marker", key.rsplit("/", 1)[-1]):
                self.client.delete_object(Bucket=self.bucket, Key=key)
        return len(orphans)

    # -- helpers ----------------------------------------------------------------------------

    def _touched_key(self, digest: str) -> str:
        _check_digest(digest)
        return f"{self._touched}{digest[:2]}/{digest}"

    def _head(self, key: str) -> dict[str, Any] | None:
        from botocore.exceptions import ClientError

        with self._errors("look up", key.rsplit("/", 1)[-1]):
            try:
                found: dict[str, Any] = self.client.head_object(Bucket=self.bucket, Key=key)
            except ClientError as exc:
                if _code(exc) in _MISSING:
                    return None
                raise
            return found

    def _stat(self, digest: str) -> dict[str, Any]:
        found = self._head(self.key(digest))
        if found is None:
            raise NotFound(f"blob {digest} is missing from the blob store")
        return found

    def _get(self, digest: str, start: int) -> Any:
        """GetObject from byte ``start``; None when ``start`` is the end of the blob."""
        from botocore.exceptions import ClientError

        options = {"Range": f"bytes={start}-"} if start else {}
        with self._errors("read", digest):
            try:
                return self.client.get_object(Bucket=self.bucket, Key=self.key(digest), **options)
            except ClientError as exc:
                if _code(exc) in _MISSING:
                    raise NotFound(f"blob {digest} is missing from the blob store") from None
                if _code(exc) != "InvalidRange":
                    raise
        check_offset(digest, start, self.size(digest))
        return None  # ``start`` is the end of the blob: nothing to read

    @contextlib.contextmanager
    def _errors(self, action: str, what: str) -> Iterator[None]:
        """Turn boto's errors into an S3Error that says what failed, and where."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            yield
        except ClientError as exc:
            error = exc.response.get("Error", {})
            raise S3Error(
                f"S3 could not {action} {what} in {self.uri}: {_code(exc)}"
                f" {error.get('Message', '')}".rstrip()
            ) from exc
        except BotoCoreError as exc:
            raise S3Error(f"S3 could not {action} {what} in {self.uri}: {exc}") from exc


class _ObjectReader(io.RawIOBase):
    """An object's GetObject body as a raw, seekable stream (a seek re-opens at a Range)."""

    def __init__(self, store: S3BlobStore, digest: str, offset: int) -> None:
        if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
            raise InvalidInput(f"offset must be a whole number of bytes >= 0, not {offset!r}")
        self._store = store
        self._digest = digest
        self._pos = offset
        self._size: int | None = None
        self._body: Any = None
        self._open()  # at once: a missing blob is NotFound here, not at the first read

    def _open(self) -> None:
        response = self._store._get(self._digest, self._pos)
        if response is None:
            self._size = self._pos
            self._body = None
            return
        self._body = response["Body"]
        total = response.get("ContentRange", "").rpartition("/")[2]
        self._size = (
            int(total)
            if total.isascii() and total.isdigit()
            else self._pos + response["ContentLength"]
        )

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self._pos, os.SEEK_END: self._size or 0}[whence]
        target = base + offset
        if target < 0:
            raise InvalidInput(f"cannot seek to {target}, before the start of blob {self._digest}")
        if target != self._pos:
            self._drop()
            self._pos = target
        return self._pos

    def readinto(self, buffer: Any) -> int:
        if self._body is None:
            if self._size is not None and self._pos >= self._size:
                return 0
            self._open()
            if self._body is None:
                return 0
        data = self._body.read(len(buffer))
        buffer[: len(data)] = data
        self._pos += len(data)
        return len(data)

    def _drop(self) -> None:
        if self._body is not None:
            self._body.close()
            self._body = None

    def close(self) -> None:
        self._drop()
        super().close()


def _client(endpoint_url: str | None, region: str | None) -> Any:
    import boto3
    from botocore.config import Config

    session = boto3.session.Session()
    config = Config(
        region_name=region or session.region_name or "us-east-1",
        retries={"max_attempts": 5, "mode": "standard"},
        # a self-hosted endpoint has no per-bucket DNS names
        s3={"addressing_style": "path"} if endpoint_url else {},
    )
    return session.client("s3", endpoint_url=endpoint_url, config=config)


def _code(exc: Any) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _check_digest(digest: str) -> None:
    if not is_digest(digest):
        raise InvalidInput(f"{digest!r} is not a sha256 hex digest")


def _compare(expected: str, actual: str) -> None:
    if actual != expected:
        raise IntegrityError(
            f"content does not match its digest: expected {expected}, got {actual}"
        )


def _position(stream: Any) -> int | None:
    """Where a stream that can be re-read starts; None for one that cannot."""
    try:
        return int(stream.tell()) if stream.seekable() else None
    except (AttributeError, OSError, ValueError):
        return None


def _read_full(stream: Readable, size: int) -> bytes:
    """Read ``size`` bytes, or fewer only at the end of the stream."""
    chunk = stream.read(size)
    if len(chunk) == size or not chunk:
        return chunk
    pieces = [chunk]
    missing = size - len(chunk)
    while missing and (more := stream.read(missing)):
        pieces.append(more)
        missing -= len(more)
    return b"".join(pieces)


def _chain(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    yield first
    yield from rest
