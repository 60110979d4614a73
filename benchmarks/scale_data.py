"""The registry ``bench_scale.py`` times: its rows, generated from a seed (``Shape``, ``Rows``),
loaded straight into the project's tables (COPY on PostgreSQL, executemany on SQLite) and
cached in a folder keyed by the shape, with the PostgreSQL cluster that holds them
(``start_cached_postgres``). ``bench_metric_history.py`` runs its cluster the same way."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import random
import shutil
import sqlite3
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from _common import ROOT

sys.path.insert(0, str(ROOT / "tests"))
from services import Postgres, _as_postgres, free_ports, postgres_bin

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
