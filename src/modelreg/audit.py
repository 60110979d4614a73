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


def verify(conn: Connection, *, full: bool = True) -> VerifyResult:
    """Check the chain; report the first event that was edited, inserted or deleted.

    ``full`` walks every event. Otherwise the walk starts after the last event a successful
    check recorded (``record_checked``): any edit after it is found in the time the new events
    take, while an edit before it that left the later hashes alone is found by a full check.
    Either way that event must still have the hash it had then, which catches a chain
    re-hashed from an edited event onwards (whole again, to a walk alone).
    """
    head = conn.execute(sa.select(schema.audit_head).where(schema.audit_head.c.id == 1)).one()
    checked = conn.execute(_CHECKED).first()
    if checked is None:
        return _walk(conn, head, after=0, prev=GENESIS)
    stored = conn.execute(_HASH_AT, {"seq": checked.seq}).scalar()
    if stored != checked.hash:
        what = "is gone" if stored is None else "has another hash"
        return VerifyResult(
            False,
            head.seq,
            head.hash,
            checked.seq,
            f"event {checked.seq}, found sound at {checked.checked_at}, {what}: the log was"
            " rewritten since",
        )
    if full:
        return _walk(conn, head, after=0, prev=GENESIS)
    return _walk(conn, head, after=checked.seq, prev=checked.hash)


def _walk(conn: Connection, head: Any, *, after: int, prev: str) -> VerifyResult:
    """Check the events after seq ``after``, the first of which must follow ``prev``."""
    expected_seq = after + 1
    t = schema.audit_events
    columns = [t.c[name] for name in _HASHED]
    rows = conn.execute(sa.select(*columns, t.c.hash).where(t.c.seq > after).order_by(t.c.seq))

    def bad(seq: int, reason: str) -> VerifyResult:
        return VerifyResult(False, expected_seq - 1, head.hash, seq, reason, since=after)

    for row in rows:
        fields = list(row)
        stored = fields.pop()
        seq = fields[0]
        if seq != expected_seq:
            what = "deleted" if seq > expected_seq else "inserted"
            return bad(expected_seq, f"event {expected_seq} was {what}")
        if fields[-1] != prev:
            return bad(seq, f"event {seq} does not follow the event before it")
        if _hash_fields(fields) != stored:
            return bad(seq, f"event {seq} was edited: its hash does not match")
        prev = stored
        expected_seq += 1
    last = expected_seq - 1
    if head.seq < last:
        return bad(
            head.seq + 1,
            f"event {head.seq + 1} was inserted: the head records event {head.seq} as the last",
        )
    if head.seq > last:
        return bad(
            last + 1,
            f"event {last + 1} was deleted: the chain ends at event {last} but the head"
            f" records event {head.seq}",
        )
    if head.hash != prev:
        return bad(last, f"event {last} was replaced: it is not the head's event")
    return VerifyResult(True, last, head.hash, since=after)


def record_checked(conn: Connection, result: VerifyResult, *, actor: str) -> None:
    """Remember the head of a chain found sound, where the next check can start."""
    if not result.ok or result.events == 0:
        return
    t = schema.audit_checked
    row = {"seq": result.events, "hash": result.head, "checked_at": now(), "checked_by": actor}
    if conn.execute(t.update().where(t.c.id == 1).values(**row)).rowcount == 0:
        conn.execute(t.insert().values(id=1, **row))


_CHECKED = sa.select(schema.audit_checked).where(schema.audit_checked.c.id == 1)
_HASH_AT = sa.select(schema.audit_events.c.hash).where(
    schema.audit_events.c.seq == sa.bindparam("seq")
)


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
