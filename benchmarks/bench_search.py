"""Benchmark 3: the best version by a metric among 100,000 versions of one model.

Target: p50 <= 20 ms for each of

    reg.search("", model="m", order_by="metrics.accuracy desc", limit=1)
    reg.search("metrics.accuracy > 0.5", order_by="metrics.accuracy desc", limit=1)

The 100,000 versions are populated directly: rows bulk-inserted with SQLAlchemy Core into the
tables of ``modelreg.schema`` (one model; per version 1 file row, 5 metrics, 10 params, every
NOT NULL column filled; no audit events or blobs). Registering them one by one would take
minutes and is measured by benchmark 1.

Baseline in the same run: the equivalent hand-written SQL through the sqlite3 module, returning
the id of the best version (the registry then also loads that version).

    .venv/bin/python benchmarks/bench_search.py [--versions 100000] [--calls 50] [--profile]
"""

from __future__ import annotations

import argparse
import hashlib
import random
import sqlite3
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from _common import emit, figure, header, latency_ms, profiled, show_latency, temp_dir

import modelreg
from modelreg import schema, search

TARGET_MS = 20.0
BENCH = "3 search"
METRICS = ("accuracy", "f1", "precision", "recall", "loss")
BATCH = 10_000


def populate(reg: Any, count: int, *, seed: int = 7) -> str:
    """Insert ``count`` versions of model "m" straight into the tables; return the model id."""
    rnd = random.Random(seed)
    model_id = str(uuid.uuid4())
    start = datetime(2026, 1, 1, tzinfo=UTC)
    stamp = start.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    with reg.db.engine.begin() as conn:
        conn.execute(
            schema.models.insert(),
            [
                {
                    "id": model_id,
                    "name": "m",
                    "description": "",
                    "created_at": stamp,
                    "created_by": "bench",
                    "updated_at": stamp,
                }
            ],
        )
        for first in range(0, count, BATCH):
            versions, files, metrics, params = [], [], [], []
            for n in range(first, min(first + BATCH, count)):
                vid = str(uuid.UUID(int=rnd.getrandbits(128), version=4))
                created = (start + timedelta(seconds=n)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
                digest = hashlib.sha256(vid.encode()).hexdigest()
                versions.append(
                    {
                        "id": vid,
                        "model_id": model_id,
                        "number": n + 1,
                        "description": "",
                        "created_at": created,
                        "created_by": "bench",
                        "manifest_digest": digest,
                        "size": 1024,
                        "file_count": 1,
                        "run_id": None,
                        "code": "{}",
                        "command": "bench",
                        "hostname": "bench",
                        "environment_digest": None,
                    }
                )
                file = {"version_id": vid, "path": "model.bin", "digest": digest, "size": 1024}
                files.append(file)
                metrics += [{"version_id": vid, "key": k, "value": rnd.random()} for k in METRICS]
                for j in range(10):
                    value = rnd.random() * 10 if j < 7 else rnd.choice(("a", "b", "c"))
                    params.append(
                        {
                            "version_id": vid,
                            "key": f"p{j}",
                            "value": str(value),
                            "value_num": value if isinstance(value, float) else None,
                        }
                    )
            conn.execute(schema.versions.insert(), versions)
            conn.execute(schema.version_files.insert(), files)
            conn.execute(schema.version_metrics.insert(), metrics)
            conn.execute(schema.version_params.insert(), params)
    return model_id


def explain(db: sqlite3.Connection, stmt: sa.Select[Any]) -> list[str]:
    """SQLite's query plan for the statement the registry runs."""
    compiled = stmt.compile(dialect=sa.dialects.sqlite.dialect())
    params = [compiled.params[name] for name in compiled.positiontup or []]
    return [row[3] for row in db.execute(f"EXPLAIN QUERY PLAN {compiled}", params)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--versions", type=int, default=100_000)
    parser.add_argument("--calls", type=int, default=50, help="timed calls per query")
    parser.add_argument("--profile", action="store_true", help="cProfile the search calls")
    parser.add_argument("--analyze", action="store_true", help="run ANALYZE after populating")
    args = parser.parse_args()
    header(f"benchmark 3: best version by metrics.accuracy among {args.versions} versions")
    figures = []
    with temp_dir("search") as tmp:
        reg = modelreg.connect(tmp / "reg")
        try:
            start = time.perf_counter()
            model_id = populate(reg, args.versions)
            print(
                f"  populated {args.versions} versions directly (SQLAlchemy Core bulk insert, "
                f"not register) in {time.perf_counter() - start:.1f} s"
            )
            if args.analyze:
                with reg.db.engine.connect() as conn:
                    conn.exec_driver_sql("ANALYZE")
                    conn.commit()
                print("  ran ANALYZE (the registry itself never does)")
            db = sqlite3.connect(tmp / "reg" / "registry.db")
            best_sql = (
                "SELECT versions.id FROM version_metrics JOIN versions"
                " ON versions.id = version_metrics.version_id"
                " WHERE version_metrics.key = 'accuracy' {extra}"
                " ORDER BY version_metrics.value DESC LIMIT 1"
            )
            by_model = best_sql.format(extra="AND versions.model_id = ?")
            above = best_sql.format(extra="AND version_metrics.value > 0.5")
            expected = db.execute(by_model, (model_id,)).fetchone()[0]
            assert db.execute(above).fetchone()[0] == expected

            cases: list[tuple[str, Callable[[], list[Any]], Callable[[], object], str]] = [
                (
                    'search("", model="m", order_by="metrics.accuracy desc", limit=1)',
                    lambda: reg.search("", model="m", order_by="metrics.accuracy desc", limit=1),
                    lambda: db.execute(by_model, (model_id,)).fetchone(),
                    "",
                ),
                (
                    'search("metrics.accuracy > 0.5", order_by=..., limit=1)',
                    lambda: reg.search(
                        "metrics.accuracy > 0.5", order_by="metrics.accuracy desc", limit=1
                    ),
                    lambda: db.execute(above).fetchone(),
                    "metrics.accuracy > 0.5",
                ),
            ]
            for label, run, baseline, text in cases:
                found = run()
                assert [v.id for v in found] == [expected], (found, expected)
                query = search.parse(text)
                query = search.Query(query.where, search.parse_order_by("metrics.accuracy desc"))
                stmt = search.select_versions(
                    query, model_id=model_id if not text else None, limit=1
                )
                print(f"  {label}")
                for line in explain(db, stmt):
                    print(f"      plan: {line}")
                timed = latency_ms(run, calls=args.calls, warmup=3)
                base = latency_ms(baseline, calls=max(args.calls, 200), warmup=3)
                show_latency("registry", timed)
                show_latency("baseline: hand-written SQL through sqlite3", base)
                if args.profile:
                    with profiled(True):
                        for _ in range(10):
                            run()
                figures.append(
                    figure(
                        BENCH,
                        label + " p50",
                        timed["p50"],
                        "ms",
                        target=f"<= {TARGET_MS:.0f} ms",
                        passed=timed["p50"] <= TARGET_MS,
                        baseline=f"sqlite3 SQL p50 {base['p50']:.3f} ms",
                        note=f"p95 {timed['p95']:.2f} ms, p99 {timed['p99']:.2f} ms, "
                        f"n={int(timed['n'])}, {args.versions} versions",
                    )
                )
            db.close()
        finally:
            reg.close()
    emit(figures)


if __name__ == "__main__":
    main()
