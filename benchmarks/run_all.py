"""Run every benchmark, each in a fresh process, and print one summary table.

    .venv/bin/python benchmarks/run_all.py [--size-mb 1024] [--only 1,3] [--quick]

It is a report, not a test: it exits 0 whatever the figures are (and when a benchmark fails
to run, it says so in the table). Every benchmark works in its own temporary directory,
outside any git repository, and removes it. The figures are also written as JSON to
``benchmarks/results/latest.json`` (ignored by git).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RESULT_PREFIX = "RESULT "

# (number, script, extra arguments for --quick)
BENCHMARKS = [
    ("1", "bench_register.py", ["--count", "200"]),
    ("2", "bench_alias.py", ["--calls", "1000"]),
    ("3", "bench_search.py", ["--versions", "20000", "--calls", "20"]),
    ("4", "bench_large_file.py", ["--size-mb", "128", "--rounds", "2"]),
    ("5", "bench_cli_startup.py", ["--runs", "5"]),
]


def run(script: str, args: list[str]) -> tuple[list[dict[str, Any]], float, str]:
    """Run one benchmark; return its figures, its wall time and, if it failed, why."""
    start = time.perf_counter()
    # The working directory is a fresh temp dir: registering captures the git state of the cwd.
    with tempfile.TemporaryDirectory(prefix="modelreg-bench-cwd-") as cwd:
        proc = subprocess.Popen(
            [sys.executable, str(HERE / script), *args],
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert proc.stdout is not None
        figures: list[dict[str, Any]] = []
        for line in proc.stdout:
            if line.startswith(RESULT_PREFIX):
                figures.extend(json.loads(line[len(RESULT_PREFIX) :]))
            else:
                print(line, end="", flush=True)
        code = proc.wait()
    problem = "" if code == 0 else f"{script} exited with {code}"
    return figures, time.perf_counter() - start, problem


def show(value: float) -> str:
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for n, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=int, default=None, help="file size for benchmark 4")
    parser.add_argument("--only", default="", help="comma-separated benchmark numbers")
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    args = parser.parse_args()
    wanted = {n.strip() for n in args.only.split(",") if n.strip()}
    started = datetime.now(UTC)
    figures: list[dict[str, Any]] = []
    problems = []
    for number, script, quick in BENCHMARKS:
        if wanted and number not in wanted:
            continue
        options = dict(zip(quick[::2], quick[1::2], strict=True)) if args.quick else {}
        if number == "4" and args.size_mb is not None:
            options["--size-mb"] = str(args.size_mb)
        extra = [part for pair in options.items() for part in pair]
        found, seconds, problem = run(script, extra)
        print(f"   ({script} took {seconds:.0f} s)\n", flush=True)
        figures.extend(found)
        if problem:
            problems.append(problem)
            figures.append(
                {
                    "benchmark": number,
                    "figure": f"{script} did not finish",
                    "value": float("nan"),
                    "unit": "",
                    "target": "",
                    "passed": False,
                    "baseline": "",
                    "note": problem,
                }
            )

    rows = [["benchmark", "figure", "value", "target", "baseline (same run)", "result"]]
    for f in figures:
        verdict = {True: "PASS", False: "FAIL", None: "info"}[f["passed"]]
        value = f"{show(f['value'])} {f['unit']}".strip()
        rows.append([f["benchmark"], f["figure"], value, f["target"], f["baseline"], verdict])
    print(f"== summary ({started:%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores, embedded mode)")
    print(table(rows))
    notes = [f"  [{f['benchmark']}] {f['figure']}: {f['note']}" for f in figures if f["note"]]
    if notes:
        print("notes:")
        print("\n".join(notes))
    passed = sum(1 for f in figures if f["passed"] is True)
    failed = sum(1 for f in figures if f["passed"] is False)
    print(f"{passed} targets met, {failed} missed; this report always exits 0.")

    results = HERE / "results"
    results.mkdir(exist_ok=True)
    (results / "latest.json").write_text(
        json.dumps({"started": started.isoformat(), "figures": figures}, indent=2) + "\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
