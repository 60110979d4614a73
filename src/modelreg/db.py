"""Database access: engines for SQLite and PostgreSQL, migrations, and retried transactions.

SQLite runs in WAL mode with a busy timeout; a write transaction starts with
``BEGIN IMMEDIATE`` so that two writers never deadlock upgrading a read lock, and transient
"database is locked" or serialisation failures are retried a bounded number of times.
On PostgreSQL (through psycopg 3) write transactions also run one at a time, under a
transaction-scoped advisory lock, and reads see one snapshot; serialisation failures,
deadlocks and unique violations are retried all the same. Migrations run under a session
advisory lock, so that replicas starting together upgrade the schema once.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import random
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from modelreg.errors import Conflict, Gone, InvalidInput, NotFound, Unavailable
from modelreg.timestamps import format_time as format_time
from modelreg.timestamps import now as now

T = TypeVar("T")

# The newest migration; a database at this revision needs no Alembic import at start-up.
HEAD_REVISION = "0015"
MAX_ATTEMPTS = 30
BLOB_LOCK_KEY = 0x6D6F64656C726567  # "modelreg"
MIGRATE_LOCK_KEY = 0x6D6F64656C6D6967  # "modelmig"
WRITE_LOCK_KEY = 0x6D6F64656C777269  # "modelwri"
_PG_WRITE_LOCK = sa.text("SELECT pg_advisory_xact_lock(:key)").bindparams(key=WRITE_LOCK_KEY)


def normalise_url(url: str) -> str:
    """A database URL as SQLAlchemy should open it: ``postgresql://`` and ``postgres://``
    become ``postgresql+psycopg://`` (psycopg 3 is the driver modelreg ships with).

    >>> normalise_url("postgres://reg@db.example/registry")
    'postgresql+psycopg://reg@db.example/registry'
    """
    for scheme in ("postgresql://", "postgres://"):
        if url.startswith(scheme):
            return "postgresql+psycopg://" + url.removeprefix(scheme)
    return url


def safe_url(url: str) -> str:
    """The URL with its password masked, for messages."""
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return url


def create_engine(url: str) -> Engine:
    url = normalise_url(url)
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"timeout": 60})
        event.listen(engine, "connect", _sqlite_on_connect)
        event.listen(engine, "begin", _sqlite_on_begin)
        return engine
    given = sa.engine.make_url(url).query.get("options")  # the URL's own come after, and win
    options = " ".join((_PG_OPTIONS, *((given,) if isinstance(given, str) else given or ())))
    engine = sa.create_engine(url, connect_args={"options": options})
    event.listen(engine, "connect", _note_idle)
    event.listen(engine, "checkin", _note_idle)
    event.listen(engine, "checkout", functools.partial(_ping_if_idle, engine.dialect))
    return engine


# A pooled connection to PostgreSQL is pinged before use only when it sat idle this long: a
# ping is a round trip, as long as one of an alias resolution's statements. One used a moment ago
# that PostgreSQL has since dropped (a restart, a failover) fails its first statement
# instead, and Database.read and Database.write retry on a new connection.
PING_AFTER_IDLE = 1.0


def _note_idle(dbapi_conn: Any, record: Any) -> None:
    record.info["idle_since"] = time.monotonic()


def _ping_if_idle(dialect: Any, dbapi_conn: Any, record: Any, proxy: Any) -> None:
    since = record.info.get("idle_since")
    if since is None or time.monotonic() - since < PING_AFTER_IDLE:
        return
    try:
        dialect.do_ping(dbapi_conn)
    except dialect.loaded_dbapi.Error as exc:
        raise sa.exc.DisconnectionError(str(exc)) from exc  # the pool connects anew


def _dropped(exc: Exception) -> bool:
    """Whether a statement failed because the server dropped the connection (which the
    pool has since discarded): the transaction did not commit, and a retry reconnects."""
    return isinstance(exc, sa.exc.DBAPIError) and exc.connection_invalidated


# Session settings for the registry's own connections to PostgreSQL. Its statements read a
# few index pages each, but the planner's estimates for its ordered, limited searches exceed
# jit_above_cost, and JIT compiling one took 500 ms for a query that runs in 10. And starting
# parallel workers cost more (5 ms) than the index walks they would share.
_PG_OPTIONS = "-c jit=off -c max_parallel_workers_per_gather=0"
# psycopg prepares a statement run five times on a connection, and after five more PostgreSQL
# may switch to a generic plan, made without the parameters' values: for a search inside one
# model, a plan fit for no model in particular (10 ms became 500 ms on 1M versions). Searches
# plan each run (plan_each); lookups by key keep their generic plans, which spare planning.
_PLAN_EACH = sa.text("SET LOCAL plan_cache_mode = force_custom_plan")


def _sqlite_on_connect(dbapi_conn: Any, record: Any) -> None:
    # Let SQLAlchemy's begin event emit BEGIN, so writers can ask for BEGIN IMMEDIATE.
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA busy_timeout = 60000")
    cur.execute("PRAGMA journal_mode = WAL")
    cur.execute("PRAGMA synchronous = NORMAL")
    cur.execute("PRAGMA foreign_keys = ON")
    cur.close()


def _sqlite_on_begin(conn: Connection) -> None:
    write = conn.get_execution_options().get("modelreg_write", False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def insert_rows(
    conn: Connection, table: sa.Table, columns: tuple[str, ...], rows: Sequence[Sequence[Any]]
) -> None:
    """INSERT ``rows`` (values in the order of ``columns``) straight through the driver.

    For the hot writes (a version's rows, its audit event, a batch of metric points): Core
    builds and processes each row's parameters, which costs more than SQLite takes to insert
    them. Only for columns whose values the driver takes as they are: text, numbers, None.
    """
    if not rows:
        return
    sql = _insert_sql(conn.dialect, table.name, columns)
    conn.exec_driver_sql(sql, rows[0] if len(rows) == 1 else list(rows))


@functools.lru_cache(maxsize=64)
def _insert_sql(dialect: sa.Dialect, table: str, columns: tuple[str, ...]) -> str:
    quote = dialect.identifier_preparer.quote
    mark = "?" if dialect.paramstyle == "qmark" else "%s"
    names = ", ".join(quote(c) for c in columns)
    # Table and column names are the schema's own constants, quoted; values are parameters.
    marks = ", ".join([mark] * len(columns))
    return f"INSERT INTO {quote(table)} ({names}) VALUES ({marks})"  # noqa: S608


def _in_memory(url: sa.engine.URL) -> bool:
    """SQLite's in-memory forms: ``sqlite://``, ``:memory:``, ``file::memory:``, mode=memory."""
    if url.get_backend_name() != "sqlite":
        return False
    database = url.database or ""
    return (
        database in ("", ":memory:")
        or database.startswith("file::memory:")
        or "mode=memory" in database
        or url.query.get("mode") == "memory"
    )


def _no_table(exc: sa.exc.DBAPIError) -> bool:
    text = str(exc.orig).lower()
    return "no such table" in text or "does not exist" in text or "undefined" in text


def _is_transient(exc: sa.exc.DBAPIError) -> bool:
    text = str(exc.orig).lower() if exc.orig is not None else str(exc).lower()
    code = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
    if code in ("40001", "40P01", "23505"):  # serialisation failure, deadlock, unique violation
        return True
    return "database is locked" in text or "database is busy" in text


_EPOCH = sa.text("SELECT n FROM blob_epoch WHERE id = 1")
_NEXT_EPOCH = sa.text("UPDATE blob_epoch SET n = n + 1 WHERE id = 1")


class Database:
    """One engine and the transaction helpers every store function runs inside."""

    def __init__(self, url: str) -> None:
        self.url = normalise_url(url)
        self.where: str | None = None  # "the registry at ...", named in not-found errors
        try:
            memory = _in_memory(sa.engine.make_url(self.url))
            if not memory:
                self.engine = create_engine(self.url)
        except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError) as exc:
            raise InvalidInput(f"{safe_url(self.url)!r} is not a database URL: {exc}") from None
        if memory:
            raise InvalidInput(
                f"{self.url!r} is an in-memory SQLite database: each connection"
                " would see its own empty one and nothing would be kept; give a file"
            )
        self._writer = self.engine.execution_options(modelreg_write=True)
        self._open = threading.local()  # the write transaction this thread is inside
        # A read sees one snapshot, as SQLite's read transactions do: under READ COMMITTED
        # each statement would see the commits made since the one before (the audit check
        # would find an event past the head it read). Writes stay READ COMMITTED, serialised
        # by row and advisory locks.
        self._reader = (
            self.engine.execution_options(isolation_level="REPEATABLE READ")
            if self.dialect == "postgresql"
            else self.engine
        )

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def read(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn`` in a read transaction; inside a write on the same thread, in that
        write's transaction (which sees its own rows, and needs no second connection)."""
        joined = getattr(self._open, "conn", None)
        try:
            if joined is not None:
                return fn(joined)
            try:
                with self._reader.connect() as conn, conn.begin():
                    return fn(conn)
            except sa.exc.DBAPIError as exc:
                if not _dropped(exc):
                    raise
            with self._reader.connect() as conn, conn.begin():
                return fn(conn)
        except NotFound as exc:
            self._name_registry(exc)
            raise

    def _name_registry(self, exc: NotFound) -> None:
        """Say in a not-found error which registry was searched (``where``: set for an
        embedded registry; a server's clients name the server instead)."""
        if self.where and not isinstance(exc, Gone) and self.where not in exc.message:
            exc.message = f"{exc.message} in {self.where}"
            exc.args = (exc.message,)

    def write(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn`` in a write transaction, retrying transient conflicts with backoff.

        Called inside another write on the same thread (a blob store that records chunks,
        asked to store a blob again while a version is committed), ``fn`` joins that
        transaction: a second one would wait for the first to end.
        """
        joined = getattr(self._open, "conn", None)
        if joined is not None:
            return fn(joined)
        drops = 0
        for attempt in range(1, MAX_ATTEMPTS + 1):
            committing = False
            try:
                with self._writer.connect() as conn, conn.begin():
                    if self.dialect == "postgresql":
                        # One writer at a time, as SQLite's BEGIN IMMEDIATE gives: the rules
                        # read, then write (a gate's figures, an alias's previous target, a
                        # retired dataset's impact) and count on nothing changing in between.
                        conn.execute(_PG_WRITE_LOCK)
                    self._open.conn = conn
                    try:
                        result = fn(conn)
                    finally:
                        self._open.conn = None
                    committing = True
                return result
            except NotFound as exc:
                self._name_registry(exc)
                raise
            except sa.exc.DBAPIError as exc:
                # A connection dropped before COMMIT lost its transaction whole: it is
                # retried on a new one, once. One dropped during COMMIT may or may not have
                # committed, and is not retried.
                if _dropped(exc) and not committing and drops == 0 and attempt < MAX_ATTEMPTS:
                    drops += 1
                    continue
                if not _is_transient(exc):
                    raise
                if attempt == MAX_ATTEMPTS:
                    raise Conflict(
                        f"the database stayed busy after {MAX_ATTEMPTS} attempts: {exc.orig}"
                    ) from exc
                time.sleep(min(0.5, 0.005 * 2**attempt) * random.random())
        raise AssertionError("unreachable")

    def lock_blobs(self, conn: Connection, *, delete: bool = False) -> None:
        """Keep blobs from being deleted (``delete``: to delete some) until the transaction
        ends: transactions that make blobs referenced share the lock, one that deletes holds
        it alone, and moves the blob epoch (``blob_epoch``) so that a writer that checked its
        blobs before its transaction knows to check them again.

        SQLite's write transactions (BEGIN IMMEDIATE) already run one at a time; PostgreSQL
        takes a transaction-scoped advisory lock, shared or exclusive.
        """
        if self.dialect == "postgresql":
            lock = "pg_advisory_xact_lock" if delete else "pg_advisory_xact_lock_shared"
            conn.execute(sa.text(f"SELECT {lock}(:key)"), {"key": BLOB_LOCK_KEY})
        if delete:
            conn.execute(_NEXT_EPOCH)

    def plan_each(self, conn: Connection) -> None:
        """Plan each statement of this transaction for its parameters' values (PostgreSQL):
        for searches, whose best plan depends on them (a big model or a small one)."""
        if self.dialect == "postgresql":
            conn.execute(_PLAN_EACH)

    def blob_epoch(self, conn: Connection | None = None) -> int:
        """The blob epoch: read before checking blobs outside a transaction, and compared
        inside it after ``lock_blobs``."""
        if conn is None:
            return self.read(self.blob_epoch)
        return int(conn.execute(_EPOCH).scalar_one())

    def dispose(self) -> None:
        self.engine.dispose()

    def check_ready(self) -> None:
        """Raise Unavailable unless the database answers with this modelreg's schema."""
        try:
            found = self.read(
                lambda conn: (
                    conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalars().all()
                )
            )
        except sa.exc.DBAPIError as exc:
            if _no_table(exc):
                raise Unavailable("the database holds no modelreg schema") from exc
            raise Unavailable("the database does not answer (see the server's log)") from exc
        if found != [HEAD_REVISION]:
            raise Unavailable(
                f"the database's schema is at revision {', '.join(found) or 'none'};"
                f" this server needs {HEAD_REVISION}"
            )

    # -- migrations ---------------------------------------------------------------------

    def current_revision(self) -> str | None:
        """The schema's revision, None for a database without one: one query, no Alembic."""
        with self.engine.connect() as conn:
            try:
                row = conn.exec_driver_sql("SELECT version_num FROM alembic_version").first()
            except sa.exc.DBAPIError as exc:
                if _no_table(exc):
                    return None
                raise
        return None if row is None else str(row[0])

    def migrate(self, *, lock_path: Path | None = None) -> None:
        """Bring the schema to the newest revision, once, even with many processes starting.

        The check and the upgrade run under a lock: PostgreSQL's session-level advisory lock,
        or for SQLite the file at ``lock_path`` (by default beside the database file).
        """
        try:
            if self.current_revision() == HEAD_REVISION:
                return
        except sa.exc.OperationalError as exc:
            if self.dialect != "postgresql":
                raise
            raise InvalidInput(
                f"cannot reach the database at {safe_url(self.url)}: {exc.orig}"
            ) from None
        with self._migration_lock(lock_path):
            current = self.current_revision()
            if current == HEAD_REVISION:
                return
            from alembic import command
            from alembic.script import ScriptDirectory

            config = alembic_config(self.engine)
            known = {rev.revision for rev in ScriptDirectory.from_config(config).walk_revisions()}
            if current is not None and current not in known:
                raise Conflict(
                    f"the registry's schema is at revision {current}, newer than this modelreg"
                    f" knows (it ends at {HEAD_REVISION}): upgrade modelreg to use it"
                )
            command.upgrade(config, "head")

    @contextlib.contextmanager
    def _migration_lock(self, lock_path: Path | None) -> Iterator[None]:
        if self.dialect != "postgresql":
            database = self.engine.url.database
            if lock_path is None and database and database != ":memory:":
                lock_path = Path(f"{database}.migrate.lock")  # opened by URL: beside the file
            with _file_lock(lock_path):
                yield
            return
        # Session-level, on a connection of its own that stays open (in autocommit, so that
        # it holds no snapshot) while Alembic migrates on another.
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATE_LOCK_KEY})
            try:
                yield
            finally:
                conn.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATE_LOCK_KEY})


def alembic_config(engine: Engine) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    cfg.attributes["engine"] = engine
    return cfg


@contextlib.contextmanager
def _file_lock(path: Path | None) -> Iterator[None]:
    if path is None:
        yield
        return
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
