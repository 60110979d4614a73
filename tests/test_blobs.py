"""The blob-store protocol, run against every backend: content-addressed, deduplicated,
verified on the way in, and checkable on the way out."""

from __future__ import annotations

import ctypes
import errno
import hashlib
import io
import os
import tempfile
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelreg.blobs import (
    CHUNK,
    FlushBehind,
    LocalBlobStore,
    MemoryBlobStore,
    _sync_file_range,
    hash_stream,
    verify,
)
from modelreg.errors import IntegrityError, InvalidInput, NotFound


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def make_local(root: Path) -> LocalBlobStore:
    return LocalBlobStore(root / "blobs")


def make_memory(root: Path) -> MemoryBlobStore:
    return MemoryBlobStore()


FACTORIES = {"local": make_local, "memory": make_memory}


@pytest.fixture(params=sorted(FACTORIES))
def store(request, tmp_path):
    return FACTORIES[request.param](tmp_path)


def corrupt(store, digest: str, data: bytes) -> None:
    """Replace a blob's bytes behind the store's back."""
    if isinstance(store, LocalBlobStore):
        store.path(digest).write_bytes(data)
    else:
        store.corrupt(digest, data)


def leftovers(store) -> list[str]:
    """Temporary files a backend left on disk (none for the in-memory store)."""
    if isinstance(store, LocalBlobStore):
        return [p.name for p in store.root.rglob("*") if p.is_file() and p.name.startswith(".")]
    return []


class Unreadable(io.RawIOBase):
    """A stream that fails the test if anyone reads it."""

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        raise AssertionError("the stream was read")

    def readinto(self, buffer) -> int:
        raise AssertionError("the stream was read")


def test_put_returns_the_sha256_and_size_and_the_blob_reads_back(store):
    digest, size = store.put(io.BytesIO(b"hello"))
    assert (digest, size) == (sha256(b"hello"), 5)
    assert store.exists(digest)
    assert store.size(digest) == 5
    with store.open(digest) as f:
        assert f.read() == b"hello"
    assert list(store) == [digest]


def test_put_with_the_right_digest_stores_the_blob(store):
    assert store.put(io.BytesIO(b"abc"), digest=sha256(b"abc")) == (sha256(b"abc"), 3)
    assert store.exists(sha256(b"abc"))


def test_an_empty_blob_is_a_blob(store):
    digest, size = store.put(io.BytesIO(b""))
    assert (digest, size) == (sha256(b""), 0)
    with store.open(digest) as f:
        assert f.read() == b""


def test_a_blob_larger_than_one_chunk_reads_back_whole(store):
    data = os.urandom(3 * (1 << 20) + 17)
    digest, size = store.put(io.BytesIO(data))
    assert (digest, size) == (sha256(data), len(data))
    with store.open(digest) as f:
        assert f.read() == data


def test_the_second_put_of_a_known_digest_does_not_read_the_stream(store):
    digest, _ = store.put(io.BytesIO(b"once"))
    assert store.put(Unreadable(), digest=digest) == (digest, 4)  # type: ignore[arg-type]
    assert list(store) == [digest]


def test_putting_the_same_bytes_twice_stores_one_blob(store):
    store.put(io.BytesIO(b"same"))
    store.put(io.BytesIO(b"same"))
    assert list(store) == [sha256(b"same")]


def test_a_re_put_refreshes_the_modification_time(store):
    digest, _ = store.put(io.BytesIO(b"x"))
    if isinstance(store, LocalBlobStore):
        old = time.time() - 7200
        os.utime(store.path(digest), (old, old))
    before = store.modified(digest)
    store.put(Unreadable(), digest=digest)  # type: ignore[arg-type]
    assert store.modified(digest) >= before
    assert store.modified(digest) > time.time() - 60


def test_content_that_does_not_match_its_digest_is_refused_and_nothing_is_left(store):
    expected = sha256(b"what the caller promised")
    with pytest.raises(IntegrityError):
        store.put(io.BytesIO(b"what actually arrived"), digest=expected)
    assert not store.exists(expected)
    assert not store.exists(sha256(b"what actually arrived"))
    assert list(store) == []
    assert leftovers(store) == []


