"""Run metric points as stored: one block per key of each logged batch, with its summaries.

A batch a run logs is stored as one ``metric_blocks`` row per metric key: its points in step
order (in the order logged within a step), their steps, values and times (milliseconds) as
three arrays compressed together with zstd, beside the block's count, step and time range,
sum, minimum and maximum, and whether its points are in MLflow's order too (time, step,
value). A block of more than ``FANOUT`` points also gets ``metric_levels`` rows: at level k
one entry per ``FANOUT ** k`` consecutive points (count, first step and time, sum, minimum,
maximum), for each level that has two entries or more; entries start where they would in the
whole history, so that a history logged in step order is summed up alike in any batches.
``metric_latest`` keeps, per run and key, how many points were logged and the latest (the
greatest step, then time, then value, as MLflow counts it), which searches and run listings
read.

Reads then cost what they show, not what was logged:

- ``series`` (a chart of N points in at most P buckets) reads, per key, the blocks' own
  figures and the entries of the one level whose width is the widest not over N / P: at
  most ``FANOUT`` * P entries plus one per block, whatever N is; ``history`` (a version's
  lineage) gives the same buckets for a long metric;
- ``metric_history`` (MLflow's pages of a history) reads only the blocks a page spans when
  the blocks are in MLflow's order one after another, as a training loop's are; otherwise
  it reads and sorts the key's every point.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import sqlalchemy as sa
import zstandard
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from modelreg import schema
from modelreg.errors import IntegrityError
from modelreg.metric_columns import Column, MetricBatch
from modelreg.records import MetricPoint
from modelreg.timestamps import from_ms

FANOUT = 16  # points per entry at level 1, and entries of a level per entry of the next

_b, _l, _latest = schema.metric_blocks, schema.metric_levels, schema.metric_latest
ENTRY = np.dtype(  # what an entry of a level sums up, and where its first point lies
    [("count", "<i8"), ("step", "<i8"), ("ms", "<i8"), ("total", "<f8"), ("low", "<f8"),
     ("high", "<f8")]
)  # fmt: skip
Arrays = tuple[Column, Column, Column]


@dataclass(frozen=True)
class Block:
    """One key's points of a batch, in step order, ready to store."""

    key: str
    steps: np.ndarray[Any, Any]  # int64
    values: np.ndarray[Any, Any]  # float64
    times: np.ndarray[Any, Any]  # int64, milliseconds since the epoch

    def row(self, run_id: str) -> dict[str, Any]:
        """The block's ``metric_blocks`` row (without its id)."""
        with np.errstate(over="ignore"):  # finite values may sum past the largest float
            total = float(self.values.sum())
        return {
            "run_id": run_id,
            "key": self.key,
            "count": len(self.steps),
            "min_step": int(self.steps[0]),
            "max_step": int(self.steps[-1]),
            "total": total,
            "low": float(self.values.min()),
            "high": float(self.values.max()),
            "min_ms": int(self.times.min()),
            "max_ms": int(self.times.max()),
            "ordered": self.ordered(),
            "points": pack(self.steps, self.values, self.times),
        }

    def ordered(self) -> bool:
        """Whether the points, in step order, are also in MLflow's order (time, step, value):
        a training loop's are, and a page of its history then reads only its own blocks."""
        t, s, v = self.times, self.steps, self.values
        if len(t) < 2:
            return True
        later = np.diff(t)
        if bool(np.any(later < 0)):
            return False
        tied = (later == 0) & (np.diff(s) == 0)
        return not bool(np.any(np.diff(v)[tied] < 0))

    def levels(self, offset: int = 0) -> Iterable[tuple[int, bytes]]:
        """(level, entries) for each level of two entries or more; ``offset`` is how many
        points of the key the run logged before, so that entries start where they would in
        the whole history."""
        level, width = 1, FANOUT
        while len(self.steps) > width:
            yield level, entries(self.steps, self.values, self.times, width, offset).tobytes()
            level, width = level + 1, width * FANOUT

    def latest(self) -> tuple[float, int, int]:
        """(value, step, ms) of the latest point: the greatest step, then time, then value;
        the last logged of equal ones."""
        last = int(np.searchsorted(self.steps, self.steps[-1]))  # the greatest step's points
        times, values = self.times[last:], self.values[last:]
        pick = last + int(np.lexsort((np.arange(len(times)), values, times))[-1])
        return float(self.values[pick]), int(self.steps[pick]), int(self.times[pick])


