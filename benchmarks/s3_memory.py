"""Peak memory of putting a large blob into S3BlobStore, and of reading it back.

Starts a SeaweedFS server (as the tests do), generates a stream of ``--size-gb`` GB (5 by
default; no file on disk), hashes it once to know its digest, then puts it through
``S3BlobStore.put(stream, digest=...)`` as the server does with an upload, and reads it back
through ``open()`` while hashing. The stream cannot be re-read, like an HTTP request body.
Reports the throughput of each step and the process's peak RSS (``ru_maxrss``), which must
stay under 250 MB: the store holds at most two parts (8 MiB each) in memory.

It takes a few minutes for 5 GB on a small machine (SeaweedFS writes every byte to disk),
so it is a script, not a test.

    .venv/bin/python benchmarks/s3_memory.py [--size-gb 5] [--part-mb 8]
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from modelreg.s3 import S3BlobStore  # noqa: E402
from services import start_seaweedfs  # noqa: E402

BLOCK = 16 << 20


class Generated(io.RawIOBase):
    """``size`` bytes made of one random 16 MiB block, each copy changed by its index."""

    def __init__(self, size: int, block: bytes) -> None:
        self._left = size
        self._block = block
        self._index = 0
        self._offset = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        n = min(len(buffer), self._left, len(self._block) - self._offset)
        if n <= 0:
            return 0
        piece = self._block[self._offset : self._offset + n]
        if self._offset == 0:  # no two blocks alike
            piece = self._index.to_bytes(8, "big") + piece[8:]
        buffer[:n] = piece
        self._left -= n
        self._offset = (self._offset + n) % len(self._block)
        self._index += self._offset == 0
        return n


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-gb", type=float, default=5.0)
    parser.add_argument("--part-mb", type=int, default=8)
    args = parser.parse_args()
    size = int(args.size_gb * 1e9)
    block = os.urandom(BLOCK)

    def stream() -> io.BufferedReader:
        return io.BufferedReader(Generated(size, block), buffer_size=1 << 20)

    start = time.perf_counter()
    h = hashlib.sha256()
    with stream() as f:
        while chunk := f.read(8 << 20):
            h.update(chunk)
    digest = h.hexdigest()
    hashed = time.perf_counter() - start
    print(f"generated and hashed {size / 1e9:.1f} GB in {hashed:.1f} s; digest {digest[:16]}…")

    server = start_seaweedfs()
    try:
        bucket = server.new_bucket()
        store = S3BlobStore(bucket, "bench", client=server.client(), part_size=args.part_mb << 20)
        baseline = peak_rss_mb()
        start = time.perf_counter()
        with stream() as f:
            stored = store.put(f, digest=digest)  # type: ignore[arg-type]
        put_s = time.perf_counter() - start
        after_put = peak_rss_mb()
        assert stored == (digest, size), stored
        print(f"put: {put_s:.1f} s, {size / put_s / 1e6:.0f} MB/s; peak RSS {after_put:.0f} MB")

        start = time.perf_counter()
        h = hashlib.sha256()
        with store.open(digest) as f:
            while chunk := f.read(8 << 20):
                h.update(chunk)
        read_s = time.perf_counter() - start
        assert h.hexdigest() == digest
        after_read = peak_rss_mb()
        print(f"read: {read_s:.1f} s, {size / read_s / 1e6:.0f} MB/s; peak RSS {after_read:.0f} MB")
        print(f"(peak RSS before the put: {baseline:.0f} MB)")
        result = {
            "size_bytes": size,
            "part_bytes": args.part_mb << 20,
            "put_seconds": round(put_s, 1),
            "read_seconds": round(read_s, 1),
            "peak_rss_mb_before": round(baseline),
            "peak_rss_mb_after_put": round(after_put),
            "peak_rss_mb_after_read": round(after_read),
            "target_peak_rss_mb": 250,
        }
        print("RESULT " + json.dumps(result))
    finally:
        server.stop()


if __name__ == "__main__":
    main()
