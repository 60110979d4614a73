"""Company scale: a million versions over 10,000 models, on PostgreSQL and on SQLite.

Targets (issue 18), p50 through the SDK, the same answers through ``modelreg server``:

    best version by a metric inside one model          <= 10 ms
    global search, metrics.accuracy > 0.999 by f1      <= 50 ms
    global search with OR across params and metrics     <= 50 ms
    models(), first page of 50                          <= 20 ms
    alias resolution, get("big-0@production")           <= 2 ms
    web UI home page, model page of a 100k-version model <= 150 ms

The registry is populated straight into the project's tables (COPY on PostgreSQL, executemany
on SQLite), after ``modelreg`` created them with its migrations. The shape, fixed by ``--seed``:

- ``--models`` models (default 10,000). ``--big`` of them (default 5, ``big-0`` ...) hold
  ``--big-versions`` versions each (default 100,000); the rest share what is left of
  ``--versions`` (default 1,000,000) by a Pareto draw: most hold a handful, a few thousands.
- per version: 1 file, 5 metrics (accuracy, f1, precision, recall, loss, uniform in [0, 1)),
  10 params (lr, batch_size, epochs, dropout, layers, warmup, seed, optimizer, scheduler,
  precision; 7 numeric), 2 tags (team, stage), the training dataset (one of 2,000), the
  version before it as parent (every other version), one audit event (a valid hash chain);
- per model: a ``model.create`` audit event, aliases ``production`` (a version near the
  middle) and ``staging`` (the latest), each with its alias event.

The database is built once and cached under ``--cache`` (default
``/var/tmp/modelreg-bench-scale``, which the postgres user can reach), keyed by the shape:
a PostgreSQL cluster (started on a free port for each run, stopped after) and a SQLite
registry directory. The first run prints
the load time and the size on disk; ``--rebuild`` builds again.

Every case prints p50/p99 through the SDK, through the server (``modelreg server`` on the
same database, httpx on loopback), and of hand-written SQL for the same answer (the
baseline, through psycopg or sqlite3); then the plan of each statement the SDK ran
(PostgreSQL: EXPLAIN ANALYZE, its top lines and time; SQLite: EXPLAIN QUERY PLAN).

    .venv/bin/python benchmarks/bench_scale.py                       # PostgreSQL and SQLite
    .venv/bin/python benchmarks/bench_scale.py --backend postgresql --calls 50
    .venv/bin/python benchmarks/bench_scale.py --versions 100000 --models 1000 --big 2 \\
        --big-versions 20000                                          # a smaller shape

Figures are reported, never asserted: the machine is shared and noisy.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _common import BIN, ROOT, emit, figure, header, latency_ms, show_latency

sys.path.insert(0, str(ROOT / "tests"))
from scale_data import Shape, build, folder_size, migrate, start_cached_postgres, stop_postgres

from services import free_ports

BENCH = "scale"
SLOW_STATEMENT_MS = 5.0  # a statement that takes longer has its whole plan printed


# -- timing ---------------------------------------------------------------------------------


@dataclass
class Case:
    label: str
    target_ms: float
    sdk: Callable[[Any], object]
    api: tuple[str, dict[str, Any]] | None  # path and query of the same answer over HTTP
    sql: str  # the hand-written baseline, {model} and {alias_model} filled in


def cases(shape: Shape) -> list[Case]:
    small = shape.name(shape.big + 1)
    best = 'search("", model={m!r}, order_by="metrics.accuracy desc", limit=1)'
    best_sql = (
        "SELECT v.id FROM version_metrics vm JOIN versions v ON v.id = vm.version_id"
        " WHERE vm.key = 'accuracy' AND v.model_id = '{model}' AND v.deleted_at IS NULL"
        " ORDER BY vm.value DESC LIMIT 1"
    )
    above = "metrics.accuracy > 0.999"
    either = "params.lr < 0.0000101 or metrics.f1 > 0.99999"
    return [
        Case(
            best.format(m="big-0"),
            10,
            lambda reg: reg.search("", model="big-0", order_by="metrics.accuracy desc", limit=1),
            ("/api/v1/search", {"model": "big-0", "order_by": "metrics.accuracy desc", "limit": 1}),
            best_sql.replace("{model}", "{big}"),
        ),
        Case(
            best.format(m=small),
            10,
            lambda reg: reg.search("", model=small, order_by="metrics.accuracy desc", limit=1),
            ("/api/v1/search", {"model": small, "order_by": "metrics.accuracy desc", "limit": 1}),
            best_sql.replace("{model}", "{small}"),
        ),
        Case(
            f"search({above!r}, order_by='metrics.f1 desc', limit=10)",
            50,
            lambda reg: reg.search(above, order_by="metrics.f1 desc", limit=10),
            ("/api/v1/search", {"filter": above, "order_by": "metrics.f1 desc", "limit": 10}),
            "SELECT f.version_id FROM version_metrics f JOIN versions v ON v.id = f.version_id"
            " WHERE f.key = 'f1' AND v.deleted_at IS NULL AND EXISTS (SELECT 1 FROM"
            " version_metrics a WHERE a.version_id = f.version_id AND a.key = 'accuracy'"
            " AND a.value > 0.999) ORDER BY f.value DESC LIMIT 10",
        ),
        Case(
            f"search({either!r}, limit=20)",
            50,
            lambda reg: reg.search(either, limit=20),
            ("/api/v1/search", {"filter": either, "limit": 20}),
            "SELECT id FROM versions v WHERE deleted_at IS NULL AND id IN (SELECT version_id"
            " FROM version_params WHERE key = 'lr' AND value_num < 0.0000101 UNION SELECT"
            " version_id FROM version_metrics WHERE key = 'f1' AND value > 0.99999)"
            " ORDER BY created_at DESC, number DESC LIMIT 20",
        ),
        Case(
            "models(limit=50)",
            20,
            lambda reg: reg.models(limit=50),
            ("/api/v1/models", {"limit": 50}),
            "SELECT m.id, m.name, m.version_count, m.latest_number FROM models m"
            " ORDER BY m.name LIMIT 50",
        ),
        Case(
            'get("big-0@production", lineage=False)',
            2,
            lambda reg: reg.get("big-0@production", lineage=False),
            ("/api/v1/versions/big-0@production", {"lineage": "false"}),
            "SELECT v.id FROM aliases a JOIN models m ON m.id = a.model_id JOIN versions v"
            " ON v.id = a.version_id WHERE m.name = 'big-0' AND a.alias = 'production'",
        ),
        Case(
            'versions("big-0", limit=50)',
            20,
            lambda reg: reg.versions("big-0", limit=50),
            ("/api/v1/models/big-0/versions", {"limit": 50}),
            "SELECT v.id FROM versions v WHERE v.model_id = '{big}' AND v.deleted_at IS NULL"
            " ORDER BY v.number DESC LIMIT 50",
        ),
    ]


PAGES = [("/", 150.0), ("/models/big-0", 150.0), ("/models/big-0/versions/{middle}", 150.0)]


@contextlib.contextmanager
def statements(reg: Any) -> Iterator[list[tuple[str, Any]]]:
    """The SQL statements (and parameters) the registry runs inside the block."""
    from sqlalchemy import event

    seen: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, sql: str, params: Any, context: Any, many: bool) -> None:
        if not sql.lstrip().upper().startswith(("BEGIN", "COMMIT", "ROLLBACK", "SET", "SHOW")):
            seen.append((sql, params))

    event.listen(reg.db.engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(reg.db.engine, "before_cursor_execute", record)


def show_plans(reg: Any, run: Callable[[], object]) -> None:
    """Each statement ``run`` sends, with its plan: EXPLAIN ANALYZE on PostgreSQL (the plan's
    first lines and its execution time), EXPLAIN QUERY PLAN on SQLite."""
    with statements(reg) as seen:
        run()
    postgres = reg.db.dialect == "postgresql"
    for sql, params in seen:
        one_line = " ".join(sql.split())
        print(f"      sql: {one_line[:150]}{' ...' if len(one_line) > 150 else ''}")
        prefix = "EXPLAIN (ANALYZE, BUFFERS) " if postgres else "EXPLAIN QUERY PLAN "
        with reg.db.engine.connect() as conn:
            plan = conn.exec_driver_sql(prefix + sql, params).all()
        lines = [str(r[0]) for r in plan] if postgres else [str(r[3]) for r in plan]
        shown = lines
        if postgres:  # a fast statement's plan in brief, a slow one's whole
            took = float(lines[-1].split()[-2]) if lines[-1].startswith("Execution") else 0
            if took < SLOW_STATEMENT_MS:
                shown = lines[:3] + lines[-1:]
        for line in shown:
            print(f"        {line[:140]}")


def percentiles(samples: dict[str, float]) -> str:
    return f"p50 {samples['p50']:.2f} ms, p99 {samples['p99']:.2f} ms"


def serve(db_url: str, blobs: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_ports(1)[0]
    env = dict(os.environ)
    proc = subprocess.Popen(
        [
            str(BIN / "modelreg"),
            "server",
            "--db",
            db_url,
            "--blobs",
            str(blobs),
            "--port",
            str(port),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    import httpx

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                return proc, url
        if proc.poll() is not None:
            raise SystemExit(f"modelreg server exited: {proc.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]
        time.sleep(0.2)
    raise SystemExit("modelreg server did not answer /healthz within 120 s")


def time_case(
    case: Case, reg: Any, http: Any, sql: str, baseline: Callable[[str], Any], calls: int
) -> dict[str, Any]:
    print(f"  {case.label}", flush=True)
    sdk = latency_ms(lambda: case.sdk(reg), calls=calls, warmup=3)
    show_latency("SDK", sdk)
    api_ms: dict[str, float] | None = None
    if case.api is not None:
        path, params = case.api
        api_ms = latency_ms(
            lambda: http.get(path, params=params).raise_for_status(), calls=calls, warmup=3
        )
        show_latency(f"server: GET {path}", api_ms)
    base = latency_ms(lambda: baseline(sql), calls=calls, warmup=3)
    show_latency("baseline: hand-written SQL", base)
    show_plans(reg, lambda: case.sdk(reg))
    return figure(
        BENCH,
        case.label + " p50",
        sdk["p50"],
        "ms",
        target=f"<= {case.target_ms:g} ms",
        passed=sdk["p50"] <= case.target_ms,
        baseline=f"SQL {percentiles(base)}",
        note=f"SDK p99 {sdk['p99']:.1f} ms" + (f"; server {percentiles(api_ms)}" if api_ms else ""),
    )


def time_page(page: str, target: float, http: Any, calls: int) -> dict[str, Any]:
    print(f"  web UI {page}", flush=True)
    timed = latency_ms(lambda: http.get(page).raise_for_status(), calls=calls, warmup=2)
    show_latency(f"server: GET {page}", timed)
    return figure(
        BENCH,
        f"web UI {page} p50",
        timed["p50"],
        "ms",
        target=f"<= {target:g} ms",
        passed=timed["p50"] <= target,
        note=f"p99 {timed['p99']:.1f} ms",
    )


DEEP_PAGE = "MLflow model-versions/search, a page 90% of the way through big-0"


def time_deep_page(shape: Shape, http: Any, calls: int) -> dict[str, Any]:
    """A page of 100 of ``big-0``'s versions far into them through MLflow's search: by the
    token the page before gave (the last row's sort values: among one model's versions, its
    number), beside a token that holds only the offset (the baseline: OFFSET reads every row
    before)."""
    from modelreg.mlflow_filter import page_token

    print(f"  {DEEP_PAGE}", flush=True)
    depth = shape.big_versions * 9 // 10
    path = "/api/2.0/mlflow/model-versions/search"
    query = {"filter": f"name = '{shape.name(0)}'", "max_results": 100}
    keyset = {
        **query,
        "page_token": page_token(depth, [shape.big_versions - depth + 1]),
    }
    offset = {**query, "page_token": page_token(depth)}
    assert http.get(path, params=keyset).json()["model_versions"][0]["version"] == str(
        shape.big_versions - depth
    )
    assert http.get(path, params=offset).json()["model_versions"][0]["version"] == str(
        shape.big_versions - depth
    )
    by_key = latency_ms(
        lambda: http.get(path, params=keyset).raise_for_status(), calls=calls, warmup=2
    )
    show_latency(
        f"server: the page by its token (after version {shape.big_versions - depth + 1})", by_key
    )
    by_offset = latency_ms(
        lambda: http.get(path, params=offset).raise_for_status(), calls=calls, warmup=2
    )
    show_latency(f"baseline: the page by OFFSET {depth:,}", by_offset)
    return figure(
        BENCH,
        DEEP_PAGE + " p50",
        by_key["p50"],
        "ms",
        target="<= 50 ms",
        passed=by_key["p50"] <= 50,
        baseline=f"by offset {percentiles(by_offset)}",
        note=f"p99 {by_key['p99']:.1f} ms",
    )


def time_audit(reg: Any) -> list[dict[str, Any]]:
    """``audit verify --full`` once (every event re-hashed), then the check from its head."""
    print("  audit verify", flush=True)
    start = time.perf_counter()
    full = reg.verify_audit(full=True)
    full_s = time.perf_counter() - start
    start = time.perf_counter()
    since = reg.verify_audit()
    since_ms = (time.perf_counter() - start) * 1000
    assert full.ok, full
    assert since.ok, since
    rate = full.events / full_s
    print(f"  --full: {full.events:,} events in {full_s:.1f} s ({rate:,.0f} events/s);"
          f" from the last sound event: {since_ms:.1f} ms")  # fmt: skip
    return [
        figure(
            BENCH,
            "audit verify --full",
            full_s,
            "s",
            target="",
            passed=None,
            note=f"{full.events:,} events, {rate:,.0f} events/s",
        ),
        figure(
            BENCH,
            "audit verify (from the last sound event)",
            since_ms,
            "ms",
            target="",
            passed=None,
            note="no new events since the full check",
        ),
    ]


def time_backend(
    kind: str,
    db_url: str,
    blobs: Path,
    shape: Shape,
    calls: int,
    baseline: Callable[[str], Any],
    only: str,
) -> list[dict[str, Any]]:
    import httpx

    from modelreg.blobs import LocalBlobStore
    from modelreg.local import LocalRegistry

    migrate(db_url)
    reg = LocalRegistry(db_url=db_url, blobs=LocalBlobStore(blobs), actor="bench")
    ids = {}
    for key, name in (("big", shape.name(0)), ("small", shape.name(shape.big + 1))):
        found = baseline(f"SELECT id FROM models WHERE name = '{name}'")
        ids[key] = found[0][0]
    proc, url = serve(db_url, blobs)
    http = httpx.Client(base_url=url, timeout=120)
    try:
        figures = [
            time_case(case, reg, http, case.sql.format(**ids), baseline, calls)
            for case in cases(shape)
            if only in case.label
        ]
        if only in "audit verify":
            figures += time_audit(reg)
        pages = [(p.format(middle=shape.big_versions // 2), t) for p, t in PAGES]
        pages = [(p, t) for p, t in pages if only in f"web UI {p}"]
        figures += [time_page(page, target, http, max(5, calls // 3)) for page, target in pages]
        if only in DEEP_PAGE:
            figures.append(time_deep_page(shape, http, max(5, calls // 3)))
    finally:
        http.close()
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
        reg.close()
    for f in figures:
        f["figure"] = f"{kind}: {f['figure']}"
    return figures


def run_postgres(
    cache: Path, shape: Shape, calls: int, rebuild: bool, only: str
) -> list[dict[str, Any]]:
    import psycopg

    folder = cache / f"postgresql-{shape.key}"
    if rebuild and folder.exists():
        shutil.rmtree(folder)
    built = (folder / "built.json").exists()
    pg = start_cached_postgres(folder)
    try:
        url = pg.database_url("postgres")
        if not built:
            build("postgresql", folder, shape, url)
        print(f"  PostgreSQL: {json.loads((folder / 'built.json').read_text())['seconds']:.0f} s"
              f" to load, {folder_size(folder) / 2**30:.1f} GiB on disk")  # fmt: skip
        blobs = folder / "blobs"
        blobs.mkdir(exist_ok=True)
        dsn = url.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(dsn, autocommit=True) as conn:

            def baseline(sql: str) -> list[Any]:
                return conn.execute(sql).fetchall()

            return time_backend("postgresql", url, blobs, shape, calls, baseline, only)
    finally:
        stop_postgres(pg)


def run_sqlite(
    cache: Path, shape: Shape, calls: int, rebuild: bool, only: str
) -> list[dict[str, Any]]:
    folder = cache / f"sqlite-{shape.key}"
    if rebuild and folder.exists():
        shutil.rmtree(folder)
    if not (folder / "built.json").exists():
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        build("sqlite", folder, shape, None)
    print(f"  SQLite: {json.loads((folder / 'built.json').read_text())['seconds']:.0f} s to load,"
          f" {folder_size(folder) / 2**30:.1f} GiB on disk")  # fmt: skip
    path = folder / "registry" / "registry.db"
    db = sqlite3.connect(path)

    def baseline(sql: str) -> list[Any]:
        return db.execute(sql).fetchall()

    try:
        return time_backend(
            "sqlite",
            f"sqlite:///{path}",
            folder / "registry" / "blobs",
            shape,
            calls,
            baseline,
            only,
        )
    finally:
        db.close()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=("postgresql", "sqlite", "both"), default="both")
    parser.add_argument("--versions", type=int, default=1_000_000)
    parser.add_argument("--models", type=int, default=10_000)
    parser.add_argument("--big", type=int, default=5, help="models with --big-versions each")
    parser.add_argument("--big-versions", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--calls", type=int, default=30, help="timed calls per case")
    parser.add_argument("--cache", type=Path, default=Path("/var/tmp/modelreg-bench-scale"))
    parser.add_argument("--rebuild", action="store_true", help="build the databases again")
    parser.add_argument("--only", default="", help="time only the cases whose label has this")
    args = parser.parse_args(argv)
    shape = Shape(args.versions, args.models, args.big, args.big_versions, args.seed)
    cache = args.cache.expanduser()
    header(f"company scale: {shape.versions:,} versions over {shape.models:,} models")
    figures: list[dict[str, Any]] = []
    if args.backend in ("postgresql", "both"):
        print("PostgreSQL", flush=True)
        figures += run_postgres(cache, shape, args.calls, args.rebuild, args.only)
    if args.backend in ("sqlite", "both"):
        print("SQLite", flush=True)
        figures += run_sqlite(cache, shape, args.calls, args.rebuild, args.only)
    emit(figures)


if __name__ == "__main__":
    main()
