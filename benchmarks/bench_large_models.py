"""Benchmark: a family of large checkpoints stored once, and sent once.

Generates (``checkpoints.make_family``, no download) a ``--size-mib`` bf16 safetensors base
and 10 derived versions: 2 header-only edits, 1 vocabulary resize, 3 fine-tunes of the last
2 of 12 layers and the head, 2 merged low-rank adapters on q/v of every layer and 2 full
fine-tunes with small updates. Each derived version is registered with the base as its
parent (``--parent``, which lineage records anyway).

Two registries take the same family:

- embedded: ``modelreg.connect(DIR)``, the bytes stored by this process;
- the team server: ``modelreg server`` on SQLite and a blob directory, the family registered
  through the SDK over HTTP, counting the bytes each registration sends.

Figures, each beside its baseline from the same run:

- bytes stored for all 11 versions (the blob directory, packs and whole blobs) against the
  sum of the files' sizes (what a whole-file store keeps); target <= 2.5 GiB for a 1 GiB base;
- per derived version: bytes stored and bytes sent, against the bytes that differ from the
  base at the same offsets (``checkpoints.changed_bytes``) and the file's size;
- time to register and to pull each version, with ``cp`` of the base file for scale.

    .venv/bin/python benchmarks/bench_large_models.py [--size-mib 1024] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from _common import BIN, emit, figure, header, temp_dir
from checkpoints import Variant, changed_bytes, make_family

BENCH = "large models"
TARGET_TOTAL_GIB = 2.5  # for a 1 GiB base
GIB = 1 << 30
MIB = 1 << 20


def stored(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


class Counting(httpx.HTTPTransport):
    """Counts the request bytes a client sends, as they go (a streamed body stays streamed)."""

    def __init__(self) -> None:
        super().__init__()
        self.sent = 0
        self._lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.stream = _Counted(request.stream, self)  # type: ignore[arg-type]
        return super().handle_request(request)

    def count(self, size: int) -> None:
        with self._lock:
            self.sent += size


class _Counted(httpx.SyncByteStream):
    def __init__(self, stream: Any, wire: Counting) -> None:
        self._stream = stream
        self._wire = wire

    def __iter__(self) -> Any:
        for part in self._stream:
            self._wire.count(len(part))
            yield part


def register_family(reg: Any, family: list[Variant], blobs: Path, wire: Counting | None) -> list:
    rows = []
    for variant in family:
        before_stored = stored(blobs)
        before_sent = wire.sent if wire is not None else 0
        parents = ["llm/1"] if variant.parent else []
        start = time.perf_counter()
        reg.register("llm", {"model.safetensors": variant.path}, parents=parents)
        seconds = time.perf_counter() - start
        rows.append(
            {
                "name": variant.name,
                "seconds": seconds,
                "stored": stored(blobs) - before_stored,
                "sent": (wire.sent - before_sent) if wire is not None else None,
            }
        )
    return rows


def pull_times(
    reg: Any, family: list[Variant], out: Path, cache: Path | None = None
) -> tuple[list[float], list[int]]:
    """Seconds to pull each version and, through a server, the bytes the pull added to the
    client's chunk cache: what it fetched."""
    times, fetched = [], []
    for number, _ in enumerate(family, start=1):
        target = out / str(number)
        before = stored(cache) if cache is not None and cache.exists() else 0
        start = time.perf_counter()
        reg.pull(f"llm/{number}", target)
        times.append(time.perf_counter() - start)
        after = stored(cache) if cache is not None and cache.exists() else 0
        fetched.append(after - before)
        shutil.rmtree(target)
    return times, fetched


def cp_seconds(source: Path, folder: Path) -> float:
    target = folder / "cp-copy"
    start = time.perf_counter()
    shutil.copyfile(source, target)
    seconds = time.perf_counter() - start
    target.unlink()
    return seconds


