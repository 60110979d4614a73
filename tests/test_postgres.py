"""The registry on PostgreSQL (a real server): the same store as on SQLite, gapless numbers
under concurrent writers in many processes, and one migration when replicas start together."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa

import modelreg
from modelreg import db, runs, versions
from modelreg.backends import MissingBlobStore, database_url
from modelreg.blobs import LocalBlobStore
from modelreg.errors import InvalidInput
from modelreg.local import LocalRegistry

WORKERS = 8
VERSIONS_EACH = 10


@pytest.fixture
def url(postgres) -> str:
    return postgres.new_database()


@pytest.fixture
def reg(url, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with LocalRegistry(db_url=url, blobs=LocalBlobStore(tmp_path / "blobs"), actor="t") as r:
        yield r


def plain(url: str) -> str:
    """The URL as a person writes it: ``postgresql://``, no driver."""
    return url.replace("postgresql+psycopg://", "postgresql://")


def test_the_registry_plans_searches_for_their_values_without_jit(url):
    """No JIT or parallel workers (their start costs more than these index walks); a search
    run many times keeps plans made for its parameters (a generic one chose a 500 ms plan for
    a 10 ms search inside one big model); options in the URL still apply."""
    names = ("jit", "max_parallel_workers_per_gather", "statement_timeout", "plan_cache_mode")
    database = db.Database(url + "?options=-c%20statement_timeout%3D7000")
    try:
        with database.engine.connect() as conn:
            shown = [conn.exec_driver_sql(f"SHOW {name}").scalar() for name in names]
            conn.rollback()
            with conn.begin():
                database.plan_each(conn)
                planned = conn.exec_driver_sql("SHOW plan_cache_mode").scalar()
            after = conn.exec_driver_sql("SHOW plan_cache_mode").scalar()
    finally:
        database.dispose()
    assert shown == ["off", "0", "7s", "auto"]
    assert (planned, after) == ("force_custom_plan", "auto")  # for that transaction only


def test_a_registry_on_postgres_registers_finds_and_searches(reg, tmp_path):
    Path("m.bin").write_bytes(b"weights")
    first = reg.register("churn", "m.bin", metrics={"auc": 0.81}, params={"depth": 3})
    Path("m.bin").write_bytes(b"better weights")
    second = reg.register("churn", "m.bin", metrics={"auc": 0.87}, tags={"team": "ml"})
    reg.set_alias("churn", "production", "churn/2")

    assert reg.db.dialect == "postgresql"
    assert (first.number, second.number) == (1, 2)
    assert reg.get("churn@production").id == second.id
    assert [v.number for v in reg.search("metrics.auc > 0.85")] == [2]
    assert [v.number for v in reg.search("params.depth = '3'", model="churn")] == [1]
    assert [m.name for m in reg.models()] == ["churn"]
    assert reg.verify_audit().ok
    out = reg.pull("churn/1", tmp_path / "out")
    assert (out / "m.bin").read_bytes() == b"weights"


def test_connect_opens_a_postgres_url_with_the_blobs_in_modelreg_blobs(url, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MODELREG_BLOBS", str(tmp_path / "blobs"))
    Path("m.bin").write_bytes(b"x")
    for spelling in (plain(url), plain(url).replace("postgresql://", "postgres://"), url):
        with modelreg.connect(spelling) as reg:
            assert reg.db.url == url
            reg.register("churn", "m.bin")
    with modelreg.connect(url) as reg:
        assert [v.number for v in reg.versions("churn")] == [3, 2, 1]
        assert list(LocalBlobStore(tmp_path / "blobs")) == [reg.get("churn/1").files[0].digest]


def test_without_modelreg_blobs_the_database_works_and_blobs_are_refused_clearly(
    url, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MODELREG_BLOBS", raising=False)
    Path("m.bin").write_bytes(b"x")
    with modelreg.connect(plain(url)) as reg:
        assert isinstance(reg.blobs.inner, MissingBlobStore)
        assert reg.models() == []
        assert reg.verify_audit().ok
        with pytest.raises(InvalidInput, match="without a blob store: set MODELREG_BLOBS"):
            reg.register("churn", "m.bin")
        assert reg.models() == []


def test_every_migration_runs_on_postgres_and_ends_at_the_tables_of_schema_py(postgres):
    """From an empty database, and from the first revision with data in it."""
    from alembic import command
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from modelreg import schema

    fresh = db.Database(postgres.new_database())
    fresh.migrate()
    with fresh.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), schema.metadata) == []
    fresh.dispose()

    old = db.Database(postgres.new_database())
    command.upgrade(db.alembic_config(old.engine), "0001")
    with old.engine.begin() as conn:
        conn.execute(
            schema.models.insert().values(
                id="m1", name="old", description="", created_at="2026-01-01T00:00:00.000000Z",
                created_by="someone", updated_at="2026-01-01T00:00:00.000000Z",
            )
        )  # fmt: skip
    old.migrate()
    assert old.current_revision() == db.HEAD_REVISION
    with old.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT name FROM models")).scalars().all() == ["old"]
    old.dispose()


