"""Fixtures shared by the whole suite.

The contract tests take a ``registry`` and run once per implementation. An implementation is
a fixture named ``<name>_backend`` returning a :class:`Backend`; ``IMPLEMENTATIONS`` lists the
names. Adding the HTTP client means writing ``remote_backend`` (start a server on a free port
in a fixture, connect a client to it, fill in the probes) and adding ``"remote"`` below; no
contract test changes.

Every test runs in a fresh working directory outside any git repository, so that what a
registry captures from the current directory is known; ``git_repo`` moves into a fresh
repository instead.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

import modelreg
from live import LiveServer, live_server

__all__ = ["live_server"]
pytest_plugins = ["services", "browser"]  # PostgreSQL, SeaweedFS, Chromium for the session

# Timing is not behaviour: on a shared machine running the suite on two workers, hypothesis's
# deadline and its check for slow input generation would fail tests whose behaviour is right.
settings.register_profile("modelreg", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("modelreg")


IMPLEMENTATIONS = ["embedded", "remote", "remote_pg_s3"]
# What the quick tier (``scripts/check --fast``) leaves to the full run: tests that start a
# server, PostgreSQL, SeaweedFS, Chromium or MLflow, or are marked slow.
SERVICE_FIXTURES = frozenset(
    {"live_server", "postgres", "seaweedfs", "browser", "mlflow_server", "s3_bucket"}
)


@pytest.fixture(scope="session", autouse=True)
def _chunk_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """The chunks pulls keep (remote_blobs.ChunkCache) go to a folder of this run's (which
    pytest removes with the rest of them), not the home's."""
    os.environ["MODELREG_CACHE"] = str(tmp_path_factory.mktemp("chunk-cache"))


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--fast",
        action="store_true",
        help="the quick tier: pure and embedded tests only (no servers, PostgreSQL, S3,"
        " browser or MLflow; nothing marked slow); CI runs everything",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not config.getoption("--fast"):
        return
    kept, left = [], []
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        needs = SERVICE_FIXTURES.intersection(getattr(item, "fixturenames", ()))
        remote = params.get("backend", "embedded") != "embedded"
        (left if needs or remote or item.get_closest_marker("slow") else kept).append(item)
    config.hook.pytest_deselected(items=left)
    items[:] = kept


ACTOR = "contract-tester"


@dataclass
class Backend:
    """One registry under test, plus the few probes the contract needs that the SDK lacks.

    ``uri`` lets another process connect to the same registry; ``actor`` is who the audit
    log should name for calls made through ``registry``; ``blob_digests`` and ``read_blob``
    look at the blob store (the SDK has no call that lists or reads raw blobs).
    """

    name: str
    registry: Any
    uri: str
    actor: str
    blob_digests: Callable[[], set[str]]
    read_blob: Callable[[str], bytes]


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh, empty current directory that is not inside a git repository."""
    path = tmp_path / "work"
    path.mkdir()
    monkeypatch.chdir(path)
    return path


@pytest.fixture(scope="session")
def empty_registry(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An embedded registry, migrated once per session: copying it costs a few milliseconds,
    migrating a new one through Alembic a fifth of a second (tests/test_structure.py still
    migrates from scratch)."""
    root = tmp_path_factory.mktemp("empty-template") / "reg"
    modelreg.connect(root, actor="template").close()
    return root


@pytest.fixture
def new_registry_dir(empty_registry: Path) -> Callable[[Path], Path]:
    """``new_registry_dir(path)``: an empty, migrated embedded registry at ``path``."""

    def make(path: Path) -> Path:
        shutil.copytree(empty_registry, path)
        return path

    return make


@pytest.fixture
def embedded_backend(tmp_path: Path, new_registry_dir: Callable[[Path], Path]) -> Iterator[Backend]:
    reg = modelreg.connect(new_registry_dir(tmp_path / "reg"), actor=ACTOR)

    def read_blob(digest: str) -> bytes:
        with reg.blobs.open(digest) as f:
            return bytes(f.read())

    try:
        yield Backend(
            name="embedded",
            registry=reg,
            uri=reg.uri,
            actor=ACTOR,
            blob_digests=lambda: set(reg.blobs),
            read_blob=read_blob,
        )
    finally:
        reg.close()


@pytest.fixture
def remote_backend(
    tmp_path: Path, live_server: LiveServer, new_registry_dir: Callable[[Path], Path]
) -> Iterator[Backend]:
    """A RemoteRegistry talking HTTP to a server on SQLite and a blob directory."""
    from modelreg.local import LocalRegistry

    store = LocalRegistry(new_registry_dir(tmp_path / "server-reg"))
    yield from _served("remote", store, live_server)


