"""Many processes writing one embedded registry at once: numbers stay gapless and unique,
nobody sees "database is locked", and the audit chain stays whole."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import modelreg

WORKERS = 16
VERSIONS_EACH = 20

# Each worker opens the registry, says it is ready, waits for the common start signal, then
# registers its versions as fast as it can and prints the numbers it was given.
WORKER = textwrap.dedent(
    """
    import json, os, sys, time
    from pathlib import Path

    import modelreg

    registry, flags, index, count = sys.argv[1], Path(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    reg = modelreg.connect(registry, actor=f"worker-{index}")
    files = Path(f"worker-{index}")
    files.mkdir()
    (flags / f"ready-{index}").touch()
    deadline = time.monotonic() + 60
    while not (flags / "go").exists():
        if time.monotonic() > deadline:
            sys.exit("never got the start signal")
        time.sleep(0.001)
    numbers = []
    for j in range(count):
        path = files / "model.bin"
        path.write_text(f"worker {index} version {j}")
        numbers.append(reg.register("shared", path, metrics={"j": j}).number)
    print(json.dumps(numbers))
    """
)


def start_together(tmp_path: Path, registry: Path, workers: int, each: int) -> list[list[int]]:
    flags = tmp_path / "flags"
    flags.mkdir()
    work = tmp_path / "work"
    work.mkdir()
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(registry), str(flags), str(i), str(each)],
            cwd=work,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for i in range(workers)
    ]
    try:
        deadline = time.monotonic() + 120
        while len(list(flags.glob("ready-*"))) < workers:
            assert all(p.poll() is None for p in procs), "a worker died before starting"
            assert time.monotonic() < deadline, "workers did not get ready"
            time.sleep(0.01)
        (flags / "go").touch()
        results = []
        for proc in procs:
            out, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, err.decode()
            assert b"database is locked" not in err
            results.append(json.loads(out))
        return results
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


@pytest.mark.slow
def test_sixteen_processes_registering_into_one_model_get_numbers_1_to_320(tmp_path):
    root = tmp_path / "reg"
    modelreg.connect(root).close()  # the registry exists before the writers start

    results = start_together(tmp_path, root, WORKERS, VERSIONS_EACH)

    total = WORKERS * VERSIONS_EACH
    numbers = sorted(n for worker in results for n in worker)
    assert numbers == list(range(1, total + 1))
    for worker in results:
        assert worker == sorted(worker), "a worker's own versions are numbered in its order"

    with modelreg.connect(root) as reg:
        assert [v.number for v in reg.versions("shared")] == list(range(total, 0, -1))
        verified = reg.verify_audit()
        assert verified.ok, verified.reason
        created = reg.audit(action="version.create", limit=total + 10)
        assert len(created) == total
        assert {e.entity for e in created} == {f"shared/{n}" for n in range(1, total + 1)}
        assert {e.actor for e in created} == {f"worker-{i}" for i in range(WORKERS)}
        assert len(reg.audit(action="model.create")) == 1
        assert reg.fsck()["ok"]


@pytest.mark.slow
def test_processes_opening_a_new_registry_at_once_all_succeed(tmp_path):
    """The first open creates the schema; several processes doing it at once must not clash."""
    root = tmp_path / "fresh"

    results = start_together(tmp_path, root, 4, 2)

    assert sorted(n for worker in results for n in worker) == list(range(1, 9))
    with modelreg.connect(root) as reg:
        assert reg.verify_audit().ok
    assert os.path.isdir(root / "blobs")
