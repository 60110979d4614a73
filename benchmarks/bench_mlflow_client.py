"""MLflow's own client, unchanged, against ``mlflow server`` and ``modelreg server``.

One workload (mlflow_client_workload.py): log a run with 50 metrics x 100 steps (one
``log_metrics`` call per step), log a scikit-learn model with ``registered_model_name``, set
an alias, load the model back by alias. It runs against each server in turn, in rounds whose
order alternates, on the same minutes of this shared machine: ``modelreg server`` (SQLite and
a blob directory, one worker) and ``mlflow server --serve-artifacts`` (SQLite and a
directory) with its default workers and with ``--workers 1``; each MLflow figure is the better
of the two. Memory is the peak RSS of each server's whole process tree, sampled every 25 ms.

Each round runs the workload twice per server: as written, and with the model's requirements
declared (``pip_requirements``), which spares MLflow's client from inferring them (it loads the
model in a subprocess: seconds of the client's own CPU, the same whichever server answers).

Targets (issue 15): modelreg at least 3x faster end to end, its server's memory at most 1/10
of MLflow's. Figures are printed, never asserted.

    .venv/bin/python benchmarks/bench_mlflow_client.py            # 3 rounds
    .venv/bin/python benchmarks/bench_mlflow_client.py --rounds 1
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from _common import emit, figure, header
from server_vs_mlflow import (
    MLFLOW_PYTHON,
    QUIET_ENV,
    MemorySampler,
    Server,
    side_by_side,
)

BENCH = "MLflow client"
WORKLOAD = Path(__file__).with_name("mlflow_client_workload.py")
PHASES = ("log_run", "log_model", "alias", "load", "total")
VARIANTS = {"inferred": False, "declared": True}  # the model's requirements


def run_workload(server: Server, name: str, work: Path, *, declared: bool) -> dict[str, float]:
    env = {**os.environ, **QUIET_ENV, "MLFLOW_TRACKING_URI": server.url}
    env = {k: v for k, v in env.items() if not k.startswith("MODELREG_")}
    done = subprocess.run(
        [str(MLFLOW_PYTHON), str(WORKLOAD), name, *(["--declared"] if declared else [])],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    lines = done.stdout.splitlines()
    if done.returncode != 0 or not lines or not lines[-1].startswith("PHASES "):
        raise RuntimeError(f"{server.label}: the workload failed:\n{done.stderr[-3000:]}")
    phases: dict[str, float] = json.loads(lines[-1][len("PHASES ") :])
    return phases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    header("MLflow's client against mlflow server and modelreg server")
    if not MLFLOW_PYTHON.exists():
        raise SystemExit(f"{MLFLOW_PYTHON} is missing: run scripts/bootstrap-mlflow")
    with tempfile.TemporaryDirectory(prefix="bench-mlflow-client-") as scratch:
        root = Path(scratch)
        servers = side_by_side(root)
        samplers: dict[str, MemorySampler] = {}
        # times[variant][server][phase]: one sample per round
        times: dict[str, dict[str, dict[str, list[float]]]] = {
            v: {s.label: {} for s in servers} for v in VARIANTS
        }
        try:
            for server in servers:
                server.start()
            for server in servers:
                server.settle()
                assert server.proc is not None
                samplers[server.label] = MemorySampler(server.proc.pid).__enter__()
            for round_number in range(args.rounds):
                order = servers if round_number % 2 == 0 else servers[::-1]
                for server in order:
                    for variant, declared in VARIANTS.items():
                        name = f"bench-{variant}-{round_number}"
                        work = root / f"work-{name}-{server.label}".replace(" ", "-")
                        work.mkdir()
                        phases = run_workload(server, name, work, declared=declared)
                        for phase in PHASES:
                            found = times[variant][server.label].setdefault(phase, [])
                            found.append(phases[phase])
        finally:
            for sampler in samplers.values():
                sampler.__exit__(None, None, None)
            for server in servers:
                server.stop()

    mlflow_labels = [s.label for s in servers if s.label != "modelreg"]
    figures: list[dict[str, Any]] = []
    for variant in VARIANTS:

        def median(label: str, phase: str, variant: str = variant) -> float:
            return statistics.median(times[variant][label][phase])

        print(f"\n   requirements {variant}")
        print(f"   {'phase':<12}{'modelreg':>12}" + "".join(f"{m:>26}" for m in mlflow_labels))
        for phase in PHASES:
            row = f"   {phase:<12}{median('modelreg', phase):>11.2f}s"
            row += "".join(f"{median(m, phase):>25.2f}s" for m in mlflow_labels)
            print(row)
        best_mlflow = min(median(m, "total") for m in mlflow_labels)
        speedup = best_mlflow / median("modelreg", "total")
        print(f"   end to end: modelreg {speedup:.2f}x faster than MLflow's better configuration")
        figures.append(
            figure(
                BENCH,
                f"end-to-end speed-up over mlflow server (requirements {variant})",
                speedup,
                "x",
                target=">= 3",
                passed=speedup >= 3,
                baseline=f"mlflow server {best_mlflow:.2f} s",
            )
        )
        for phase in PHASES[:-1]:
            mine = median("modelreg", phase)
            theirs = min(median(m, phase) for m in mlflow_labels)
            figures.append(
                figure(
                    BENCH,
                    f"{phase} speed-up (requirements {variant})",
                    theirs / mine,
                    "x",
                    target="",
                    passed=None,
                    baseline=f"mlflow server {theirs:.2f} s, modelreg {mine:.2f} s",
                )
            )
    memory = {label: sampler.peak / 2**20 for label, sampler in samplers.items()}
    print("\n   peak RSS    " + "   ".join(f"{k}: {v:.0f} MiB" for k, v in memory.items()))
    least_mlflow = min(memory[m] for m in mlflow_labels)
    share = memory["modelreg"] / least_mlflow
    print(f"   memory: modelreg's server peaks at {share:.1%} of MLflow's leaner configuration")
    figures.append(
        figure(
            BENCH,
            "server peak RSS relative to mlflow server",
            share,
            "ratio",
            target="<= 0.10",
            passed=share <= 0.10,
            baseline=f"mlflow server {least_mlflow:.0f} MiB, modelreg {memory['modelreg']:.0f} MiB",
        )
    )
    emit(figures)


if __name__ == "__main__":
    main()
