"""Aliases: movable names for one version of a model, with every move kept."""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from modelreg import audit, promotion, schema, versions
from modelreg.db import now
from modelreg.errors import InvalidInput, NotFound, PromotionRefused
from modelreg.governance_records import AliasOverride
from modelreg.records import AliasMove
from modelreg.refs import Ref

_a, _e, _v = schema.aliases, schema.alias_events, schema.versions
_CURRENT = sa.select(_a.c.version_id).where(
    _a.c.model_id == sa.bindparam("model_id"), _a.c.alias == sa.bindparam("alias")
)


def _touch_model(conn: Connection, model_id: str, stamp: str) -> None:
    m = schema.models
    conn.execute(m.update().where(m.c.id == model_id).values(updated_at=stamp))


def set_alias(
    conn: Connection,
    name: str,
    alias: str,
    target: Ref,
    *,
    actor: str,
    force: bool = False,
    reason: str | None = None,
) -> str:
    """Point ``name@alias`` at the version ``target`` names; return its id.

    A protected alias first runs its promotion gates; failing ones refuse the move unless
    ``force`` is given with a ``reason``, and the override is audited with the figures.
    """
    mid = versions.model_id(conn, name)
    vid = versions.resolve(conn, target)
    new_ref = versions.ref_of(conn, vid)
    if not new_ref.startswith(f"{name}/"):
        raise InvalidInput(f"{target} is a version of {new_ref.split('/')[0]!r}, not of {name!r}")
    old = conn.execute(_CURRENT, {"model_id": mid, "alias": alias}).scalar()
    if old == vid:
        return vid
    policy = promotion.policy_for(conn, mid, alias)
    if policy is not None:
        facts = promotion.gather(conn, policy, mid, alias, vid)
        checks = promotion.evaluate(policy, facts)
        failed = [c for c in checks if not c.ok]
        if failed and not force:
            raise PromotionRefused(
                promotion.refusal(name, alias, policy, facts, checks),
                checks=[dict(c.to_dict()) for c in checks],
            )
        if failed:
            why_not = promotion.override_refusal(policy, facts, actor)
            if why_not is not None:
                raise PromotionRefused(
                    promotion.refusal(name, alias, policy, facts, checks, override_refused=why_not),
                    checks=[dict(c.to_dict()) for c in checks],
                )
            audit.append(
                conn,
                actor=actor,
                action="alias.override",
                entity_type="alias",
                entity_id=mid,
                entity=f"{name}@{alias}",
                after={
                    "version": new_ref,
                    "reason": reason,
                    "failed": [c.to_dict() for c in failed],
                    "approvers": sorted(set(facts.approvers)),
                },
            )
    stamp = now()
    if old is None:
        conn.execute(
            _a.insert().values(
                model_id=mid, alias=alias, version_id=vid, updated_at=stamp, updated_by=actor
            )
        )
    else:
        conn.execute(
            _a.update()
            .where(_a.c.model_id == mid, _a.c.alias == alias)
            .values(version_id=vid, updated_at=stamp, updated_by=actor)
        )
    conn.execute(
        _e.insert().values(model_id=mid, alias=alias, version_id=vid, at=stamp, actor=actor)
    )
    _touch_model(conn, mid, stamp)
    audit.append(
        conn,
        actor=actor,
        action="alias.set",
        entity_type="alias",
        entity_id=mid,
        entity=f"{name}@{alias}",
        before=None if old is None else {"version": versions.ref_of(conn, old)},
        after={"version": new_ref},
    )
    return vid


def previous_target(conn: Connection, name: str, alias: str) -> Ref:
    """The version the alias pointed at before its current one (for a rollback), passing
    over versions deleted since."""
    mid = versions.model_id(conn, name)
    current = conn.execute(_CURRENT, {"model_id": mid, "alias": alias}).scalar()
    q = (
        sa.select(_e.c.version_id, _v.c.deleted_at)
        .outerjoin(_v, _v.c.id == _e.c.version_id)
        .where(_e.c.model_id == mid, _e.c.alias == alias)
        .order_by(_e.c.at.desc(), _e.c.id.desc())
    )
    moves = list(conn.execute(q))
    skipped = 0
    for version_id, deleted_at in moves[1:]:
        if version_id is not None and version_id != current and deleted_at is None:
            return Ref(version_id=version_id)
        skipped += version_id is not None and version_id != current and deleted_at is not None
    if skipped:
        raise NotFound(
            f"alias {name}@{alias} has no previous target to roll back to: the versions it"
            f" pointed at before ({skipped}) were deleted since"
        )
    raise NotFound(f"alias {name}@{alias} has no previous target to roll back to")