def test_refresh_marks_a_stored_blob_re_used_and_says_false_for_a_missing_one(store):
    digest, _ = store.put(io.BytesIO(b"held"))
    if isinstance(store, LocalBlobStore):
        os.utime(store.path(digest), (1, 1))
    else:
        store._blobs[digest] = (b"held", 1.0)
    assert store.refresh(digest) is True
    assert store.modified(digest) > time.time() - 60
    assert store.refresh(sha256(b"never stored")) is False
    assert list(store) == [digest]


def test_delete_removes_a_blob_and_deleting_twice_is_harmless(store):
    keep, _ = store.put(io.BytesIO(b"keep"))
    gone, _ = store.put(io.BytesIO(b"gone"))
    store.delete(gone)
    store.delete(gone)
    assert not store.exists(gone)
    assert list(store) == [keep]
    with pytest.raises(NotFound):
        store.open(gone)


def test_iteration_lists_every_digest_once(store):
    digests = {store.put(io.BytesIO(bytes([i])))[0] for i in range(20)}
    listed = list(store)
    assert sorted(listed) == sorted(digests)


def test_missing_blobs_raise_not_found(store):
    missing = sha256(b"never stored")
    assert not store.exists(missing)
    for call in (store.open, store.size, store.modified):
        with pytest.raises(NotFound):
            call(missing)


@pytest.mark.parametrize("bad", ["", "abc", "A" * 64, "g" * 64, "../" + "0" * 61])
def test_malformed_digests_are_refused(store, bad):
    with pytest.raises(InvalidInput):
        store.exists(bad)
    with pytest.raises(InvalidInput):
        store.open(bad)
    with pytest.raises(InvalidInput):
        store.put(io.BytesIO(b"x"), digest=bad)
    assert list(store) == []


def test_verify_detects_corruption(store):
    digest, _ = store.put(io.BytesIO(b"good bytes"))
    assert verify(store, digest)
    corrupt(store, digest, b"bad bytes!")
    assert not verify(store, digest)


def test_hash_stream_matches_hashlib():
    data = os.urandom(100_000)
    assert hash_stream(io.BytesIO(data)) == (sha256(data), len(data))


@settings(deadline=None, max_examples=25)
@given(st.lists(st.binary(max_size=2000), max_size=6), st.sampled_from(sorted(FACTORIES)))
def test_any_bytes_round_trip_and_identical_bytes_dedupe(blobs, kind):
    with tempfile.TemporaryDirectory() as tmp:
        store = FACTORIES[kind](Path(tmp))
        for data in blobs:
            digest, size = store.put(io.BytesIO(data))
            assert (digest, size) == (sha256(data), len(data))
            with store.open(digest) as f:
                assert f.read() == data
        assert sorted(store) == sorted({sha256(d) for d in blobs})


class TestLocalLayout:
    def test_blobs_live_under_sha256_and_two_hex_digits(self, tmp_path):
        store = LocalBlobStore(tmp_path / "blobs")
        digest, _ = store.put(io.BytesIO(b"layout"))
        assert (tmp_path / "blobs" / "sha256" / digest[:2] / digest).read_bytes() == b"layout"

    def test_stale_temporaries_are_removed_and_fresh_ones_kept(self, tmp_path):
        store = LocalBlobStore(tmp_path / "blobs")
        digest, _ = store.put(io.BytesIO(b"x"))
        stale = store.path(digest).parent / ".tmp-stale"
        fresh = store.root / "tmp" / ".tmp-fresh"
        stale.write_bytes(b"partial")
        fresh.write_bytes(b"partial")
        old = time.time() - 7200
        os.utime(stale, (old, old))
        assert store.remove_stale_temporaries(older_than=3600) == 1
        assert not stale.exists()
        assert fresh.exists()
        assert list(store) == [digest]

    def test_temporaries_are_not_listed_as_blobs(self, tmp_path):
        store = LocalBlobStore(tmp_path / "blobs")
        digest, _ = store.put(io.BytesIO(b"x"))
        (store.path(digest).parent / ".tmp-0123").write_bytes(b"partial")
        assert list(store) == [digest]


