"""A writer killed with SIGKILL in the middle of storing a large file leaves the registry
consistent: no half-made version, fsck clean, the same file registers afterwards, and gc
clears the partial temporary it left."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import modelreg

SIZE = 300 * 1024 * 1024

REGISTER = textwrap.dedent(
    """
    import sys
    import modelreg

    modelreg.connect(sys.argv[1]).register("big", sys.argv[2])
    """
)


def big_file(path: Path) -> Path:
    """A 300 MB file of random bytes: stored as chunks, in packs of 64 MiB each written to a
    temporary file first."""
    with open(path, "wb") as f:
        for _ in range(SIZE >> 20):
            f.write(os.urandom(1 << 20))
    assert path.stat().st_size == SIZE
    return path


def temporaries(root: Path) -> list[Path]:
    return sorted((root / "blobs").rglob(".tmp-*"))


def packs(root: Path) -> list[Path]:
    """The pack objects holding the chunks of large files."""
    folder = root / "blobs" / "packs"
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


@pytest.mark.slow
def test_a_writer_killed_mid_upload_leaves_no_version_and_nothing_gc_cannot_collect(tmp_path):
    root = tmp_path / "reg"
    with modelreg.connect(root) as reg:
        (tmp_path / "small.bin").write_text("small")
        reg.register("small", tmp_path / "small.bin")
        before = reg.verify_audit().events
    source = big_file(tmp_path / "big.bin")

    proc = subprocess.Popen(
        [sys.executable, "-c", REGISTER, str(root), str(source)],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while not temporaries(root) and not packs(root):
            assert proc.poll() is None, proc.communicate()[1].decode()
            assert time.monotonic() < deadline, "the writer never started storing the blob"
            time.sleep(0.002)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
    assert proc.returncode == -signal.SIGKILL

    with modelreg.connect(root) as reg:
        assert [m.name for m in reg.models()] == ["small"]
        assert len(reg.search("")) == 1
        assert reg.verify_audit().events == before
        assert reg.verify_audit().ok
        check = reg.fsck()
        assert check["ok"], check
        assert check["missing"] == check["corrupt"] == []

        stale = temporaries(root)
        v = reg.register("big", source)
        assert (v.ref, v.size) == ("big/1", SIZE)

        collected = reg.gc(grace_seconds=0)
        assert collected["temporaries_removed"] >= len(stale)
        assert temporaries(root) == []
        assert collected["removed"] == []
        # every pack left is one the new version's chunks are in
        assert len(packs(root)) == reg.fsck()["packs"]
        assert reg.fsck()["ok"]
        assert reg.verify_audit().ok
