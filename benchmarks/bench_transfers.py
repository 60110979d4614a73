"""Large-file transfers through the team server, beside MLflow's and the machine's ceiling.

For each size (512 MiB and 5 GiB by default) a file of random bytes is written (nothing in it
repeats, so chunking finds nothing to share), then uploaded and downloaded through:

- ``modelreg server --blobs DIR`` and ``--blobs s3://...`` (SQLite, one worker): ``register``
  and ``pull`` with the SDK (``modelreg.connect(URL)``), the pull into an empty chunk cache;
- ``mlflow server --serve-artifacts`` on a directory and on the same S3, its default workers:
  ``log_artifact`` and ``download_artifacts`` with ``MlflowClient``. On S3 it runs twice, the
  server relaying the bytes and with ``MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD`` (the client
  sends parts straight to the bucket, downloads by presigned URL); the table keeps MLflow's
  better figure.

The ceiling of a verified transfer on this machine is the lower of ``cp`` of the file (on the
same disk, after ``sync``) and sha256 of it on one core, both measured in the same run. Each
client runs in its own process (``server_workload.py``'s ``bigfile`` phase), after ``sync``;
the table gives MiB/s each way, modelreg's ratio to MLflow's better and to the ceiling, and
the peak RSS of the client and of the server's process tree (sampled every 25 ms). SeaweedFS
(S3) runs on the same two cores.

It prints figures and never asserts on them. ``--sizes-mb 10240 --no-mlflow`` checks memory
at 10 GiB (target: client and server below 300 MB).

    .venv/bin/python benchmarks/bench_transfers.py                    # about 15 minutes
    .venv/bin/python benchmarks/bench_transfers.py --sizes-mb 512 --stores dir
    .venv/bin/python benchmarks/bench_transfers.py --sizes-mb 10240 --no-mlflow
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from _common import BIN, ROOT, emit, figure, header, temp_dir
from server_vs_mlflow import MLFLOW_VENV, MemorySampler, Server, free_port, run_client, timed_cp

sys.path.insert(0, str(ROOT / "tests"))

from services import start_seaweedfs

BENCH = "transfers"
MIB = 1 << 20
RSS_TARGET_MB = 300
FIGURES: list[dict[str, Any]] = []


def write_random(path: Path, size: int) -> None:
    import numpy as np

    rng = np.random.default_rng(7)
    with open(path, "wb") as f:
        for start in range(0, size, 64 * MIB):
            f.write(rng.bytes(min(64 * MIB, size - start)))


def sha256_seconds(path: Path) -> float:
    start = time.perf_counter()
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(MIB):
            digest.update(block)
    return time.perf_counter() - start


def modelreg_server(folder: Path, blobs: str) -> Server:
    port = free_port()
    cmd = [str(BIN / "modelreg"), "server", "--host", "127.0.0.1", "--port", str(port)]
    cmd += ["--db", str(folder / "registry.db"), "--blobs", blobs]
    return Server("modelreg", cmd, f"http://127.0.0.1:{port}/healthz", folder)


def mlflow_server(folder: Path, artifacts: str) -> Server:
    port = free_port()
    cmd = [str(MLFLOW_VENV / "bin" / "mlflow"), "server", "--host", "127.0.0.1"]
    cmd += ["--port", str(port), "--backend-store-uri", f"sqlite:///{folder / 'mlflow.db'}"]
    cmd += ["--artifacts-destination", artifacts, "--serve-artifacts"]
    return Server("MLflow", cmd, f"http://127.0.0.1:{port}/health", folder)


def transfer(kind: str, server: Server, big: Path, work: Path) -> dict[str, Any]:
    """Upload and download ``big`` through a started server; seconds each way, peak RSS."""
    assert server.proc is not None
    server.settle()
    cfg = {"big": str(big), "work": str(work), "blobs": str(work), "warmup": 0, "versions": 0}
    with MemorySampler(server.proc.pid) as memory:
        result = run_client(kind, "bigfile", server.url, cfg, work)
    result["server_rss_mb"] = memory.peak / MIB
    return result


def run_size(size_mb: int, stores: list[str], mlflow: bool, root: Path, weed: Any) -> None:
    size = size_mb * MIB
    big = root / f"random-{size_mb}.bin"
    write_random(big, size)
    cp = min(timed_cp(big) for _ in range(2))
    sha = min(sha256_seconds(big) for _ in range(2))
    ceiling = size / MIB / max(cp, sha)
    print(f"\n{size_mb} MiB of random bytes", flush=True)
    print(f"  cp {size / MIB / cp:,.0f} MiB/s, sha256 on one core {size / MIB / sha:,.0f} MiB/s:")
    print(f"  the ceiling of a verified transfer is {ceiling:,.0f} MiB/s")
    for store in stores:
        rows: dict[str, dict[str, Any]] = {}
        configs: list[tuple[str, str, dict[str, str]]] = [("modelreg", "modelreg", {})]
        if mlflow:
            configs.append(("mlflow", "MLflow", {}))
            if store == "s3":
                proxied = {"MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD": "true"}
                configs.append(("mlflow", "MLflow multipart", proxied))
        for kind, label, env in configs:
            folder = root / f"{label.replace(' ', '-')}-{store}-{size_mb}"
            folder.mkdir()
            (folder / "client").mkdir()
            if store == "dir":
                target = str(folder / "store")
            else:
                bucket = weed.new_bucket()
                target = f"s3://{bucket}/{'mlflow' if kind == 'mlflow' else 'modelreg'}"
            server = (
                modelreg_server(folder, target)
                if kind == "modelreg"
                else mlflow_server(folder, target)
            )
            saved = dict(os.environ)
            os.environ.update(env)
            os.environ["MODELREG_CACHE"] = str(folder / "chunk-cache")
            try:
                server.start()
                rows[label] = transfer(kind, server, big, folder / "client")
            finally:
                server.stop()
                os.environ.clear()
                os.environ.update(saved)
                shutil.rmtree(folder, ignore_errors=True)  # disk space for the next one
        show(store, size, rows, ceiling)


def show(store: str, size: int, rows: dict[str, dict[str, Any]], ceiling: float) -> None:
    where = "a directory" if store == "dir" else "S3 (SeaweedFS)"
    print(f"  server on {where}:")
    mib = size / MIB
    for label, r in rows.items():
        up, down = mib / r["upload_s"], mib / r["download_s"]
        print(
            f"    {label:18} upload {up:7,.0f} MiB/s  download {down:7,.0f} MiB/s"
            f"  client {r['client_rss_mb']:5,.0f} MB  server {r['server_rss_mb']:5,.0f} MB"
        )
    ours = rows["modelreg"]
    others = [r for label, r in rows.items() if label != "modelreg"]
    up, down = mib / ours["upload_s"], mib / ours["download_s"]
    if others:
        best_up = max(mib / r["upload_s"] for r in others)
        best_down = max(mib / r["download_s"] for r in others)
        print(
            f"    modelreg / MLflow's better: upload {up / best_up:.2f}x, download"
            f" {down / best_down:.2f}x (target 2x)"
        )
        for way, ratio in (("upload", up / best_up), ("download", down / best_down)):
            FIGURES.append(
                figure(
                    BENCH,
                    f"{store} {mib:.0f} MiB {way} vs MLflow",
                    ratio,
                    "x",
                    target=">= 2x",
                    passed=ratio >= 2,
                    baseline="MLflow's better configuration, same run",
                )
            )
    print(
        f"    modelreg / ceiling: upload {up / ceiling:.0%}, download {down / ceiling:.0%}"
        " (target 50%)"
    )
    for who in ("client", "server"):
        mb = ours[f"{who}_rss_mb"]
        verdict = "met" if mb < RSS_TARGET_MB else "NOT MET"
        print(f"    modelreg {who} peak RSS {mb:,.0f} MB (target < {RSS_TARGET_MB} MB: {verdict})")
    for way, rate in (("upload", up), ("download", down)):
        FIGURES.append(
            figure(
                BENCH,
                f"{store} {mib:.0f} MiB {way}",
                rate,
                "MiB/s",
                target=f">= 50% of {ceiling:,.0f}",
                passed=rate >= ceiling / 2,
                baseline="min(cp, sha256 on one core), same run",
            )
        )
    for who in ("client", "server"):
        mb = ours[f"{who}_rss_mb"]
        FIGURES.append(
            figure(
                BENCH,
                f"{store} {mib:.0f} MiB {who} peak RSS",
                mb,
                "MB",
                target=f"< {RSS_TARGET_MB} MB",
                passed=mb < RSS_TARGET_MB,
            )
        )


def needs_boto3(python: Path) -> None:
    """MLflow reaches S3 through boto3, which its own install does not bring."""
    import subprocess

    if subprocess.run([str(python), "-c", "import boto3"], capture_output=True).returncode:
        print("   installing boto3 into .venv-mlflow (MLflow's S3 artifact store needs it)")
        pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        subprocess.run([*pip, "boto3"], check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes-mb", default="512,5120", help="file sizes, comma-separated")
    parser.add_argument("--stores", default="dir,s3", help="dir and/or s3, comma-separated")
    parser.add_argument("--no-mlflow", action="store_true", help="modelreg alone")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes_mb.split(",")]
    stores = args.stores.split(",")
    header(f"{BENCH}: {', '.join(f'{s} MiB' for s in sizes)} on {', '.join(stores)}")
    if "s3" in stores and not args.no_mlflow:
        needs_boto3(MLFLOW_VENV / "bin" / "python")
    weed = start_seaweedfs() if "s3" in stores else None
    saved = dict(os.environ)
    if weed is not None:
        os.environ.update(weed.env)
        os.environ["MLFLOW_S3_ENDPOINT_URL"] = weed.endpoint
    try:
        with temp_dir("transfers") as root:
            for size_mb in sizes:
                run_size(size_mb, stores, not args.no_mlflow, root, weed)
                for leftover in root.glob("random-*.bin"):
                    leftover.unlink()
    finally:
        os.environ.clear()
        os.environ.update(saved)
        if weed is not None:
            weed.stop()
    emit(FIGURES)


if __name__ == "__main__":
    main()
