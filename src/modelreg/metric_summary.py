"""Each model's version metrics summed up in buckets, for charts of models too long to read.

A bucket holds the versions numbered ``BUCKET * b + 1`` to ``BUCKET * (b + 1)`` that are not
deleted: per metric their count, sum, minimum, maximum, and the first number and time. The
write that registers a version adds its metrics to its bucket; one that deletes a version
counts its buckets again from their rows (a minimum cannot be taken back). A chart of a model
with N versions then reads N / BUCKET rows per metric instead of N.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from modelreg import schema

BUCKET = 10  # consecutive version numbers per stored bucket

_b, _v, _vm = schema.version_metric_buckets, schema.versions, schema.version_metrics
_COLUMNS = ("model_id", "key", "bucket", "count", "total", "low", "high", "first_number",
            "first_at")  # fmt: skip


@functools.lru_cache(maxsize=4)
def _add_sql(dialect: sa.Dialect) -> str:
    """INSERT a version's metric as a bucket of one, or fold it into the bucket there is
    (ON CONFLICT, in SQLite and PostgreSQL alike)."""
    quote = dialect.identifier_preparer.quote
    mark = "?" if dialect.paramstyle == "qmark" else "%s"
    table = quote(_b.name)
    names = ", ".join(quote(c) for c in _COLUMNS)
    marks = ", ".join([mark] * len(_COLUMNS))

    def keep(column: str, op: str) -> str:  # the new value when it is {op} the one there
        c = quote(column)
        new, old = f"excluded.{c}", f"{table}.{c}"
        return f"{c} = CASE WHEN {new} {op} {old} THEN {new} ELSE {old} END"

    updates = [
        f"{quote('count')} = {table}.{quote('count')} + 1",
        f"{quote('total')} = {table}.{quote('total')} + excluded.{quote('total')}",
        keep("low", "<"),
        keep("high", ">"),
        keep("first_number", "<"),
        keep("first_at", "<"),
    ]
    # The schema's own names, quoted; the values are parameters.
    target = ", ".join(quote(c) for c in ("model_id", "key", "bucket"))
    return (
        f"INSERT INTO {table} ({names}) VALUES ({marks})"  # noqa: S608
        f" ON CONFLICT ({target}) DO UPDATE SET {', '.join(updates)}"
    )


def add(
    conn: Connection, model_id: str, number: int, at: str, metrics: Mapping[str, float]
) -> None:
    """Fold a new version's metrics into its model's buckets; in the registering write."""
    if not metrics:
        return
    bucket = (number - 1) // BUCKET
    rows = [(model_id, k, bucket, 1, v, v, v, number, at) for k, v in metrics.items()]
    conn.exec_driver_sql(_add_sql(conn.dialect), rows[0] if len(rows) == 1 else rows)


def _aggregated(where: Any) -> sa.Select[Any]:
    """The buckets counted from the metric rows of the live versions ``where`` keeps."""
    bucket = (_v.c.number - 1) // BUCKET
    return (
        sa.select(
            _v.c.model_id,
            _vm.c.key,
            bucket,
            sa.func.count(),
            sa.func.sum(_vm.c.value),
            sa.func.min(_vm.c.value),
            sa.func.max(_vm.c.value),
            sa.func.min(_v.c.number),
            sa.func.min(_v.c.created_at),
        )
        .select_from(_vm.join(_v, _v.c.id == _vm.c.version_id))
        .where(_v.c.deleted_at.is_(None), where)
        .group_by(_v.c.model_id, _vm.c.key, bucket)
    )


def recount(conn: Connection, model_id: str, number: int) -> None:
    """Count the bucket of version ``number`` again from its rows; after it was deleted."""
    bucket = (number - 1) // BUCKET
    conn.execute(_b.delete().where(_b.c.model_id == model_id, _b.c.bucket == bucket))
    first, last = bucket * BUCKET + 1, (bucket + 1) * BUCKET
    kept = sa.and_(_v.c.model_id == model_id, _v.c.number.between(first, last))
    conn.execute(_b.insert().from_select(list(_COLUMNS), _aggregated(kept)))


def series(conn: Connection, model_id: str, width: int) -> dict[str, dict[str, Any]]:
    """Each metric in buckets of ``width`` numbers (a multiple of BUCKET), merged from the
    stored ones: ``bucket``, and ``number``, ``created_at``, ``value`` (the mean), ``min``,
    ``max`` lists, as versions.metric_series gives them."""
    if width % BUCKET:
        raise ValueError(f"a chart's bucket of {width} versions is no multiple of {BUCKET}")
    merged = _b.c.bucket // (width // BUCKET)
    q = (
        sa.select(
            _b.c.key,
            sa.func.min(_b.c.first_number),
            sa.func.min(_b.c.first_at),
            sa.func.sum(_b.c.total) / sa.func.sum(_b.c.count),
            sa.func.min(_b.c.low),
            sa.func.max(_b.c.high),
        )
        .where(_b.c.model_id == model_id)
        .group_by(_b.c.key, merged)
        .order_by(_b.c.key, sa.func.min(_b.c.first_number))
    )
    return bucketed(conn.execute(q), width)


def bucketed(rows: Iterable[Any], width: int) -> dict[str, dict[str, Any]]:
    """A chart's series from rows of (key, first number, first time, mean, min, max)."""
    out: dict[str, dict[str, Any]] = {}
    for key, number, created, mean, low, high in rows:
        found = out.setdefault(
            key,
            {"bucket": width, "number": [], "created_at": [], "value": [], "min": [], "max": []},
        )
        found["number"].append(number)
        found["created_at"].append(created)
        found["value"].append(float(mean))
        found["min"].append(low)
        found["max"].append(high)
    return out
