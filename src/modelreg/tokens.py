"""API tokens and roles: who may do what on a team server.

A token is a random secret (``mr_`` and 43 URL-safe characters, 256 bits) given to one client,
with a name and one role. The registry keeps only the secret's sha256 and its first characters
(the ``prefix``, to tell tokens apart in a listing): the secret is shown once, when the token is
created, and cannot be recovered. Roles are ordered, each allowing what the ones before it do:

    reader       read and pull
    writer       register versions, set tags, record runs, datasets and evaluations
    maintainer   move and delete aliases, promotion policies and approvals, retire datasets
    admin        tokens, trusted keys, webhooks, fsck and gc

    created = tokens.create(conn, "ci", "writer", actor="alice")
    created["token"]                      # "mr_...": the only time it is shown
    tokens.authenticate(conn, created["token"])   # Token(id=..., name='ci', role='writer')

Names are never reused, a revoked token's included: the audit log and the listing name a token
by its name, which therefore keeps meaning one token. Rotate by creating ``ci-2``, moving the
client to it, then revoking ``ci``. Revoking a revoked token changes nothing. Revoking every
admin token locks out token management over HTTP only: whoever can open the store itself
(``modelreg --registry DIR_OR_DB_URL token create ...``) makes a new one.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeGuard

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from modelreg import audit, schema
from modelreg.db import Database, format_time, now
from modelreg.errors import Conflict, InvalidInput, NotFound
from modelreg.records import NewTokenInfo, TokenInfo
from modelreg.refs import check_name

ROLES = ("reader", "writer", "maintainer", "admin")
MARKER = "mr_"  # every secret starts with it, so that secret scanners can spot a leaked one
PREFIX_LENGTH = 8  # "mr_" and 5 random characters: 30 of 256 bits, enough to tell tokens apart
MAX_SECRET_LENGTH = 200
# A busy client would otherwise cost a write per request; the listing needs no finer time.
USE_RECORD_SECONDS = 60.0

_tokens = schema.api_tokens
_sessions = schema.ui_sessions
SESSION_MARKER = "mrs_"  # a session secret is never a well-formed token, nor one a session
SESSION_HOURS = 12


@dataclass(frozen=True)
class Token:
    """The token a request authenticated with: who (its name) and what it may do (its role)."""

    id: str
    name: str
    role: str
    last_used_at: str | None = None

    def allows(self, needed: str) -> bool:
        """True when this token's role is ``needed`` or above it."""
        return allows(self.role, needed)


def check_role(role: str) -> str:
    """Return ``role`` if it is one of :data:`ROLES`, else raise InvalidInput naming it."""
    if not isinstance(role, str):
        raise InvalidInput(f"role must be text, not {type(role).__name__}")
    if role not in ROLES:
        raise InvalidInput(f"role {role!r} is invalid: use {', '.join(ROLES[:-1])} or {ROLES[-1]}")
    return role


def allows(role: str, needed: str) -> bool:
    """True when ``role`` is ``needed`` or ranks above it: ``allows("maintainer", "writer")``."""
    return ROLES.index(check_role(role)) >= ROLES.index(check_role(needed))


