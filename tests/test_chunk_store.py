"""Large files stored as content-defined chunks in packs: shared bytes stored once, a
fine-tune stored as a compressed delta from its parent's file, every read verified, and gc
and fsck aware of chunks and packs.

The files are bf16-like weights made with numpy (normal values of std 0.02, the top 16 bits
of float32), a little above the size from which files are chunked.
"""

from __future__ import annotations

import io
import os
import time
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

import modelreg
from modelreg import chunking, schema
from modelreg.errors import IntegrityError

SIZE = chunking.CHUNKED_FROM + (4 << 20)  # 12 MiB: chunked, a few hundred chunks


def weights(count: int, seed: int = 0) -> np.ndarray:
    """``count`` bf16 values (as uint16) drawn like a layer's weights."""
    rng = np.random.default_rng(seed)
    values = rng.standard_normal(count, dtype=np.float32) * np.float32(0.02)
    return (values.view(np.uint32) >> 16).astype(np.uint16)


def fine_tuned(base: np.ndarray, seed: int = 1) -> np.ndarray:
    """Every value nudged by a relative 0.5%: most change in their low mantissa bits."""
    rng = np.random.default_rng(seed)
    wide = (base.astype(np.uint32) << 16).view(np.float32)
    moved = wide * (1 + rng.standard_normal(base.size, dtype=np.float32) * np.float32(5e-3))
    return (moved.view(np.uint32) >> 16).astype(np.uint16)


