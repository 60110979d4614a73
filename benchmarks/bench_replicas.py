"""Stateless replicas behind HAProxy: a bounded mixed load on 1, then 2 replicas.

PostgreSQL and SeaweedFS start as the tests start them; each round gets a database and a
bucket of its own. ``--replicas`` rounds run ``modelreg server`` processes (one worker each)
on that database and bucket behind HAProxy (Debian's ``haproxy``: round robin, health
checks on ``/healthz``). ``--clients`` threads then each run a loop of SDK calls through the
balancer for ``--seconds``, drawn at random: 40% reads (``get`` of an alias, a search, a
model's versions), 25% registrations of a small file, 15% alias moves, 20% runs that log 200
metric points. Afterwards every registration the clients were told of is checked in the
database: no version lost, none twice, each model's numbers gapless. It prints operations
per second, per kind and in all, and any error.

The figure is the throughput from 1 to 2 replicas on this machine, in the same run. Every
process (the clients, HAProxy, the replicas, PostgreSQL, SeaweedFS) shares its 2 cores, so
this shows that replicas add no errors and lose nothing more than how far they scale.

    apt-get install -y haproxy        # once
    .venv/bin/python benchmarks/bench_replicas.py [--replicas 1 2] [--clients 8] [--seconds 20]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from _common import BIN, ROOT, emit, figure, header

sys.path.insert(0, str(ROOT / "tests"))
from services import Postgres, SeaweedFS, free_ports, start_postgres, start_seaweedfs

BENCH = "replicas"
KINDS = ("read", "register", "alias", "metrics")
WEIGHTS = (40, 25, 15, 20)


def wait_for(url: str, timeout: float = 60) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{url} did not answer within {timeout:.0f} s")


def start_replicas(
    count: int, db_url: str, blobs: str, env: dict[str, str], folder: Path
) -> tuple[list[subprocess.Popen[bytes]], list[int]]:
    ports = free_ports(count)
    procs = []
    for p in ports:
        log = (folder / f"replica-{p}.log").open("wb")
        command = [str(BIN / "modelreg"), "server", "--db", db_url, "--blobs", blobs]
        procs.append(
            subprocess.Popen(
                [*command, "--port", str(p)],
                env={**os.environ, **env},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )
    for p, proc in zip(ports, procs, strict=True):
        try:
            wait_for(f"http://127.0.0.1:{p}/healthz")
        except SystemExit:
            proc.kill()
            raise SystemExit((folder / f"replica-{p}.log").read_text()[-3000:]) from None
    return procs, ports


def start_haproxy(ports: list[int], folder: Path) -> tuple[subprocess.Popen[bytes], str]:
    haproxy = shutil.which("haproxy")
    if haproxy is None:
        raise SystemExit("HAProxy is not installed: apt-get install -y haproxy")
    (front,) = free_ports(1)
    servers = "\n".join(
        f"    server r{i} 127.0.0.1:{p} check inter 1s" for i, p in enumerate(ports)
    )
    config = folder / "haproxy.cfg"
    config.write_text(
        f"""global
    maxconn 1000
defaults
    mode http
    timeout connect 5s
    timeout client 120s
    timeout server 120s
frontend registry
    bind 127.0.0.1:{front}
    default_backend replicas
backend replicas
    balance roundrobin
    option httpchk
    http-check send meth GET uri /healthz ver HTTP/1.1 hdr Host localhost
    http-check expect status 200
{servers}
"""
    )
    proc = subprocess.Popen(
        [haproxy, "-f", str(config), "-db"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{front}"
    wait_for(url + "/healthz")
    return proc, url


class Load:
    """The clients' loop and what they saw: operations by kind, errors, registrations."""

    def __init__(self, url: str, folder: Path, seconds: float) -> None:
        self.url, self.folder, self.seconds = url, folder, seconds
        self.done: Counter[str] = Counter()
        self.errors: list[str] = []
        self.registered: list[tuple[str, int, str]] = []  # model, number, id
        self.aliased: set[str] = set()
        self.lock = threading.Lock()

    def client(self, c: int) -> None:
        from modelreg.remote import RemoteRegistry

        rnd = random.Random(c)
        reg = RemoteRegistry(self.url, actor=f"client-{c}")
        model = f"m{c % 4}"  # four models, each written by several clients at once
        weights = self.folder / f"w{c}.bin"
        deadline = time.monotonic() + self.seconds
        try:
            while time.monotonic() < deadline:
                kind = rnd.choices(KINDS, WEIGHTS)[0]
                try:
                    self.one(reg, rnd, kind, model, weights)
                except Exception as exc:  # counted and reported, the load goes on
                    with self.lock:
                        self.errors.append(f"{kind}: {type(exc).__name__}: {exc}"[:300])
                    continue
                with self.lock:
                    self.done[kind] += 1
        finally:
            reg.close()

    def one(self, reg: Any, rnd: random.Random, kind: str, model: str, weights: Path) -> None:
        if kind == "register" or not self.registered:
            weights.write_bytes(os.urandom(2048))
            v = reg.register(model, weights, metrics={"accuracy": rnd.random()})
            with self.lock:
                self.registered.append((model, v.number, v.id))
        elif kind == "read":
            choice = rnd.randrange(3)
            if choice == 0:  # the alias once a client has set it, else the latest version
                ref = f"{model}@production" if model in self.aliased else model
                reg.get(ref, lineage=False)
            elif choice == 1:
                reg.search("metrics.accuracy > 0.5", order_by="metrics.accuracy desc", limit=5)
            else:
                reg.versions(model, limit=20)
        elif kind == "alias":
            with self.lock:
                mine = [n for m, n, _ in self.registered if m == model]
            if mine:
                reg.set_alias(model, "production", f"{model}/{rnd.choice(mine)}")
                self.aliased.add(model)
        else:
            with reg.start_run(name="train") as run:
                for step in range(200):
                    run.log_metric("loss", 1 / (step + 1), step=step)

    def run(self, clients: int) -> float:
        threads = [threading.Thread(target=self.client, args=(c,)) for c in range(clients)]
        start = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return time.perf_counter() - start


