"""Registered models as records of their own: created before their first version (as MLflow
clients create them), described, tagged, and deleted while they have never held a version.

A model is otherwise made by its first version (``versions.ensure_model``) and kept for good:
the rows of its versions, deleted ones included, keep its name and their numbers, which are
never given again. Each change here is audited in its own transaction, like every other.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from modelreg import audit, schema, versions
from modelreg.db import now
from modelreg.errors import AlreadyExists, Conflict, NotFound

_m, _t, _v, _a = schema.models, schema.model_tags, schema.versions, schema.aliases


@dataclass
class Registered:
    """A model with what MLflow's registry shows of it: its tags and aliases (by number).
    ``updated_at`` counts its newest version's creation, as ``Model.updated_at`` does."""

    id: str
    name: str
    description: str
    created_at: str
    created_by: str
    updated_at: str
    tags: dict[str, str] = field(default_factory=dict)
    aliases: dict[str, int] = field(default_factory=dict)


def _touch(conn: Connection, model_id: str) -> None:
    conn.execute(_m.update().where(_m.c.id == model_id).values(updated_at=now()))


def create(
    conn: Connection, name: str, *, description: str, tags: dict[str, str], actor: str
) -> str:
    """Create model ``name`` with no versions yet; AlreadyExists when there is one."""
    if conn.execute(sa.select(_m.c.id).where(_m.c.name == name)).first() is not None:
        raise AlreadyExists(f"registered model {name!r} already exists")
    stamp = now()
    model_id = str(uuid.uuid4())
    conn.execute(
        _m.insert().values(
            id=model_id,
            name=name,
            description=description,
            created_at=stamp,
            created_by=actor,
            updated_at=stamp,
        )
    )
    if tags:
        conn.execute(
            _t.insert(), [{"model_id": model_id, "key": k, "value": v} for k, v in tags.items()]
        )
    audit.append(
        conn,
        actor=actor,
        action="model.create",
        entity_type="model",
        entity_id=model_id,
        entity=name,
        after={"name": name, "description": description, "tags": tags},
    )
    return model_id


def describe(conn: Connection, name: str, description: str, *, actor: str) -> None:
    """Set a model's description (an unchanged one is not audited again)."""
    model_id = versions.model_id(conn, name)
    old = conn.execute(sa.select(_m.c.description).where(_m.c.id == model_id)).scalar_one()
    if old == description:
        return
    conn.execute(_m.update().where(_m.c.id == model_id).values(description=description))
    _touch(conn, model_id)
    audit.append(
        conn,
        actor=actor,
        action="model.describe",
        entity_type="model",
        entity_id=model_id,
        entity=name,
        before={"description": old},
        after={"description": description},
    )


def set_tag(conn: Connection, name: str, key: str, value: str | None, *, actor: str) -> None:
    """Set a model's tag, or with ``value`` None delete it (NotFound when it has none)."""
    model_id = versions.model_id(conn, name)
    where = (_t.c.model_id == model_id, _t.c.key == key)
    old = conn.execute(sa.select(_t.c.value).where(*where)).scalar()
    if value is None and old is None:
        raise NotFound(f"registered model {name!r} has no tag {key!r}")
    if old == value:
        return
    conn.execute(_t.delete().where(*where))
    if value is not None:
        conn.execute(_t.insert().values(model_id=model_id, key=key, value=value))
    _touch(conn, model_id)
    audit.append(
        conn,
        actor=actor,
        action="model.tag.set" if value is not None else "model.tag.delete",
        entity_type="model",
        entity_id=model_id,
        entity=name,
        before=None if old is None else {key: old},
        after=None if value is None else {key: value},
    )


def delete(conn: Connection, name: str, *, actor: str) -> None:
    """Delete a model that has never held a version, with its tags and policies.

    One with versions is refused: those not deleted must be deleted first, each with its
    reason; and the rows of deleted ones keep the model, their numbers and their history.
    """
    model_id = versions.model_id(conn, name)
    numbers = conn.execute(
        sa.select(_v.c.number, _v.c.deleted_at)
        .where(_v.c.model_id == model_id)
        .order_by(_v.c.number)
    ).all()
    live = [str(r.number) for r in numbers if r.deleted_at is None]
    if live:
        raise Conflict(
            f"registered model {name!r} has versions {', '.join(live)} that are not deleted:"
            " delete them first (modelreg deletes versions one by one, each with its reason)"
        )
    if numbers:
        raise Conflict(
            f"registered model {name!r} keeps the records of its deleted versions"
            f" {', '.join(str(r.number) for r in numbers)}: modelreg never gives their numbers"
            " again, and the audit log and lineage name them, so a model that has held"
            " versions stays (it serves nothing once they are deleted)"
        )
    held = sa.select(_t.c.key, _t.c.value).where(_t.c.model_id == model_id)
    tags = {r.key: r.value for r in conn.execute(held)}
    description = conn.execute(sa.select(_m.c.description).where(_m.c.id == model_id)).scalar_one()
    conn.execute(_t.delete().where(_t.c.model_id == model_id))
    policies = schema.alias_policies
    conn.execute(policies.delete().where(policies.c.model_id == model_id))
    conn.execute(_m.delete().where(_m.c.id == model_id))
    audit.append(
        conn,
        actor=actor,
        action="model.delete",
        entity_type="model",
        entity_id=model_id,
        entity=name,
        before={"name": name, "description": description, "tags": tags},
    )


# -- reading ------------------------------------------------------------------------------------

_NEWEST = (
    sa.select(_v.c.model_id, sa.func.max(_v.c.created_at).label("newest"))
    .where(versions.LIVE)
    .group_by(_v.c.model_id)
    .subquery()
)
#: When a model last changed: its own updates, or its newest version's creation.
UPDATED_AT = sa.case((_NEWEST.c.newest > _m.c.updated_at, _NEWEST.c.newest), else_=_m.c.updated_at)
#: The models, with UPDATED_AT, for a search to narrow and order.
FROM = _m.outerjoin(_NEWEST, _NEWEST.c.model_id == _m.c.id)


def load(conn: Connection, ids: Sequence[str]) -> list[Registered]:
    """Models by id, in the order of ``ids``, with their tags and aliases."""
    if not ids:
        return []
    q = sa.select(_m, UPDATED_AT.label("changed")).select_from(FROM).where(_m.c.id.in_(list(ids)))
    found = {
        r.id: Registered(r.id, r.name, r.description, r.created_at, r.created_by, r.changed)
        for r in conn.execute(q)
    }
    for r in conn.execute(sa.select(_t).where(_t.c.model_id.in_(list(found))).order_by(_t.c.key)):
        found[r.model_id].tags[r.key] = r.value
    aliased = (
        sa.select(_a.c.model_id, _a.c.alias, _v.c.number)
        .join(_v, _v.c.id == _a.c.version_id)
        .where(_a.c.model_id.in_(list(found)))
        .order_by(_a.c.alias)
    )
    for r in conn.execute(aliased):
        found[r.model_id].aliases[r.alias] = r.number
    return [found[i] for i in ids if i in found]


def get(conn: Connection, name: str) -> Registered:
    return load(conn, [versions.model_id(conn, name)])[0]
