"""Benchmark 4: register and pull one large file (default 1 GiB).

Targets: register and pull each reach >= 60% of the throughput of ``cp`` of the same file
(to a file on the same filesystem, in the same run), and the peak RSS of the process that
registers or pulls stays < 200 MB.

Register and pull each run in a fresh child process; the parent reads the child's own peak
RSS from ``os.wait4`` (the child's rusage, in KiB on Linux) and the child reports the time of
the call alone (interpreter start and import are excluded; they are benchmark 5's subject).
Nothing is dropped from the page cache. Before each timed step the parent calls ``sync`` so
that no step pays for writing back the dirty pages of the step before it. Two untimed copies
warm the page cache first. Rounds alternate the order (cp, register, pull, cp; then register,
pull, cp, cp) and each figure is the median over the rounds (cp: over all its runs).

Note that ``register`` reads the file twice (once to hash it, once to store it) and fsyncs the
stored blob; ``cp`` does not fsync. Pull verifies the digest while it writes and does not fsync.

    .venv/bin/python benchmarks/bench_large_file.py [--size-mb 1024] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import emit, figure, header, temp_dir

TARGET_RATIO = 0.60
TARGET_RSS_MB = 200.0
BENCH = "4 large file"


def make_file(path: Path, size_mb: int) -> None:
    """``size_mb`` MiB of incompressible bytes."""
    block = 1 << 20
    with open(path, "wb") as f:
        for _ in range(size_mb):
            f.write(os.urandom(block))


def child(action: str, registry: str, source: str) -> None:
    """Run in the child process: register or pull, print the seconds the call took."""
    import modelreg

    reg = modelreg.connect(registry)
    start = time.perf_counter()
    if action == "register":
        reg.register("big", source, params={"size": os.path.getsize(source)})
    else:
        reg.pull("big", source)
    elapsed = time.perf_counter() - start
    reg.close()
    print(json.dumps({"seconds": elapsed}))


def run_child(action: str, registry: Path, path: Path) -> dict[str, Any]:
    """Run ``action`` in a child; return its call time and its own peak RSS in MB."""
    cmd = [sys.executable, __file__, "--child", action, str(registry), str(path)]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err)
        # wait4, not wait: it returns the rusage of this child alone.
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if proc.returncode != 0:
            raise RuntimeError(f"{action} child failed ({proc.returncode}): {err.read().decode()}")
        result = json.loads(out.read().decode().strip().splitlines()[-1])
    result["rss_mb"] = usage.ru_maxrss / 1024  # KiB on Linux
    return result


def sha256_rate(path: Path) -> float:
    """MiB/s of hashlib.sha256 over the file (from the page cache): a ceiling for one pass."""
    import hashlib

    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        start = time.perf_counter()
        while chunk := f.read(1 << 20):
            h.update(chunk)
            size += len(chunk)
        elapsed = time.perf_counter() - start
    return size / (1 << 20) / elapsed


def timed_cp(source: Path, target: Path) -> float:
    os.sync()
    start = time.perf_counter()
    subprocess.run(["cp", str(source), str(target)], check=True)
    elapsed = time.perf_counter() - start
    target.unlink()
    return elapsed


def one_round(tmp: Path, source: Path, number: int, cp_first: bool) -> dict[str, Any]:
    """cp, register, pull, cp; or register, pull, cp, cp (pull before register is not possible)."""
    registry = tmp / f"reg-{number}"
    pulled = tmp / f"pulled-{number}"
    out: dict[str, Any] = {"cp": []}
    if cp_first:
        out["cp"].append(timed_cp(source, tmp / "copy.bin"))
    os.sync()
    reg = run_child("register", registry, source)
    os.sync()
    pull = run_child("pull", registry, pulled)
    out["cp"].append(timed_cp(source, tmp / "copy.bin"))
    if not cp_first:
        out["cp"].append(timed_cp(source, tmp / "copy.bin"))
    out.update(register=reg["seconds"], register_rss=reg["rss_mb"])
    out.update(pull=pull["seconds"], pull_rss=pull["rss_mb"])
    assert (pulled / source.name).stat().st_size == source.stat().st_size
    shutil.rmtree(registry)
    shutil.rmtree(pulled)
    return out


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3], sys.argv[4])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=int, default=1024, help="file size in MiB")
    parser.add_argument("--rounds", type=int, default=3, help="rounds, alternating order")
    args = parser.parse_args()
    size = args.size_mb
    header(f"benchmark 4: register and pull a {size} MiB file ({args.rounds} rounds)")
    with temp_dir("large") as tmp:
        source = tmp / "model.bin"
        start = time.perf_counter()
        make_file(source, size)
        print(f"  wrote {size} MiB of random bytes in {time.perf_counter() - start:.1f} s")
        # Untimed warm-up: the first writes of a fresh VM's memory into page cache are slow.
        for _ in range(2):
            timed_cp(source, tmp / "warmup.bin")
        rounds = []
        for i in range(args.rounds):
            r = one_round(tmp, source, i, cp_first=i % 2 == 0)
            rounds.append(r)
            print(
                f"  round {i + 1} ({'cp first' if i % 2 == 0 else 'cp last'}): "
                f"cp {size / statistics.median(r['cp']):7.0f} MiB/s   "
                f"register {size / r['register']:7.0f} MiB/s "
                f"(rss {r['register_rss']:.0f} MB)   pull {size / r['pull']:7.0f} MiB/s "
                f"(rss {r['pull_rss']:.0f} MB)"
            )
        sha = sha256_rate(source)
    cp = size / statistics.median(t for r in rounds for t in r["cp"])
    print(f"  for reference: read + sha256 of the same file in this process: {sha:.0f} MiB/s")
    figures = []
    for action in ("register", "pull"):
        rate = size / statistics.median(r[action] for r in rounds)
        ratio = rate / cp
        rss = max(r[f"{action}_rss"] for r in rounds)
        print(
            f"  {action}: {rate:.0f} MiB/s = {ratio:.0%} of cp ({cp:.0f} MiB/s); "
            f"peak RSS {rss:.0f} MB"
        )
        figures.append(
            figure(
                BENCH,
                f"{action} {size} MiB: throughput vs cp",
                ratio * 100,
                "% of cp",
                target=f">= {TARGET_RATIO:.0%}",
                passed=ratio >= TARGET_RATIO,
                baseline=f"cp {cp:.0f} MiB/s",
                note=f"{rate:.0f} MiB/s, median of {len(rounds)} rounds; "
                f"read+sha256 alone {sha:.0f} MiB/s",
            )
        )
        figures.append(
            figure(
                BENCH,
                f"{action} {size} MiB: peak RSS of the process",
                rss,
                "MB",
                target=f"< {TARGET_RSS_MB:.0f} MB",
                passed=rss < TARGET_RSS_MB,
                note="ru_maxrss of the child from os.wait4, max over rounds",
            )
        )
    emit(figures)


if __name__ == "__main__":
    main()