def hash_secret(secret: str) -> str:
    """The sha256 hex of a secret: what the registry stores and looks tokens up by."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def _public(row: Any) -> TokenInfo:
    """A token as listings show it: never the secret, never its hash."""
    return {
        "id": row["id"],
        "name": row["name"],
        "role": row["role"],
        "prefix": row["prefix"],
        "created_at": row["created_at"],
        "created_by": row["created_by"],
        "revoked_at": row["revoked_at"],
        "revoked_by": row["revoked_by"],
        "last_used_at": row["last_used_at"],
    }


def _find(conn: Connection, name: str) -> Any:
    # FOR UPDATE: two PostgreSQL transactions revoking one token record one revocation.
    q = sa.select(_tokens).where(_tokens.c.name == name).with_for_update()
    return conn.execute(q).mappings().first()


def create(conn: Connection, name: str, role: str, *, actor: str) -> NewTokenInfo:
    """Create a token (audited, without its secret); the result holds the secret under
    ``"token"``, the only time it is shown."""
    check_name(name, kind="token name")
    check_role(role)
    found = _find(conn, name)
    if found is not None:
        if found["revoked_at"] is not None:
            raise Conflict(
                f"a token named {name!r} existed and was revoked: token names are not reused,"
                " choose another"
            )
        raise Conflict(f"a token named {name!r} already exists")
    secret = MARKER + secrets.token_urlsafe(32)
    token_id = str(uuid.uuid4())
    row = {
        "id": token_id,
        "name": name,
        "role": role,
        "token_hash": hash_secret(secret),
        "prefix": secret[:PREFIX_LENGTH],
        "created_at": now(),
        "created_by": actor,
        "revoked_at": None,
        "revoked_by": None,
        "last_used_at": None,
    }
    conn.execute(_tokens.insert(), row)
    audit.append(
        conn,
        actor=actor,
        action="token.create",
        entity_type="token",
        entity_id=token_id,
        entity=name,
        after={"name": name, "role": role},
    )
    return {**_public(row), "token": secret}


def listing(conn: Connection) -> list[TokenInfo]:
    """Every token by name, revoked ones included; never a secret or its hash."""
    rows = conn.execute(sa.select(_tokens).order_by(_tokens.c.name)).mappings()
    return [_public(row) for row in rows]


def revoke(conn: Connection, name: str, *, actor: str) -> TokenInfo:
    """Revoke a token (audited): it never authenticates again. A revoked token is returned
    as it is, revoked when and by whom it first was, and nothing is recorded."""
    check_name(name, kind="token name")
    row = _find(conn, name)
    if row is None:
        raise NotFound(f"no token is named {name!r}")
    if row["revoked_at"] is not None:
        return _public(row)
    at = now()
    conn.execute(
        _tokens.update().where(_tokens.c.id == row["id"]).values(revoked_at=at, revoked_by=actor)
    )
    conn.execute(_sessions.delete().where(_sessions.c.token_id == row["id"]))
    audit.append(
        conn,
        actor=actor,
        action="token.revoke",
        entity_type="token",
        entity_id=row["id"],
        entity=name,
        before={"name": name, "role": row["role"], "revoked": False},
        after={"name": name, "role": row["role"], "revoked": True},
    )
    return {**_public(row), "revoked_at": at, "revoked_by": actor}


def well_formed(secret: object) -> TypeGuard[str]:
    """Whether ``secret`` could be a token at all: text of the right form and length."""
    return (
        isinstance(secret, str)
        and len(MARKER) < len(secret) <= MAX_SECRET_LENGTH
        and secret.startswith(MARKER)
        and secret.isascii()
        and secret.isprintable()
    )


def authenticate(conn: Connection, secret: object) -> Token | None:
    """The live token whose secret this is, or None: unknown, revoked, or malformed (which
    returns without a query).

    The lookup compares hashes, not secrets, so it needs no constant-time comparison: timing
    can at most tell an attacker how much of the sha256 of their guess matches a stored hash,
    and since the hash cannot be steered, that says nothing about any secret; guessing a 256-bit
    random secret outright is hopeless.
    """
    if not well_formed(secret):
        return None
    row = (
        conn.execute(
            sa.select(_tokens.c.id, _tokens.c.name, _tokens.c.role, _tokens.c.last_used_at).where(
                _tokens.c.token_hash == hash_secret(secret), _tokens.c.revoked_at.is_(None)
            )
        )
        .mappings()
        .first()
    )
    if row is None or row["role"] not in ROLES:  # an edited role fails closed
        return None
    return Token(row["id"], row["name"], row["role"], row["last_used_at"])


# -- web UI sessions ---------------------------------------------------------------------------


def open_session(conn: Connection, secret: object) -> str | None:
    """A new web UI session for the live token ``secret``, or None if it is not one.

    The result is the session's own secret, for the sign-in cookie: it opens the pages for
    SESSION_HOURS, until the user signs out, or until the token is revoked, and it is no
    API token. The registry keeps only its sha256, and drops expired sessions here.
    """
    token = authenticate(conn, secret)
    if token is None:
        return None
    moment = datetime.now(UTC)
    conn.execute(_sessions.delete().where(_sessions.c.expires_at <= format_time(moment)))
    session = SESSION_MARKER + secrets.token_urlsafe(32)
    conn.execute(
        _sessions.insert().values(
            session_hash=hash_secret(session),
            token_id=token.id,
            created_at=format_time(moment),
            expires_at=format_time(moment + timedelta(hours=SESSION_HOURS)),
        )
    )
    return session


def session_token(conn: Connection, session: object) -> Token | None:
    """The token a live, unexpired web UI session stands for, or None."""
    if not (
        isinstance(session, str)
        and len(SESSION_MARKER) < len(session) <= MAX_SECRET_LENGTH
        and session.startswith(SESSION_MARKER)
        and session.isascii()
    ):
        return None
    row = (
        conn.execute(
            sa.select(_tokens.c.id, _tokens.c.name, _tokens.c.role, _tokens.c.last_used_at)
            .join(_sessions, _sessions.c.token_id == _tokens.c.id)
            .where(
                _sessions.c.session_hash == hash_secret(session),
                _sessions.c.expires_at > now(),
                _tokens.c.revoked_at.is_(None),
            )
        )
        .mappings()
        .first()
    )
    if row is None or row["role"] not in ROLES:
        return None
    return Token(row["id"], row["name"], row["role"], row["last_used_at"])


def close_session(conn: Connection, session: object) -> None:
    """End a web UI session (signing out); an unknown one is ignored."""
    if isinstance(session, str) and session.startswith(SESSION_MARKER):
        conn.execute(_sessions.delete().where(_sessions.c.session_hash == hash_secret(session)))


def record_use(db: Database, token: Token) -> None:
    """Note that ``token`` was just used, for the listing's "last used"; at most once a minute
    per token, and without opening a transaction when its last use is that recent.

    Not audited: the audit log records changes, and a use changes nothing.
    """
    moment = datetime.now(UTC)
    cutoff = format_time(moment - timedelta(seconds=USE_RECORD_SECONDS))
    if token.last_used_at is not None and token.last_used_at > cutoff:
        return
    db.write(
        lambda conn: conn.execute(
            _tokens.update()
            .where(
                _tokens.c.id == token.id,
                sa.or_(_tokens.c.last_used_at.is_(None), _tokens.c.last_used_at <= cutoff),
            )
            .values(last_used_at=format_time(moment))
        )
    )
