"""The audit log: one hash-chained event per mutation, written in the mutation's transaction.

Each event's hash covers its own fields and the previous event's hash, and the ``audit_head``
row holds the newest sequence number and hash. Editing, inserting or deleting any event
directly in the database breaks the chain, and :func:`verify` names the first bad event.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from modelreg import schema
from modelreg.db import insert_rows, now
from modelreg.records import AuditEvent as AuditEvent
from modelreg.records import VerifyResult as VerifyResult
from modelreg.refs import is_uuid

GENESIS = "0" * 64


def canonical(value: Any) -> str | None:
    return None if value is None else json.dumps(value, sort_keys=True, separators=(",", ":"))


_ENCODE = json.JSONEncoder(separators=(",", ":")).encode
# The fields an event's hash covers, in order; the last column read is the stored hash.
_HASHED = ("seq", "at", "actor", "action", "entity_type", "entity_id", "entity", "before",
           "after", "prev_hash")  # fmt: skip


def event_hash(row: dict[str, Any]) -> str:
    return _hash_fields([row[name] for name in _HASHED])


def _hash_fields(fields: list[Any]) -> str:
    return hashlib.sha256(_ENCODE(fields).encode()).hexdigest()


def append(
    conn: Connection,
    *,
    actor: str,
    action: str,
    entity_type: str,
    entity_id: str,
    entity: str,
    before: Any = None,
    after: Any = None,
) -> None:
    """Append one event; call inside the transaction that makes the change."""
    head = conn.execute(_HEAD).one()
    row = {
        "seq": head.seq + 1,
        "at": now(),
        "actor": actor,
        "action": action,
        "entity_type": entity_type,
        "entity_id": entity_id,
        "entity": entity,
        "before": canonical(before),
        "after": canonical(after),
        "prev_hash": head.hash,
    }
    row["hash"] = event_hash(row)
    insert_rows(conn, schema.audit_events, _COLUMNS, [tuple(row[c] for c in _COLUMNS)])
    conn.execute(_MOVE_HEAD, {"new_seq": row["seq"], "new_hash": row["hash"]})


# Built once; the head is read FOR UPDATE so that PostgreSQL writers append one at a time.
_HEAD = (
    sa.select(schema.audit_head.c.seq, schema.audit_head.c.hash)
    .where(schema.audit_head.c.id == 1)
    .with_for_update()
)
_COLUMNS = (*_HASHED, "hash")  # an event row as insert_rows writes it
_MOVE_HEAD = (
    schema.audit_head.update()
    .where(schema.audit_head.c.id == 1)
    .values(seq=sa.bindparam("new_seq"), hash=sa.bindparam("new_hash"))
)


def verify(conn: Connection) -> VerifyResult:
    """Walk the whole chain; report the first event that was edited, inserted or deleted."""
    head = conn.execute(sa.select(schema.audit_head).where(schema.audit_head.c.id == 1)).one()
    prev = GENESIS
    expected_seq = 1
    count = 0
    t = schema.audit_events
    columns = [t.c[name] for name in _HASHED]
    for row in conn.execute(sa.select(*columns, t.c.hash).order_by(t.c.seq)):
        fields = list(row)
        stored = fields.pop()
        count += 1
        seq = fields[0]
        if seq != expected_seq:
            what = "deleted" if seq > expected_seq else "inserted"
            return VerifyResult(
                False, count, head.hash, expected_seq, f"event {expected_seq} was {what}"
            )
        if fields[-1] != prev:
            return VerifyResult(
                False, count, head.hash, seq, f"event {seq} does not follow the event before it"
            )
        if _hash_fields(fields) != stored:
            return VerifyResult(
                False, count, head.hash, seq, f"event {seq} was edited: its hash does not match"
            )
        prev = stored
        expected_seq += 1
    last = expected_seq - 1
    if head.seq < last:
        return VerifyResult(
            False,
            count,
            head.hash,
            head.seq + 1,
            f"event {head.seq + 1} was inserted: the head records event {head.seq} as the last",
        )
    if head.seq > last:
        return VerifyResult(
            False,
            count,
            head.hash,
            last + 1,
            f"event {last + 1} was deleted: the chain ends at event {last} but the head"
            f" records event {head.seq}",
        )
    if head.hash != prev:
        return VerifyResult(
            False, count, head.hash, last, f"event {last} was replaced: it is not the head's event"
        )
    return VerifyResult(True, count, head.hash)


def events(
    conn: Connection,
    *,
    entity_type: str | None = None,
    entity: str | None = None,
    actor: str | None = None,
    action: str | None = None,
    limit: int = 100,
    before_seq: int | None = None,
) -> Iterator[AuditEvent]:
    """Newest first, optionally filtered; page with ``before_seq``.

    ``entity`` is a UUID (that entity's events) or a name: ``churn`` matches the model and
    all its versions and aliases, ``churn/3`` or ``churn@production`` just that one.
    """
    t = schema.audit_events
    q = sa.select(t).order_by(t.c.seq.desc()).limit(limit)
    if entity_type is not None:
        q = q.where(t.c.entity_type == entity_type)
    if entity is not None:
        if is_uuid(entity):
            q = q.where(t.c.entity_id == entity)
        elif "/" in entity or "@" in entity:
            q = q.where(t.c.entity == entity)
        else:
            q = q.where(
                sa.or_(
                    t.c.entity == entity,
                    t.c.entity.startswith(entity + "/", autoescape=True),
                    t.c.entity.startswith(entity + "@", autoescape=True),
                )
            )
    if actor is not None:
        q = q.where(t.c.actor == actor)
    if action is not None:
        q = q.where(t.c.action == action)
    if before_seq is not None:
        q = q.where(t.c.seq < before_seq)
    for row in conn.execute(q).mappings():
        yield AuditEvent(
            seq=row["seq"],
            at=row["at"],
            actor=row["actor"],
            action=row["action"],
            entity_type=row["entity_type"],
            entity_id=row["entity_id"],
            entity=row["entity"],
            before=None if row["before"] is None else json.loads(row["before"]),
            after=None if row["after"] is None else json.loads(row["after"]),
            hash=row["hash"],
        )
