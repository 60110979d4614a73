"""Benchmark 5: how fast the command line answers, each command a fresh process.

Targets, on a quiet machine: ``modelreg --help`` <= 0.2 s, and the read commands
``modelreg models``, ``modelreg show m/1`` and ``modelreg versions m`` on a small embedded
registry <= 0.5 s (the median of ``--runs`` runs of the console script, each after one
untimed run). Baselines in the same run: ``python -c pass`` and ``python -c "import
sqlalchemy"`` with the same interpreter (a read of a SQLite registry cannot start faster than
SQLAlchemy imports), and for context the same read through the SDK.

The registry is built in a temporary directory: 3 models, 3 versions each, with params,
metrics, tags and an alias. The commands run with ``COLUMNS=80``, and with bytecode cached
under a temporary ``PYTHONPYCACHEPREFIX`` (``PYTHONDONTWRITEBYTECODE`` is cleared for them),
as it is after ``pip install``, which compiles the package; the source tree gets no
``__pycache__``. Wall time is the figure; CPU time (user + system of the child) is printed
beside it, since it moves less on a shared machine. It also prints the slowest imports of one
run of each command (``python -X importtime``, cumulative).

    .venv/bin/python benchmarks/bench_cli_startup.py [--runs 10]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _common import BIN, emit, figure, header, temp_dir

HELP_TARGET_S = 0.2
READ_TARGET_S = 0.5
BENCH = "5 cli start"
MODELS = ("m", "churn", "iris")


def build_registry(root: Path) -> None:
    """3 models of 3 versions, with params, metrics, tags, an alias: a small registry."""
    import modelreg

    model = root / "model.bin"
    model.write_bytes(b"weights\n" * 100)
    reg = modelreg.connect(root / "registry")
    try:
        for name in MODELS:
            for n in range(1, 4):
                reg.register(
                    name,
                    model,
                    params={"lr": 0.01 * n, "epochs": 10 * n},
                    metrics={"train_accuracy": 0.9 + n / 100, "val_accuracy": 0.88 + n / 100},
                    tags={"team": "growth", "framework": "scikit-learn"},
                )
            reg.set_alias(name, "production", f"{name}/2")
    finally:
        reg.close()


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall, CPU) seconds of one run of ``cmd``; its output is discarded, it must succeed."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env=env)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def runs_of(cmd: list[str], env: dict[str, str], runs: int) -> dict[str, float]:
    timed(cmd, env)  # untimed: fills the page cache and the bytecode cache
    samples = [timed(cmd, env) for _ in range(runs)]
    walls = [wall for wall, _ in samples]
    return {
        "best": min(walls),
        "median": statistics.median(walls),
        "cpu": statistics.median(cpu for _, cpu in samples),
    }


def slowest_imports(cmd: list[str], env: dict[str, str], top: int = 8) -> list[tuple[int, str]]:
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
    script = str(BIN / "modelreg")
    python = str(BIN / "python")
    header(f"benchmark 5: the command line, best and median of {args.runs} fresh processes")
    with temp_dir("cli") as tmp:
        build_registry(tmp)
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env |= {
            "MODELREG_URI": str(tmp / "registry"),
            "PYTHONPYCACHEPREFIX": str(tmp / "pycache"),
            "COLUMNS": "80",
        }
        commands = {
            "modelreg --help": ([script, "--help"], HELP_TARGET_S),
            "modelreg models": ([script, "models"], READ_TARGET_S),
            "modelreg show m/1": ([script, "show", "m/1"], READ_TARGET_S),
            "modelreg versions m": ([script, "versions", "m"], READ_TARGET_S),
        }
        baselines = {
            "python -c pass": [python, "-c", "pass"],
            "python -c 'import sqlalchemy'": [python, "-c", "import sqlalchemy"],
            "the same read, SDK": [python, "-c", "import modelreg; modelreg.connect().models()"],
        }
        # --help reads and creates nothing: give it a location that does not exist.
        help_env = env | {"MODELREG_URI": str(tmp / "none")}
        results = {
            label: runs_of(cmd, help_env if i == 0 else env, args.runs)
            for i, (label, (cmd, _)) in enumerate(commands.items())
        }
        base = {label: runs_of(cmd, env, args.runs) for label, cmd in baselines.items()}
        imports = {
            label: slowest_imports(["-m", "modelreg.cli", *cmd[1:]], help_env if i == 0 else env)
            for i, (label, (cmd, _)) in enumerate(commands.items())
            if label in ("modelreg --help", "modelreg show m/1")
        }
        assert not (tmp / "none").exists(), "--help created a registry"

    print(f"  {'':32} {'best':>7} {'median':>7} {'CPU':>7}  target")
    for label, (_, target) in commands.items():
        r = results[label]
        mark = "PASS" if r["median"] <= target else "FAIL"
        print(f"  {label:32} {r['best']:7.3f} {r['median']:7.3f} {r['cpu']:7.3f}"
              f"  <= {target} s  {mark}")  # fmt: skip
    for label, r in base.items():
        print(f"  {label:32} {r['best']:7.3f} {r['median']:7.3f} {r['cpu']:7.3f}  (baseline)")
    for label, found in imports.items():
        print(f"  slowest imports of one `{label}` run (cumulative, -X importtime):")
        for us, name in found:
            print(f"    {us / 1000:7.1f} ms  {name}")
    empty, sqlalchemy = (base[k]["median"] for k in list(baselines)[:2])
    baseline = f"python -c pass {empty:.3f} s; import sqlalchemy {sqlalchemy:.3f} s"
    emit(
        [
            figure(
                BENCH,
                f"{label}, median wall time",
                results[label]["median"],
                "s",
                target=f"<= {target} s",
                passed=results[label]["median"] <= target,
                baseline=baseline,
                note=f"best {results[label]['best']:.3f} s; n={args.runs}",
            )
            for label, (_, target) in commands.items()
        ]
    )


if __name__ == "__main__":
    main()
