"""Metric history at scale: one run's 10,000,000 points written through ``modelreg server``
and charted back, on PostgreSQL and SQLite; then a PostgreSQL registry holding 100,000,000
points (loaded with COPY, cached) in which one run's chart and MLflow's run search are timed.

Targets (issue 18): one run's 10M points written at >= 200,000 points/s through the server,
and read back downsampled for a chart (1,000 buckets: mean, min, max) in <= 200 ms.

Writing: the SDK's ``record_run_metrics`` (what a run's metric buffer calls) in batches of
100,000 points (the most one request takes), one batch after another as the buffer sends
them, to ``modelreg server`` on the database; the time runs from the first batch to the end
of the run. Baseline in the same run: the storage before blocks, one row per point (a table
shaped like the old ``run_metrics``, with its index), the same batches inserted by
hand-written executemany, without a server in between.

Reading: ``metric_blocks.series`` (what the run page charts) on the database, the run page's
data through the server (``GET /api/v1/pages/runs/{id}``), and the baseline: the chart the
storage before computed, window functions by rank over the rows (3 calls: it is slow).

The 100M registry (``--total``, PostgreSQL only): 5 runs of 10M points and 50 of 1M (two
keys), made with ``metric_blocks`` and COPY'd into its tables, cached under ``--cache``.

    .venv/bin/python benchmarks/bench_metric_history.py
    .venv/bin/python benchmarks/bench_metric_history.py --points 1000000 --backend sqlite
    .venv/bin/python benchmarks/bench_metric_history.py --total 0      # no 100M registry

Figures are reported, never asserted: the machine is shared and noisy.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import signal
import sqlite3
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from _common import emit, figure, header, latency_ms, show_latency
from bench_scale import percentiles, serve
from scale_data import start_cached_postgres, stop_postgres

BENCH = "metric history"
BATCH = 100_000
T0 = 1_800_000_000_000
WRITE_TARGET = 200_000  # points/s
CHART_TARGET = 200.0  # ms
OLD_TABLE = """CREATE TABLE bench_rows (id {serial} PRIMARY KEY, run_id VARCHAR(36) NOT NULL,
    key VARCHAR(256) NOT NULL, value FLOAT NOT NULL, step INTEGER NOT NULL,
    timestamp VARCHAR(27) NOT NULL)"""
OLD_CHART = """
WITH ranked AS (
    SELECT key, step, value,
           row_number() OVER (PARTITION BY key ORDER BY step, timestamp, id) AS rank,
           count(*) OVER (PARTITION BY key) AS total
    FROM bench_rows WHERE run_id = '{run}')
