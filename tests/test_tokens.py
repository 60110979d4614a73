"""API tokens and roles: what the registry keeps of a token, who it lets in, and what it audits.

The store functions (modelreg.tokens) are what the server calls on every request; the SDK
methods (create_token, tokens, revoke_token) are what an admin calls.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

import modelreg
from modelreg import schema, tokens
from modelreg.errors import Conflict, InvalidInput, NotFound
from modelreg.local import LocalRegistry
from modelreg.tokens import Token


@pytest.fixture
def reg(tmp_path: Path) -> Iterator[LocalRegistry]:
    with modelreg.connect(tmp_path / "reg", actor="alice") as registry:
        yield registry


def stored(reg: LocalRegistry) -> list[dict[str, Any]]:
    """The api_tokens table as it is, every column."""
    rows = reg.db.read(lambda conn: conn.execute(sa.select(schema.api_tokens)).mappings().all())
    return [dict(row) for row in rows]


def authenticate(reg: LocalRegistry, secret: object) -> Token | None:
    return reg.db.read(lambda conn: tokens.authenticate(conn, secret))


# -- roles ---------------------------------------------------------------------------------


def test_roles_are_ordered_each_allowing_what_the_ones_below_do() -> None:
    assert tokens.ROLES == ("reader", "writer", "maintainer", "admin")
    for i, role in enumerate(tokens.ROLES):
        for j, needed in enumerate(tokens.ROLES):
            assert tokens.allows(role, needed) == (i >= j), (role, needed)
    assert Token("id", "ci", "maintainer").allows("writer")
    assert not Token("id", "ci", "writer").allows("maintainer")


def test_an_unknown_role_is_refused_naming_it_and_the_valid_ones() -> None:
    assert tokens.check_role("writer") == "writer"
    with pytest.raises(InvalidInput) as info:
        tokens.check_role("owner")
    assert str(info.value) == "role 'owner' is invalid: use reader, writer, maintainer or admin"
    with pytest.raises(InvalidInput, match="role must be text, not int"):
        tokens.check_role(3)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="'Admin'"):
        tokens.allows("Admin", "reader")
    with pytest.raises(InvalidInput, match="'superuser'"):
        tokens.allows("admin", "superuser")


# -- creating: the secret is shown once and only its hash is kept ---------------------------


def test_create_shows_the_secret_once_and_stores_only_its_hash(reg: LocalRegistry) -> None:
    created = reg.create_token("ci", role="writer")
    secret = created["token"]
    assert secret.startswith("mr_")
    assert len(secret) == 3 + 43  # 32 random bytes, URL-safe base64
    assert created["name"] == "ci"
    assert created["role"] == "writer"
    assert created["prefix"] == secret[:8]
    assert created["created_by"] == "alice"
    assert created["revoked_at"] is None
    assert "token_hash" not in created

    [row] = stored(reg)
    assert row["token_hash"] == hashlib.sha256(secret.encode()).hexdigest()
    assert row["id"] == created["id"]
    assert secret not in json.dumps(row)  # in no column, not even in part beyond the prefix
    assert secret[8:20] not in json.dumps(row)


def test_every_token_gets_a_new_random_secret(reg: LocalRegistry) -> None:
    secrets = {reg.create_token(f"t{i}")["token"] for i in range(20)}
    assert len(secrets) == 20
    assert len({s[:8] for s in secrets}) > 1


def test_the_role_defaults_to_reader(reg: LocalRegistry) -> None:
    assert reg.create_token("dashboard")["role"] == "reader"


def test_listing_never_shows_a_secret_or_its_hash(reg: LocalRegistry) -> None:
    a = reg.create_token("ci", role="writer")
    b = reg.create_token("admin", role="admin")
    reg.revoke_token("ci")
    listed = reg.tokens()
    assert [t["name"] for t in listed] == ["admin", "ci"]
    text = json.dumps(listed)
    for created in (a, b):
        assert created["token"] not in text
        assert hashlib.sha256(created["token"].encode()).hexdigest() not in text
    assert all("token" not in t and "token_hash" not in t for t in listed)
    assert set(listed[0]) == {
        "id", "name", "role", "prefix", "created_at", "created_by", "revoked_at", "revoked_by",
        "last_used_at",
    }  # fmt: skip


def test_names_and_roles_are_checked_before_anything_is_stored(reg: LocalRegistry) -> None:
    with pytest.raises(InvalidInput, match="token name 'CI Bot' is invalid"):
        reg.create_token("CI Bot")
    with pytest.raises(InvalidInput, match="token name must be a string"):
        reg.create_token(None)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="role 'root' is invalid"):
        reg.create_token("ci", role="root")
    assert stored(reg) == []
    assert reg.audit() == []


def test_a_duplicate_name_is_refused(reg: LocalRegistry) -> None:
    first = reg.create_token("ci", role="writer")
    with pytest.raises(Conflict, match="a token named 'ci' already exists"):
        reg.create_token("ci", role="admin")
    assert [(r["name"], r["role"]) for r in stored(reg)] == [("ci", "writer")]
    assert authenticate(reg, first["token"]) == Token(first["id"], "ci", "writer")


def test_a_revoked_name_is_not_reused(reg: LocalRegistry) -> None:
    """The audit log names tokens by name, so one name keeps meaning one token."""
    reg.create_token("ci")
    reg.revoke_token("ci")
    with pytest.raises(Conflict, match="'ci' existed and was revoked: token names are not reused"):
        reg.create_token("ci")
    assert reg.create_token("ci-2")["name"] == "ci-2"


# -- authenticating --------------------------------------------------------------------------


def test_a_live_token_authenticates_with_its_name_and_role(reg: LocalRegistry) -> None:
    created = reg.create_token("ci", role="maintainer")
    found = authenticate(reg, created["token"])
    assert found == Token(created["id"], "ci", "maintainer")
    assert found is not None
    assert found.allows("writer")
    assert not found.allows("admin")


def test_a_revoked_token_never_authenticates(reg: LocalRegistry) -> None:
    kept = reg.create_token("kept")
    gone = reg.create_token("gone", role="admin")
    revoked = reg.revoke_token("gone")
    assert revoked["revoked_at"] is not None
    assert revoked["revoked_by"] == "alice"
    assert authenticate(reg, gone["token"]) is None
    assert authenticate(reg, kept["token"]) is not None


@pytest.mark.parametrize(
    "secret",
    [
        "",
        "mr_",
        "mr_" + "A" * 43,  # well formed, but no such token
        "Bearer mr_abc",
        "mr_abc\x00def",
        "mr_" + "a" * 300,
        "mr_ünïcode",
        "mr_tab\there",
        None,
        42,
        b"mr_bytes",
        ["mr_abc"],
    ],
)
def test_unknown_malformed_or_empty_secrets_do_not_authenticate(
    reg: LocalRegistry, secret: object
) -> None:
    reg.create_token("ci")
    assert authenticate(reg, secret) is None


def test_malformed_secrets_are_refused_without_a_query(reg: LocalRegistry) -> None:
    class NoQueries:
        def execute(self, *args: object) -> None:
            raise AssertionError("queried the database")

    for secret in ("", "x" * 201, "mr_a\x00b", 7, None, "not-a-token"):
        assert tokens.authenticate(NoQueries(), secret) is None  # type: ignore[arg-type]


def test_a_token_whose_stored_role_was_edited_to_nonsense_fails_closed(
    reg: LocalRegistry,
) -> None:
    created = reg.create_token("ci")
    reg.db.write(lambda conn: conn.execute(schema.api_tokens.update().values(role="root")))
    assert authenticate(reg, created["token"]) is None


def test_uses_are_recorded_at_most_once_a_minute(reg: LocalRegistry) -> None:
    created = reg.create_token("ci")
    first = authenticate(reg, created["token"])
    assert first is not None
    assert first.last_used_at is None
    tokens.record_use(reg.db, first)
    [listed] = reg.tokens()
    used_at = listed["last_used_at"]
    assert used_at is not None

    again = authenticate(reg, created["token"])
    assert again is not None
    assert again.last_used_at == used_at
    tokens.record_use(reg.db, again)  # a minute has not passed: nothing is written
    assert reg.tokens()[0]["last_used_at"] == used_at

    long_ago = "2026-01-01T00:00:00.000000Z"
    reg.db.write(
        lambda conn: conn.execute(schema.api_tokens.update().values(last_used_at=long_ago))
    )
    later = authenticate(reg, created["token"])
    assert later is not None
    tokens.record_use(reg.db, later)
    assert reg.tokens()[0]["last_used_at"] > used_at
    assert [e.action for e in reg.audit()] == ["token.create"]  # a use is not a change


# -- revoking --------------------------------------------------------------------------------


def test_revoking_an_unknown_token_is_not_found(reg: LocalRegistry) -> None:
    with pytest.raises(NotFound, match="no token is named 'nobody'"):
        reg.revoke_token("nobody")
    with pytest.raises(InvalidInput, match="token name"):
        reg.revoke_token("Not A Name")


def test_revoking_twice_changes_nothing_the_second_time(reg: LocalRegistry) -> None:
    reg.create_token("ci")
    first = reg.revoke_token("ci")
    second = reg.revoke_token("ci")
    assert second == first
    assert [e.action for e in reg.audit()] == ["token.revoke", "token.create"]


# -- audit -----------------------------------------------------------------------------------


def test_create_and_revoke_are_audited_without_the_secret(reg: LocalRegistry) -> None:
    created = reg.create_token("ci", role="writer")
    reg.revoke_token("ci")
    revoke, create = reg.audit()
    assert (create.action, create.entity_type, create.entity) == ("token.create", "token", "ci")
    assert create.entity_id == created["id"]
    assert create.actor == "alice"
    assert create.after == {"name": "ci", "role": "writer"}
    assert (revoke.action, revoke.entity) == ("token.revoke", "ci")
    assert revoke.before == {"name": "ci", "role": "writer", "revoked": False}
    assert revoke.after == {"name": "ci", "role": "writer", "revoked": True}

    secret = created["token"]
    digest = hashlib.sha256(secret.encode()).hexdigest()
    rows = reg.db.read(lambda conn: conn.execute(sa.select(schema.audit_events)).all())
    everything = json.dumps([list(r) for r in rows])
    assert secret not in everything
    assert secret[3:] not in everything
    assert digest not in everything
    assert reg.verify_audit().ok


def test_the_actor_is_who_the_registry_acts_for(tmp_path: Path) -> None:
    with modelreg.connect(tmp_path / "reg", actor="bob") as reg:
        created = reg.create_token("ci")
        assert created["created_by"] == "bob"
        assert reg.revoke_token("ci")["revoked_by"] == "bob"
        assert {e.actor for e in reg.audit(entity_type="token")} == {"bob"}
