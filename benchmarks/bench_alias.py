"""Benchmark 2: resolve an alias, ``reg.get("churn@production")`` and the lower-level resolution.

Target: p50 <= 1 ms (p50/p95/p99 over >= 1,000 calls each), embedded registry.

Figures:
- ``reg.get("churn@production")``: what a caller pays (resolution, the version and its lineage);
- ``versions.resolve`` in its own read transaction (``reg.db.read``): alias -> version id;
- ``versions.resolve`` on a connection already open: the two queries alone.

Baseline in the same run: a bare ``SELECT`` by primary key (``aliases`` by model id and alias)
through the sqlite3 module on the same database file.

    .venv/bin/python benchmarks/bench_alias.py [--calls 2000] [--versions 20] [--profile]
"""

from __future__ import annotations

import argparse
import sqlite3

from _common import emit, figure, header, latency_ms, profiled, show_latency, temp_dir

import modelreg
from modelreg import versions
from modelreg.refs import parse_ref

TARGET_MS = 1.0
BENCH = "2 alias"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--versions", type=int, default=20, help="versions of churn to create")
    parser.add_argument("--profile", action="store_true", help="cProfile the reg.get calls")
    args = parser.parse_args()
    header(f"benchmark 2: resolve churn@production ({args.calls} calls per figure)")
    figures = []
    with temp_dir("alias") as tmp:
        model_file = tmp / "model.bin"
        reg = modelreg.connect(tmp / "reg")
        try:
            for i in range(args.versions):
                model_file.write_bytes(f"model {i}".encode() * 100)
                reg.register(
                    "churn",
                    model_file,
                    params={"C": i / 10, "solver": "lbfgs"},
                    metrics={"accuracy": 0.8 + i / 1000},
                    tags={"team": "growth"},
                )
            middle = f"churn/{args.versions // 2}"
            reg.set_alias("churn", "production", middle)
            assert reg.get("churn@production").ref == middle

            ref = parse_ref("churn@production")
            get = latency_ms(lambda: reg.get("churn@production"), calls=args.calls)
            own_txn = latency_ms(
                lambda: reg.db.read(lambda conn: versions.resolve(conn, ref)), calls=args.calls
            )
            with reg.db.engine.connect() as conn:
                open_conn = latency_ms(lambda: versions.resolve(conn, ref), calls=args.calls)
                model_id = versions.model_id(conn, "churn")
            if args.profile:
                with profiled(True):
                    for _ in range(args.calls):
                        reg.get("churn@production")
        finally:
            reg.close()

        db = sqlite3.connect(tmp / "reg" / "registry.db")
        sql = "SELECT version_id FROM aliases WHERE model_id = ? AND alias = ?"
        assert db.execute(sql, (model_id, "production")).fetchone() is not None
        bare = latency_ms(
            lambda: db.execute(sql, (model_id, "production")).fetchone(), calls=args.calls
        )
        db.close()

    show_latency('reg.get("churn@production")', get)
    show_latency("versions.resolve in its own read transaction", own_txn)
    show_latency("versions.resolve on an open connection", open_conn)
    show_latency("baseline: sqlite3 SELECT by primary key", bare)
    base = f"sqlite3 PK select p50 {bare['p50']:.3f} ms"
    for name, s in (
        ('reg.get("churn@production") p50', get),
        ("resolve alias (own read transaction) p50", own_txn),
    ):
        figures.append(
            figure(
                BENCH,
                name,
                s["p50"],
                "ms",
                target=f"<= {TARGET_MS} ms",
                passed=s["p50"] <= TARGET_MS,
                baseline=base,
                note=f"p95 {s['p95']:.3f} ms, p99 {s['p99']:.3f} ms, n={int(s['n'])}",
            )
        )
    figures.append(
        figure(
            BENCH,
            "resolve alias (open connection) p50",
            open_conn["p50"],
            "ms",
            target="(info)",
            passed=None,
            baseline=base,
            note=f"p95 {open_conn['p95']:.3f} ms, p99 {open_conn['p99']:.3f} ms",
        )
    )
    emit(figures)


if __name__ == "__main__":
    main()