SELECT key, max(total), min(step), avg(value), min(value), max(value) FROM ranked
GROUP BY key, (rank - 1) / ((total + 999) / 1000) ORDER BY key, min(rank)
"""


def batch(start: int, size: int) -> list[tuple[str, float, int, int]]:
    """Points ``start`` to ``start + size`` of a falling loss with noise, one ms apart."""
    return [
        ("loss", 1.0 / math.sqrt(i + 1) + 0.01 * math.sin(i * 0.37), i, T0 + i)
        for i in range(start, start + size)
    ]


@contextlib.contextmanager
def served(db_url: str, blobs: Path) -> Iterator[str]:
    """``modelreg server`` on the database while the block runs; its URL."""
    proc, url = serve(db_url, blobs)
    try:
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)


def write_through_server(db_url: str, blobs: Path, points: int) -> tuple[str, float]:
    """Log ``points`` points to one run through a server on ``db_url``: (run id, points/s)."""
    import modelreg

    with served(db_url, blobs) as url, contextlib.closing(modelreg.connect(url, actor="b")) as reg:
        with reg.start_run(name="bench") as run:
            started = time.perf_counter()
            for start in range(0, points, BATCH):
                reg.record_run_metrics(run.id, batch(start, min(BATCH, points - start)))
        took = time.perf_counter() - started
    assert run.id is not None
    return run.id, points / took


def time_reads(
    db_url: str, blobs: Path, run_id: str, calls: int, figures: list[dict[str, Any]], label: str
) -> None:
    import httpx

    from modelreg import metric_blocks
    from modelreg.local import LocalRegistry

    with LocalRegistry(db_url=db_url, blobs=_blob_store(blobs)) as reg:
        chart = reg.db.read(lambda c: metric_blocks.series(c, run_id, max_points=1000))
        sizes = {k: (v["points"], len(v["step"])) for k, v in chart.items()}
        print(f"    chart: {sizes} (points logged, buckets drawn)", flush=True)
        sdk = latency_ms(
            lambda: reg.db.read(lambda c: metric_blocks.series(c, run_id, max_points=1000)),
            calls=calls,
            warmup=2,
        )
        show_latency("metric_blocks.series, 1,000 buckets", sdk)
    with served(db_url, blobs) as url, httpx.Client(base_url=url, timeout=120) as http:
        page = f"/api/v1/pages/runs/{run_id}"
        answered = latency_ms(lambda: http.get(page).raise_for_status(), calls=calls, warmup=2)
        show_latency(f"server: GET {page}", answered)
    figures.append(
        figure(
            BENCH,
            f"{label}: chart of a run's points p50",
            sdk["p50"],
            "ms",
            target=f"<= {CHART_TARGET:g} ms",
            passed=sdk["p50"] <= CHART_TARGET,
            note=f"p99 {sdk['p99']:.1f} ms; run page through the server {percentiles(answered)}",
        )
    )


def _blob_store(path: Path) -> Any:
    from modelreg.blobs import LocalBlobStore

    return LocalBlobStore(path)


def old_storage(
    execute: Callable[[str], Any], many: Callable[[str, list[Any]], None], mark: str, points: int
) -> tuple[float, Callable[[], Any]]:
    """The storage before blocks: (points/s inserting the same batches, the old chart)."""
    run = "00000000-0000-4000-8000-000000000000"
    started = time.perf_counter()
    sql = f"INSERT INTO bench_rows (run_id, key, value, step, timestamp) VALUES ({mark})"
    for start in range(0, points, BATCH):
        stamp = "2027-01-15T08:00:00.000000Z"
        rows = [(run, k, v, s, stamp) for k, v, s, _ in batch(start, min(BATCH, points - start))]
        many(sql, rows)
    took = time.perf_counter() - started
    return points / took, lambda: execute(OLD_CHART.format(run=run))


def run_backend(
    kind: str, db_url: str, blobs: Path, points: int, calls: int, baseline: Any
) -> list[dict[str, Any]]:
    figures: list[dict[str, Any]] = []
    print(f"  {kind}: writing {points:,} points through the server", flush=True)
    run_id, rate = write_through_server(db_url, blobs, points)
    print(f"    {rate:,.0f} points/s", flush=True)
    print("  baseline: one row per point, hand-written executemany", flush=True)
    old_rate, old_chart = baseline(points)
    print(f"    {old_rate:,.0f} points/s", flush=True)
    figures.append(
        figure(
            BENCH,
            f"{kind}: {points:,} points of one run through the server",
            rate,
            "points/s",
            target=f">= {WRITE_TARGET:,} points/s",
            passed=rate >= WRITE_TARGET,
            baseline=f"one row per point, no server: {old_rate:,.0f} points/s",
        )
    )
    time_reads(db_url, blobs, run_id, calls, figures, kind)
    old = latency_ms(old_chart, calls=3, warmup=0)
    show_latency("baseline: the chart over rows, by rank", old)
    figures[-1]["baseline"] = f"the chart over one row per point: {percentiles(old)}"
    return figures


def run_postgres(cache: Path, points: int, total: int, calls: int) -> list[dict[str, Any]]:
    import psycopg

    pg = start_cached_postgres(cache / "postgresql")
    try:
        figures = []
        with tempfile.TemporaryDirectory(prefix="bench-history-") as tmp:
            db_url = pg.new_database()
            dsn = db_url.replace("postgresql+psycopg://", "postgresql://")
            with contextlib.closing(_registry(db_url, Path(tmp))):
                pass  # the schema
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute(OLD_TABLE.format(serial="SERIAL"))
                conn.execute("CREATE INDEX ix_bench_rows_run_id ON bench_rows (run_id)")

                def baseline(n: int) -> tuple[float, Callable[[], Any]]:
                    def many(sql: str, rows: list[Any]) -> None:
                        with conn.transaction(), conn.cursor() as cur:
                            cur.executemany(sql, rows)

                    return old_storage(
                        lambda s: conn.execute(s).fetchall(), many, "%s, " * 4 + "%s", n
                    )

                figures += run_backend(
                    "PostgreSQL", db_url, Path(tmp) / "blobs", points, calls, baseline
                )
            with psycopg.connect(dsn.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
                conn.execute(f'DROP DATABASE "{dsn.rsplit("/", 1)[1]}"')
        if total:
            figures += hundred_million(pg, cache, total, calls)
        return figures
    finally:
        stop_postgres(pg)


def run_sqlite(points: int, calls: int) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory(prefix="bench-history-") as tmp:
        root = Path(tmp) / "reg"
        with contextlib.closing(_registry(str(root), None)):
            pass
        path = root / "registry.db"
        db = sqlite3.connect(path, isolation_level=None, timeout=60)
        db.execute(OLD_TABLE.format(serial="INTEGER"))
        db.execute("CREATE INDEX ix_bench_rows_run_id ON bench_rows (run_id)")

        def baseline(n: int) -> tuple[float, Callable[[], Any]]:
            def many(sql: str, rows: list[Any]) -> None:
                with db:
                    db.execute("BEGIN")
                    db.executemany(sql, rows)

            return old_storage(lambda s: db.execute(s).fetchall(), many, "?, ?, ?, ?, ?", n)

        try:
            return run_backend(
                "SQLite", f"sqlite:///{path}", root / "blobs", points, calls, baseline
            )
        finally:
            db.close()


def _registry(target: str, tmp: Path | None) -> Any:
    import modelreg
    from modelreg.local import LocalRegistry

    if tmp is None:
        return modelreg.connect(target, actor="bench")
    return LocalRegistry(db_url=target, blobs=_blob_store(tmp / "blobs"), actor="bench")


# -- the registry of 100M points ------------------------------------------------------------


def hundred_million(pg: Any, cache: Path, total: int, calls: int) -> list[dict[str, Any]]:
    """Load (once) runs holding ``total`` points; time a 10M-point run's chart among them and
    MLflow's search of the runs ordered by their latest loss."""
    import httpx

    marker = cache / f"points-{total}.json"
    db_url = pg.database_url(f"points_{total}")
    blobs = cache / "blobs"
    if not marker.exists():
        built = load_points(db_url, blobs, total)
        marker.write_text(json.dumps(built))
    built = json.loads(marker.read_text())
    print(f"  {total:,} points: loaded in {built['seconds']:.0f} s,"
          f" {built['bytes'] / 2**30:.2f} GiB in the database", flush=True)  # fmt: skip
    figures = []
    time_reads(db_url, blobs, built["big_run"], calls, figures, f"PostgreSQL, {total:,} points")
    with served(db_url, blobs) as url, httpx.Client(base_url=url, timeout=120) as http:
        body = {"experiment_ids": ["0"], "order_by": ["metrics.loss ASC"], "max_results": 50}
        search = latency_ms(
            lambda: http.post("/api/2.0/mlflow/runs/search", json=body).raise_for_status(),
            calls=calls,
            warmup=2,
        )
        show_latency("server: MLflow runs/search by metrics.loss", search)
    figures.append(
        figure(
            BENCH,
            f"PostgreSQL, {total:,} points: MLflow runs/search ordered by a metric p50",
            search["p50"],
            "ms",
            target="",
            passed=None,
            note=f"p99 {search['p99']:.1f} ms",
        )
    )
    return figures


