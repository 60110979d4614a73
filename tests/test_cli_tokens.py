"""The token commands, end to end: create (the secret printed once), list, revoke.

Same harness as tests/test_cli.py: ``modelreg.cli.main`` in-process against a registry in a
temporary directory, with the one-line error contract checked on every failing call. The
registry is opened directly, as an admin makes the first token on a new server.
"""

from __future__ import annotations

import hashlib
import re

import pytest

import modelreg
from modelreg import tokens
from modelreg.tokens import Token
from test_cli import CLI
from test_cli import run as run  # the fixture, shared

SECRET = r"mr_[A-Za-z0-9_-]{43}"


@pytest.fixture(autouse=True)
def alice(monkeypatch: pytest.MonkeyPatch) -> None:
    """The registry records the login name as the actor (getpass reads these first)."""
    monkeypatch.setenv("LOGNAME", "alice")
    monkeypatch.setenv("USER", "alice")


def authenticate(run: CLI, secret: str) -> Token | None:
    with modelreg.connect(run.registry) as reg:
        found: Token | None = reg.db.read(lambda conn: tokens.authenticate(conn, secret))
        return found


def created_secret(out: str) -> str:
    [secret] = re.findall(SECRET, out)
    return secret


def test_help_lists_the_token_commands(run: CLI) -> None:
    assert re.search(r"^\s+token\s", run.ok("--help").out, re.MULTILINE)
    listed = run.ok("token").out
    for command in ("create", "list", "revoke"):
        assert re.search(rf"^\s+{command}\s", listed, re.MULTILINE), command
    create = run.ok("token", "create", "--help").out
    assert "MODELREG_TOKEN" in create
    assert "maintainer" in create


def test_create_prints_the_secret_once_with_a_warning(run: CLI) -> None:
    out = run.ok("token", "create", "--name", "admin", "--role", "admin").out
    lines = out.splitlines()
    assert lines[0] == "created token admin (admin)"
    secret = created_secret(out)
    assert lines[1] == f"token: {secret}"
    assert len(lines) == 3
    assert "will not be shown again" in lines[2]
    assert authenticate(run, secret) == Token(run.json("token", "list")[0]["id"], "admin", "admin")


def test_the_role_defaults_to_reader_and_json_holds_the_secret(run: CLI) -> None:
    created = run.json("token", "create", "--name", "dashboard")
    assert (created["name"], created["role"], created["created_by"]) == (
        "dashboard", "reader", "alice",
    )  # fmt: skip
    assert re.fullmatch(SECRET, created["token"])
    assert created["prefix"] == created["token"][:8]
    assert "token_hash" not in created
    found = authenticate(run, created["token"])
    assert found is not None
    assert found.role == "reader"


def test_list_shows_every_token_and_never_a_secret(run: CLI) -> None:
    assert "no tokens" in run.ok("token", "list").out
    assert run.json("token", "list") == []
    admin = created_secret(run.ok("token", "create", "--name", "admin", "--role", "admin").out)
    ci = created_secret(run.ok("token", "create", "--name", "ci", "--role", "writer").out)
    run.ok("token", "revoke", "ci")

    table = run.ok("token", "list").out
    listed = run.json("token", "list")
    for secret in (admin, ci):
        for text in (table, str(listed)):
            assert secret not in text
            assert secret[8:] not in text
            assert hashlib.sha256(secret.encode()).hexdigest() not in text
    assert [(t["name"], t["role"]) for t in listed] == [("admin", "admin"), ("ci", "writer")]
    assert listed[0]["revoked_at"] is None
    assert listed[1]["revoked_by"] == "alice"
    assert re.search(rf"^admin\s+admin\s+{re.escape(admin[:8])}\.\.\.\s", table, re.MULTILINE)
    revoked_row = r"^ci\s+writer\s+mr_\S+\s+[\d-]+ [\d:]+\s+alice\s+[\d-]+ [\d:]+ by alice"
    assert re.search(revoked_row, table, re.MULTILINE)
    assert "never" in table  # last used: no server has seen them


def test_revoke_refuses_the_token_from_then_on(run: CLI) -> None:
    secret = created_secret(run.ok("token", "create", "--name", "ci", "--role", "writer").out)
    assert authenticate(run, secret) is not None
    out = run.ok("token", "revoke", "ci").out
    assert re.fullmatch(r"revoked token ci \(writer\) at [\d-]+ [\d:]+ by alice\n", out)
    assert authenticate(run, secret) is None
    assert run.ok("token", "revoke", "ci").out == out  # again: nothing changes
    actions = [e["action"] for e in run.json("audit", "--entity", "ci")]
    assert actions == ["token.revoke", "token.create"]


def test_audit_events_name_the_token_but_never_hold_its_secret(run: CLI) -> None:
    secret = created_secret(run.ok("token", "create", "--name", "ci", "--role", "writer").out)
    run.ok("token", "revoke", "ci")
    events = run.ok("audit", "--json").out
    assert '"token.create"' in events
    assert '"token.revoke"' in events
    assert secret not in events
    assert secret[3:] not in events
    assert hashlib.sha256(secret.encode()).hexdigest() not in events
    assert run.ok("audit", "verify").code == 0


def test_refusals_exit_1_with_one_line(run: CLI) -> None:
    run.ok("token", "create", "--name", "ci")
    err = run.fails(1, "token", "create", "--name", "ci", "--role", "admin")
    assert err == "error: a token named 'ci' already exists\n"
    run.ok("token", "revoke", "ci")
    assert "names are not reused" in run.fails(1, "token", "create", "--name", "ci")
    assert run.fails(1, "token", "revoke", "nobody").startswith(
        "error: no token is named 'nobody' in the registry at "
    )


def test_malformed_input_is_a_usage_error(run: CLI) -> None:
    err = run.fails(2, "token", "create", "--name", "ci", "--role", "owner")
    assert err == "error: role 'owner' is invalid: use reader, writer, maintainer or admin\n"
    assert "token name 'CI Bot' is invalid" in run.fails(2, "token", "create", "--name", "CI Bot")
    assert "--name" in run.fails(2, "token", "create")
    assert "token name 'A'" in run.fails(2, "token", "revoke", "A")
    assert "NAME" in run.fails(2, "token", "revoke")
    assert run.json("token", "list") == []  # nothing was stored
