"""Tokens and roles over real HTTP: no token, a malformed or revoked one, and what each role
(reader < writer < maintainer < admin) may do; and who the audit log names."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from modelreg.errors import (
    PermissionDenied,
)
from server_kit import (
    CONTENT,
    DIGEST,
    OTHER,
    OTHER_DIGEST,
    PROBLEM,
    Server,
    make_server,
    registry_template,
    state,
)

__all__ = ["make_server", "registry_template"]  # fixtures

MakeServer = Callable[..., Server]


@pytest.fixture
def secured(make_server: MakeServer) -> Server:
    """A server with auth on and no token yet: ``secured.token(name, role)`` makes one."""
    return make_server(auth=True)


def test_a_request_without_a_token_is_refused_with_401(secured: Server) -> None:
    response = secured.http.get("/api/v1/models")
    assert response.status_code == 401
    assert response.headers["content-type"] == PROBLEM
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json()["code"] == "unauthenticated"


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer mr_" + "A" * 43,  # the shape of a secret, but not one
        "Bearer not-a-token",
        "Bearer",
        "Basic YWRtaW46YWRtaW4=",
        "mr_" + "A" * 43,
        "Bearer " + "x" * 10_000,
    ],
)
def test_a_token_that_is_not_one_is_refused_with_401(secured: Server, authorization: str) -> None:
    response = secured.http.get("/api/v1/models", headers={"Authorization": authorization})
    assert response.status_code == 401
    assert response.json()["code"] == "unauthenticated"


def test_a_revoked_token_is_refused_with_401(secured: Server) -> None:
    token = secured.token("ci", "admin")
    headers = {"Authorization": f"Bearer {token}"}
    assert secured.http.get("/api/v1/models", headers=headers).status_code == 200
    secured.registry.revoke_token("ci")
    response = secured.http.get("/api/v1/models", headers=headers)
    assert response.status_code == 401
    assert response.json()["code"] == "unauthenticated"


def test_a_reader_cannot_register_and_nothing_is_stored(
    secured: Server, workdir: Path, write: Callable[..., Path]
) -> None:
    reader = secured.remote(token=secured.token("dashboards", "reader"))
    write("new.bin", "content the reader tries to upload")
    before = state(secured)
    with pytest.raises(PermissionDenied, match="dashboards has the reader role"):
        reader.register("demo", "new.bin")
    assert state(secured) == before


def test_a_reader_cannot_upload_a_blob_or_create_a_version_directly(secured: Server) -> None:
    headers = {"Authorization": f"Bearer {secured.token('dashboards', 'reader')}"}
    before = state(secured)
    upload = secured.http.put(f"/api/v1/blobs/{OTHER_DIGEST}", content=OTHER, headers=headers)
    entry = {"path": "m.bin", "digest": DIGEST, "size": len(CONTENT)}
    create = secured.http.post(
        "/api/v1/models/demo/versions", json={"files": [entry]}, headers=headers
    )
    assert (upload.status_code, create.status_code) == (403, 403)
    assert create.json()["code"] == "permission_denied"
    assert state(secured) == before


def test_a_reader_can_get_search_and_pull(secured: Server, tmp_path: Path) -> None:
    reader = secured.remote(token=secured.token("dashboards", "reader"))
    assert reader.get("demo/1").metrics == {"accuracy": 0.9}
    assert [v.ref for v in reader.search("metrics.accuracy > 0.5")] == ["demo/1"]
    pulled = reader.pull("demo/1", tmp_path / "out")
    assert (pulled / "model.bin").read_bytes() == CONTENT


def test_a_writer_can_register_but_not_move_an_alias(
    secured: Server, workdir: Path, write: Callable[..., Path]
) -> None:
    writer = secured.remote(token=secured.token("ci", "writer"))
    write("new.bin", "version two")
    assert writer.register("demo", "new.bin").ref == "demo/2"
    with pytest.raises(PermissionDenied, match="this needs maintainer"):
        writer.set_alias("demo", "production", "demo/2")
    assert secured.registry.get("demo/2").aliases == []


def test_only_a_maintainer_deletes_a_version(
    secured: Server, workdir: Path, write: Callable[..., Path]
) -> None:
    write("new.bin", "version two")
    secured.registry.register("demo", "new.bin")
    writer = secured.remote(token=secured.token("ci", "writer"))
    with pytest.raises(PermissionDenied, match="this needs maintainer"):
        writer.delete_version("demo/2", reason="erasure")
    assert secured.registry.get("demo/2").ref == "demo/2"
    maintainer = secured.remote(token=secured.token("release", "maintainer"))
    assert maintainer.delete_version("demo/2", reason="erasure")["deleted_by"] == "release"
    reader = {"Authorization": f"Bearer {secured.token('r', 'reader')}"}
    response = secured.http.get("/api/v1/versions/demo/2", headers=reader)
    assert response.status_code == 410
    assert response.json()["code"] == "gone"
    assert response.headers["content-type"] == "application/problem+json"


def test_a_maintainer_can_move_aliases_but_not_create_tokens(secured: Server) -> None:
    maintainer = secured.remote(token=secured.token("release", "maintainer"))
    assert maintainer.set_alias("demo", "production", "demo/1").aliases == ["production"]
    with pytest.raises(PermissionDenied, match="this needs admin"):
        maintainer.create_token("escalated", role="admin")
    assert [t["name"] for t in secured.registry.tokens()] == ["release"]


def test_an_admin_can_create_tokens_that_work(secured: Server) -> None:
    admin = secured.remote(token=secured.token("ops", "admin"))
    created = admin.create_token("dashboards", role="reader")
    assert created["role"] == "reader"
    reader = secured.remote(token=created["token"])
    assert reader.get("demo/1").ref == "demo/1"
    with pytest.raises(PermissionDenied):
        reader.set_tag("demo/1", "stage", "x")


def test_the_audit_names_the_token_not_the_actor_the_client_claims(
    secured: Server, workdir: Path, write: Callable[..., Path]
) -> None:
    writer = secured.remote(token=secured.token("ci", "writer"), actor="someone-else")
    writer.set_tag("demo/1", "stage", "candidate")
    write("new.bin", "version two")
    writer.register("demo", "new.bin")
    changes = secured.registry.audit(limit=2)
    assert [(e.action, e.actor) for e in changes] == [
        ("version.create", "ci"),
        ("tag.set", "ci"),
    ]


def test_without_auth_the_actor_header_names_the_actor(make_server: MakeServer) -> None:
    server = make_server(auth=False)
    server.remote(actor="alice").set_tag("demo/1", "stage", "candidate")
    server.http.put(
        "/api/v1/tags",
        json={"ref": "demo/1", "key": "owner", "value": "bob"},
        headers={"X-Modelreg-Actor": "bob"},
    )
    server.http.put("/api/v1/tags", json={"ref": "demo/1", "key": "k", "value": "v"})
    actors = [e.actor for e in server.registry.audit(action="tag.set")]
    assert actors == ["anonymous", "bob", "alice"]