def load_points(db_url: str, blobs: Path, total: int) -> dict[str, Any]:
    """Runs of 10M points (5, or fewer for a smaller total) and of 1M (two keys), made with
    ``metric_blocks`` in blocks of 100,000 and COPY'd in."""
    import numpy as np
    import psycopg

    from modelreg import metric_blocks
    from modelreg.local import LocalRegistry
    from modelreg.timestamps import from_ms

    started = time.perf_counter()
    dsn = db_url.replace("postgresql+psycopg://", "postgresql://")
    name = dsn.rsplit("/", 1)[1]
    with psycopg.connect(dsn.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    big = min(5, total // 10_000_000)
    shapes = [[("loss", 10_000_000)]] * big
    shapes += [[("loss", 500_000), ("accuracy", 500_000)]] * (
        (total - big * 10_000_000) // 1_000_000
    )
    runs = []
    with LocalRegistry(db_url=db_url, blobs=_blob_store(blobs), actor="bench") as reg:
        for i in range(len(shapes)):
            with reg.start_run(name=f"run-{i}") as run:
                pass
            runs.append(run.id)
    rng = np.random.default_rng(7)
    block_id = 0
    print(f"  loading {total:,} points over {len(runs)} runs", flush=True)
    blocks_sql = ("COPY metric_blocks (id, run_id, key, count, min_step, max_step, total, low,"
                  " high, min_ms, max_ms, ordered, points) FROM STDIN")  # fmt: skip
    levels_sql = "COPY metric_levels (block_id, level, entries) FROM STDIN"
    with psycopg.connect(dsn, autocommit=True) as conn, conn.cursor() as cur:
        latest, summaries = [], []
        with cur.copy(blocks_sql) as blocks:
            for run_id, keys in zip(runs, shapes, strict=True):
                for key, count in keys:
                    for start in range(0, count, BATCH):
                        steps = np.arange(start, start + BATCH, dtype=np.int64)
                        values = 1.0 / np.sqrt(steps + 1) + rng.normal(0, 0.01, BATCH)
                        times = T0 + steps * 10
                        block = metric_blocks.Block(key, steps, values, times)
                        block_id += 1
                        row = block.row(run_id)
                        blocks.write_row([block_id, *row.values()])
                        summaries += [(block_id, k, e) for k, e in block.levels(start)]
                    value, step, ms = block.latest()
                    latest.append((run_id, key, count, value, step, from_ms(ms, "time")))
        with cur.copy(levels_sql) as levels:  # once the blocks they refer to are in
            for summary in summaries:
                levels.write_row(summary)
        cur.execute("SELECT setval(pg_get_serial_sequence('metric_blocks', 'id'), %s)", [block_id])
        cur.executemany("INSERT INTO metric_latest VALUES (%s, %s, %s, %s, %s, %s)", latest)
        cur.execute("VACUUM ANALYZE")
        size = cur.execute("SELECT pg_database_size(current_database())").fetchone()[0]
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "bytes": size, "big_run": runs[0], "runs": len(runs)}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=("postgresql", "sqlite", "both"), default="both")
    parser.add_argument("--points", type=int, default=10_000_000, help="points of the run written")
    parser.add_argument(
        "--total", type=int, default=100_000_000, help="points of the cached registry"
    )
    parser.add_argument("--calls", type=int, default=20, help="timed calls per read")
    parser.add_argument("--cache", type=Path, default=Path("/var/tmp/modelreg-bench-metrics"))
    args = parser.parse_args(argv)
    header(f"metric history: {args.points:,} points of one run, {args.total:,} in a registry")
    figures: list[dict[str, Any]] = []
    if args.backend in ("postgresql", "both"):
        figures += run_postgres(args.cache.expanduser(), args.points, args.total, args.calls)
    if args.backend in ("sqlite", "both"):
        figures += run_sqlite(args.points, args.calls)
    emit(figures)


if __name__ == "__main__":
    main()
