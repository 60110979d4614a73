"""Concurrent registrations on PostgreSQL while the S3 server answers slowly.

Creating a version checks that the store holds each blob its manifest names (a HEAD per blob
on S3). This measures how registrations from several writers proceed when each S3 request
takes ``--delay`` ms more: ``--writers`` threads, each creating ``--versions`` versions of
its own model whose manifests name ``--files`` blobs already uploaded. PostgreSQL and
SeaweedFS are real (tests/services.py starts both); the delay is injected into the boto3
client the store uses (a botocore ``before-send`` hook that sleeps), so every S3 request of
the registry waits it.

The baseline, in the same run, is the same workload without the delay. If the checks ran
inside the transaction while holding a lock every registration takes, the writers would
register one at a time: about ``files * delay`` per version in all, whatever their number.

    .venv/bin/python benchmarks/bench_slow_s3.py [--writers 8] [--versions 10] [--files 5]
        [--delay 50]
"""

from __future__ import annotations

import argparse
import hashlib
import io
import statistics
import sys
import threading
import time
import uuid
from typing import Any

from _common import ROOT, emit, figure, header

sys.path.insert(0, str(ROOT / "tests"))
from services import start_postgres, start_seaweedfs

BENCH = "slow S3"


def run(reg: Any, writers: int, versions: int, digests: list[tuple[str, int]]) -> dict[str, Any]:
    """Each writer registers ``versions`` versions; the wall time and each one's latency."""
    from modelreg import wire

    files = [{"path": f"f{i}.bin", "digest": d, "size": n} for i, (d, n) in enumerate(digests)]
    latencies: list[float] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    tag = uuid.uuid4().hex[:6]

    def writer(w: int) -> None:
        try:
            for _ in range(versions):
                new = wire.new_version_from_json(f"m-{tag}-{w}", {"files": files})
                start = time.perf_counter()
                reg.commit_version(new)
                with lock:
                    latencies.append(time.perf_counter() - start)
        except BaseException as exc:  # reported after the run
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(writers)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    if errors:
        raise errors[0]
    return {
        "wall": wall,
        "rate": len(latencies) / wall,
        "p50_ms": statistics.median(latencies) * 1000,
        "max_ms": max(latencies) * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--versions", type=int, default=10, help="versions per writer")
    parser.add_argument("--files", type=int, default=5, help="blobs each manifest names")
    parser.add_argument("--delay", type=float, default=50.0, help="ms added to each S3 request")
    args = parser.parse_args()
    header(
        f"{args.writers} writers x {args.versions} versions of {args.files} files on PostgreSQL,"
        f" S3 requests slowed by {args.delay:g} ms"
    )
    from modelreg.local import LocalRegistry
    from modelreg.s3 import S3BlobStore

    pg, weed = start_postgres(), start_seaweedfs()
    slow = threading.Event()

    def delay(**_: Any) -> None:
        if slow.is_set():
            time.sleep(args.delay / 1000)

    try:
        client = weed.client()
        client.meta.events.register("before-send.s3", delay)
        store = S3BlobStore(weed.new_bucket(), client=client)
        reg = LocalRegistry(db_url=pg.new_database(), blobs=store, actor="bench")
        digests = []
        for i in range(args.files):
            data = f"blob {i} ".encode() * 1000
            digest = hashlib.sha256(data).hexdigest()
            store.put(io.BytesIO(data), digest=digest)
            digests.append((digest, len(data)))
        run(reg, 1, 2, digests)  # warm up: connections, models
        base = run(reg, args.writers, args.versions, digests)
        slow.set()
        slowed = run(reg, args.writers, args.versions, digests)
        serial = args.files * args.delay / 1000  # s per version if the checks were serialised
        for label, r in (("no delay (baseline)", base), (f"{args.delay:g} ms per request", slowed)):
            print(
                f"  {label:<24} {r['rate']:7.1f} versions/s  p50 {r['p50_ms']:7.1f} ms"
                f"  max {r['max_ms']:7.1f} ms  ({r['wall']:.1f} s)"
            )
        print(f"  one at a time, the checks alone would allow {1 / serial:.1f} versions/s")
        reg.close()
    finally:
        weed.stop()
        pg.stop()
    emit(
        [
            figure(
                BENCH,
                f"registrations/s, {args.writers} writers, S3 +{args.delay:g} ms",
                slowed["rate"],
                "versions/s",
                target=f"> {1 / serial:.1f} (the checks one at a time)",
                passed=slowed["rate"] > 1 / serial,
                baseline=f"{base['rate']:.1f} versions/s without the delay",
                note=f"p50 {slowed['p50_ms']:.0f} ms, max {slowed['max_ms']:.0f} ms",
            )
        ]
    )


if __name__ == "__main__":
    main()
