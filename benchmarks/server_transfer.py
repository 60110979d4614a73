"""Peak memory of moving a large file through the team server into S3, and back.

Starts SeaweedFS (as the tests do) and ``modelreg server --db SQLITE --blobs s3://...``, writes
a ``--size-gb`` GB file (5 by default), then in a separate client process registers it with
the SDK over HTTP (hashed locally, streamed up, stored in S3 by multipart upload) and pulls it
back (streamed down, verified). It reports the time of each step beside ``cp`` of the same
file, the client's peak RSS (its own ``ru_maxrss``) and the server's (sampled with psutil);
both must stay under 250 MB.

    .venv/bin/python benchmarks/server_transfer.py [--size-gb 5]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from services import free_ports, start_seaweedfs  # noqa: E402

LIMIT_MB = 250
CLIENT = """
import json, resource, sys, time
import modelreg
reg = modelreg.connect(sys.argv[1])
t = time.perf_counter()
v = reg.register("big", sys.argv[2])
up = time.perf_counter() - t
t = time.perf_counter()
reg.pull(v.ref, sys.argv[3])
down = time.perf_counter() - t
t = time.perf_counter()
again = reg.register("big", sys.argv[2])
rereg = time.perf_counter() - t
print(json.dumps({"upload_s": up, "download_s": down, "reregister_s": rereg,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def write_file(path: Path, size: int) -> None:
    block = os.urandom(16 << 20)
    with open(path, "wb") as f:
        for i in range(size // len(block)):
            f.write(i.to_bytes(8, "little") + block[8:])
        f.write(block[: size % len(block)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-gb", type=float, default=5.0)
    args = parser.parse_args()
    size = int(args.size_gb * (1 << 30))
    work = Path(tempfile.mkdtemp(prefix="modelreg-bench-"))
    weed = start_seaweedfs()
    server = None
    try:
        bucket = weed.new_bucket()
        source = work / "model.bin"
        write_file(source, size)
        t = time.perf_counter()
        shutil.copyfile(source, work / "copy.bin")
        cp = time.perf_counter() - t
        (work / "copy.bin").unlink()

        (port,) = free_ports(1)
        url = f"http://127.0.0.1:{port}"
        modelreg = str(Path(sys.executable).with_name("modelreg"))
        blobs = f"s3://{bucket}/bench"
        command = [modelreg, "server", "--port", str(port), "--db", str(work / "registry.db"),
                   "--blobs", blobs]  # fmt: skip
        server = subprocess.Popen(command, env={**os.environ, **weed.env})
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.05)
        sampling = psutil.Process(server.pid)
        peak = [0]
        done = threading.Event()

        def sample() -> None:
            while not done.is_set():
                peak[0] = max(peak[0], sampling.memory_info().rss)
                time.sleep(0.1)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        out = subprocess.run(
            [sys.executable, "-c", CLIENT, url, str(source), str(work / "out")],
            cwd=work,
            capture_output=True,
            text=True,
            check=True,
        )
        done.set()
        sampler.join()
        client = json.loads(out.stdout.strip().splitlines()[-1])
        gb = size / (1 << 30)
        print(f"{gb:.1f} GiB through modelreg server into S3 (SeaweedFS on loopback)")
        print(f"  cp on the same disk   {cp:7.1f} s   {gb / cp * 1024:7.0f} MiB/s")
        for label, key in (("register (upload)", "upload_s"), ("pull (download)", "download_s"),
                           ("re-register, same", "reregister_s")):  # fmt: skip
            seconds = client[key]
            print(f"  {label:21} {seconds:7.1f} s   {gb / seconds * 1024:7.0f} MiB/s")
        server_mb = peak[0] / (1 << 20)
        for who, mb in (("client", client["peak_rss_mb"]), ("server", server_mb)):
            verdict = "met" if mb < LIMIT_MB else "NOT MET"
            print(f"  {who} peak RSS       {mb:7.0f} MB   (target < {LIMIT_MB} MB: {verdict})")
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        weed.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