def blocks(batch: MetricBatch, times: Column | int) -> list[Block]:
    """A checked batch's points as one block per key, by key; ``times`` are the points'
    (milliseconds, one each or one for all)."""
    v, s = batch.values, batch.steps
    t = np.full(len(v), times, dtype=np.int64) if isinstance(times, int) else times
    if len(batch.names) == 1:
        parts = [(batch.names[0], np.arange(len(v)))]
    else:
        order = np.argsort(batch.codes, kind="stable")
        bounds = np.searchsorted(batch.codes[order], np.arange(len(batch.names) + 1))
        parts = [(k, order[bounds[i] : bounds[i + 1]]) for i, k in enumerate(batch.names)]
    found = []
    for key, at in sorted(parts, key=lambda part: part[0]):
        if not len(at):
            continue
        ks = s[at]
        if len(ks) > 1 and bool(np.any(ks[1:] < ks[:-1])):
            at = at[np.argsort(ks, kind="stable")]
            ks = s[at]
        found.append(Block(key, ks, v[at], t[at]))
    return found


def pack(steps: np.ndarray[Any, Any], values: np.ndarray[Any, Any], times: Any) -> bytes:
    """A block's points as stored: steps, values, times, each as 8-byte little-endian
    numbers, one array after the other, compressed by zstd."""
    raw = b"".join(
        np.ascontiguousarray(a, dtype=d).tobytes()
        for a, d in ((steps, "<i8"), (values, "<f8"), (times, "<i8"))
    )
    return zstandard.ZstdCompressor(level=1).compress(raw)


def unpack(data: bytes, count: int) -> Arrays:
    """(steps, values, times) of a stored block of ``count`` points."""
    raw = zstandard.ZstdDecompressor().decompress(data, max_output_size=24 * count)
    if len(raw) != 24 * count:
        raise IntegrityError(f"a metric block holds {len(raw)} bytes, not {count} points")
    return (
        np.frombuffer(raw, "<i8", count, 0),
        np.frombuffer(raw, "<f8", count, 8 * count),
        np.frombuffer(raw, "<i8", count, 16 * count),
    )


def entries(
    steps: Column, values: Column, times: Column, width: int, offset: int = 0
) -> np.ndarray[Any, Any]:
    """Points in step order summed up ``width`` at a time (the first entry ends where
    ``offset`` points before these would make ``width``): count, first step and time, sum,
    min, max."""
    starts = np.arange((-offset) % width, len(steps), width)
    if len(starts) == 0 or starts[0] != 0:
        starts = np.concatenate(([0], starts))
    found = np.empty(len(starts), ENTRY)
    found["count"] = np.diff(np.append(starts, len(steps)))
    found["step"] = steps[starts]
    found["ms"] = times[starts]
    with np.errstate(over="ignore"):
        found["total"] = np.add.reduceat(values, starts)
    found["low"] = np.minimum.reduceat(values, starts)
    found["high"] = np.maximum.reduceat(values, starts)
    return found


# -- writing ---------------------------------------------------------------------------------


def add(conn: Connection, run_id: str, batch: list[Block]) -> None:
    """Store a batch's blocks and their levels; count each key's points and move its latest
    point if this batch's is later."""
    logged = sa.select(_latest.c.key, _latest.c.count).where(
        _latest.c.run_id == run_id, _latest.c.key.in_([b.key for b in batch])
    )
    before: dict[str, int] = {key: count for key, count in conn.execute(logged)}
    for block in batch:
        added = _b.insert().values(block.row(run_id)).returning(_b.c.id)
        block_id = conn.execute(added).scalar_one()
        levels = [
            {"block_id": block_id, "level": k, "entries": e}
            for k, e in block.levels(before.get(block.key, 0))
        ]
        if levels:
            conn.execute(_l.insert(), levels)
        value, step, ms = block.latest()
        row = {
            "run_id": run_id,
            "key": block.key,
            "count": len(block.steps),
            "value": value,
            "step": step,
            "timestamp": from_ms(ms, "a metric point's time"),
        }
        conn.execute(_latest_upsert(conn.dialect.name).values(row))


