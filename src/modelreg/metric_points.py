"""Metric points written to a run's history: each batch checked, stored in one statement and
summed up by one audit event carrying the digest of its points (read back by ``runs``)."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from modelreg import audit, schema
from modelreg.db import insert_rows, now
from modelreg.errors import InvalidInput
from modelreg.runs import check_writable
from modelreg.timestamps import MAX_MS, from_ms
from modelreg.values import MAX_STEP, check_key, check_metric, check_step

MAX_POINTS = 100_000


def check_points(points: Any) -> tuple[list[tuple[str, float, int]], list[str] | None]:
    """Metric points as (key, value, step) triples, each checked, and their times.

    A point is ``(key, value, step)`` or ``(key, value, step, ms)``, ``ms`` being when it was
    logged in milliseconds since the epoch (a point without one is stamped now). The times
    are None when no point has one. A batch repeats a few keys and times many times: each
    distinct key and time is checked once, and a finite float passes without conversion.
    """
    if not isinstance(points, (list, tuple)) or len(points) > MAX_POINTS:
        raise InvalidInput(f"metric points must be a list of at most {MAX_POINTS} entries")
    fast = _checked_columns(points)
    if fast is not None:
        return fast
    keys: set[str] = set()
    times: dict[Any, str] = {}
    checked = []
    stamps: list[str] = []
    inf = math.inf
    for point in points:
        size = len(point) if type(point) is list or type(point) is tuple else 0
        if size == 4:
            key, value, step, ms = point
        elif size == 3:
            (key, value, step), ms = point, None
        else:
            raise InvalidInput(
                f"a metric point is (key, value, step) or (key, value, step, ms), not {point!r}"
            )
        if type(key) is not str or key not in keys:
            keys.add(check_key(key, kind="metric"))
        if type(step) is not int or not 0 <= step <= MAX_STEP:
            step = check_step(key, step)
        if type(value) is not float or not -inf < value < inf:
            value = check_metric(key, value)
        checked.append((key, value, step))
        if type(ms) is not int and ms is not None:
            raise InvalidInput(f"metric {key!r}: the time must be whole milliseconds")
        stamp = times.get(ms)
        if stamp is None:
            stamp = now() if ms is None else from_ms(ms, f"metric {key!r}: time")
            times[ms] = stamp
        stamps.append(stamp)
    return checked, (stamps if len(times) > 1 or None not in times else None)


def _checked_columns(
    points: list[Any] | tuple[Any, ...],
) -> tuple[list[tuple[str, float, int]], list[str]] | None:
    """A batch as a client's buffer sends it, checked column by column: every point a
    ``[key, float, int step, int ms]`` with finite values. None for any other batch, which
    ``check_points`` then checks point by point (and refuses naming what is wrong)."""
    if not points or not all(type(p) in (list, tuple) and len(p) == 4 for p in points):
        return None
    keys, values, steps, times = zip(*points, strict=True)
    if not all(type(v) is float for v in values) or not math.isfinite(math.fsum(values)):
        return None  # a value to convert or refuse, or a sum past the largest float
    if not all(type(s) is int for s in steps) or min(steps) < 0 or max(steps) > MAX_STEP:
        return None
    try:
        distinct_keys, distinct_times = set(keys), set(times)
    except TypeError:  # an unhashable key or time
        return None
    if not all(type(k) is str for k in distinct_keys):
        return None
    if not all(type(t) is int and 0 <= t <= MAX_MS for t in distinct_times):
        return None
    for key in distinct_keys:
        check_key(key, kind="metric")
    stamp_of = {t: from_ms(t, "a metric point's time") for t in distinct_times}
    return list(zip(keys, values, steps, strict=True)), [stamp_of[t] for t in times]


def add_metrics(
    conn: Connection,
    run_id: str,
    points: list[tuple[str, float, int]],
    *,
    actor: str,
    stamps: Sequence[str] | None = None,
) -> None:
    """Append metric points (key, value, step) to a run's history, audited like any change;
    ``stamps`` are the points' times as an MLflow client gave them (else now, for all)."""
    check_writable(conn, run_id)
    if not points:  # nothing to record, nor to audit
        return
    if stamps is None:
        stamp = now()
        rows = [(run_id, k, v, s, stamp) for k, v, s in points]
    else:
        rows = [(run_id, k, v, s, t) for (k, v, s), t in zip(points, stamps, strict=True)]
    insert_rows(conn, schema.run_metrics, ("run_id", "key", "value", "step", "timestamp"), rows)
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


def unseen_points(
    conn: Connection, run_id: str, points: list[tuple[str, float, int]], stamps: Sequence[str]
) -> tuple[list[tuple[str, float, int]], list[str]]:
    """The points (with their times) that the run does not hold already, the same key, step,
    time and value: MLflow stores a point once, and its client sends a run's latest points
    again when it logs a model. Read through the run's rows of the batch's keys and steps."""
    if not points:
        return points, list(stamps)
    t = schema.run_metrics
    keys = sorted({k for k, _, _ in points})
    steps = [s for _, _, s in points]
    query = sa.select(t.c.key, t.c.value, t.c.step, t.c.timestamp).where(
        t.c.run_id == run_id, t.c.key.in_(keys), t.c.step.between(min(steps), max(steps))
    )
    seen = {(r.key, r.value, r.step, r.timestamp) for r in conn.execute(query)}
    kept: list[tuple[str, float, int]] = []
    kept_stamps: list[str] = []
    for (key, value, step), stamp in zip(points, stamps, strict=True):
        if (key, value, step, stamp) not in seen:
            seen.add((key, value, step, stamp))
            kept.append((key, value, step))
            kept_stamps.append(stamp)
    return kept, kept_stamps


def points_digest(points: list[tuple[str, float, int]]) -> str:
    """sha256 of a batch of metric points (key, value, step) as canonical JSON."""
    text = json.dumps([[k, v, s] for k, v, s in points], separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()