def delete_alias(conn: Connection, name: str, alias: str, *, actor: str) -> None:
    mid = versions.model_id(conn, name)
    old = conn.execute(_CURRENT, {"model_id": mid, "alias": alias}).scalar()
    if old is None:
        raise NotFound(f"alias {name}@{alias} not found")
    stamp = now()
    conn.execute(_a.delete().where(_a.c.model_id == mid, _a.c.alias == alias))
    conn.execute(
        _e.insert().values(model_id=mid, alias=alias, version_id=None, at=stamp, actor=actor)
    )
    _touch_model(conn, mid, stamp)
    audit.append(
        conn,
        actor=actor,
        action="alias.delete",
        entity_type="alias",
        entity_id=mid,
        entity=f"{name}@{alias}",
        before={"version": versions.ref_of(conn, old)},
    )


def history(conn: Connection, name: str, alias: str) -> list[AliasMove]:
    """Every move of an alias, oldest first; ``version`` is None where the alias was
    deleted, and ``version_deleted_at`` says when a version it pointed at was deleted since."""
    mid = versions.model_id(conn, name)
    q = (
        sa.select(_e.c.at, _e.c.actor, _v.c.number, _v.c.deleted_at)
        .outerjoin(_v, _v.c.id == _e.c.version_id)
        .where(_e.c.model_id == mid, _e.c.alias == alias)
        .order_by(_e.c.at, _e.c.id)
    )
    rows: list[AliasMove] = [
        {
            "at": r.at,
            "actor": r.actor,
            "version": None if r.number is None else f"{name}/{r.number}",
            "version_deleted_at": r.deleted_at,
        }
        for r in conn.execute(q)
    ]
    if not rows:
        raise NotFound(f"alias {name}@{alias} has no history")
    return rows


def model_history(conn: Connection, name: str, *, limit: int = 100) -> list[dict[str, Any]]:
    """The latest moves of every alias of a model, newest first."""
    mid = versions.model_id(conn, name)
    q = (
        sa.select(_e.c.alias, _e.c.at, _e.c.actor, _v.c.number)
        .outerjoin(_v, _v.c.id == _e.c.version_id)
        .where(_e.c.model_id == mid)
        .order_by(_e.c.at.desc(), _e.c.id.desc())
        .limit(limit)
    )
    return [
        {
            "alias": r.alias,
            "at": r.at,
            "actor": r.actor,
            "version": None if r.number is None else f"{name}/{r.number}",
        }
        for r in conn.execute(q)
    ]


def overrides(conn: Connection, name: str) -> dict[tuple[str, str], AliasOverride]:
    """Every move of a model's aliases that was forced past failing gates, by (alias, the
    move's time): who forced it, the reason they gave, the checks that failed and who had
    approved the version.

    An override is audited (``alias.override``) in the move's own transaction, just before
    the move: its move is the alias's first onto that version, by that person, at or after it.
    """
    mid = versions.model_id(conn, name)
    t = schema.audit_events
    events = conn.execute(
        sa.select(t.c.at, t.c.actor, t.c.entity, t.c.after)
        .where(t.c.entity_type == "alias", t.c.entity_id == mid, t.c.action == "alias.override")
        .order_by(t.c.seq)
    )
    found: dict[tuple[str, str], AliasOverride] = {}
    for event in events:
        after = json.loads(event.after or "{}")
        alias = event.entity.partition("@")[2]
        number = str(after.get("version", "")).rpartition("/")[2]
        if not (number.isascii() and number.isdigit()):
            continue
        at = conn.execute(
            sa.select(_e.c.at)
            .join(_v, _v.c.id == _e.c.version_id)
            .where(
                _e.c.model_id == mid,
                _e.c.alias == alias,
                _e.c.at >= event.at,
                _e.c.actor == event.actor,
                _v.c.number == int(number),
            )
            .order_by(_e.c.at, _e.c.id)
            .limit(1)
        ).scalar()
        if at is not None:
            found[(alias, at)] = {
                "by": event.actor,
                "reason": after.get("reason"),
                "failed": after.get("failed", []),
                "approvers": after.get("approvers", []),
            }
    return found
