"""Evaluations: a version's metrics on a dataset version, recorded any number of times.

Versions are compared on exactly the same data: the leaderboard ranks a model's versions by
their latest evaluation on one dataset digest, and the trend lists every evaluation over time.
"""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from modelreg import audit, datasets, lineage, schema, versions
from modelreg.datasets import DatasetUse
from modelreg.db import now
from modelreg.errors import Conflict, InvalidInput, NotFound
from modelreg.governance_records import Evaluation, Leaderboard, MetricTrend, TrendPoint

_ev, _em, _d = schema.evaluations, schema.evaluation_metrics, schema.datasets


def record(
    conn: Connection, version_id: str, use: DatasetUse, metrics: dict[str, float], *, actor: str
) -> Evaluation:
    if not metrics:
        raise InvalidInput("an evaluation needs at least one metric")
    dataset_id = datasets.ensure(conn, use)
    t = schema.dataset_retirements
    retired = conn.execute(
        sa.select(t.c.id).join(_d, _d.c.id == t.c.dataset_id).where(_d.c.digest == use.digest)
    ).first()
    if retired is not None:
        raise Conflict(f"dataset {use.name}@{use.digest[:12]} is retired: evaluate on other data")
    evaluation_id = str(uuid.uuid4())
    stamp = now()
    conn.execute(
        _ev.insert().values(
            id=evaluation_id,
            version_id=version_id,
            dataset_id=dataset_id,
            created_at=stamp,
            created_by=actor,
        )
    )
    conn.execute(
        _em.insert(),
        [{"evaluation_id": evaluation_id, "key": k, "value": v} for k, v in metrics.items()],
    )
    ref = versions.ref_of(conn, version_id)
    result: Evaluation = {
        "id": evaluation_id,
        "version": ref,
        "dataset": {"name": use.name, "digest": use.digest, "uri": use.uri},
        "metrics": dict(sorted(metrics.items())),
        "created_at": stamp,
        "created_by": actor,
    }
    audit.append(
        conn,
        actor=actor,
        action="evaluation.create",
        entity_type="version",
        entity_id=version_id,
        entity=ref,
        after=result,
    )
    return result


def _rows(conn: Connection, where: Any) -> list[Evaluation]:
    q = (
        sa.select(_ev, _d.c.name, _d.c.digest, _d.c.uri)
        .join(_d, _d.c.id == _ev.c.dataset_id)
        .where(where)
        .order_by(_ev.c.created_at, _ev.c.id)
    )
    found = list(conn.execute(q))
    values: dict[str, dict[str, float]] = {}
    if found:
        mq = sa.select(_em).where(_em.c.evaluation_id.in_([r.id for r in found]))
        for m in conn.execute(mq):
            values.setdefault(m.evaluation_id, {})[m.key] = m.value
    refs = lineage.refs_of(conn, list({r.version_id for r in found}))
    return [
        {
            "id": r.id,
            "version": refs[r.version_id],
            "dataset": {"name": r.name, "digest": r.digest, "uri": r.uri},
            "metrics": dict(sorted(values.get(r.id, {}).items())),
            "created_at": r.created_at,
            "created_by": r.created_by,
        }
        for r in found
    ]


def of_version(conn: Connection, version_id: str) -> list[Evaluation]:
    """Every evaluation of a version, oldest first."""
    return _rows(conn, _ev.c.version_id == version_id)


def _dataset_version(conn: Connection, ref: str) -> tuple[str, str]:
    """(dataset id, digest) for ``NAME@DIGEST``, or for ``NAME``'s newest version."""
    found = datasets.find(conn, ref)
    if "@" in ref and len(found) > 1:
        raise InvalidInput(f"dataset reference {ref!r} matches {len(found)} digests: give more")
    return found[-1].id, found[-1].digest


def trend(conn: Connection, model: str, dataset: str, metric: str) -> MetricTrend:
    """Every evaluation of a model's versions (not deleted) on one dataset digest, oldest
    first."""
    mid = versions.model_id(conn, model)
    dataset_id, digest = _dataset_version(conn, dataset)
    v = schema.versions
    in_model = sa.select(v.c.id).where(v.c.model_id == mid, versions.LIVE)
    rows = _rows(conn, sa.and_(_ev.c.dataset_id == dataset_id, _ev.c.version_id.in_(in_model)))
    points: list[TrendPoint] = [
        {"at": r["created_at"], "version": r["version"], "value": r["metrics"][metric]}
        for r in rows
        if metric in r["metrics"]
    ]
    return {
        "model": model,
        "dataset": dataset,
        "digest": digest,
        "metric": metric,
        "points": points,
    }


def leaderboard(
    conn: Connection, model: str, dataset: str, metric: str, *, higher_is_better: bool
) -> Leaderboard:
    """The model's versions ranked by their latest evaluation on exactly one dataset digest."""
    series = trend(conn, model, dataset, metric)
    latest: dict[str, TrendPoint] = {}
    for point in series["points"]:
        latest[point["version"]] = point  # oldest first, so the last one wins
    ranked = sorted(
        latest.values(),
        key=lambda p: (-p["value"] if higher_is_better else p["value"], p["version"]),
    )
    if not ranked:
        raise NotFound(
            f"no version of {model!r} has an evaluation with metric {metric!r} on"
            f" {dataset} ({series['digest'][:12]})"
        )
    return {
        "model": series["model"],
        "dataset": series["dataset"],
        "digest": series["digest"],
        "metric": series["metric"],
        "higher_is_better": higher_is_better,
        "ranking": [
            {"rank": i + 1, "version": p["version"], "value": p["value"], "evaluated_at": p["at"]}
            for i, p in enumerate(ranked)
        ],
    }
