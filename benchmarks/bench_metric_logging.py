"""A training loop logging metric points one step at a time, through a server.

modelreg: ``run.log_metric(key, value, step)`` once per point inside ``reg.start_run()``,
with the SDK talking to ``modelreg server`` (SQLite and a blob directory, one worker). The
points are buffered and sent in batches in the background; the time runs from the first
``log_metric`` until the run has ended, every point stored.

MLflow, in the same run, against ``mlflow server`` (SQLite, its default workers and
``--workers 1``), the way its client logs fastest: ``MlflowClient.log_batch`` with 1,000
points per call (the most one call takes). The MLflow figure is the better server. Its other
ways are slower and not run: ``mlflow.log_metric`` once per point makes a request per point,
and with ``synchronous=False`` (its background batching) 5,000 points took 114 s here (44
points/s) against 1.1 s for ``log_batch`` (``--with-async`` runs it).

It also prints how long one ``log_metric`` call takes in the loop (mean and p99), and how
many audit events the run's points made (the target: at most one per batch sent).

Target (issue 16): 50,000 points >= 20x MLflow's best configuration. Figures are printed,
never asserted.

    .venv/bin/python benchmarks/bench_metric_logging.py
    .venv/bin/python benchmarks/bench_metric_logging.py --points 20000 --rounds 1
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path
from typing import Any

from _common import emit, figure, header
from server_vs_mlflow import MLFLOW_PYTHON, QUIET_ENV, side_by_side

BENCH = "metric logging"

MODELREG_LOOP = textwrap.dedent(
    """
    import json, sys, time
    import modelreg

    url, points = sys.argv[1], int(sys.argv[2])
    reg = modelreg.connect(url)
    send, batches = reg.record_run_metrics, []

    def counted(run_id, points):
        batches.append(len(points))
        send(run_id, points)

    reg.record_run_metrics = counted
    calls = []
    with reg.start_run(name="bench") as run:
        started = time.perf_counter()
        for step in range(points):
            before = time.perf_counter_ns()
            run.log_metric("loss", 1.0 / (step + 1), step=step)
            calls.append(time.perf_counter_ns() - before)
        logged = time.perf_counter()
    ended = time.perf_counter()
    events = reg.audit(entity=run.id, action="run.metric", limit=10_000)
    stored = sum(e.after["points"] for e in events)
    calls.sort()
    print("RESULT " + json.dumps({
        "seconds": ended - started,
        "loop_seconds": logged - started,
        "call_mean_us": sum(calls) / len(calls) / 1000,
        "call_p99_us": calls[int(len(calls) * 0.99)] / 1000,
        "events": len(events),
        "batches": len(batches),
        "stored": stored,
    }))
    """
)

MLFLOW_LOOP = textwrap.dedent(
    """
    import json, sys, time
    import mlflow
    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient

    way, points = sys.argv[1], int(sys.argv[2])
    client = MlflowClient()
    if way == "log_batch":
        run = client.create_run("0")
        run_id = run.info.run_id
        started = time.perf_counter()
        now = int(time.time() * 1000)
        batch = []
        for step in range(points):
            batch.append(Metric("loss", 1.0 / (step + 1), now, step))
            if len(batch) == 1000:
                client.log_batch(run_id, metrics=batch)
                batch = []
        if batch:
            client.log_batch(run_id, metrics=batch)
        client.set_terminated(run_id)
        ended = time.perf_counter()
    else:
        with mlflow.start_run() as run:
            run_id = run.info.run_id
            started = time.perf_counter()
            for step in range(points):
                mlflow.log_metric("loss", 1.0 / (step + 1), step=step, synchronous=False)
            mlflow.flush_async_logging()
        ended = time.perf_counter()
    stored = len(client.get_metric_history(run_id, "loss"))
    print("RESULT " + json.dumps({"seconds": ended - started, "stored": stored}))
    """
)


def run_loop(python: Path, code: str, args: list[str], env: dict[str, str]) -> dict[str, Any]:
    done = subprocess.run(
        [str(python), "-c", code, *args], env=env, capture_output=True, text=True, timeout=1800
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"{python} {args}: the loop failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(lines[-1][len("RESULT ") :])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--points", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--with-async", action="store_true", help="also MLflow's log_metric(synchronous=False)"
    )
    args = parser.parse_args()
    ways = ["log_batch", *(["async log_metric"] if args.with_async else [])]
    header(f"{args.points:,} metric points, one step at a time, through a server")
    if not MLFLOW_PYTHON.exists():
        raise SystemExit(f"{MLFLOW_PYTHON} is missing: run scripts/bootstrap-mlflow")
    points = str(args.points)
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("MODELREG_")}
    base_env |= QUIET_ENV
    seconds: dict[str, list[float]] = {}
    details: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-metric-logging-") as scratch:
        root = Path(scratch)
        servers = side_by_side(root)
        try:
            for server in servers:
                server.start()
            for server in servers:
                server.settle()
            for round_number in range(args.rounds):
                order = servers if round_number % 2 == 0 else servers[::-1]
                for server in order:
                    if server.label == "modelreg":
                        result = run_loop(
                            Path(sys.executable), MODELREG_LOOP, [server.url, points], base_env
                        )
                        if result["stored"] != args.points:
                            raise RuntimeError(f"modelreg stored {result['stored']} points")
                        seconds.setdefault("modelreg", []).append(result["seconds"])
                        details["modelreg"] = result
                        continue
                    env = {**base_env, "MLFLOW_TRACKING_URI": server.url}
                    for way in ways:
                        result = run_loop(MLFLOW_PYTHON, MLFLOW_LOOP, [way, points], env)
                        if result["stored"] != args.points:
                            raise RuntimeError(f"{server.label} {way} stored {result['stored']}")
                        seconds.setdefault(f"{server.label}, {way}", []).append(result["seconds"])
        finally:
            for server in servers:
                server.stop()

    medians = {label: statistics.median(found) for label, found in seconds.items()}
    print(f"\n   {'configuration':<48}{'median':>10}{'points/s':>12}")
    for label, median in medians.items():
        print(f"   {label:<48}{median:>9.2f}s{args.points / median:>12,.0f}")
    mine = medians.pop("modelreg")
    best_label, best = min(medians.items(), key=lambda item: item[1])
    speedup = best / mine
    last = details["modelreg"]
    print(f"\n   modelreg {speedup:.1f}x faster than MLflow's best ({best_label})")
    print(
        f"   one log_metric call: mean {last['call_mean_us']:.1f} us, p99"
        f" {last['call_p99_us']:.1f} us; the loop alone {last['loop_seconds']:.3f} s"
    )
    print(
        f"   audit events for {args.points:,} points: {last['events']}, for"
        f" {last['batches']} batches sent"
    )
    emit(
        [
            figure(
                BENCH,
                f"{args.points:,} points one step at a time, speed-up over MLflow",
                speedup,
                "x",
                target=">= 20",
                passed=speedup >= 20,
                baseline=f"{best_label} {best:.2f} s; modelreg {mine:.2f} s",
            ),
            figure(
                BENCH,
                "one log_metric call (mean)",
                last["call_mean_us"],
                "us",
                target="microseconds",
                passed=None,
                baseline=f"p99 {last['call_p99_us']:.1f} us",
            ),
            figure(
                BENCH,
                f"audit events for {args.points:,} points",
                last["events"],
                "events",
                target="<= 1 per batch",
                passed=last["events"] <= last["batches"],
                baseline=f"{last['batches']} batches sent",
            ),
        ]
    )


if __name__ == "__main__":
    main()
