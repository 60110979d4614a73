"""The blob store on S3 (a real SeaweedFS server): the same promises as the local store, and
an object appears under a digest only once it is complete and verified, in one part or many.

Nothing is mocked; faults are injected through botocore's own event hooks or by streams that
break on purpose.
"""

from __future__ import annotations

import hashlib
import io
import os
import secrets
import time
from pathlib import Path

import pytest

from modelreg.backends import blob_store
from modelreg.blobs import LocalBlobStore, verify
from modelreg.errors import IntegrityError, InvalidInput, NotFound
from modelreg.local import LocalRegistry
from modelreg.s3 import MIN_PART_SIZE, S3BlobStore, S3Error

PART = MIN_PART_SIZE  # the smallest part S3 allows: multipart uploads from 5 MiB on


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def bucket(seaweedfs) -> str:
    # One bucket for the module, a prefix per test: a new bucket's first write is slow.
    return seaweedfs.new_bucket()


@pytest.fixture
def store(seaweedfs, bucket) -> S3BlobStore:
    prefix = f"{secrets.token_hex(4)}/reg"
    return S3BlobStore(bucket, prefix, client=seaweedfs.client(), part_size=PART)


def keys(store: S3BlobStore) -> list[str]:
    """Every object under the store's prefix (whatever it is), relative to the prefix."""
    root = f"{store.prefix}/"
    found = store.client.list_objects_v2(Bucket=store.bucket, Prefix=root).get("Contents", [])
    return sorted(item["Key"].removeprefix(root) for item in found)


def pending_uploads(store: S3BlobStore) -> list[str]:
    """Multipart uploads under the store's prefix that were neither completed nor aborted."""
    found = store.client.list_multipart_uploads(Bucket=store.bucket, Prefix=f"{store.prefix}/")
    return [u["Key"] for u in found.get("Uploads", [])]


def calls(store: S3BlobStore, operation: str) -> list[dict]:
    """Record the parameters of every ``operation`` the store's client makes from now on."""
    seen: list[dict] = []
    store.client.meta.events.register(
        f"before-parameter-build.s3.{operation}", lambda params, **_: seen.append(params)
    )
    return seen


class Unreadable(io.RawIOBase):
    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        raise AssertionError("the stream was read")