@pytest.fixture
def reg(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with modelreg.connect(tmp_path / "reg") as registry:
        yield registry


@pytest.fixture
def base_file(tmp_path) -> Path:
    path = tmp_path / "base.safetensors"
    path.write_bytes(weights(SIZE // 2).tobytes())
    return path


def stored_bytes(reg) -> int:
    """What the blob directory holds, in bytes."""
    root = reg.blobs.inner.root
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def file_row(reg, digest: str):
    f = schema.chunked_files.c
    query = sa.select(f.digest, f.base, f.size).where(f.digest == digest)
    return reg.db.read(lambda conn: conn.execute(query).first())


def pulled(reg, ref: str, tmp_path: Path) -> bytes:
    out = tmp_path / f"pulled-{ref.replace('/', '-')}"
    reg.pull(ref, out)
    return (out / "model.safetensors").read_bytes()


def test_a_large_file_is_chunked_and_pulled_byte_for_byte(reg, base_file, tmp_path):
    version = reg.register("llm", {"model.safetensors": base_file})
    digest = version.files[0].digest
    assert file_row(reg, digest).size == SIZE
    assert not reg.blobs.inner.exists(digest)  # its bytes are in packs, not a whole blob
    assert pulled(reg, "llm/1", tmp_path) == base_file.read_bytes()
    # bf16 weights compress: the packs hold less than the file
    assert stored_bytes(reg) < SIZE * 0.9


def test_a_small_file_stays_one_whole_blob(reg, tmp_path):
    (tmp_path / "small.bin").write_bytes(os.urandom(chunking.CHUNKED_FROM - 1))
    version = reg.register("small", {"model.safetensors": tmp_path / "small.bin"})
    digest = version.files[0].digest
    assert reg.blobs.chunked(digest) is None
    assert reg.blobs.inner.exists(digest)


def test_packs_are_kept_apart_from_the_blobs(reg, base_file):
    version = reg.register("llm", {"model.safetensors": base_file})
    packs = reg.db.read(
        lambda conn: list(conn.execute(sa.select(schema.chunk_packs.c.name)).scalars())
    )
    assert packs
    assert list(reg.blobs) == [version.files[0].digest]
    assert list(reg.blobs.inner) == []
    assert sorted(name for name, _ in reg.blobs.inner.packs()) == sorted(packs)


def test_an_edit_that_shifts_every_offset_stores_only_the_chunks_around_it(
    reg, base_file, tmp_path
):
    """A safetensors header that grew moves every tensor; content-defined cut points
    find the same chunks after the edit."""
    reg.register("llm", {"model.safetensors": base_file})
    before = stored_bytes(reg)
    edited = tmp_path / "edited.safetensors"
    edited.write_bytes(b'{"__metadata__": {"note": "re-saved"}}' + base_file.read_bytes())
    reg.register("llm", {"model.safetensors": edited})
    assert stored_bytes(reg) - before < SIZE * 0.02
    assert pulled(reg, "llm/2", tmp_path) == edited.read_bytes()


def test_a_fine_tune_is_stored_as_a_delta_from_its_parents_file(reg, tmp_path):
    base = weights(SIZE // 2)
    (tmp_path / "base.bin").write_bytes(base.tobytes())
    (tmp_path / "tuned.bin").write_bytes(fine_tuned(base).tobytes())
    parent = reg.register("llm", {"model.safetensors": tmp_path / "base.bin"})
    before = stored_bytes(reg)
    child = reg.register("llm", {"model.safetensors": tmp_path / "tuned.bin"}, parents=["llm/1"])
    row = file_row(reg, child.files[0].digest)
    assert row.base == parent.files[0].digest
    delta = stored_bytes(reg) - before
    # zstd alone keeps about 78% of bf16 bytes; the XOR with the parent far less
    assert delta < SIZE * 0.5, f"the fine-tune added {delta / SIZE:.0%} of its size"
    assert pulled(reg, "llm/2", tmp_path) == (tmp_path / "tuned.bin").read_bytes()


def test_without_a_parent_the_same_file_is_stored_plainly(reg, tmp_path):
    base = weights(SIZE // 2)
    (tmp_path / "base.bin").write_bytes(base.tobytes())
    (tmp_path / "tuned.bin").write_bytes(fine_tuned(base).tobytes())
    reg.register("llm", {"model.safetensors": tmp_path / "base.bin"})
    other = reg.register("other", {"model.safetensors": tmp_path / "tuned.bin"})
    assert file_row(reg, other.files[0].digest).base is None


def test_a_delta_chain_is_never_longer_than_one(reg, tmp_path):
    """A fine-tune of a fine-tune is a delta from the first file, which has no base: a
    read needs at most two files' chunks."""
    base = weights(SIZE // 2)
    tuned = fine_tuned(base, seed=1)
    again = fine_tuned(tuned, seed=2)
    for name, values in (("a", base), ("b", tuned), ("c", again)):
        (tmp_path / f"{name}.bin").write_bytes(values.tobytes())
    root = reg.register("llm", {"model.safetensors": tmp_path / "a.bin"})
    reg.register("llm", {"model.safetensors": tmp_path / "b.bin"}, parents=["llm/1"])
    third = reg.register("llm", {"model.safetensors": tmp_path / "c.bin"}, parents=["llm/2"])
    assert file_row(reg, third.files[0].digest).base == root.files[0].digest
    assert pulled(reg, "llm/3", tmp_path) == (tmp_path / "c.bin").read_bytes()


def test_a_read_from_an_offset_inside_a_delta_piece(reg, tmp_path):
    base = weights(SIZE // 2)
    tuned = fine_tuned(base).tobytes()
    (tmp_path / "base.bin").write_bytes(base.tobytes())
    (tmp_path / "tuned.bin").write_bytes(tuned)
    reg.register("llm", {"model.safetensors": tmp_path / "base.bin"})
    child = reg.register("llm", {"model.safetensors": tmp_path / "tuned.bin"}, parents=["llm/1"])
    for offset in (0, 1, 65_537, SIZE // 2 + 3, SIZE - 5, SIZE):
        with reg.blobs.open(child.files[0].digest, offset=offset) as f:
            assert f.read() == tuned[offset:]


def test_bytes_that_do_not_match_the_digest_store_no_file(reg, base_file):
    wrong = "0" * 64
    with (
        pytest.raises(IntegrityError, match="does not match its digest"),
        open(base_file, "rb") as f,
    ):
        reg.blobs.put(f, digest=wrong)
    assert not reg.blobs.exists(wrong)
    assert file_row(reg, wrong) is None


def damage_a_pack(reg) -> str:
    """Flip one byte in the middle of a pack, keeping its name."""
    pack = reg.db.read(
        lambda conn: conn.execute(sa.select(schema.chunk_packs.c.name)).scalars().first()
    )
    path = reg.blobs.inner.pack_path(pack)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.chmod(0o644)
    path.write_bytes(bytes(data))
    return pack


def test_a_damaged_chunk_fails_the_pull_and_fsck_names_the_pack_and_the_file(
    reg, base_file, tmp_path
):
    version = reg.register("llm", {"model.safetensors": base_file})
    pack = damage_a_pack(reg)
    with pytest.raises(IntegrityError, match="chunk"):
        reg.pull("llm/1", tmp_path / "out")
    assert not (tmp_path / "out" / "model.safetensors").exists()
    report = reg.fsck()
    assert not report["ok"]
    assert report["corrupt_packs"] == [pack]
    assert report["corrupt"] == [version.files[0].digest]


def test_fsck_counts_packs_and_chunks_of_a_sound_store(reg, base_file):
    reg.register("llm", {"model.safetensors": base_file})
    report = reg.fsck()
    assert report["ok"], report
    assert report["packs"] >= 1
    assert report["chunks"] > SIZE // (256 << 10)  # cut points are at most 256 KiB apart
    assert (report["corrupt_packs"], report["missing_packs"], report["missing_chunks"]) == (
        [],
        [],
        0,
    )


def test_gc_keeps_a_base_while_a_delta_needs_it_then_frees_every_pack(reg, tmp_path):
    base = weights(SIZE // 2)
    (tmp_path / "base.bin").write_bytes(base.tobytes())
    (tmp_path / "tuned.bin").write_bytes(fine_tuned(base).tobytes())
    parent = reg.register("llm", {"model.safetensors": tmp_path / "base.bin"})
    reg.register("llm", {"model.safetensors": tmp_path / "tuned.bin"}, parents=["llm/1"])
    reg.delete_version("llm/1", reason="superseded")
    report = reg.gc(grace_seconds=0)
    assert parent.files[0].digest not in report["removed"]  # llm/2's deltas read it
    assert pulled(reg, "llm/2", tmp_path) == (tmp_path / "tuned.bin").read_bytes()
    reg.delete_version("llm/2", reason="superseded")
    reg.gc(grace_seconds=0)
    report = reg.gc(grace_seconds=0)  # the base goes once its last reader has gone
    assert list(reg.blobs) == []
    assert stored_bytes(reg) == 0
    assert reg.fsck()["packs"] == 0


def test_gc_rewrites_a_pack_that_live_chunks_fill_less_than_half_of(reg, tmp_path):
    """Half of one file's pack is shared with a file that stays; the rest goes."""
    values = weights(SIZE // 2)
    first = values.tobytes()
    second = first[: SIZE // 3] + weights(SIZE // 2, seed=9).tobytes()[SIZE // 3 :]
    (tmp_path / "a.bin").write_bytes(first)
    (tmp_path / "b.bin").write_bytes(second)
    reg.register("a", {"model.safetensors": tmp_path / "a.bin"})
    reg.register("b", {"model.safetensors": tmp_path / "b.bin"})
    reg.delete_version("a/1", reason="gone")
    before = stored_bytes(reg)
    report = reg.gc(grace_seconds=0)
    assert len(report["packs_repacked"]) == 1
    assert report["pack_bytes_freed"] > 0
    assert stored_bytes(reg) < before - report["pack_bytes_freed"] * 0.9
    assert pulled(reg, "b/1", tmp_path) == second
    assert reg.fsck()["ok"]


def test_gc_removes_a_pack_object_a_killed_writer_left_without_a_row(reg, base_file):
    reg.blobs.inner.put_pack("ab" * 16, [b"half a pack"])
    assert reg.gc(grace_seconds=3600)["packs_removed"] == []
    assert reg.gc(grace_seconds=0)["packs_removed"] == ["ab" * 16]
    assert list(reg.blobs.inner.packs()) == []


def test_gc_leaves_packs_within_the_grace_period(reg, base_file):
    reg.register("llm", {"model.safetensors": base_file})
    reg.delete_version("llm/1", reason="gone")
    report = reg.gc(grace_seconds=0)
    assert report["removed"]
    assert report["packs_removed"]
    reg.register("llm", {"model.safetensors": base_file})
    reg.delete_version("llm/2", reason="gone")
    report = reg.gc(grace_seconds=3600)
    assert report["packs_removed"] == []
    assert report["kept_recent"] == 1


def test_a_large_blob_stored_whole_before_chunking_is_read_as_it_is(reg, tmp_path):
    data = weights(SIZE // 2, seed=4).tobytes()
    digest, size = reg.blobs.inner.put(io.BytesIO(data))
    assert reg.blobs.exists(digest)
    assert reg.blobs.size(digest) == size
    assert digest in list(reg.blobs)
    with reg.blobs.open(digest, offset=10) as f:
        assert f.read() == data[10:]
    # and a file registered with the same bytes re-uses it rather than chunking it again
    (tmp_path / "same.bin").write_bytes(data)
    version = reg.register("old", {"model.safetensors": tmp_path / "same.bin"})
    assert version.files[0].digest == digest
    assert reg.blobs.chunked(digest) is None


def test_a_delta_against_a_whole_blob_base(reg, tmp_path):
    """A parent stored whole (before chunking) is a base like any other."""
    base = weights(SIZE // 2, seed=5)
    base_bytes = base.tobytes()
    digest, _ = reg.blobs.inner.put(io.BytesIO(base_bytes))
    (tmp_path / "base.bin").write_bytes(base_bytes)
    reg.register("llm", {"model.safetensors": tmp_path / "base.bin"})
    tuned = fine_tuned(base).tobytes()
    (tmp_path / "tuned.bin").write_bytes(tuned)
    child = reg.register("llm", {"model.safetensors": tmp_path / "tuned.bin"}, parents=["llm/1"])
    assert file_row(reg, child.files[0].digest).base == digest
    assert pulled(reg, "llm/2", tmp_path) == tuned


def test_repack_stores_a_whole_blob_as_chunks_and_its_delta_children_still_read(reg, tmp_path):
    """A registry from before chunking: repack converts its large whole blobs, even one
    that is the base of a child's deltas, and every version reads back the same."""
    base = weights(SIZE // 2, seed=5)
    base_bytes = base.tobytes()
    digest, _ = reg.blobs.inner.put(io.BytesIO(base_bytes))
    small, _ = reg.blobs.inner.put(io.BytesIO(b"small"))
    (tmp_path / "base.bin").write_bytes(base_bytes)
    reg.register("llm", {"model.safetensors": tmp_path / "base.bin"})
    tuned = fine_tuned(base).tobytes()
    (tmp_path / "tuned.bin").write_bytes(tuned)
    reg.register("llm", {"model.safetensors": tmp_path / "tuned.bin"}, parents=["llm/1"])

    planned = reg.repack(dry_run=True)
    assert planned == {
        "dry_run": True,
        "converted": [digest],
        "failed": [],
        "bytes": SIZE,
        "pack_bytes": 0,
    }
    assert reg.blobs.inner.exists(digest)
    done = reg.repack()
    assert done["converted"] == [digest]
    # registering the file wrote its chunks already (committed as nothing: the whole blob
    # was held), so the conversion finds them stored
    assert done["pack_bytes"] == 0
    assert not reg.blobs.inner.exists(digest)
    assert reg.blobs.inner.exists(small)  # small blobs stay whole
    assert file_row(reg, digest).size == SIZE
    assert pulled(reg, "llm/1", tmp_path) == base_bytes
    assert pulled(reg, "llm/2", tmp_path) == tuned
    assert reg.fsck()["ok"]
    assert reg.repack()["converted"] == []


def test_repack_keeps_a_whole_blob_that_fails_its_digest_and_says_so(reg, tmp_path):
    data = weights(SIZE // 2, seed=6).tobytes()
    digest, _ = reg.blobs.inner.put(io.BytesIO(data))
    path = reg.blobs.inner.path(digest)
    path.chmod(0o644)
    path.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    done = reg.repack()
    assert done["failed"] == [digest]
    assert done["converted"] == []
    assert reg.blobs.inner.exists(digest)
    assert reg.blobs.chunked(digest) is None


def test_registering_the_same_large_file_twice_stores_it_once(reg, base_file):
    reg.register("llm", {"model.safetensors": base_file})
    before = stored_bytes(reg)
    time.sleep(0.01)
    reg.register("copy", {"model.safetensors": base_file})
    assert stored_bytes(reg) == before


def test_chunks_on_postgresql_and_s3(postgres, seaweedfs, tmp_path, monkeypatch):
    """The same store on a team server's backends: packs are objects in the bucket, the
    chunk index is in PostgreSQL."""
    import secrets

    from modelreg.local import LocalRegistry
    from modelreg.s3 import S3BlobStore

    monkeypatch.chdir(tmp_path)
    bucket = seaweedfs.new_bucket()
    store = S3BlobStore(bucket, f"{secrets.token_hex(4)}/reg", client=seaweedfs.client())
    base = weights(SIZE // 2, seed=7)
    tuned = fine_tuned(base).tobytes()
    (tmp_path / "base.bin").write_bytes(base.tobytes())
    (tmp_path / "tuned.bin").write_bytes(tuned)
    with LocalRegistry(db_url=postgres.new_database(), blobs=store, actor="t") as reg:
        parent = reg.register("llm", {"model.safetensors": tmp_path / "base.bin"})
        child = reg.register(
            "llm", {"model.safetensors": tmp_path / "tuned.bin"}, parents=["llm/1"]
        )
        assert file_row(reg, child.files[0].digest).base == parent.files[0].digest
        assert list(store) == []  # no whole blob: the bytes are in packs
        assert len(list(store.packs())) >= 2
        assert pulled(reg, "llm/2", tmp_path) == tuned
        assert reg.fsck()["ok"]
        reg.delete_version("llm/2", reason="gone")
        reg.delete_version("llm/1", reason="gone")
        reg.gc(grace_seconds=0)
        reg.gc(grace_seconds=0)
        assert list(store.packs()) == []
