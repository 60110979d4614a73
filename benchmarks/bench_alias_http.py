"""Resolving ``NAME@ALIAS`` over HTTP, measured with wrk (8 connections), against the server's
own floor in the same run.

Target (issue 14): >= 1,000 req/s on this machine. Figures, each for ``--workers 1`` and ``2``:

- ``GET /api/v1/versions/churn@production``: the version with its lineage (what ``get``
  returns);
- ``GET /api/v1/versions/churn@production?lineage=false``: the version alone (what a deploy
  job resolving an alias asks for, and what ``pull`` reads);
- baseline: ``GET /healthz`` on the same server (the request path with a database check and
  nothing else: the most any route can do on this stack).

    .venv/bin/python benchmarks/bench_alias_http.py [--seconds 10] [--versions 20]

Needs ``wrk`` (Debian's package).
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

from _common import BIN, emit, figure, header, temp_dir

import modelreg

TARGET = 1000.0
BENCH = "14 alias over HTTP"
PORT = 18731


def populate(root: Path, versions: int) -> None:
    with modelreg.connect(root) as reg:
        model = root.parent / "model.bin"
        for i in range(versions):
            model.write_bytes(f"model {i}".encode() * 100)
            reg.register(
                "churn",
                model,
                params={"C": i / 10, "solver": "lbfgs"},
                metrics={"accuracy": 0.8 + i / 1000},
                tags={"team": "growth"},
            )
        reg.set_alias("churn", "production", f"churn/{versions // 2}")


def serve(root: Path, workers: int) -> subprocess.Popen[bytes]:
    server = subprocess.Popen(
        [
            *(str(BIN / "modelreg"), "--registry", str(root), "server"),
            *("--port", str(PORT), "--workers", str(workers)),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{PORT}/healthz", timeout=1):
                return server
        except OSError:
            time.sleep(0.2)
    server.kill()
    raise SystemExit("the server did not start")


def wrk(path: str, seconds: int) -> tuple[float, str]:
    """(requests per second, latency line) of wrk with 8 connections on 2 threads."""
    out = subprocess.run(
        ["wrk", "-t2", "-c8", f"-d{seconds}s", "--latency", f"http://127.0.0.1:{PORT}{path}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        raise SystemExit(f"{path}: {errors.group(1)} error responses")
    p50 = re.search(r"^\s+50%\s+(\S+)", out, re.MULTILINE)
    p99 = re.search(r"^\s+99%\s+(\S+)", out, re.MULTILINE)
    return rate, f"p50 {p50.group(1) if p50 else '?'}, p99 {p99.group(1) if p99 else '?'}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--versions", type=int, default=20)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install wrk")
    header(f"resolve churn@production over HTTP (wrk, 8 connections, {args.seconds} s each)")
    figures = []
    with temp_dir("alias-http") as tmp:
        root = tmp / "reg"
        populate(root, args.versions)
        for workers in (1, 2):
            server = serve(root, workers)
            try:
                wrk("/api/v1/versions/churn@production", 2)  # warm up every worker
                floor, floor_lat = wrk("/healthz", args.seconds)
                print(f"  workers {workers}: /healthz {floor:8.0f} req/s ({floor_lat})")
                for label, query in (("with lineage", ""), ("lineage=false", "?lineage=false")):
                    rate, lat = wrk(f"/api/v1/versions/churn@production{query}", args.seconds)
                    print(
                        f"  workers {workers}: alias, {label:<14} {rate:8.0f} req/s ({lat});"
                        f" {rate / floor:.0%} of /healthz"
                    )
                    figures.append(
                        figure(
                            BENCH,
                            f"alias {label}, {workers} worker{'s' if workers > 1 else ''}",
                            rate,
                            "req/s",
                            target=f">= {TARGET:.0f}",
                            passed=rate >= TARGET,
                            baseline=f"/healthz {floor:.0f} req/s",
                        )
                    )
            finally:
                server.terminate()
                server.wait(timeout=30)
    emit(figures)


if __name__ == "__main__":
    main()