class OneWay(io.RawIOBase):
    """A stream that cannot be re-read (like an HTTP request body)."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        chunk = self._data.read(min(len(buffer), 1 << 20))  # short reads, as a socket gives
        buffer[: len(chunk)] = chunk
        return len(chunk)


class BreaksAfter(OneWay):
    """Raises ``error`` once ``limit`` bytes have been read."""

    def __init__(self, data: bytes, limit: int, error: BaseException) -> None:
        super().__init__(data)
        self._left = limit
        self._error = error

    def readinto(self, buffer) -> int:
        if self._left <= 0:
            raise self._error
        n = super().readinto(memoryview(buffer)[: self._left])
        self._left -= n
        return n


def test_put_stores_the_blob_under_prefix_sha256_and_two_hex_digits(store):
    digest, size = store.put(io.BytesIO(b"hello"))
    assert (digest, size) == (sha256(b"hello"), 5)
    assert keys(store) == [f"sha256/{digest[:2]}/{digest}"]
    assert store.exists(digest)
    assert store.size(digest) == 5
    assert store.modified(digest) > time.time() - 60
    with store.open(digest) as f:
        assert f.read() == b"hello"
    assert list(store) == [digest]
    assert verify(store, digest)


def test_put_with_the_right_digest_and_an_empty_blob(store):
    assert store.put(io.BytesIO(b"abc"), digest=sha256(b"abc")) == (sha256(b"abc"), 3)
    assert store.put(io.BytesIO(b"")) == (sha256(b""), 0)
    with store.open(sha256(b"")) as f:
        assert f.read() == b""
    assert sorted(store) == sorted([sha256(b"abc"), sha256(b"")])


def test_a_known_digest_is_not_read_or_uploaded_again_and_its_time_is_refreshed(store):
    digest, _ = store.put(io.BytesIO(b"once"))
    uploads = calls(store, "PutObject")
    before = store.modified(digest)
    time.sleep(1.1)  # S3 times have whole seconds

    assert store.put(Unreadable(), digest=digest) == (digest, 4)  # type: ignore[arg-type]

    assert store.modified(digest) > before
    assert [u["Key"] for u in uploads] == [f"{store.prefix}/touched/{digest[:2]}/{digest}"]
    assert list(store) == [digest]


def test_refresh_marks_a_stored_blob_re_used_and_says_false_for_a_missing_one(store):
    digest, _ = store.put(io.BytesIO(b"held"))
    before = store.modified(digest)
    time.sleep(1.1)  # S3 times have whole seconds
    assert store.refresh(digest) is True
    assert store.modified(digest) > before
    assert store.refresh(sha256(b"never stored")) is False
    assert list(store) == [digest]


def test_a_seekable_stream_is_hashed_first_so_stored_content_is_not_uploaded_again(store):
    data = os.urandom(PART + 100)
    store.put(io.BytesIO(data))
    parts = calls(store, "UploadPart")
    puts = calls(store, "PutObject")
    assert store.put(io.BytesIO(data)) == (sha256(data), len(data))
    assert parts == []
    assert len(puts) == 1  # the touched marker only


def test_content_that_does_not_match_its_digest_stores_nothing(store):
    expected = sha256(b"what the caller promised")
    with pytest.raises(IntegrityError, match="does not match its digest"):
        store.put(io.BytesIO(b"what actually arrived"), digest=expected)
    assert not store.exists(expected)
    assert keys(store) == []
    assert pending_uploads(store) == []


def test_a_multipart_upload_that_does_not_match_is_aborted_and_stores_nothing(store):
    data = os.urandom(3 * PART + 1)
    expected = sha256(b"something else")
    parts = calls(store, "UploadPart")
    with pytest.raises(IntegrityError):
        store.put(OneWay(data), digest=expected)  # type: ignore[arg-type]
    assert len(parts) == 4, "the content went up in parts before the digest was known"
    assert keys(store) == []
    assert pending_uploads(store) == []


def test_a_blob_of_many_parts_round_trips(store):
    data = os.urandom(4 * PART + 12345)  # 20 MiB and a bit: five parts
    parts = calls(store, "UploadPart")
    digest, size = store.put(OneWay(data), digest=sha256(data))  # type: ignore[arg-type]
    assert (digest, size) == (sha256(data), len(data))
    assert [p["PartNumber"] for p in parts] == [1, 2, 3, 4, 5]
    assert {len(p["Body"].getvalue()) for p in parts[:-1]} == {PART}
    assert store.size(digest) == len(data)
    with store.open(digest) as f:
        assert f.read() == data
    assert pending_uploads(store) == []


def test_a_stream_that_cannot_be_re_read_and_has_no_digest_is_spooled_then_stored(store):
    data = os.urandom(2 * PART + 7)
    digest, size = store.put(OneWay(data))  # type: ignore[arg-type]
    assert (digest, size) == (sha256(data), len(data))
    with store.open(digest) as f:
        assert f.read() == data


@pytest.mark.parametrize("error", [OSError("connection reset"), KeyboardInterrupt()])
def test_an_upload_interrupted_half_way_leaves_no_object_and_no_pending_upload(store, error):
    data = os.urandom(3 * PART)
    with pytest.raises(type(error)):
        store.put(BreaksAfter(data, 2 * PART + 10, error), digest=sha256(data))  # type: ignore[arg-type]
    assert keys(store) == []
    assert pending_uploads(store) == []


def test_a_part_refused_by_s3_aborts_the_upload_with_an_error_naming_the_blob(store):
    data = os.urandom(2 * PART + 1)

    def refuse_part_two(params, **_):
        if params["PartNumber"] == 2:
            params["UploadId"] = "no-such-upload"  # S3 answers NoSuchUpload

    store.client.meta.events.register("before-parameter-build.s3.UploadPart", refuse_part_two)
    with pytest.raises(S3Error, match=f"upload part 2 of {sha256(data)}"):
        store.put(io.BytesIO(data), digest=sha256(data))
    assert keys(store) == []
    assert pending_uploads(store) == []


def test_unfinished_uploads_older_than_the_grace_period_are_aborted(store):
    key = store.key(sha256(b"never finished"))
    upload = store.client.create_multipart_upload(Bucket=store.bucket, Key=key)
    store.client.upload_part(
        Bucket=store.bucket, Key=key, UploadId=upload["UploadId"], PartNumber=1, Body=b"x"
    )
    assert store.remove_stale_temporaries(older_than=3600) == 0
    assert pending_uploads(store) == [key]
    time.sleep(1.1)  # S3 times have whole seconds
    assert store.remove_stale_temporaries(older_than=0) == 1
    assert pending_uploads(store) == []


def test_touched_markers_whose_blob_is_gone_are_swept_after_the_grace_period(store):
    kept, _ = store.put(io.BytesIO(b"kept"))
    store.put(io.BytesIO(b"kept"), digest=kept)  # its marker stays with it
    orphan = sha256(b"deleted while it was re-used")
    # what a re-use racing gc leaves: the marker written after the blob was deleted
    store.client.put_object(
        Bucket=store.bucket, Key=f"{store.prefix}/touched/{orphan[:2]}/{orphan}", Body=b""
    )
    assert store.remove_stale_temporaries(older_than=3600) == 0
    time.sleep(1.1)  # S3 times have whole seconds
    assert store.remove_stale_temporaries(older_than=0) == 1
    assert keys(store) == [f"sha256/{kept[:2]}/{kept}", f"touched/{kept[:2]}/{kept}"]
    assert store.modified(kept) > 0


def test_open_at_an_offset_reads_the_rest_and_the_reader_can_seek(store):
    data = os.urandom(2 * PART + 3)
    digest, _ = store.put(io.BytesIO(data))
    with store.open(digest, offset=PART - 1) as f:
        assert f.read(10) == data[PART - 1 : PART + 9]
        f.seek(5)
        assert f.tell() == 5
        assert f.read(5) == data[5:10]
        f.seek(-3, os.SEEK_END)
        assert f.read() == data[-3:]
    with store.open(digest, offset=len(data)) as f:
        assert f.read() == b""
    with pytest.raises(InvalidInput, match="past the end"):
        store.open(digest, offset=len(data) + 1)
    with pytest.raises(InvalidInput):
        store.open(digest, offset=-1)


@pytest.mark.parametrize("kind", ["local", "memory"])
def test_every_backend_opens_at_an_offset(tmp_path, kind):
    from modelreg.blobs import MemoryBlobStore

    other = LocalBlobStore(tmp_path) if kind == "local" else MemoryBlobStore()
    digest, _ = other.put(io.BytesIO(b"0123456789"))
    with other.open(digest, offset=4) as f:
        assert f.read() == b"456789"
    with other.open(digest, offset=10) as f:
        assert f.read() == b""
    with pytest.raises(InvalidInput, match="past the end"):
        other.open(digest, offset=11)


def test_missing_blobs_and_bad_digests(store):
    missing = sha256(b"never stored")
    assert not store.exists(missing)
    for call in (store.open, store.size, store.modified):
        with pytest.raises(NotFound, match="missing from the blob store"):
            call(missing)
    store.delete(missing)  # deleting what is not there is harmless
    for bad in ["", "abc", "A" * 64, "../" + "0" * 61]:
        with pytest.raises(InvalidInput):
            store.exists(bad)
        with pytest.raises(InvalidInput):
            store.put(io.BytesIO(b"x"), digest=bad)
    assert keys(store) == []


def test_delete_removes_the_blob_and_its_marker(store):
    keep, _ = store.put(io.BytesIO(b"keep"))
    gone, _ = store.put(io.BytesIO(b"gone"))
    store.put(io.BytesIO(b"gone"), digest=gone)  # writes the touched marker
    store.delete(gone)
    store.delete(gone)
    assert list(store) == [keep]
    assert keys(store) == [f"sha256/{keep[:2]}/{keep}"]


def test_stores_with_other_prefixes_in_one_bucket_stay_apart(store):
    other = S3BlobStore(store.bucket, f"{store.prefix}-other", client=store.client)
    a, _ = store.put(io.BytesIO(b"a"))
    b, _ = other.put(io.BytesIO(b"b"))
    store.client.put_object(Bucket=store.bucket, Key=f"{store.prefix}/sha256/zz/junk", Body=b"")
    assert list(store) == [a]
    assert list(other) == [b]
    assert not other.exists(a)


def test_iteration_lists_every_digest_once_across_pages(store):
    digests = {store.put(io.BytesIO(str(i).encode()))[0] for i in range(30)}
    store.client.meta.events.register(  # pages of 7 keys
        "before-parameter-build.s3.ListObjectsV2", lambda params, **_: params.update(MaxKeys=7)
    )
    assert list(store) == sorted(digests)


def test_a_missing_bucket_is_an_s3_error_naming_it(seaweedfs):
    store = S3BlobStore("no-such-bucket-here", client=seaweedfs.client())
    with pytest.raises(S3Error, match="no-such-bucket-here"):
        store.put(io.BytesIO(b"x"))


def test_blob_store_opens_s3_from_its_url_and_the_environment(
    seaweedfs, bucket, monkeypatch, tmp_path
):
    for name, value in seaweedfs.env.items():
        monkeypatch.setenv(name, value)
    store = blob_store(f"s3://{bucket}/some/prefix/")
    assert isinstance(store, S3BlobStore)
    assert (store.bucket, store.prefix, store.uri) == (
        bucket,
        "some/prefix",
        f"s3://{bucket}/some/prefix",
    )
    digest, _ = store.put(io.BytesIO(b"through the environment"))
    assert keys(store) == [f"sha256/{digest[:2]}/{digest}"]

    local = blob_store(str(tmp_path / "blobs"))
    assert isinstance(local, LocalBlobStore)
    for bad in ["s3://", "s3:///prefix", "gs://bucket", ""]:
        with pytest.raises(InvalidInput):
            blob_store(bad)
    (tmp_path / "file").write_text("x")
    with pytest.raises(InvalidInput, match="not a directory"):
        blob_store(str(tmp_path / "file"))


def test_a_registry_on_postgres_and_s3_registers_pulls_collects_and_checks(
    postgres, store, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    big = os.urandom(PART + 10)  # goes up in two parts
    Path("model").mkdir()
    Path("model/weights.bin").write_bytes(big)
    Path("model/config.json").write_text('{"layers": 2}')
    with LocalRegistry(db_url=postgres.new_database(), blobs=store, actor="t") as reg:
        v = reg.register("churn", "model", metrics={"auc": 0.9})
        again = reg.register("churn", "model", metrics={"auc": 0.91})  # same files: dedup
        assert (v.number, again.number) == (1, 2)
        assert len(list(store)) == 2

        out = reg.pull("churn/1", tmp_path / "out")
        assert (out / "weights.bin").read_bytes() == big

        orphan, _ = store.put(io.BytesIO(b"nobody needs me"))
        unfinished = store.key(sha256(b"interrupted"))
        store.client.create_multipart_upload(Bucket=store.bucket, Key=unfinished)
        assert reg.gc(grace_seconds=3600)["removed"] == []  # too young
        time.sleep(1.1)
        collected = reg.gc(grace_seconds=0)
        assert (collected["removed"], collected["temporaries_removed"]) == ([orphan], 1)
        assert not store.exists(orphan)
        assert pending_uploads(store) == []

        check = reg.fsck()
        assert check["ok"], check
        assert (check["blobs"], check["referenced"]) == (2, 2)

        weights = next(f.digest for f in v.files if f.path == "weights.bin")
        store.client.put_object(Bucket=store.bucket, Key=store.key(weights), Body=b"rotten")
        check = reg.fsck()
        assert check["corrupt"] == [weights]
        with pytest.raises(IntegrityError):
            reg.pull("churn/2", tmp_path / "out2")
