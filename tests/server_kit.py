"""A registry served over real HTTP for the server's own tests (routes, security, schema).

Every test gets its own copy of one migrated template holding ``demo/1`` (one file,
``CONTENT``), mounted on the session's uvicorn server (``live_server``): migrating a fresh
store costs half a second, copying the template a few milliseconds.

    def test_something(make_server):
        server = make_server(auth=True)          # or where=tmp_path / "some" / "dir"
        server.http.get("/api/v1/models")        # httpx, no token
        server.remote(token=...).get("demo/1")   # RemoteRegistry
"""

from __future__ import annotations

import hashlib
import io
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from live import LiveServer
from modelreg import wire
from modelreg.local import LocalRegistry
from modelreg.remote import RemoteRegistry
from modelreg.server import create_app

CONTENT = bytes(range(256)) * 1200  # demo/1's file: 300 KiB, several chunks of a download
DIGEST = hashlib.sha256(CONTENT).hexdigest()
PROBLEM = "application/problem+json"
OTHER = b"bytes the server does not hold"
OTHER_DIGEST = "5" * 64


@dataclass
class Server:
    """One registry served over HTTP: the store itself, its app, and clients of it."""

    registry: LocalRegistry
    app: Any
    url: str
    http: httpx.Client
    _clients: list[RemoteRegistry] = field(default_factory=list)

    @property
    def root(self) -> Path:
        assert self.registry.root is not None
        return self.registry.root

    def remote(self, *, token: str | None = None, actor: str = "tester") -> RemoteRegistry:
        """A RemoteRegistry of this server, closed when the test ends."""
        client = RemoteRegistry(self.url, token=token, actor=actor)
        self._clients.append(client)
        return client

    def token(self, name: str, role: str) -> str:
        """A new token's secret, made on the store directly (as ``modelreg token create``)."""
        secret: str = self.registry.create_token(name, role=role)["token"]
        return secret

    def blob_files(self) -> set[str]:
        """Every file under the blob directory, temporary ones included."""
        blobs = self.root / "blobs"
        return {str(p.relative_to(blobs)) for p in blobs.rglob("*") if p.is_file()}

    def version_refs(self) -> list[str]:
        return sorted(v.ref for v in self.registry.search(""))

    def close(self) -> None:
        for client in self._clients:
            client.close()
        self.http.close()
        self.registry.close()


def state(server: Server) -> dict[str, Any]:
    """What a refused request must leave as it was."""
    reg = server.registry
    return {
        "versions": server.version_refs(),
        "tags": {v.ref: v.tags for v in reg.search("")},
        "aliases": [(m.name, m.aliases) for m in reg.models()],
        "blobs": server.blob_files(),
        "audit": reg.verify_audit().events,
        "tokens": [t["name"] for t in reg.tokens()],
    }


@pytest.fixture(scope="session")
def registry_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("template") / "reg"
    with LocalRegistry(root, actor="setup") as reg:
        reg.blobs.put(io.BytesIO(CONTENT), digest=DIGEST)
        entry = {"path": "model.bin", "digest": DIGEST, "size": len(CONTENT)}
        new = wire.new_version_from_json(
            "demo", {"files": [entry], "metrics": {"accuracy": 0.9}, "tags": {"team": "core"}}
        )
        reg.commit_version(new)
    return root


@pytest.fixture
def make_server(
    registry_template: Path, live_server: LiveServer, tmp_path: Path
) -> Iterator[Callable[..., Server]]:
    """``make_server(*, auth=False, where=tmp_path / "reg")``: a server over a fresh copy of
    the template; the last one made is the one the live server answers with."""
    made: list[Server] = []

    def make(*, auth: bool = False, where: Path | None = None) -> Server:
        root = where or tmp_path / "reg"
        shutil.copytree(registry_template, root)
        registry = LocalRegistry(root, actor="setup")
        app = create_app(registry, auth=auth)
        url = live_server.mount(app)
        server = Server(registry, app, url, httpx.Client(base_url=url, timeout=30))
        made.append(server)
        return server

    yield make
    for server in made:
        server.close()


@pytest.fixture(params=["sqlite_dir", "postgres_s3"])
def any_server(
    request: pytest.FixtureRequest, make_server: Callable[..., Server], live_server: LiveServer
) -> Iterator[Server]:
    """A server without auth, holding ``demo/1``, on each pair of stores a team runs: SQLite
    and a blob directory, or PostgreSQL and S3 (SeaweedFS)."""
    if request.param == "sqlite_dir":
        yield make_server()
        return
    import uuid

    from modelreg.s3 import S3BlobStore

    postgres = request.getfixturevalue("postgres")
    bucket, client = request.getfixturevalue("s3_bucket")
    blobs = S3BlobStore(bucket, prefix=uuid.uuid4().hex, client=client)
    registry = LocalRegistry(db_url=postgres.new_database(), blobs=blobs, actor="setup")
    registry.blobs.put(io.BytesIO(CONTENT), digest=DIGEST)
    entry = {"path": "model.bin", "digest": DIGEST, "size": len(CONTENT)}
    registry.commit_version(wire.new_version_from_json("demo", {"files": [entry]}))
    app = create_app(registry)
    url = live_server.mount(app)
    server = Server(registry, app, url, httpx.Client(base_url=url, timeout=30))
    try:
        yield server
    finally:
        server.close()


def overwrite_blob(registry: LocalRegistry, digest: str, data: bytes) -> None:
    """Put other bytes under a stored digest, behind the store's back (a disk's bit flip)."""
    from modelreg.blobs import LocalBlobStore
    from modelreg.s3 import S3BlobStore

    store = registry.blobs.inner
    if isinstance(store, LocalBlobStore):
        store.path(digest).write_bytes(data)
    else:
        assert isinstance(store, S3BlobStore)
        store.client.put_object(Bucket=store.bucket, Key=store.key(digest), Body=data)
