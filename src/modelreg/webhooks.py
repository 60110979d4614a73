"""Webhooks: registry events delivered over HTTP to CI/CD systems, signed and retried.

The audit log is the event stream. A webhook keeps a cursor (the last audit event it handled)
and a delivery pass sends the events after it that match its actions, oldest first, one at a
time: a change and its event are committed together, so nothing costs more at write time and no
event can be lost between the two. A new webhook starts at the current end of the log.

    hook = reg.add_webhook("ci", "https://ci.example.com/hooks/modelreg", actions=["alias."])
    hook["secret"]          # shown once: the receiver checks signatures with it
    reg.deliver_webhooks()  # one pass; run it from a timer (cron, systemd) or a server loop

Each event is POSTed as JSON (the audit event: seq, at, actor, action, entity_type, entity_id,
entity, before, after, hash) with ``X-Modelreg-Event`` (the action), ``X-Modelreg-Delivery``
(the same id for every attempt of one event to one webhook, so a receiver can drop repeats),
``X-Modelreg-Timestamp`` (Unix seconds) and ``X-Modelreg-Signature``: ``sha256=`` and the hex
HMAC-SHA256, keyed by the webhook's secret, of ``f"{timestamp}."`` followed by the body (see
:func:`verify_signature`). A 2xx answer delivers the event; anything else, a redirect included
(redirects are never followed), is retried with exponential backoff, and after
``MAX_ATTEMPTS`` the event is marked ``failed`` and the webhook moves on to the next one.

This module holds the rules and the store (signatures, actions, secrets, the webhooks and
their delivery log); ``webhook_delivery`` is the sender, and ``outbound`` the guard against
server-side request forgery that every URL passes, when added and before each connection.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from modelreg import audit, schema
from modelreg.db import now
from modelreg.errors import Conflict, InvalidInput, NotFound
from modelreg.outbound import Target, shown_url
from modelreg.records import NewWebhookInfo, WebhookDelivery, WebhookInfo
from modelreg.refs import check_name

if TYPE_CHECKING:
    pass

_ACTION = re.compile(r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*\.?")
_hooks = schema.webhooks
_log = schema.webhook_deliveries
_events = schema.audit_events


# -- signatures ------------------------------------------------------------------------------


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The ``X-Modelreg-Signature`` value: HMAC-SHA256 over ``f"{timestamp}."`` + body."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"sha256={digest.hexdigest()}"


def verify_signature(
    secret: str,
    timestamp: str,
    body: bytes,
    signature: str,
    *,
    tolerance_seconds: float = 300,
    at: datetime | None = None,
) -> bool:
    """What a receiver checks: the signature matches and the timestamp is recent (no replay)."""
    try:
        sent = float(timestamp)
    except ValueError:
        return False
    moment = (at or datetime.now(UTC)).timestamp()
    if abs(moment - sent) > tolerance_seconds:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), signature)


# -- registering -----------------------------------------------------------------------------


def check_actions(actions: Sequence[str]) -> list[str]:
    """Action names (``alias.set``), prefixes ending in a dot (``alias.``) or ``*`` for all."""
    if isinstance(actions, str) or not actions:
        raise InvalidInput('give the actions as a list, e.g. ["*"] or ["alias.", "version.create"]')
    out: list[str] = []
    for action in actions:
        if not isinstance(action, str) or not (
            action == "*" or (len(action) <= 64 and _ACTION.fullmatch(action))
        ):
            raise InvalidInput(
                f"webhook action {action!r} is invalid: use an action (alias.set), a prefix"
                " ending in a dot (alias.) or * for every event"
            )
        if action not in out:
            out.append(action)
    return ["*"] if "*" in out else out


def check_secret(secret: str | None) -> str:
    if secret is None:
        return secrets.token_urlsafe(32)
    if not isinstance(secret, str) or not re.fullmatch(r"[\x21-\x7e]{16,256}", secret):
        raise InvalidInput(
            "a webhook secret must be 16 to 256 printable ASCII characters without spaces"
        )
    return secret


def add(
    conn: Connection,
    name: str,
    target: Target,
    *,
    actions: list[str],
    secret: str,
    actor: str,
) -> NewWebhookInfo:
    """Register a webhook (audited, without its secret); it gets events from now on."""
    check_name(name, kind="webhook name")
    if conn.execute(sa.select(_hooks.c.id).where(_hooks.c.name == name)).first() is not None:
        raise Conflict(f"a webhook named {name!r} already exists")
    hook_id = str(uuid.uuid4())
    # The URL's path and query may be a credential (many chat and CI hooks work that way):
    # the audit log, which every reader sees, keeps the origin and a digest of the URL.
    audit.append(
        conn,
        actor=actor,
        action="webhook.add",
        entity_type="webhook",
        entity_id=hook_id,
        entity=name,
        after=_audited(name, target.url, actions),
    )
    head = conn.execute(sa.select(schema.audit_head.c.seq)).scalar_one()
    row = {
        "id": hook_id,
        "name": name,
        "url": target.url,
        "secret": secret,
        "actions": json.dumps(actions),
        "cursor_seq": head,
        "created_at": now(),
        "created_by": actor,
        "active": True,
    }
    conn.execute(_hooks.insert(), row)
    return {**_public(conn, row), "url": row["url"], "secret": secret}


def remove(conn: Connection, name: str, *, actor: str) -> WebhookInfo:
    """Remove a webhook and its delivery log (audited); pending events are dropped."""
    check_name(name, kind="webhook name")
    row = conn.execute(sa.select(_hooks).where(_hooks.c.name == name)).mappings().first()
    if row is None:
        raise NotFound(f"no webhook is named {name!r}")
    found = _public(conn, row)
    conn.execute(_log.delete().where(_log.c.webhook_id == row["id"]))
    conn.execute(_hooks.delete().where(_hooks.c.id == row["id"]))
    audit.append(
        conn,
        actor=actor,
        action="webhook.remove",
        entity_type="webhook",
        entity_id=row["id"],
        entity=name,
        before=_audited(name, row["url"], json.loads(row["actions"])),
    )
    return found


def listing(conn: Connection) -> list[WebhookInfo]:
    """Every webhook by name, with its backlog; never the secrets."""
    rows = conn.execute(sa.select(_hooks).order_by(_hooks.c.name)).mappings()
    return [_public(conn, row) for row in rows]


def deliveries(
    conn: Connection, name: str | None = None, *, limit: int = 100
) -> list[WebhookDelivery]:
    """The delivery log, newest attempt first, for one webhook or all."""
    if not isinstance(limit, int) or not 1 <= limit <= 10_000:
        raise InvalidInput(f"limit must be between 1 and 10000, not {limit!r}")
    q = (
        sa.select(_log, _hooks.c.name)
        .join(_hooks, _hooks.c.id == _log.c.webhook_id)
        .order_by(_log.c.id.desc())
        .limit(limit)
    )
    if name is not None:
        check_name(name, kind="webhook name")
        if conn.execute(sa.select(_hooks.c.id).where(_hooks.c.name == name)).first() is None:
            raise NotFound(f"no webhook is named {name!r}")
        q = q.where(_hooks.c.name == name)
    return [
        {
            "id": row["id"],
            "webhook": row["name"],
            "delivery": delivery_id(row["webhook_id"], row["event_seq"]),
            "event_seq": row["event_seq"],
            "action": row["action"],
            "attempt": row["attempt"],
            "status": row["status"],
            "status_code": row["status_code"],
            "error": row["error"],
            "at": row["at"],
            "next_attempt_at": row["next_attempt_at"],
        }
        for row in conn.execute(q).mappings()
    ]


def delivery_id(webhook_id: str, seq: int) -> str:
    """The ``X-Modelreg-Delivery`` id: one per event and webhook, the same on every retry."""
    return str(uuid.uuid5(uuid.UUID(webhook_id), str(seq)))


def _public(conn: Connection, row: Any) -> WebhookInfo:
    actions = json.loads(row["actions"])
    pending = conn.execute(
        sa.select(sa.func.count())
        .select_from(_events)
        .where(_events.c.seq > row["cursor_seq"], matches(actions))
    ).scalar_one()
    return {
        "name": row["name"],
        "url": shown_url(row["url"]),
        "actions": actions,
        "active": bool(row["active"]),
        "cursor_seq": row["cursor_seq"],
        "pending": pending,
        "created_at": row["created_at"],
        "created_by": row["created_by"],
    }


def _audited(name: str, url: str, actions: list[str]) -> dict[str, Any]:
    parts = urlsplit(url)  # checked when added: no credentials in the netloc
    return {
        "name": name,
        "origin": f"{parts.scheme.lower()}://{parts.netloc.lower()}",
        "url_sha256": hashlib.sha256(url.encode()).hexdigest(),
        "actions": actions,
    }


def matches(actions: list[str]) -> sa.ColumnElement[bool]:
    if "*" in actions:
        return sa.true()
    return sa.or_(
        *(
            _events.c.action.startswith(a, autoescape=True)
            if a.endswith(".")
            else _events.c.action == a
            for a in actions
        )
    )