def _latest_upsert(dialect: str) -> Any:
    """INSERT a key's count and latest point, or add to the count there and replace the
    point when this one is not earlier."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(_latest)
    new = statement.excluded
    later = sa.tuple_(new.step, new.timestamp, new.value) >= sa.tuple_(
        _latest.c.step, _latest.c.timestamp, _latest.c.value
    )
    moved = {
        c: sa.case((later, new[c]), else_=_latest.c[c]) for c in ("value", "step", "timestamp")
    }
    return statement.on_conflict_do_update(
        index_elements=[_latest.c.run_id, _latest.c.key],
        set_={"count": _latest.c.count + new.count, **moved},
    )


# -- reading ---------------------------------------------------------------------------------


def latest_points(
    ids: Sequence[str] | sa.Select[Any] | None = None, *, key: str | None = None
) -> sa.Subquery:
    """The latest point of each metric of each run (greatest step, then time, then value),
    as MLflow counts a run's metric values: columns run_id, key, value, step, timestamp; of
    the runs ``ids`` (a list or a SELECT of ids) and the metric ``key``, if given."""
    query = sa.select(_latest.c.run_id, _latest.c.key, _latest.c.value, _latest.c.step,
                      _latest.c.timestamp)  # fmt: skip
    if ids is not None:
        query = query.where(_latest.c.run_id.in_(ids))
    if key is not None:
        query = query.where(_latest.c.key == key)
    return query.subquery()


def _points(conn: Connection, where: Any) -> dict[str, Arrays]:
    """The points of the blocks ``where`` picks, per key: each key's blocks in the order they
    were stored, one after the other (each in step order)."""
    query = sa.select(_b.c.key, _b.c.count, _b.c.points).where(where).order_by(_b.c.key, _b.c.id)
    parts: dict[str, list[Arrays]] = {}
    for key, count, data in conn.execute(query):
        parts.setdefault(key, []).append(unpack(data, count))
    return {
        key: (
            np.concatenate([p[0] for p in found]),
            np.concatenate([p[1] for p in found]),
            np.concatenate([p[2] for p in found]),
        )
        for key, found in parts.items()
    }


def _by_step(arrays: Arrays) -> Arrays:
    """Points in step order, in the order they were logged within a step."""
    steps, values, times = arrays
    if len(steps) > 1 and bool(np.any(steps[1:] < steps[:-1])):
        order = np.argsort(steps, kind="stable")
        return steps[order], values[order], times[order]
    return arrays


class _Stamps(dict[int, str]):
    """Times as stored strings, each distinct millisecond formatted once."""

    def __missing__(self, ms: int) -> str:
        stamp = self[ms] = from_ms(ms, "a metric point's time")
        return stamp


def history(
    conn: Connection, run_id: str, *, max_points: int
) -> tuple[dict[str, list[dict[str, Any]]], dict[str, int]]:
    """Each key's points of a run, in step order (then the order logged): step, value, time;
    and how many each key has. A key of more than ``max_points`` points gives at most that
    many buckets of consecutive points instead, each its mean at its first step and time."""
    stamps = _Stamps()
    found: dict[str, list[dict[str, Any]]] = {}
    counts: dict[str, int] = {}
    keyed = _summed(conn, run_id, max_points)
    for key, (total, width, summed) in keyed.items():
        counts[key] = total
        if width is None:
            steps, values, times = summed
        else:
            steps, values, times = summed["step"], _means(summed), summed["ms"]
        found[key] = [
            {"step": s, "value": v, "timestamp": stamps[t]}
            for s, v, t in zip(steps.tolist(), values.tolist(), times.tolist(), strict=True)
        ]
    return found, counts


def metric_history(
    conn: Connection, run_id: str, key: str, *, limit: int | None = None, offset: int = 0
) -> list[MetricPoint]:
    """A run's points of one metric in MLflow's order (time, step, value), from ``offset``.

    When every block is in that order and each starts after the one before ends, the blocks
    one after another are the history: a page decompresses only the blocks it spans.
    Otherwise every point of the key is read and sorted."""
    where = sa.and_(_b.c.run_id == run_id, _b.c.key == key)
    query = (
        sa.select(_b.c.id, _b.c.count.label("n"), _b.c.min_step, _b.c.max_step, _b.c.min_ms,
                  _b.c.max_ms, _b.c.ordered)
        .where(where)
        .order_by(_b.c.id)
    )  # fmt: skip
    rows = conn.execute(query).all()
    if not rows:
        return []
    if _in_order(rows):
        counts = np.cumsum([r.n for r in rows])
        end = int(counts[-1]) if limit is None else min(int(counts[-1]), offset + limit)
        first = int(np.searchsorted(counts, offset, side="right"))
        last = int(np.searchsorted(counts, end, side="left"))
        wanted = [r.id for r in rows[first : last + 1]] if offset < end else []
        if not wanted:
            return []
        steps, values, times = _points(conn, sa.and_(where, _b.c.id.in_(wanted)))[key]
        skip = offset - (int(counts[first - 1]) if first else 0)
        page = slice(skip, skip + end - offset)
        steps, values, times = steps[page], values[page], times[page]
    else:
        steps, values, times = _points(conn, where)[key]
        order = np.lexsort((values, steps, times))
        order = order[offset:] if limit is None else order[offset : offset + limit]
        steps, values, times = steps[order], values[order], times[order]
    stamps = _Stamps()
    return [
        MetricPoint(key, v, s, stamps[t])
        for s, v, t in zip(steps.tolist(), values.tolist(), times.tolist(), strict=True)
    ]


def _in_order(rows: Sequence[Any]) -> bool:
    """Whether blocks (in the order stored) are each in MLflow's order and each starts past
    the end of the one before: a later time, or the same time at a later step."""
    if not all(r.ordered for r in rows):
        return False
    return all(
        a.max_ms < b.min_ms or (a.max_ms == b.min_ms and a.max_step < b.min_step)
        for a, b in itertools.pairwise(rows)
    )


def stored(
    conn: Connection, run_id: str, keys: Sequence[str], steps: Sequence[int]
) -> set[tuple[str, float, int, int]]:
    """The points (key, value, step, ms) a run holds of ``keys`` at any of ``steps``."""
    if not keys or not steps:
        return set()
    wanted = np.unique(np.asarray(steps, dtype=np.int64))
    where = sa.and_(
        _b.c.run_id == run_id,
        _b.c.key.in_(sorted(set(keys))),
        _b.c.max_step >= int(wanted[0]),
        _b.c.min_step <= int(wanted[-1]),
    )
    found: set[tuple[str, float, int, int]] = set()
    for key, (s, v, t) in _points(conn, where).items():
        hit = np.isin(s, wanted)
        found.update((key, value, step, ms) for step, value, ms in zip(
            s[hit].tolist(), v[hit].tolist(), t[hit].tolist(), strict=True))  # fmt: skip
    return found


def series(conn: Connection, run_id: str, *, max_points: int = 1000) -> dict[str, dict[str, Any]]:
    """Each metric's history of a run, for a chart: ``step`` and ``value`` lists, in step
    order, and ``points``, how many the run logged.

    A metric with more than ``max_points`` points is summed up in buckets of about
    ``bucket`` consecutive points (by step): each is the bucket's mean at its first step,
    with the bucket's ``min`` and ``max`` beside it, so that one spike still shows.
    """
    found = {}
    for key, (total, width, merged) in _summed(conn, run_id, max_points).items():
        if width is None:
            found[key] = {"points": total, "step": merged[0].tolist(), "value": merged[1].tolist()}
            continue
        found[key] = {
            "points": total,
            "bucket": width,
            "step": merged["step"].tolist(),
            "value": _means(merged).tolist(),
            "min": merged["low"].tolist(),
            "max": merged["high"].tolist(),
        }
    return found


def _summed(conn: Connection, run_id: str, max_points: int) -> dict[str, tuple[int, Any, Any]]:
    """Per key: (points logged, None, its points as arrays) when there are at most
    ``max_points``, else (points logged, the bucket width, the buckets as entries)."""
    query = (
        sa.select(_b.c.key, _b.c.count.label("n"), _b.c.min_step, _b.c.min_ms, _b.c.total,
                  _b.c.low, _b.c.high)
        .where(_b.c.run_id == run_id)
        .order_by(_b.c.key, _b.c.id)
    )  # fmt: skip
    per_key: dict[str, list[Any]] = {}
    for row in conn.execute(query):
        per_key.setdefault(row.key, []).append(row)
    found: dict[str, tuple[int, Any, Any]] = {}
    for key, rows in per_key.items():
        total = sum(r.n for r in rows)
        if total <= max_points:
            found[key] = (total, None, _by_step(_points(conn, _of(run_id, key))[key]))
            continue
        width = -(-total // max_points)
        level = 0
        while FANOUT ** (level + 1) <= width:
            level += 1
        found[key] = (total, width, _buckets(_entries(conn, run_id, key, rows, level), width))
    return found


def _means(merged: np.ndarray[Any, Any]) -> Column:
    """Each bucket's mean. Where values near the largest float summed past it (to an
    infinity, or a NaN where both signs did), the midpoint of the bucket's minimum and
    maximum stands in: a chart's value is finite and within them."""
    low, high = merged["low"], merged["high"]
    with np.errstate(over="ignore", invalid="ignore"):
        means = merged["total"] / merged["count"]
    means = np.where(np.isfinite(means), means, low / 2 + high / 2)
    found: Column = np.clip(means, low, high)
    return found