def start_server(folder: Path) -> tuple[subprocess.Popen[bytes], str, Path]:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    registry = folder / "server-registry"
    registry.mkdir()
    cmd = [str(BIN / "modelreg"), "server", "--host", "127.0.0.1", "--port", str(port)]
    cmd += ["--db", str(registry / "registry.db"), "--blobs", str(registry / "blobs")]
    log = open(folder / "server.log", "wb")  # noqa: SIM115 (closed with the process)
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            if httpx.get(url + "/healthz").is_success:
                return proc, url, registry / "blobs"
        except httpx.TransportError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit(f"the server did not start: {(folder / 'server.log').read_text()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--keep", type=Path, help="generate the family here and keep it")
    args = parser.parse_args()
    header(f"{BENCH}: a {args.size_mib} MiB bf16 base and 10 derived versions")
    import modelreg
    from modelreg.remote import RemoteRegistry

    with temp_dir("large-") as work:
        files = args.keep or work / "family"
        start = time.perf_counter()
        family = make_family(files, args.size_mib)
        print(f"   generated in {time.perf_counter() - start:.1f} s")
        base = family[0].path
        sizes = [v.path.stat().st_size for v in family]
        raw_total = sum(v.path.stat().st_size for v in family)
        changed = {v.name: changed_bytes(base, v.path) for v in family[1:]}
        cp = cp_seconds(base, work)
        print(f"   cp of the base: {cp:.2f} s ({base.stat().st_size / MIB / cp:.0f} MiB/s)")

        local = modelreg.connect(work / "embedded")
        local_rows = register_family(local, family, work / "embedded" / "blobs", None)
        local_pulls, _ = pull_times(local, family, work / "pulled")
        local_total = stored(work / "embedded" / "blobs")
        local.close()

        cache = work / "client-cache"
        os.environ["MODELREG_CACHE"] = str(cache)  # the client's chunk cache starts empty
        proc, url, server_blobs = start_server(work)
        try:
            wire = Counting()
            remote = RemoteRegistry(url, transport=wire)
            remote_rows = register_family(remote, family, server_blobs, wire)
            remote_pulls, fetched = pull_times(remote, family, work / "pulled", cache)
            remote_total = stored(server_blobs)
            remote.close()
        finally:
            proc.terminate()
            proc.wait(30)

    print()
    print(
        f"   {'version':<16}{'size':>9}{'changed':>9}{'stored':>9}{'sent':>9}"
        f"{'reg s':>8}{'pull s':>8}{'http reg':>9}{'http pull':>10}"
    )
    for i, variant in enumerate(family):
        size = sizes[i]
        print(
            f"   {variant.name:<16}{size / MIB:>8.0f}M"
            f"{changed.get(variant.name, size) / MIB:>8.0f}M"
            f"{local_rows[i]['stored'] / MIB:>8.0f}M{remote_rows[i]['sent'] / MIB:>8.0f}M"
            f"{local_rows[i]['seconds']:>8.2f}{local_pulls[i]:>8.2f}"
            f"{remote_rows[i]['seconds']:>9.2f}{remote_pulls[i]:>10.2f}"
            f"{fetched[i] / MIB:>8.0f}M"
        )
    limit = TARGET_TOTAL_GIB * args.size_mib / 1024
    print()
    print(
        f"   all 11 files: {raw_total / GIB:.2f} GiB as files; stored embedded"
        f" {local_total / GIB:.2f} GiB, on the server {remote_total / GIB:.2f} GiB"
        f" (target <= {limit:.2f} GiB)"
    )
    derived_sent = sum(r["sent"] for r in remote_rows[1:])
    derived_raw = sum(sizes[1:])
    print(
        f"   the 10 derived versions sent {derived_sent / GIB:.2f} GiB of their"
        f" {derived_raw / GIB:.2f} GiB; pulled after the base, they fetched"
        f" {sum(fetched[1:]) / GIB:.2f} GiB"
    )
    emit(
        [
            figure(
                BENCH,
                "fetched by 10 derived pulls",
                sum(fetched[1:]) / GIB,
                "GiB",
                target="",
                passed=None,
                baseline=f"{derived_raw / GIB:.2f} GiB of files",
            ),
            figure(
                BENCH,
                "stored, embedded",
                local_total / GIB,
                "GiB",
                target=f"<= {limit:.2f}",
                passed=local_total / GIB <= limit,
                baseline=f"{raw_total / GIB:.2f} GiB as whole files",
            ),
            figure(
                BENCH,
                "stored, server",
                remote_total / GIB,
                "GiB",
                target=f"<= {limit:.2f}",
                passed=remote_total / GIB <= limit,
                baseline=f"{raw_total / GIB:.2f} GiB as whole files",
            ),
            figure(
                BENCH,
                "sent for 10 derived",
                derived_sent / GIB,
                "GiB",
                target="",
                passed=None,
                baseline=f"{derived_raw / GIB:.2f} GiB of files",
            ),
            figure(
                BENCH,
                "register base, embedded",
                local_rows[0]["seconds"],
                "s",
                target="",
                passed=None,
                baseline=f"cp {cp:.2f} s",
            ),
            figure(
                BENCH,
                "pull base, embedded",
                local_pulls[0],
                "s",
                target="",
                passed=None,
                baseline=f"cp {cp:.2f} s",
            ),
        ]
    )


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(__file__))
    main()