def _served(name: str, store: Any, live_server: LiveServer) -> Iterator[Backend]:
    """A RemoteRegistry over HTTP to ``store``, served by the test server; the blob probes
    look at the server's store directly."""
    from modelreg.remote import RemoteRegistry
    from modelreg.server import create_app

    url = live_server.mount(create_app(store))
    reg = RemoteRegistry(url, actor=ACTOR)

    def read_blob(digest: str) -> bytes:
        with store.blobs.open(digest) as f:
            return bytes(f.read())

    try:
        yield Backend(
            name=name,
            registry=reg,
            uri=url,
            actor=ACTOR,
            blob_digests=lambda: set(store.blobs),
            read_blob=read_blob,
        )
    finally:
        reg.close()
        store.close()


@pytest.fixture(scope="session")
def pg_database(postgres: Any) -> str:
    """One migrated database for the contract suite, emptied before each test (cheaper than
    a database per test)."""
    from modelreg.blobs import MemoryBlobStore
    from modelreg.local import LocalRegistry

    url = str(postgres.new_database())
    LocalRegistry(db_url=url, blobs=MemoryBlobStore()).close()
    return url


def _empty_database(postgres: Any, url: str) -> None:
    """Remove every row, leaving the schema, the audit chain's empty head and the blob epoch."""
    import psycopg

    from modelreg import schema

    tables = ", ".join(f'"{t.name}"' for t in schema.metadata.sorted_tables)
    with psycopg.connect(
        host="127.0.0.1", port=postgres.port, user="postgres", dbname=url.rsplit("/", 1)[1]
    ) as conn:
        conn.execute(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
        conn.execute("INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, %s)", ["0" * 64])
        conn.execute("INSERT INTO blob_epoch (id, n) VALUES (1, 0)")  # as migration 0014 does
        conn.execute(  # the default experiment, as migration 0009 seeds it
            "INSERT INTO experiments (id, name, lifecycle_stage, created_at, updated_at)"
            " VALUES (0, 'Default', 'active', %s, %s)",
            ["2026-01-01T00:00:00.000000Z"] * 2,
        )


@pytest.fixture(scope="session")
def s3_bucket(seaweedfs: Any) -> tuple[str, Any]:
    """A bucket for the contract suite and one boto3 client for it (slow to make)."""
    return str(seaweedfs.new_bucket()), seaweedfs.client()


@pytest.fixture
def remote_pg_s3_backend(
    postgres: Any, pg_database: str, s3_bucket: tuple[str, Any], live_server: LiveServer
) -> Iterator[Backend]:
    """A RemoteRegistry talking HTTP to a server on PostgreSQL and S3 (SeaweedFS); each test
    starts from an empty database and its own prefix in the bucket."""
    import uuid

    from modelreg.local import LocalRegistry
    from modelreg.s3 import S3BlobStore

    _empty_database(postgres, pg_database)
    bucket, client = s3_bucket
    blobs = S3BlobStore(bucket, prefix=uuid.uuid4().hex, client=client)
    store = LocalRegistry(db_url=pg_database, blobs=blobs)
    yield from _served("remote_pg_s3", store, live_server)


@pytest.fixture(params=IMPLEMENTATIONS)
def backend(request: pytest.FixtureRequest, workdir: Path) -> Backend:
    """The registry implementation under test, one parameter per implementation."""
    found: Backend = request.getfixturevalue(f"{request.param}_backend")
    return found


@pytest.fixture
def registry(backend: Backend) -> Any:
    """A fresh, empty registry (embedded today; remote over HTTP slots in as a parameter)."""
    return backend.registry


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, check=True
    )
    return done.stdout


@pytest.fixture
def git_repo(tmp_path: Path, workdir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh git repository on branch ``main`` with one commit, as the current directory.

    It holds ``train.py`` (one line) and ``README.md``; ``out/`` is ignored, so files written
    there keep the working tree clean.
    """
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.name", "Test User")
    git(repo, "config", "user.email", "test@example.com")
    git(repo, "config", "commit.gpgsign", "false")
    (repo / "train.py").write_text("print('training')\n")
    (repo / "README.md").write_text("# a project\n")
    (repo / ".gitignore").write_text("out/\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "first")
    monkeypatch.chdir(repo)
    return repo.resolve()


@pytest.fixture
def write() -> Callable[..., Path]:
    """``write(path, content="...")``: write a small file (parents created), return its path.

    Relative paths are relative to the current directory; text is UTF-8 encoded.
    """

    def write_file(path: str | os.PathLike[str], content: str | bytes = "content\n") -> Path:
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        data = content.encode() if isinstance(content, str) else content
        target.write_bytes(data)
        return target

    return write_file
