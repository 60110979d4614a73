"""Training runs in the store: a run's rows, its parameters, metric history and datasets, each
change audited. The context manager a training script holds (``reg.start_run``) is ``run.Run``.
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from modelreg import audit, capture, datasets, schema, versions
from modelreg.datasets import DatasetUse
from modelreg.db import insert_rows, now
from modelreg.errors import Conflict, InvalidInput, NotFound
from modelreg.values import check_key, check_metric

if TYPE_CHECKING:
    pass


def encode(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


# -- the run records -------------------------------------------------------------------------


def insert(
    conn: Connection,
    *,
    run_id: str,
    name: str,
    params: dict[str, str],
    code: dict[str, Any],
    env: capture.Environment,
    facts: capture.ProcessFacts,
    actor: str,
) -> None:
    conn.execute(
        schema.runs.insert().values(
            id=run_id,
            name=name,
            status="running",
            started_at=now(),
            hostname=facts.hostname,
            user=facts.user,
            command=facts.command,
            code=encode(code),
            environment_digest=versions.ensure_environment(conn, env),
            params=encode(params),
        )
    )
    audit.append(
        conn,
        actor=actor,
        action="run.start",
        entity_type="run",
        entity_id=run_id,
        entity=name or run_id,
        after={"name": name, "params": params, "code": code},
    )


STATUSES = ("finished", "failed")


def check_exists(conn: Connection, run_id: str) -> None:
    found = conn.execute(sa.select(schema.runs.c.id).where(schema.runs.c.id == run_id)).first()
    if found is None:
        raise NotFound(f"run {run_id!r} not found")


def check_live(conn: Connection, run_id: str) -> str:
    """The name of a running run; NotFound or Conflict when there is none by that id."""
    row = conn.execute(
        sa.select(schema.runs.c.name, schema.runs.c.status).where(schema.runs.c.id == run_id)
    ).first()
    if row is None:
        raise NotFound(f"run {run_id!r} not found")
    if row.status != "running":
        raise Conflict(f"run {run_id} has ended ({row.status}): start a new run")
    return str(row.name)


def finish(
    conn: Connection,
    run_id: str,
    *,
    status: str,
    error: str | None,
    metrics: dict[str, float],
    datasets: list[DatasetUse],
    actor: str,
) -> None:
    if status not in STATUSES:
        raise InvalidInput(f"run status {status!r} is invalid: use one of {', '.join(STATUSES)}")
    name = check_live(conn, run_id)
    conn.execute(
        schema.runs.update()
        .where(schema.runs.c.id == run_id)
        .values(status=status, ended_at=now(), error=error)
    )
    audit.append(
        conn,
        actor=actor,
        action="run.end",
        entity_type="run",
        entity_id=run_id,
        entity=name or run_id,
        after={
            "status": status,
            "error": error,
            "metrics": metrics,
            "datasets": [d.to_dict() for d in datasets],
        },
    )


def update_params(
    conn: Connection, run_id: str, params: dict[str, str], new: dict[str, str], *, actor: str
) -> None:
    check_live(conn, run_id)
    conn.execute(
        schema.runs.update().where(schema.runs.c.id == run_id).values(params=encode(params))
    )
    audit.append(
        conn,
        actor=actor,
        action="run.params",
        entity_type="run",
        entity_id=run_id,
        entity=run_id,
        after=new,
    )


MAX_POINTS = 100_000
MAX_STEP = 2**31 - 1  # a 32-bit integer column on every backend


def check_points(points: Any) -> list[tuple[str, float, int]]:
    """Metric points as (key, value, step) triples, each checked.

    A batch repeats a few keys many times: each distinct key is checked once, and a finite
    float passes without conversion.
    """
    if not isinstance(points, (list, tuple)) or len(points) > MAX_POINTS:
        raise InvalidInput(f"metric points must be a list of at most {MAX_POINTS} entries")
    keys: set[str] = set()
    checked = []
    for point in points:
        if not isinstance(point, (list, tuple)) or len(point) != 3:
            raise InvalidInput(f"a metric point is (key, value, step), not {point!r}")
        key, value, step = point
        if type(key) is not str or key not in keys:
            keys.add(check_key(key, kind="metric"))
        if type(step) is not int and (isinstance(step, bool) or not isinstance(step, int)):
            raise InvalidInput(f"metric {key!r}: step must be a non-negative integer")
        if not 0 <= step <= MAX_STEP:
            raise InvalidInput(f"metric {key!r}: step must be from 0 to {MAX_STEP}, not {step}")
        if type(value) is not float or not math.isfinite(value):
            value = check_metric(key, value)
        checked.append((key, value, int(step)))
    return checked


def add_metrics(
    conn: Connection, run_id: str, points: list[tuple[str, float, int]], *, actor: str
) -> None:
    """Append metric points (key, value, step) to a run's history, audited like any change."""
    check_live(conn, run_id)
    if not points:  # nothing to record, nor to audit
        return
    stamp = now()
    insert_rows(
        conn,
        schema.run_metrics,
        ("run_id", "key", "value", "step", "timestamp"),
        [(run_id, k, v, s, stamp) for k, v, s in points],
    )
    # The event summarises the batch and carries the digest of its points (as stored, in
    # order): a history of 100,000 points is not copied into the log, yet any edit of a row
    # it covers no longer matches.
    keys = sorted({k for k, _, _ in points})
    steps = [s for _, _, s in points]
    audit.append(
        conn,
        actor=actor,
        action="run.metric",
        entity_type="run",
        entity_id=run_id,
        entity=run_id,
        after={
            "points": len(points),
            "keys": keys[:20] + (["..."] if len(keys) > 20 else []),
            "steps": [min(steps), max(steps)],
            "digest": points_digest(points),
        },
    )


def points_digest(points: list[tuple[str, float, int]]) -> str:
    """sha256 of a batch of metric points (key, value, step) as canonical JSON."""
    text = json.dumps([[k, v, s] for k, v, s in points], separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def add_dataset(conn: Connection, run_id: str, use: DatasetUse, *, actor: str) -> None:
    check_live(conn, run_id)
    did = datasets.ensure(conn, use)
    t = schema.run_datasets
    exists = conn.execute(
        sa.select(t.c.run_id).where(
            t.c.run_id == run_id, t.c.dataset_id == did, t.c.role == use.role
        )
    ).first()
    if exists is None:
        conn.execute(t.insert().values(run_id=run_id, dataset_id=did, role=use.role))
        audit.append(
            conn,
            actor=actor,
            action="run.dataset",
            entity_type="run",
            entity_id=run_id,
            entity=run_id,
            after=use.to_dict(),
        )


def record(conn: Connection, run_id: str) -> dict[str, Any]:
    """A run as lineage shows it, with the full metric history per key."""
    r = conn.execute(sa.select(schema.runs).where(schema.runs.c.id == run_id)).one()
    t = schema.run_metrics
    history: dict[str, list[dict[str, Any]]] = {}
    q = sa.select(t).where(t.c.run_id == run_id).order_by(t.c.key, t.c.step, t.c.id)
    for m in conn.execute(q):
        history.setdefault(m.key, []).append(
            {"step": m.step, "value": m.value, "timestamp": m.timestamp}
        )
    return {
        "id": r.id,
        "name": r.name,
        "status": r.status,
        "started_at": r.started_at,
        "ended_at": r.ended_at,
        "hostname": r.hostname,
        "user": r.user,
        "command": r.command,
        "params": json.loads(r.params),
        "error": r.error,
        "metric_history": history,
        "code": json.loads(r.code),
        "environment_digest": r.environment_digest,
    }
