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
import hashlib
import io
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from _common import BIN, ROOT, emit, figure, header, latency_ms, show_latency

sys.path.insert(0, str(ROOT / "tests"))
from services import Postgres, _as_postgres, free_ports, postgres_bin

BENCH = "scale"
METRICS = ("accuracy", "f1", "precision", "recall", "loss")
NUMERIC_PARAMS = ("lr", "batch_size", "epochs", "dropout", "layers", "warmup", "seed")
TEXT_PARAMS = {
    "optimizer": ("adam", "adamw", "sgd", "lion"),
    "scheduler": ("cosine", "linear", "constant"),
    "precision": ("fp32", "bf16", "fp16"),
}
TEAMS = tuple(f"team-{n:02d}" for n in range(40))
USERS = tuple(f"user-{n:03d}" for n in range(300))
DATASETS = 2000
START = datetime(2024, 1, 1, tzinfo=UTC)
GENESIS = "0" * 64
SLOW_STATEMENT_MS = 5.0  # a statement that takes longer has its whole plan printed


@dataclass(frozen=True)
class Shape:
    versions: int
    models: int
    big: int
    big_versions: int
    seed: int

    @property
    def key(self) -> str:
        return f"v{self.versions}-m{self.models}-b{self.big}x{self.big_versions}-s{self.seed}"

    def counts(self) -> list[int]:
        """Versions per model: the big ones first, then a Pareto draw over the rest."""
        rest_models = self.models - self.big
        rest = self.versions - self.big * self.big_versions
        if rest_models < 1 or rest < rest_models:
            raise SystemExit("the shape leaves fewer versions than models outside the big ones")
        rnd = random.Random(self.seed)
        weights = [rnd.paretovariate(1.1) for _ in range(rest_models)]
        scale = (rest - rest_models) / sum(weights)
        counts = [1 + int(w * scale) for w in weights]
        counts[0] += rest - sum(counts)  # whatever rounding left over
        return [self.big_versions] * self.big + counts

    def name(self, m: int) -> str:
        return f"big-{m}" if m < self.big else f"{TEAMS[m % len(TEAMS)]}-model-{m:05d}"


def _uuid(*parts: object) -> str:
    raw = hashlib.blake2b("/".join(map(str, parts)).encode(), digest_size=16).digest()
    return str(uuid.UUID(bytes=raw, version=4))


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _hash(fields: list[Any]) -> str:
    return hashlib.sha256(json.dumps(fields, separators=(",", ":")).encode()).hexdigest()


# -- the rows -------------------------------------------------------------------------------


