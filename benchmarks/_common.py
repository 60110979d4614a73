"""Helpers shared by the benchmark scripts: timing statistics, temp dirs and the result line.

Each benchmark prints its figures for a person to read, then one line starting with
``RESULT `` holding JSON that ``run_all.py`` collects into its summary table. Figures are
reported, never asserted: the machine is shared and noisy.
"""

from __future__ import annotations

import contextlib
import cProfile
import io
import json
import os
import pstats
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
RESULT_PREFIX = "RESULT "


def percentile(samples: Sequence[float], pct: float) -> float:
    """The ``pct`` percentile by linear interpolation between closest ranks."""
    ordered = sorted(samples)
    if not ordered:
        return float("nan")
    pos = (len(ordered) - 1) * pct / 100
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def latency_ms(fn: Callable[[], object], *, calls: int, warmup: int = 20) -> dict[str, float]:
    """Call ``fn`` ``calls`` times; return p50/p95/p99/mean/min in milliseconds."""
    for _ in range(warmup):
        fn()
    samples = []
    clock = time.perf_counter_ns
    for _ in range(calls):
        start = clock()
        fn()
        samples.append((clock() - start) / 1e6)
    return summary_ms(samples)


def summary_ms(samples: Sequence[float]) -> dict[str, float]:
    return {
        "n": len(samples),
        "p50": percentile(samples, 50),
        "p95": percentile(samples, 95),
        "p99": percentile(samples, 99),
        "mean": statistics.fmean(samples),
        "min": min(samples),
    }


def show_latency(label: str, s: dict[str, float]) -> None:
    print(
        f"  {label:<46} p50 {s['p50']:8.3f} ms  p95 {s['p95']:8.3f} ms  "
        f"p99 {s['p99']:8.3f} ms  (n={int(s['n'])})"
    )


@contextlib.contextmanager
def temp_dir(prefix: str) -> Iterator[Path]:
    """A fresh directory under the system temp dir, removed afterwards (outside any repo)."""
    path = Path(tempfile.mkdtemp(prefix=f"modelreg-bench-{prefix}-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def working_directory(path: Path) -> Iterator[None]:
    old = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


def in_git_repository(path: Path) -> bool:
    done = subprocess.run(
        ["git", "-C", str(path), "rev-parse", "--is-inside-work-tree"],
        capture_output=True,
        check=False,
    )
    return done.returncode == 0


@contextlib.contextmanager
def profiled(enabled: bool, *, top: int = 25) -> Iterator[None]:
    """With ``enabled``, print the ``top`` functions by cumulative time of the block."""
    if not enabled:
        yield
        return
    prof = cProfile.Profile()
    prof.enable()
    try:
        yield
    finally:
        prof.disable()
        out = io.StringIO()
        pstats.Stats(prof, stream=out).sort_stats("cumulative").print_stats(top)
        print(out.getvalue())


def figure(
    benchmark: str,
    name: str,
    value: float,
    unit: str,
    *,
    target: str,
    passed: bool | None,
    baseline: str = "",
    note: str = "",
) -> dict[str, Any]:
    """One line of the summary table; ``passed`` is None for figures without a target."""
    return {
        "benchmark": benchmark,
        "figure": name,
        "value": value,
        "unit": unit,
        "target": target,
        "passed": passed,
        "baseline": baseline,
        "note": note,
    }


def emit(figures: list[dict[str, Any]]) -> None:
    sys.stdout.flush()
    print(RESULT_PREFIX + json.dumps(figures), flush=True)


def header(title: str) -> None:
    print(f"== {title}")
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"   python {sys.version.split()[0]}, {os.cpu_count()} cores, load average {load}")
