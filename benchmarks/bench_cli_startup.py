"""Benchmark 5: ``modelreg --help`` cold start.

Target: median <= 0.3 s over >= 5 runs of the console script ``.venv/bin/modelreg --help``,
each in a fresh process (the OS page cache and ``__pycache__`` are warm: one untimed run
first). Baseline in the same run: ``python -c pass`` with the same interpreter. For context
it also times ``python -c "import modelreg"`` and prints the slowest imports of one
``--help`` run (``python -X importtime``), cumulative.

    .venv/bin/python benchmarks/bench_cli_startup.py [--runs 10]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

from _common import BIN, emit, figure, header, temp_dir

TARGET_S = 0.3
BENCH = "5 cli start"


def wall(cmd: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env=env)
    return time.perf_counter() - start


def median_of(cmd: list[str], env: dict[str, str], runs: int) -> tuple[float, list[float]]:
    wall(cmd, env)  # untimed: fills the page cache and __pycache__
    times = [wall(cmd, env) for _ in range(runs)]
    return statistics.median(times), times


def slowest_imports(cmd: list[str], env: dict[str, str], top: int = 12) -> list[tuple[int, str]]:
    """(cumulative microseconds, module) of the top-level imports of one run, slowest first."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", *cmd],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    found = []
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, cumulative, name = (part.strip() for part in line.split(":", 1)[1].split("|"))
        depth = (len(name) - len(name.lstrip())) // 2
        found.append((int(cumulative), name.strip(), depth))
    # Modules imported directly by the script or by modelreg, not their own sub-imports.
    shown = [(us, name) for us, name, depth in found if depth <= 1 or name.startswith("modelreg")]
    return sorted(shown, reverse=True)[:top]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    script = BIN / "modelreg"
    python = str(BIN / "python")
    header(f"benchmark 5: {script} --help, median of {args.runs} fresh processes")
    with temp_dir("cli") as tmp:
        # An empty registry location, so nothing on this machine is read or created.
        env = {**os.environ, "MODELREG_URI": str(tmp / "registry")}
        help_median, help_times = median_of([str(script), "--help"], env, args.runs)
        pass_median, _ = median_of([python, "-c", "pass"], env, args.runs)
        import_median, _ = median_of([python, "-c", "import modelreg"], env, args.runs)
        imports = slowest_imports([str(script), "--help"], env)
        assert not (tmp / "registry").exists(), "--help created a registry"
    print(f"  modelreg --help:             median {help_median * 1000:6.0f} ms   runs (ms): "
          + " ".join(f"{t * 1000:.0f}" for t in help_times))  # fmt: skip
    print(f"  baseline python -c pass:     median {pass_median * 1000:6.0f} ms")
    print(f"  python -c 'import modelreg': median {import_median * 1000:6.0f} ms")
    print("  slowest imports of one --help run (cumulative, -X importtime):")
    for us, name in imports:
        print(f"    {us / 1000:7.1f} ms  {name}")
    emit(
        [
            figure(
                BENCH,
                "modelreg --help, median wall time",
                help_median,
                "s",
                target=f"<= {TARGET_S} s",
                passed=help_median <= TARGET_S,
                baseline=f"python -c pass {pass_median:.3f} s",
                note=f"import modelreg {import_median:.3f} s; n={args.runs}",
            )
        ]
    )


if __name__ == "__main__":
    main()