def check(db_url: str, registered: list[tuple[str, int, str]]) -> list[str]:
    """What the database holds against what the clients were told: problems, if any."""
    import sqlalchemy as sa

    engine = sa.create_engine(db_url)
    problems = []
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT m.name, v.number, v.id FROM versions v JOIN models m ON m.id = v.model_id"
            )
        ).all()
    engine.dispose()
    stored = {(r.name, r.number): r.id for r in rows}
    told = {(m, n): i for m, n, i in registered}
    if len(told) != len(registered):
        problems.append(f"{len(registered) - len(told)} numbers given twice")
    lost = [k for k, i in told.items() if stored.get(k) != i]
    if lost:
        problems.append(f"{len(lost)} registrations not in the database as told: {lost[:3]}")
    by_model: dict[str, list[int]] = {}
    for name, number in stored:
        by_model.setdefault(name, []).append(number)
    for name, numbers in by_model.items():
        if sorted(numbers) != list(range(1, len(numbers) + 1)):
            problems.append(f"model {name}'s numbers have gaps: {sorted(numbers)[:10]} ...")
    return problems


def round_of(
    replicas: int, pg: Postgres, weed: SeaweedFS, clients: int, seconds: float, folder: Path
) -> dict[str, Any]:
    db_url = pg.new_database()
    blobs = f"s3://{weed.new_bucket()}/registry"
    env = {**weed.env, "MODELREG_S3_ENDPOINT": weed.endpoint}
    procs, ports = start_replicas(replicas, db_url, blobs, env, folder)
    balancer, url = start_haproxy(ports, folder)
    try:
        load = Load(url, folder, seconds)
        wall = load.run(clients)
    finally:
        for proc in [balancer, *procs]:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)
    problems = check(db_url, load.registered)
    total = sum(load.done.values())
    print(f"  {replicas} replica(s): {total / wall:7.1f} operations/s ({total} in {wall:.1f} s)")
    for kind in KINDS:
        print(f"      {kind:<9} {load.done[kind] / wall:7.1f}/s ({load.done[kind]})")
    print(f"      errors: {len(load.errors)}; registrations checked: {len(load.registered)},"
          f" problems: {problems or 'none'}")  # fmt: skip
    for error in load.errors[:5]:
        print(f"        {error}")
    return {"rate": total / wall, "errors": len(load.errors), "problems": problems}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--replicas", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=20)
    args = parser.parse_args()
    header(
        f"{args.clients} clients for {args.seconds:g} s through HAProxy, replicas {args.replicas}"
    )
    pg, weed = start_postgres(), start_seaweedfs()
    folder = Path(tempfile.mkdtemp(prefix="modelreg-bench-replicas-"))
    try:
        results = {
            n: round_of(n, pg, weed, args.clients, args.seconds, folder) for n in args.replicas
        }
    finally:
        weed.stop()
        pg.stop()
        shutil.rmtree(folder, ignore_errors=True)
    first = results[args.replicas[0]]["rate"]
    emit(
        [
            figure(
                BENCH,
                f"operations/s, {n} replica(s)",
                r["rate"],
                "ops/s",
                target="no errors, nothing lost",
                passed=not r["errors"] and not r["problems"],
                baseline=f"{first:.1f} ops/s with {args.replicas[0]} replica(s)",
                note=f"{r['errors']} errors; {'; '.join(r['problems']) or 'nothing lost'}",
            )
            for n, r in results.items()
        ]
    )


if __name__ == "__main__":
    main()