def _of(run_id: str, key: str) -> Any:
    return sa.and_(_b.c.run_id == run_id, _b.c.key == key)


def _entries(
    conn: Connection, run_id: str, key: str, rows: list[Any], level: int
) -> np.ndarray[Any, Any]:
    """A key's points summed up in entries of at most ``FANOUT ** level`` points: a block that
    small is one entry, a larger one gives its entries of that level; in step order."""
    if level == 0:
        steps, values, times = _by_step(_points(conn, _of(run_id, key))[key])
        return entries(steps, values, times, 1)
    width = FANOUT**level
    small = [r for r in rows if r.n <= width]
    parts = []
    if small:
        own = np.empty(len(small), ENTRY)
        own["count"] = [r.n for r in small]
        own["step"] = [r.min_step for r in small]
        own["ms"] = [r.min_ms for r in small]
        own["total"] = [r.total for r in small]
        own["low"] = [r.low for r in small]
        own["high"] = [r.high for r in small]
        parts.append(own)
    if len(small) < len(rows):
        query = (
            sa.select(_l.c.entries)
            .join(_b, _b.c.id == _l.c.block_id)
            .where(_b.c.run_id == run_id, _b.c.key == key, _l.c.level == level)
            .order_by(_b.c.id)
        )
        parts.extend(np.frombuffer(e, ENTRY) for e in conn.execute(query).scalars())
    found = np.concatenate(parts)
    return found[np.argsort(found["step"], kind="stable")]


def _buckets(found: np.ndarray[Any, Any], width: int) -> np.ndarray[Any, Any]:
    """Entries in step order merged into buckets of about ``width`` points: each entry goes
    to the bucket where its first point falls."""
    starts = np.cumsum(found["count"]) - found["count"]
    bucket = starts // width
    first = np.flatnonzero(np.diff(bucket, prepend=-1))
    merged = np.empty(len(first), ENTRY)
    merged["count"] = np.add.reduceat(found["count"], first)
    merged["step"] = found["step"][first]
    merged["ms"] = found["ms"][first]
    with np.errstate(over="ignore", invalid="ignore"):  # sums past the largest float
        merged["total"] = np.add.reduceat(found["total"], first)
    merged["low"] = np.minimum.reduceat(found["low"], first)
    merged["high"] = np.maximum.reduceat(found["high"], first)
    return merged
