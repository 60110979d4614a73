"""gc deletes only what nothing needs: blobs referenced by a version or a run's code diff are
kept, and a version being created never ends up without its blobs; unreferenced blobs go once
past the grace period.

These tests reach into LocalRegistry (its blob store) to set up the states a concurrent writer
would be in.
"""

from __future__ import annotations

import io
import os
import threading
import time
from pathlib import Path

import pytest

import modelreg


@pytest.fixture
def reg(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with modelreg.connect(tmp_path / "reg") as registry:
        yield registry


def age(reg, digest: str, seconds: float = 7200) -> None:
    """Make a blob look as if it was written ``seconds`` ago."""
    old = time.time() - seconds
    os.utime(reg.blobs.inner.path(digest), (old, old))


def put(reg, data: bytes, *, old: bool = True) -> str:
    digest, _ = reg.blobs.put(io.BytesIO(data))
    if old:
        age(reg, digest)
    return digest


def test_an_old_unreferenced_blob_is_removed(reg):
    orphan = put(reg, b"orphan")
    result = reg.gc(grace_seconds=0)
    assert result["removed"] == [orphan]
    assert not reg.blobs.exists(orphan)


def test_a_blob_referenced_by_a_version_is_kept(reg):
    Path("m.bin").write_bytes(b"model")
    v = reg.register("churn", "m.bin")
    digest = v.files[0].digest
    age(reg, digest)
    assert reg.gc(grace_seconds=0)["removed"] == []
    assert reg.blobs.exists(digest)
    assert reg.fsck()["ok"]


def test_a_blob_gc_removes_between_store_and_commit_is_stored_again(reg, tmp_path):
    """register() stores its blobs, then commits its version; if gc (with no grace period)
    removes a blob in between, the committing transaction stores it again."""
    Path("m.bin").write_bytes(b"being registered right now")
    store_file = reg._put_file
    collected = []

    def store_then_collect(path, digest=None, **options):
        stored = store_file(path, digest, **options)
        if not collected:
            with modelreg.connect(reg.root) as other:
                collected.extend(other.gc(grace_seconds=0)["removed"])
        return stored

    reg._put_file = store_then_collect
    v = reg.register("churn", "m.bin")
    assert collected == [v.files[0].digest], "gc did not run between store and commit"
    assert reg.fsck()["ok"]
    reg.pull(v.ref, tmp_path / "out")
    assert (tmp_path / "out" / "m.bin").read_bytes() == b"being registered right now"


def test_a_blob_gc_removes_after_the_check_before_the_transaction_is_checked_again(reg):
    """commit_version checks its blobs before its transaction; a gc that deletes one before
    the transaction starts moves the blob epoch, and the transaction checks again: the
    version is refused, never created naming a blob that is gone."""
    from modelreg import wire
    from modelreg.errors import BlobMissing

    digest = put(reg, b"checked, then collected")
    entry = {"path": "m.bin", "digest": digest, "size": len(b"checked, then collected")}
    size = reg.blobs.size
    collected = []

    def size_then_collect(candidate: str) -> int:
        found = size(candidate)
        if not collected:  # the first check, before the transaction: gc runs right after it
            with modelreg.connect(reg.root) as other:
                collected.extend(other.gc(grace_seconds=0)["removed"])
        return found

    reg.blobs.size = size_then_collect
    with pytest.raises(BlobMissing, match=digest):
        reg.commit_version(wire.new_version_from_json("churn", {"files": [entry]}))
    assert collected == [digest]
    assert reg.models() == []


def test_a_blob_within_the_grace_period_is_kept(reg):
    fresh = put(reg, b"just written", old=False)
    result = reg.gc(grace_seconds=3600)
    assert result["removed"] == []
    assert result["kept_recent"] == 1
    assert reg.blobs.exists(fresh)


def test_a_dry_run_reports_without_deleting(reg):
    orphan = put(reg, b"orphan")
    assert reg.gc(dry_run=True, grace_seconds=0)["removed"] == [orphan]
    assert reg.blobs.exists(orphan)


def test_a_code_diff_blob_is_kept(reg, git_repo):
    (git_repo / "train.py").write_text("print('uncommitted')\n")
    Path("out").mkdir()
    Path("out/m.bin").write_bytes(b"model")
    with reg.start_run(name="dirty") as run:
        v = run.register("churn", "out/m.bin")
    diff = reg.lineage(v.ref)["code"]["diff_digest"]
    age(reg, diff)
    age(reg, v.files[0].digest)
    assert reg.gc(grace_seconds=0)["removed"] == []
    assert reg.blobs.exists(diff)


def test_only_the_unreferenced_blob_goes(reg):
    Path("m.bin").write_bytes(b"referenced")
    referenced = reg.register("churn", "m.bin").files[0].digest
    fresh = put(reg, b"fresh", old=False)
    orphan = put(reg, b"orphan")
    age(reg, referenced)

    assert reg.gc(grace_seconds=60)["removed"] == [orphan]
    assert {referenced, fresh} <= set(reg.blobs)
    assert orphan not in set(reg.blobs)


def test_a_negative_grace_period_is_refused(reg):
    with pytest.raises(modelreg.InvalidInput):
        reg.gc(grace_seconds=-1)


def test_registering_again_after_gc_restores_a_collected_blob(reg):
    Path("m.bin").write_bytes(b"shared")
    digest = put(reg, b"shared")
    reg.gc(grace_seconds=0)
    assert not reg.blobs.exists(digest)
    v = reg.register("churn", "m.bin")
    assert reg.blobs.exists(v.files[0].digest)
    assert reg.fsck()["ok"]


def test_a_blob_reused_by_a_register_while_gc_runs_is_not_deleted_under_it(reg, tmp_path):
    """gc decides, then deletes; a register that starts in between and finds the blob already
    stored must not end up with a version whose blob is gone.

    The interleaving is forced: just before gc deletes its candidate, another client starts
    registering a version with exactly those bytes in a thread, and gc waits a moment before
    deleting. Whichever order the two then take, the version's blob must be there.
    """
    digest = put(reg, b"about to be reused")
    Path("m.bin").write_bytes(b"about to be reused")
    other = modelreg.connect(reg.root)
    delete = reg.blobs.delete
    made = []
    errors = []

    def register() -> None:
        try:
            made.append(other.register("churn", "m.bin"))
        except Exception as exc:
            errors.append(exc)

    worker = threading.Thread(target=register)

    def delete_after_a_concurrent_register_started(candidate: str) -> None:
        if candidate == digest and not worker.is_alive() and not made:
            worker.start()
            worker.join(timeout=0.5)  # it completes now unless gc holds it off
        delete(candidate)

    reg.blobs.delete = delete_after_a_concurrent_register_started
    try:
        reg.gc()  # the default grace period: the blob is two hours old
    finally:
        reg.blobs.delete = delete
    worker.join(timeout=60)
    other.close()

    assert not errors, errors
    assert made, "the concurrent register did not run"
    check = reg.fsck()
    assert check["missing"] == [], "a committed version references a blob gc deleted"
    reg.pull(made[0].ref, tmp_path / "out")