def test_a_shard_folder_removed_behind_the_stores_back_is_made_again(tmp_path):
    store = LocalBlobStore(tmp_path / "blobs")
    digest, _ = store.put(io.BytesIO(b"first"))
    store.delete(digest)
    store.path(digest).parent.rmdir()
    assert store.put(io.BytesIO(b"first")) == (digest, 5)
    with store.open(digest) as f:
        assert f.read() == b"first"


class TestFlushBehind:
    """A local store's writes start the disk's writeback as they go."""

    @staticmethod
    def recording(calls: list, result: int = 0, code: int = 0):
        def sync(fd: int, start: int, n: int, flags: int) -> int:
            calls.append((start, n, flags))
            ctypes.set_errno(code)
            return result

        return sync

    def test_each_step_is_handed_to_writeback_and_the_range_before_is_waited_for(
        self, tmp_path, monkeypatch
    ):
        calls = []
        monkeypatch.setattr(FlushBehind, "STEP", 4)
        with open(tmp_path / "blob", "xb") as out:
            writer = FlushBehind(out)
            monkeypatch.setattr(writer, "_sync", self.recording(calls))
            for piece in (b"abc", b"defgh", b"ij", b"klmnopq"):
                writer.write(piece)
        assert (tmp_path / "blob").read_bytes() == b"abcdefghijklmnopq"
        # 8 bytes written: [0, 8) starts; 17 written: [8, 16) starts, [0, 8) is waited for
        assert calls == [(0, 8, 2), (8, 8, 2), (0, 8, 7)]

    def test_where_writeback_is_not_supported_writes_go_on_plainly(self, tmp_path, monkeypatch):
        calls = []
        monkeypatch.setattr(FlushBehind, "STEP", 4)
        with open(tmp_path / "blob", "xb") as out:
            writer = FlushBehind(out)
            monkeypatch.setattr(writer, "_sync", self.recording(calls, -1, errno.EINVAL))
            for _ in range(5):
                writer.write(b"0123")
        assert len(calls) == 1
        assert (tmp_path / "blob").read_bytes() == b"0123" * 5

    def test_a_write_error_the_disk_reports_fails_the_put_and_leaves_nothing(
        self, tmp_path, monkeypatch
    ):
        monkeypatch.setattr(FlushBehind, "STEP", 1 << 16)
        monkeypatch.setattr(
            "modelreg.blobs._sync_file_range", lambda: self.recording([], -1, errno.EIO)
        )
        store = LocalBlobStore(tmp_path / "blobs")
        with pytest.raises(OSError, match="writing the blob to disk failed"):
            store.put(io.BytesIO(os.urandom(2 * CHUNK)))
        assert list(store) == []
        assert leftovers(store) == []

    def test_the_real_call_is_found_and_works_on_this_disk(self, tmp_path):
        # The test machines run Linux, where writeback is asked for through libc.
        sync = _sync_file_range()
        assert sync is not None
        with open(tmp_path / "blob", "wb") as out:
            out.write(b"x" * 4096)
            out.flush()
            assert sync(out.fileno(), 0, 4096, 2) == 0
            assert sync(out.fileno(), 0, 4096, 7) == 0

    def test_a_blob_of_many_steps_is_stored_whole(self, tmp_path, monkeypatch):
        monkeypatch.setattr(FlushBehind, "STEP", 1 << 16)
        store = LocalBlobStore(tmp_path / "blobs")
        data = os.urandom(3 * CHUNK + 12345)
        digest, size = store.put(io.BytesIO(data))
        assert (digest, size) == (sha256(data), len(data))
        with store.open(digest) as f:
            assert f.read() == data