def test_an_unreachable_database_is_refused_naming_it_without_its_password(postgres):
    port = postgres.port + 1 if postgres.port < 65535 else postgres.port - 1
    with pytest.raises(InvalidInput, match="cannot reach the database") as caught:
        LocalRegistry(
            db_url=f"postgresql://me:s3cret@127.0.0.1:{port}/none", blobs=LocalBlobStore("b")
        )
    assert "s3cret" not in str(caught.value)


def test_database_urls_are_normalised_and_paths_become_sqlite(tmp_path):
    assert database_url("postgres://u@h/d") == "postgresql+psycopg://u@h/d"
    assert database_url("postgresql://u:p@h:5/d") == "postgresql+psycopg://u:p@h:5/d"
    assert database_url("postgresql+psycopg://h/d") == "postgresql+psycopg://h/d"
    assert database_url("sqlite:////srv/r.db") == "sqlite:////srv/r.db"
    assert database_url(tmp_path / "r.db") == f"sqlite:///{tmp_path / 'r.db'}"
    for bad in ["", "mysql://h/d", str(tmp_path)]:
        with pytest.raises(InvalidInput):
            database_url(bad)
    with pytest.raises(InvalidInput, match="not a database URL"):
        db.Database("nosuchdialect://h/d")


def test_connect_opens_a_sqlite_url_too(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MODELREG_BLOBS", str(tmp_path / "blobs"))
    Path("m.bin").write_bytes(b"x")
    with modelreg.connect(f"sqlite:///{tmp_path / 'r.db'}") as reg:
        assert reg.register("churn", "m.bin").number == 1
    assert (tmp_path / "r.db.migrate.lock").exists()  # migrations lock beside the file
    with modelreg.connect(f"sqlite:///{tmp_path / 'r.db'}") as reg:
        assert reg.pull("churn/1", tmp_path / "out").joinpath("m.bin").read_bytes() == b"x"


def test_a_read_sees_one_snapshot_while_another_client_writes(reg):
    """verify_audit reads the head, then the events: under READ COMMITTED an event committed
    in between looked like an inserted one, a false tamper alarm."""
    Path("m.bin").write_bytes(b"x")
    reg.register("churn", "m.bin")
    stop = threading.Event()

    def tag_forever() -> None:
        i = 0
        while not stop.is_set():
            reg.set_tag("churn/1", "step", str(i))
            i += 1

    writer = threading.Thread(target=tag_forever)
    writer.start()
    try:
        results = [reg.verify_audit() for _ in range(150)]
    finally:
        stop.set()
        writer.join()
    assert [r.reason for r in results if not r.ok] == []
    assert results[-1].events > results[0].events, "the writer did not run meanwhile"


def test_writers_take_turns_so_each_alias_move_records_the_target_before_it(url, reg):
    """Rules read, then write: an alias move audits the target it replaces. Under READ
    COMMITTED, concurrent moves each recorded a target that another had already replaced."""
    for i in range(4):
        Path("m.bin").write_text(f"weights {i}")
        reg.register("churn", "m.bin")
    others = [LocalRegistry(db_url=url, blobs=reg.blobs, actor=f"mover-{i}") for i in range(4)]

    def move(other: LocalRegistry, start: int) -> None:
        for j in range(25):
            other.set_alias("churn", "production", f"churn/{(start + j) % 4 + 1}")

    threads = [threading.Thread(target=move, args=(o, i)) for i, o in enumerate(others)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for other in others:
        other.close()

    moves = list(reversed(reg.audit(action="alias.set", limit=1000)))
    assert len(moves) > 50
    previous = None
    for event in moves:
        assert (event.before or {}).get("version") == previous, event
        previous = event.after["version"]
    assert reg.get("churn@production").ref == previous


def test_a_write_retries_a_unique_violation_from_a_concurrent_writer(reg):
    """Two writers taking the same next number: the loser's unique violation (23505, as
    psycopg 3 reports it) is retried with fresh reads, not raised."""
    Path("m.bin").write_bytes(b"v1")
    version = reg.register("churn", "m.bin")
    attempts = []

    def write(conn):
        attempts.append(1)
        if len(attempts) == 1:  # a row that is already there, as a concurrent commit leaves it
            conn.exec_driver_sql(
                "INSERT INTO versions SELECT * FROM versions WHERE id = %(id)s", {"id": version.id}
            )
        return "done"

    assert reg.db.write(write) == "done"
    assert len(attempts) == 2


def test_connections_postgres_dropped_are_replaced_without_an_error(url, reg):
    """A restart or a failover drops the pool's connections: the next read or write, at
    once or after they sat idle, runs on new ones rather than failing."""
    Path("m.bin").write_bytes(b"x")
    reg.register("churn", "m.bin")
    reg.set_alias("churn", "production", "churn/1")

    def drop_every_connection() -> int:
        with psycopg.connect(plain(url), autocommit=True) as admin:
            dropped = admin.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            ).fetchone()
        assert dropped is not None
        return int(dropped[0])

    assert drop_every_connection() >= 1
    assert reg.get("churn@production", lineage=False).number == 1
    assert drop_every_connection() >= 1
    reg.set_tag("churn/1", "after", "drop")
    assert drop_every_connection() >= 1
    Path("m.bin").write_bytes(b"y")
    assert reg.register("churn", "m.bin").number == 2
    assert drop_every_connection() >= 1
    time.sleep(1.5)
    assert reg.get("churn/1").tags == {"after": "drop"}
    assert [v.number for v in reg.versions("churn")] == [2, 1]


def test_other_errors_are_not_retried(reg):
    attempts = []

    def write(conn):
        attempts.append(1)
        conn.exec_driver_sql("INSERT INTO models (id) VALUES ('x')")  # NOT NULL violation

    with pytest.raises(sa.exc.IntegrityError):
        reg.db.write(write)
    assert len(attempts) == 1


# Each worker connects by URL, says it is ready, waits for the common start signal, then
# registers its versions as fast as it can and prints the numbers it was given.
WORKER = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path

    import modelreg

    url, flags, index, count = sys.argv[1], Path(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    reg = modelreg.connect(url, actor=f"worker-{index}")
    (flags / f"ready-{index}").touch()
    deadline = time.monotonic() + 60
    while not (flags / "go").exists():
        if time.monotonic() > deadline:
            sys.exit("never got the start signal")
        time.sleep(0.001)
    numbers = []
    files = Path(f"worker-{index}")
    files.mkdir()
    for j in range(count):
        (files / "model.bin").write_text(f"worker {index} version {j}")
        numbers.append(reg.register("shared", files / "model.bin").number)
    print(json.dumps(numbers))
    """
)


def run_together(tmp_path: Path, url: str, workers: int, each: int, *, ready=None) -> list:
    """Start ``workers`` processes; once all are ready (or ``ready()`` says so), let them go."""
    flags = tmp_path / "flags"
    flags.mkdir()
    env = {**os.environ, "MODELREG_BLOBS": str(tmp_path / "blobs")}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, url, str(flags), str(i), str(each)],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for i in range(workers)
    ]
    try:
        deadline = time.monotonic() + 120
        while not (ready() if ready else len(list(flags.glob("ready-*"))) == workers):
            assert all(p.poll() is None for p in procs), "a worker died before starting"
            assert time.monotonic() < deadline, "workers did not get ready"
            time.sleep(0.01)
        (flags / "go").touch()
        results = []
        for proc in procs:
            out, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, err.decode()
            results.append(json.loads(out))
        return results
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


@pytest.mark.slow
def test_eight_processes_registering_into_one_model_get_numbers_1_to_80(url, tmp_path):
    LocalRegistry(db_url=url, blobs=LocalBlobStore(tmp_path / "blobs")).close()  # migrated

    results = run_together(tmp_path, plain(url), WORKERS, VERSIONS_EACH)

    total = WORKERS * VERSIONS_EACH
    assert sorted(n for worker in results for n in worker) == list(range(1, total + 1))
    for worker in results:
        assert worker == sorted(worker), "a worker's own versions are numbered in its order"
    with LocalRegistry(db_url=url, blobs=LocalBlobStore(tmp_path / "blobs")) as reg:
        assert [v.number for v in reg.versions("shared")] == list(range(total, 0, -1))
        verified = reg.verify_audit()
        assert verified.ok, verified.reason
        assert len(reg.audit(action="version.create", limit=total + 10)) == total
        assert len(reg.audit(action="model.create")) == 1
        assert reg.fsck()["ok"]


@pytest.mark.slow
def test_processes_opening_a_fresh_database_at_once_migrate_it_once(url, tmp_path):
    """Every process finds no schema and asks for the migration lock; they queue on it (the
    test holds it until all of them wait), and the first to get it migrates for all."""
    params = sa.engine.make_url(url)
    holder = psycopg.connect(
        host=params.host, port=params.port, user=params.username, dbname=params.database,
        autocommit=True,
    )  # fmt: skip
    holder.execute("SELECT pg_advisory_lock(%s)", (db.MIGRATE_LOCK_KEY,))

    def waiting() -> int:
        found = holder.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
            " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        ).fetchone()
        return int(found[0]) if found else 0

    def all_waiting_then_release() -> bool:
        if waiting() < 4:
            return False
        holder.execute("SELECT pg_advisory_unlock(%s)", (db.MIGRATE_LOCK_KEY,))
        return True

    try:
        results = run_together(tmp_path, url, 4, 2, ready=all_waiting_then_release)
    finally:
        holder.close()

    assert sorted(n for worker in results for n in worker) == list(range(1, 9))
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        versions = conn.execute(sa.text("SELECT version_num FROM alembic_version")).all()
        heads = conn.execute(sa.text("SELECT count(*) FROM audit_head")).scalar()
    engine.dispose()
    assert versions == [(db.HEAD_REVISION,)]
    assert heads == 1


def test_every_web_page_reads_from_postgres(reg, tmp_path):
    """The UI's own queries (charts in buckets, alias history, datasets, audit) on the
    other dialect."""
    from modelreg.ui import pages

    data = tmp_path / "d.csv"
    data.write_text("a\n1\n")
    model = tmp_path / "m.bin"
    for i in range(7):
        model.write_bytes(b"w%d" % i)
        reg.register("pg", model, metrics={"auc": 0.5 + i / 100}, datasets=[data])
    reg.set_alias("pg", "production", "pg/7")
    page = pages.model(reg, "pg")
    assert page["series"]["auc"]["value"] == [0.5 + i / 100 for i in range(7)]
    assert page["alias_history"][0]["version"] == "pg/7"
    grouped = reg.db.read(lambda conn: versions.metric_series(conn, page["model"]["id"],
                                                              max_points=3))  # fmt: skip
    assert grouped["auc"]["number"] == [1, 4, 7]
    assert grouped["auc"]["min"] == [0.5, 0.53, 0.56]
    stored = reg.db.read(lambda conn: versions.metric_series(conn, page["model"]["id"],
                                                             max_points=1))  # fmt: skip
    assert (stored["auc"]["bucket"], stored["auc"]["number"]) == (10, [1])
    assert (stored["auc"]["min"], stored["auc"]["max"]) == ([0.5], [0.56])
    assert stored["auc"]["value"] == pytest.approx([0.53])
    assert pages.version(reg, "pg@production")["version"]["ref"] == "pg/7"
    assert pages.compare(reg, ["pg/1", "pg/7"])["metrics"][0]["changed"]
    assert pages.dataset(reg, reg.datasets()[0].name)["direct"] == 7
    assert pages.datasets(reg)["datasets"][0]["used_by"] == 7
    assert pages.audit(reg, entity="pg/7")["verify"]["ok"]


def test_input_postgres_cannot_store_or_count_is_refused_before_it(reg, tmp_path):
    """NUL characters (PostgreSQL text cannot hold them) and numbers past a 32-bit integer
    are InvalidInput, not a database error."""
    model = tmp_path / "m.bin"
    model.write_bytes(b"m")
    reg.register("nul", model, params={"p": 1})
    bad = [
        lambda: reg.set_tag("nul/1", "k", "a\x00b"),
        lambda: reg.register("nul", model, params={"p": "a\x00b"}),
        lambda: reg.audit(entity="a\x00"),
        lambda: reg.audit(actor="a\x00"),
        lambda: reg.audit(before_seq=2**31),
        lambda: reg.search("", model="nul", order_by="params.p asc", offset=2147483600),
    ]
    for call in bad:
        with pytest.raises(InvalidInput):
            call()
    assert reg.search("", model="nul", order_by="params.p asc", offset=1_000_000_000) == []
    with reg.start_run(name="steps") as run:
        with pytest.raises(InvalidInput):
            run.log_metric("loss", 0.5, step=2**31)
        run.log_metric("loss", 0.5, step=2**31 - 1)


def test_a_registration_waiting_on_s3_holds_up_no_other_registration(postgres, seaweedfs):
    """The blobs a manifest names are checked in the store before the write transaction: a
    HEAD that hangs keeps the other writers neither out of their transactions nor in line."""
    import hashlib
    import io

    from modelreg import wire
    from modelreg.s3 import S3BlobStore

    client = seaweedfs.client()
    store = S3BlobStore(seaweedfs.new_bucket(), client=client)
    slow, fast = b"slow weights", b"fast weights"
    digests = {hashlib.sha256(data).hexdigest(): data for data in (slow, fast)}
    for digest, data in digests.items():
        store.put(io.BytesIO(data), digest=digest)
    slow_key = store.key(hashlib.sha256(slow).hexdigest())
    hanging, release = threading.Event(), threading.Event()

    def hang(request, **_):
        if request.method == "HEAD" and request.url.endswith(slow_key):
            hanging.set()
            release.wait(30)

    client.meta.events.register("before-send.s3", hang)
    reg = LocalRegistry(db_url=postgres.new_database(), blobs=store, actor="t")

    def register(model: str, data: bytes) -> None:
        entry = {"path": "m.bin", "digest": hashlib.sha256(data).hexdigest(), "size": len(data)}
        reg.commit_version(wire.new_version_from_json(model, {"files": [entry]}))

    waiting = threading.Thread(target=register, args=("slow", slow))
    try:
        waiting.start()
        assert hanging.wait(10)
        register("fast", fast)  # on the old path, this waited for the hanging HEAD's lock
        assert waiting.is_alive()  # still hanging in its HEAD
    finally:
        release.set()
        waiting.join(30)
    assert sorted(m.name for m in reg.models()) == ["fast", "slow"]
    reg.close()


def test_a_populated_registry_at_the_oldest_schema_is_upgraded_on_postgres(url, tmp_path):
    """The backfills of 0011 and 0012 (UPDATE ... FROM, INSERT ... SELECT) and the metric
    rows moved into blocks by 0015, on PostgreSQL."""
    from alembic import command

    from modelreg import metric_summary

    weights = tmp_path / "m.bin"
    with LocalRegistry(db_url=url, blobs=LocalBlobStore(tmp_path / "blobs"), actor="t") as reg:
        for i in range(7):
            weights.write_bytes(b"w%d" % i)
            reg.register("churn", weights, metrics={"auc": i / 10})
        with reg.start_run(name="fit") as run:
            points = [("loss", 1 / (i + 1), i, 1_800_000_000_000 + i) for i in range(40)]
            reg.record_run_metrics(run.id, points)
        command.downgrade(db.alembic_config(reg.db.engine), "0001")
    with LocalRegistry(db_url=url, blobs=LocalBlobStore(tmp_path / "blobs"), actor="t") as reg:
        assert reg.db.current_revision() == db.HEAD_REVISION
        (model,) = reg.models()
        assert (model.version_count, model.latest) == (7, 7)
        chart = reg.db.read(lambda conn: metric_summary.series(conn, model.id, 10))
        assert (chart["auc"]["min"], chart["auc"]["max"]) == ([0.0], [0.6])
        history = reg.db.read(lambda conn: runs.metric_history(conn, run.id, "loss"))
        assert [(p.step, p.value) for p in history] == [(s, v) for _, v, s, _ in points]
        (latest,) = reg.db.read(lambda conn: runs.load_tracked(conn, run.id)).metrics
        assert (latest.step, latest.value) == (39, 1 / 40)
        assert reg.verify_audit(full=True).ok
