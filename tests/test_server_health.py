"""Readiness: ``/healthz`` answers ok only when the replica can serve, and a store that
cannot keep anything is refused at start.

On SQLite and a blob directory, and on PostgreSQL and S3 (SeaweedFS).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import sqlalchemy as sa

from modelreg.cli import main
from modelreg.errors import InvalidInput
from modelreg.local import LocalRegistry
from server_kit import Server, any_server, make_server, registry_template

__all__ = ["any_server", "make_server", "registry_template"]


def test_a_ready_replica_says_ok(any_server: Server) -> None:
    answer = any_server.http.get("/healthz")
    assert (answer.status_code, answer.json()) == (200, {"status": "ok"})


@pytest.mark.parametrize(
    ("statement", "words"),
    [
        ("UPDATE alembic_version SET version_num = '0007'", "at revision 0007; this server needs"),
        ("DELETE FROM alembic_version", "at revision none"),
        ("DROP TABLE alembic_version", "holds no modelreg schema"),
    ],
)
def test_a_database_without_this_schema_is_unavailable(
    any_server: Server, statement: str, words: str
) -> None:
    with any_server.registry.db.engine.begin() as conn:
        conn.execute(sa.text(statement))
    answer = any_server.http.get("/healthz")
    assert answer.status_code == 503
    assert answer.json()["code"] == "unavailable"
    assert words in answer.json()["detail"]


def test_a_blob_store_that_cannot_be_used_is_unavailable(any_server: Server) -> None:
    from modelreg.blobs import LocalBlobStore

    store = any_server.registry.blobs.inner
    if isinstance(store, LocalBlobStore):
        shutil.rmtree(store.root)  # an unmounted volume
    else:
        store.bucket = store.bucket + "-gone"  # type: ignore[attr-defined]  # a bucket removed
    answer = any_server.http.get("/healthz")
    assert answer.status_code == 503
    assert answer.json()["detail"] == "the blob store cannot be used (see the server's log)"


@pytest.mark.parametrize(
    "url",
    [
        "sqlite:///:memory:",
        "sqlite://",
        "sqlite:///file::memory:?cache=shared&uri=true",
        "sqlite:///file:reg?mode=memory&uri=true",
    ],
)
def test_an_in_memory_database_is_refused(url: str, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="in-memory SQLite database"):
        LocalRegistry(db_url=url, blobs=tmp_path / "blobs")


def test_the_server_refuses_an_in_memory_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["server", "--db", "sqlite:///:memory:", "--blobs", str(tmp_path / "blobs")])
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("error: 'sqlite:///:memory:' is an in-memory SQLite database"), err