class Rows:
    """Every table's rows for one shape, generated model by model, the same on every run."""

    def __init__(self, shape: Shape) -> None:
        self.shape = shape
        self.counts = shape.counts()
        self.model_ids = [_uuid("model", m) for m in range(shape.models)]
        self.dataset_ids = [_uuid("dataset", d) for d in range(DATASETS)]

    def version_id(self, m: int, n: int) -> str:
        return _uuid("version", m, n)

    def created(self, m: int, n: int) -> str:
        # Models start over the first year; their versions follow, a few minutes apart.
        return _stamp(START + timedelta(seconds=m * 3000 + n * 120))

    def models(self) -> Iterator[tuple[Any, ...]]:
        for m, mid in enumerate(self.model_ids):
            stamp = self.created(m, 0)
            yield (mid, self.shape.name(m), "", stamp, USERS[m % len(USERS)], stamp)

    def datasets(self) -> Iterator[tuple[Any, ...]]:
        for d, did in enumerate(self.dataset_ids):
            digest = hashlib.sha256(f"dataset {d}".encode()).hexdigest()
            yield (did, f"data-{d:04d}", digest, f"s3://data/{d:04d}", 10**9, 100, _stamp(START))

    def per_version(self) -> Iterator[tuple[int, int, str, random.Random]]:
        for m, count in enumerate(self.counts):
            rnd = random.Random(self.shape.seed * 1_000_003 + m)
            for n in range(1, count + 1):
                yield m, n, self.version_id(m, n), rnd

    def versions(self) -> Iterator[tuple[Any, ...]]:
        for m, n, vid, _ in self.per_version():
            digest = hashlib.sha256(vid.encode()).hexdigest()
            yield (vid, self.model_ids[m], n, "", self.created(m, n), USERS[(m + n) % 300],
                   digest, 1 << 20, 1, None, "{}", "python train.py", "trainer-01", None,
                   None, None, None)  # fmt: skip

    def version_files(self) -> Iterator[tuple[Any, ...]]:
        for _, _, vid, _ in self.per_version():
            yield (vid, "model.bin", hashlib.sha256(vid.encode()).hexdigest(), 1 << 20)

    def version_metrics(self) -> Iterator[tuple[Any, ...]]:
        for _, _, vid, rnd in self.per_version():
            for key in METRICS:
                yield (vid, key, rnd.random())

    def version_params(self) -> Iterator[tuple[Any, ...]]:
        for _, _, vid, rnd in self.per_version():
            numbers = (10 ** rnd.uniform(-5, -1), rnd.choice((16, 32, 64, 128, 256)),
                       rnd.randint(1, 100), rnd.uniform(0, 0.5), rnd.randint(2, 48),
                       rnd.randint(0, 2000), rnd.randint(0, 10**6))  # fmt: skip
            for key, value in zip(NUMERIC_PARAMS, numbers, strict=True):
                yield (vid, key, repr(value), float(value))
            for key, choices in TEXT_PARAMS.items():
                yield (vid, key, rnd.choice(choices), None)

    def version_tags(self) -> Iterator[tuple[Any, ...]]:
        for m, n, vid, _ in self.per_version():
            yield (vid, "team", TEAMS[m % len(TEAMS)])
            yield (vid, "stage", ("dev", "candidate", "reviewed")[n % 3])

    def version_datasets(self) -> Iterator[tuple[Any, ...]]:
        for m, n, vid, _ in self.per_version():
            yield (vid, self.dataset_ids[(m * 7 + n // 50) % DATASETS], "training")

    def version_parents(self) -> Iterator[tuple[Any, ...]]:
        for m, n, vid, _ in self.per_version():
            if n > 1 and n % 2 == 0:
                yield (vid, self.version_id(m, n - 1))

    def alias_rows(self) -> Iterator[tuple[str, int, str, str]]:
        """(alias, model, version id, moved at) for ``production`` and ``staging``."""
        for m, count in enumerate(self.counts):
            moved = self.created(m, count)
            yield "production", m, self.version_id(m, max(1, count // 2)), moved
            yield "staging", m, self.version_id(m, count), moved

    def aliases(self) -> Iterator[tuple[Any, ...]]:
        for alias, m, vid, moved in self.alias_rows():
            yield (self.model_ids[m], alias, vid, moved, USERS[m % len(USERS)])

    def alias_events(self) -> Iterator[tuple[Any, ...]]:
        for i, (alias, m, vid, moved) in enumerate(self.alias_rows(), start=1):
            yield (i, self.model_ids[m], alias, vid, moved, USERS[m % len(USERS)])

    def audit_events(self) -> Iterator[tuple[Any, ...]]:
        """A model.create event before each model's versions, a version.create per version,
        chained as audit.append chains them; the head is in ``self.head`` afterwards."""
        prev, seq = GENESIS, 0
        for m, count in enumerate(self.counts):
            name, mid = self.shape.name(m), self.model_ids[m]
            actor = USERS[m % len(USERS)]
            seq += 1
            after = _canonical({"name": name})
            fields = [seq, self.created(m, 0), actor, "model.create", "model", mid, name, None,
                      after, prev]  # fmt: skip
            prev = _hash(fields)
            yield (*fields, prev)
            for n in range(1, count + 1):
                vid = self.version_id(m, n)
                seq += 1
                ref, digest = f"{name}/{n}", hashlib.sha256(vid.encode()).hexdigest()
                after = _canonical({"ref": ref, "manifest_digest": digest})
                fields = [seq, self.created(m, n), USERS[(m + n) % 300], "version.create",
                          "version", vid, ref, None, after, prev]  # fmt: skip
                prev = _hash(fields)
                yield (*fields, prev)
        self.head = (seq, prev)


# Loaded in this order into the schema of LOADED_AT; each row lists its table's columns in
# the order that schema has them. The migrations after it then run on the loaded database,
# timed: the summaries they add are counted from these rows.
TABLES = ("models", "datasets", "versions", "version_files", "version_metrics", "version_params",
          "version_tags", "version_datasets", "version_parents", "aliases", "alias_events",
          "audit_events")  # fmt: skip
LOADED_AT = "0010"


# -- building and caching -------------------------------------------------------------------


def start_cached_postgres(folder: Path) -> Postgres:
    """A PostgreSQL server on ``folder/data`` (made by initdb if missing), on a free port.

    Sized for the machine as docs/operations.md suggests: shared_buffers 2 GB, work_mem 64 MB.
    fsync is off: this is a benchmark's scratch cluster, rebuilt with --rebuild.
    """
    bin_dir = postgres_bin()
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
    if not (folder / "data" / "PG_VERSION").exists():
        _as_postgres(bin_dir / "initdb", "-D", folder / "data", "-A", "trust", "-U", "postgres",
                     "-E", "UTF8", "--no-sync")  # fmt: skip
    port = free_ports(1)[0]
    options = (
        f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        " -c synchronous_commit=off -c full_page_writes=off -c shared_buffers=2GB"
        " -c work_mem=64MB -c maintenance_work_mem=1GB -c max_wal_size=8GB"
        " -c effective_cache_size=16GB -c random_page_cost=1.1 -c max_connections=100"
    )
    _as_postgres(bin_dir / "pg_ctl", "-D", folder / "data", "-l", folder / "log", "-w", "start",
                 "-o", options)  # fmt: skip
    return Postgres(folder, port, bin_dir)


def stop_postgres(pg: Postgres) -> None:
    """Stop the server, keeping its data (Postgres.stop would delete the folder)."""
    _as_postgres(pg.bin_dir / "pg_ctl", "-D", pg.root / "data", "-m", "fast", "-w", "stop")


def folder_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _copy_text(value: Any) -> str:
    if value is None:
        return "\\N"
    if isinstance(value, str):
        return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")
    return repr(value) if isinstance(value, float) else str(value)


def load_postgres(url: str, rows: Rows, columns: dict[str, list[str]]) -> dict[str, float]:
    """COPY every table's rows in; return seconds per table."""
    import psycopg

    took: dict[str, float] = {}
    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn, autocommit=True) as conn:
        for table in TABLES:
            start = time.perf_counter()
            cols = ", ".join(f'"{c}"' for c in columns[table])
            with conn.cursor() as cur, cur.copy(f"COPY {table} ({cols}) FROM STDIN") as copy:
                buf = io.StringIO()
                for i, row in enumerate(getattr(rows, table)()):
                    buf.write("\t".join(map(_copy_text, row)))
                    buf.write("\n")
                    if i % 50_000 == 49_999:
                        copy.write(buf.getvalue())
                        buf = io.StringIO()
                copy.write(buf.getvalue())
            took[table] = time.perf_counter() - start
            print(f"    {table:<18} {took[table]:7.1f} s", flush=True)
        seq, head = rows.head
        conn.execute("UPDATE audit_head SET seq = %s, hash = %s WHERE id = 1", (seq, head))
        conn.execute("SELECT setval(pg_get_serial_sequence('alias_events', 'id'), "
                     "(SELECT max(id) FROM alias_events))")  # fmt: skip
        start = time.perf_counter()
        conn.execute("VACUUM ANALYZE")
        took["vacuum analyze"] = time.perf_counter() - start
    return took


def load_sqlite(path: Path, rows: Rows, columns: dict[str, list[str]]) -> dict[str, float]:
    took: dict[str, float] = {}
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = OFF")
    db.execute("BEGIN")
    for table in TABLES:
        start = time.perf_counter()
        names = columns[table]
        marks = ", ".join("?" * len(names))
        cols = ", ".join(f'"{c}"' for c in names)
        db.executemany(f"INSERT INTO {table} ({cols}) VALUES ({marks})", getattr(rows, table)())
        took[table] = time.perf_counter() - start
        print(f"    {table:<18} {took[table]:7.1f} s", flush=True)
    seq, head = rows.head
    db.execute("UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1", (seq, head))
    db.execute("COMMIT")
    start = time.perf_counter()
    db.execute("ANALYZE")
    took["analyze"] = time.perf_counter() - start
    db.close()
    return took


def build(kind: str, folder: Path, shape: Shape, url: str | None) -> None:
    import sqlalchemy as sa
    from alembic import command

    import modelreg
    from modelreg import db

    rows = Rows(shape)
    print(f"  building the {kind} registry ({shape.key}) in {folder}", flush=True)
    start = time.perf_counter()
    target = url if url is not None else str(folder / "registry")
    with contextlib.closing(modelreg.connect(target, actor="bench")) as reg:
        engine = reg.db.engine  # type: ignore[attr-defined]
        command.downgrade(db.alembic_config(engine), LOADED_AT)
        inspector = sa.inspect(engine)
        columns = {t: [c["name"] for c in inspector.get_columns(t)] for t in TABLES}
    if url is not None:
        took = load_postgres(url, rows, columns)
    else:
        took = load_sqlite(folder / "registry" / "registry.db", rows, columns)
    took["migrations"] = migrate(url or f"sqlite:///{folder / 'registry' / 'registry.db'}")
    total = time.perf_counter() - start
    size = folder_size(folder)
    (folder / "built.json").write_text(
        json.dumps({"seconds": total, "bytes": size, "tables": took}, indent=1)
    )
    print(f"  built in {total:.0f} s, {size / 2**30:.1f} GiB on disk", flush=True)


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


def migrate(db_url: str) -> float:
    """Bring the database to the current schema; print and return the seconds it took."""
    from modelreg import db

    database = db.Database(db_url)
    try:
        before = database.current_revision()
        if before == db.HEAD_REVISION:
            return 0.0
        start = time.perf_counter()
        database.migrate()
        took = time.perf_counter() - start
        print(f"  migrated from {before} to {db.HEAD_REVISION} in {took:.1f} s", flush=True)
        return took
    finally:
        database.dispose()


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
