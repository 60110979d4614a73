"""Experiments in the store: named folders of runs, as MLflow clients file them, with tags and
a lifecycle (``active``, ``deleted``); each change is audited.

Experiment ``0``, "Default", exists from the start (migration 0009) and holds every run made
by modelreg's SDK; it cannot be deleted. Deleting an experiment hides it and its runs from
MLflow's searches and refuses new runs in it; nothing is erased, and restoring brings all back.
Searching experiments is in ``tracking_search``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from modelreg import audit, schema
from modelreg.db import now
from modelreg.errors import AlreadyExists, Conflict, InvalidInput, NotFound
from modelreg.records import Experiment as Experiment

DEFAULT = 0
STAGES = ("active", "deleted")
_e = schema.experiments
_t = schema.experiment_tags


def load_many(conn: Connection, rows: Iterable[sa.Row[tuple[object, ...]]]) -> list[Experiment]:
    """Experiments from their rows, in order, each with its tags."""
    found = list(rows)
    tags: dict[int, dict[str, str]] = {r.id: {} for r in found}
    ids = list(tags)
    for start in range(0, len(ids), 500):
        q = sa.select(_t).where(_t.c.experiment_id.in_(ids[start : start + 500]))
        for t in conn.execute(q):
            tags[t.experiment_id][t.key] = t.value
    return [
        Experiment(r.id, r.name, r.lifecycle_stage, r.created_at, r.updated_at, tags[r.id])
        for r in found
    ]


def get(conn: Connection, experiment_id: int) -> Experiment:
    row = conn.execute(sa.select(_e).where(_e.c.id == experiment_id)).first()
    if row is None:
        raise NotFound(f"experiment {experiment_id} not found")
    return load_many(conn, [row])[0]


def by_name(conn: Connection, name: str) -> Experiment:
    row = conn.execute(sa.select(_e).where(_e.c.name == name)).first()
    if row is None:
        raise NotFound(f"experiment {name!r} not found")
    return load_many(conn, [row])[0]


def run_counts(conn: Connection, ids: Iterable[int]) -> dict[int, tuple[int, str | None]]:
    """{experiment id: (its runs that are not deleted, the latest one's start time)} for
    ``ids``; an experiment without such runs is (0, None)."""
    wanted = list(ids)
    found: dict[int, tuple[int, str | None]] = dict.fromkeys(wanted, (0, None))
    r = schema.runs
    for start in range(0, len(wanted), 500):
        q = (
            sa.select(r.c.experiment_id, sa.func.count(), sa.func.max(r.c.started_at))
            .where(r.c.experiment_id.in_(wanted[start : start + 500]), r.c.deleted_at.is_(None))
            .group_by(r.c.experiment_id)
        )
        for experiment_id, count, latest in conn.execute(q):
            found[experiment_id] = (int(count), latest)
    return found


def check_active(conn: Connection, experiment_id: int) -> Experiment:
    """The experiment, if it exists and is not deleted (a run may be filed under it)."""
    found = get(conn, experiment_id)
    if found.lifecycle_stage != "active":
        raise Conflict(
            f"experiment {experiment_id} ({found.name!r}) is deleted: restore it to add runs"
        )
    return found


def create(conn: Connection, name: str, *, tags: Mapping[str, str], actor: str) -> int:
    """A new experiment's id; a name taken by another, deleted or not, is refused."""
    taken = conn.execute(sa.select(_e.c.id, _e.c.lifecycle_stage).where(_e.c.name == name)).first()
    if taken is not None:
        raise AlreadyExists(_taken(name, taken.lifecycle_stage))
    stamp = now()
    new_id = conn.execute(
        _e.insert()
        .values(name=name, lifecycle_stage="active", created_at=stamp, updated_at=stamp)
        .returning(_e.c.id)
    ).scalar_one()
    if tags:
        conn.execute(
            _t.insert(), [{"experiment_id": new_id, "key": k, "value": v} for k, v in tags.items()]
        )
    _audit(conn, new_id, name, "experiment.create", actor, after={"name": name, "tags": tags})
    return int(new_id)


def _taken(name: str, stage: str) -> str:
    if stage == "deleted":
        return (
            f"experiment {name!r} already exists, deleted: restore it, or give the new one"
            " another name"
        )
    return f"experiment {name!r} already exists"


def rename(conn: Connection, experiment_id: int, name: str, *, actor: str) -> None:
    old = get(conn, experiment_id)
    if old.name == name:
        return
    taken = conn.execute(sa.select(_e.c.lifecycle_stage).where(_e.c.name == name)).first()
    if taken is not None:
        raise AlreadyExists(_taken(name, taken.lifecycle_stage))
    _touch(conn, experiment_id, name=name)
    _audit(
        conn,
        experiment_id,
        name,
        "experiment.rename",
        actor,
        before={"name": old.name},
        after={"name": name},
    )


def set_stage(conn: Connection, experiment_id: int, stage: str, *, actor: str) -> None:
    """Delete (``deleted``) or restore (``active``) an experiment; the default one stays."""
    if stage not in STAGES:
        raise InvalidInput(f"lifecycle stage {stage!r} is invalid: use one of {', '.join(STAGES)}")
    if experiment_id == DEFAULT and stage == "deleted":
        raise InvalidInput("the default experiment (0) cannot be deleted: it holds the SDK's runs")
    old = get(conn, experiment_id)
    if old.lifecycle_stage == stage:
        return
    _touch(conn, experiment_id, lifecycle_stage=stage)
    action = "experiment.delete" if stage == "deleted" else "experiment.restore"
    _audit(
        conn,
        experiment_id,
        old.name,
        action,
        actor,
        before={"lifecycle_stage": old.lifecycle_stage},
        after={"lifecycle_stage": stage},
    )


def set_tag(conn: Connection, experiment_id: int, key: str, value: str, *, actor: str) -> None:
    found = get(conn, experiment_id)
    old = found.tags.get(key)
    if old == value:
        return
    if old is None:
        conn.execute(_t.insert().values(experiment_id=experiment_id, key=key, value=value))
    else:
        conn.execute(
            _t.update()
            .where(_t.c.experiment_id == experiment_id, _t.c.key == key)
            .values(value=value)
        )
    _touch(conn, experiment_id)
    before = None if old is None else {key: old}
    _audit(
        conn, experiment_id, found.name, "experiment.tag", actor, before=before, after={key: value}
    )


def delete_tag(conn: Connection, experiment_id: int, key: str, *, actor: str) -> None:
    found = get(conn, experiment_id)
    if key not in found.tags:
        raise NotFound(f"experiment {experiment_id} has no tag {key!r}")
    conn.execute(_t.delete().where(_t.c.experiment_id == experiment_id, _t.c.key == key))
    _touch(conn, experiment_id)
    _audit(
        conn,
        experiment_id,
        found.name,
        "experiment.untag",
        actor,
        before={key: found.tags[key]},
    )


def _touch(conn: Connection, experiment_id: int, **values: str) -> None:
    conn.execute(_e.update().where(_e.c.id == experiment_id).values(updated_at=now(), **values))


def _audit(
    conn: Connection,
    experiment_id: int,
    name: str,
    action: str,
    actor: str,
    *,
    before: object = None,
    after: object = None,
) -> None:
    audit.append(
        conn,
        actor=actor,
        action=action,
        entity_type="experiment",
        entity_id=str(experiment_id),
        entity=name[:300],
        before=before,
        after=after,
    )
