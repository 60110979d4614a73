"""Two server processes on one PostgreSQL database and one S3 bucket behave as one registry.

Both start at the same moment on a fresh database (migrations run once); eight clients
register through both at once and get gapless numbers; what one server writes, the other
serves at once.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from modelreg.remote import RemoteRegistry
from services import free_ports

CLIENTS = 8
EACH = 5


def _wait_healthy(url: str, process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server at {url} exited with {process.returncode}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"the server at {url} did not become healthy")


@pytest.fixture
def two_servers(postgres: Any, seaweedfs: Any, tmp_path: Path) -> Iterator[list[str]]:
    db = postgres.new_database().replace("postgresql+psycopg://", "postgresql://")
    bucket = seaweedfs.new_bucket()
    env = {**os.environ, **seaweedfs.env}
    modelreg = Path(sys.executable).with_name("modelreg")
    processes: list[subprocess.Popen[bytes]] = []
    urls = []
    try:
        for port in free_ports(2):
            command = [str(modelreg), "server", "--port", str(port), "--db", db,
                       "--blobs", f"s3://{bucket}/registry"]  # fmt: skip
            with open(tmp_path / f"server-{port}.log", "wb") as log:
                processes.append(subprocess.Popen(command, env=env, stdout=log, stderr=log))
            urls.append(f"http://127.0.0.1:{port}")
        for url, process in zip(urls, processes, strict=True):
            _wait_healthy(url, process)
        yield urls
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()


def test_two_servers_number_versions_without_gaps_and_see_each_others_writes(
    two_servers: list[str], tmp_path: Path, workdir: Path
) -> None:
    model = tmp_path / "model.bin"
    errors: list[BaseException] = []

    def client(i: int) -> None:
        try:
            with RemoteRegistry(two_servers[i % 2], actor=f"client-{i}") as reg:
                for j in range(EACH):
                    data = tmp_path / f"m-{i}-{j}.bin"
                    data.write_bytes(f"{i}/{j}".encode())
                    reg.register("churn", data)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors

    a, b = (RemoteRegistry(url, actor="checker") for url in two_servers)
    try:
        numbers = sorted(v.number for v in a.versions("churn"))
        assert numbers == list(range(1, CLIENTS * EACH + 1))
        assert sorted(v.number for v in b.versions("churn")) == numbers

        model.write_bytes(b"written through A")
        made = a.register("churn", model)
        seen = b.get("churn")
        assert (seen.id, seen.number) == (made.id, CLIENTS * EACH + 1)
        a.set_alias("churn", "production", made.ref)
        assert b.get("churn@production").id == made.id
        out = b.pull("churn@production", tmp_path / "out")
        assert (out / "model.bin").read_bytes() == b"written through A"
        assert b.verify_audit().ok
    finally:
        a.close()
        b.close()
