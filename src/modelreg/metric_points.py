"""Metric points written to a run's history: each batch checked, stored as one block per key
(``metric_blocks``) and summed up by one audit event carrying the digest of its points."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from sqlalchemy.engine import Connection

from modelreg import audit, metric_blocks, metric_columns
from modelreg.errors import InvalidInput
from modelreg.metric_columns import MetricBatch
from modelreg.runs import check_writable
from modelreg.timestamps import MAX_MS, check_ms, now_ms
from modelreg.values import MAX_STEP, check_key, check_metric, check_step

MAX_POINTS = 100_000


def check_points(points: Any) -> MetricBatch:
    """Metric points, each checked, as a batch of columns.

    A point is ``(key, value, step)`` or ``(key, value, step, ms)``, ``ms`` being when it was
    logged in milliseconds since the epoch (a point without one is stamped now; the batch's
    times are None when no point has one). A batch repeats a few keys and times many times:
    each distinct key and time is checked once, and a finite float passes without conversion.
    """
    if not isinstance(points, (list, tuple)) or len(points) > MAX_POINTS:
        raise InvalidInput(f"metric points must be a list of at most {MAX_POINTS} entries")
    fast = _checked_columns(points)
    if fast is not None:
        return fast
    keys: set[str] = set()
    times: dict[Any, int] = {}
    checked = []
    stamps: list[int] = []
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
            stamp = now_ms() if ms is None else check_ms(ms, f"metric {key!r}: time")
            times[ms] = stamp
        stamps.append(stamp)
    return batch_of(checked, stamps if len(times) > 1 or None not in times else None)


def batch_of(points: Sequence[tuple[str, float, int]], times: Sequence[int] | None) -> MetricBatch:
    """Checked points (key, value, step) and their times (or None: now) as a batch."""
    if not points:
        return metric_columns.of_points([], [], [], times)
    keys, values, steps = zip(*points, strict=True)
    return metric_columns.of_points(keys, values, steps, times)


def _checked_columns(points: list[Any] | tuple[Any, ...]) -> MetricBatch | None:
    """A batch as a client's buffer sends it, checked column by column: every point a
    ``[key, float, int step, int ms]`` with finite values. None for any other batch, which
    ``check_points`` then checks point by point (and refuses naming what is wrong)."""
    if not points or set(map(type, points)) - {list, tuple} or set(map(len, points)) != {4}:
        return None
    keys, values, steps, times = zip(*points, strict=True)
    if set(map(type, values)) != {float}:
        return None  # a value to convert or refuse
    try:
        if not math.isfinite(math.fsum(values)):
            return None  # an infinity or NaN among them: refused point by point
    except OverflowError:  # finite values whose sum is past the largest float: checked alike
        return None
    if set(map(type, steps)) != {int} or min(steps) < 0 or max(steps) > MAX_STEP:
        return None
    if set(map(type, times)) != {int} or min(times) < 0 or max(times) > MAX_MS:
        return None
    try:
        distinct_keys = set(keys)
    except TypeError:  # an unhashable key
        return None
    if not all(type(k) is str for k in distinct_keys):
        return None
    for key in distinct_keys:
        check_key(key, kind="metric")
    return metric_columns.of_points(keys, values, steps, times)


def check_batch(batch: MetricBatch) -> MetricBatch:
    """A batch as the binary form carries it, its values checked as ``check_points`` checks
    a JSON batch: keys valid and distinct, values finite, steps and times in range."""
    for name in batch.names:
        check_key(name, kind="metric")
    if len(set(batch.names)) != len(batch.names):
        raise InvalidInput("a batch names each metric key once")
    used = np.bincount(batch.codes, minlength=len(batch.names))
    if not used.all():
        unused = batch.names[int(np.flatnonzero(used == 0)[0])]
        raise InvalidInput(f"a batch names only keys its points use, and no point is {unused!r}")
    bad = np.flatnonzero(~np.isfinite(batch.values))
    if len(bad):
        key, value = batch.names[batch.codes[bad[0]]], float(batch.values[bad[0]])
        raise InvalidInput(f"metric {key!r} must be a finite number, not {value}")
    bad = np.flatnonzero((batch.steps < 0) | (batch.steps > MAX_STEP))
    if len(bad):
        check_step(batch.names[batch.codes[bad[0]]], int(batch.steps[bad[0]]))
    if isinstance(batch.times, np.ndarray):
        bad = np.flatnonzero((batch.times < 0) | (batch.times > MAX_MS))
        if len(bad):
            key = batch.names[batch.codes[bad[0]]]
            check_ms(int(batch.times[bad[0]]), f"metric {key!r}: time")
    return batch


def add_metrics(conn: Connection, run_id: str, batch: MetricBatch, *, actor: str) -> None:
    """Append a checked batch of metric points to a run's history, audited like any change;
    its times are those the client gave (else now, for all)."""
    check_writable(conn, run_id)
    if not len(batch):  # nothing to record, nor to audit
        return
    times = now_ms() if batch.times is None else batch.times
    metric_blocks.add(conn, run_id, metric_blocks.blocks(batch, times))
    # The event summarises the batch and carries the digest of its points (as given, in
    # order): a history of 100,000 points is not copied into the log, yet it names exactly
    # what was logged.
    audit.append(
        conn,
        actor=actor,
        action="run.metric",
        entity_type="run",
        entity_id=run_id,
        entity=run_id,
        after={
            "points": len(batch),
            "keys": batch.names[:20] + (["..."] if len(batch.names) > 20 else []),
            "steps": [int(batch.steps.min()), int(batch.steps.max())],
            "digest": batch.digest(),
        },
    )


def unseen_points(
    conn: Connection, run_id: str, points: list[tuple[str, float, int]], times: Sequence[int]
) -> tuple[list[tuple[str, float, int]], list[int]]:
    """The points (with their times) that the run does not hold already, the same key, step,
    time and value: MLflow stores a point once, and its client sends a run's latest points
    again when it logs a model."""
    if not points:
        return points, list(times)
    keys = [k for k, _, _ in points]
    seen = metric_blocks.stored(conn, run_id, keys, [s for _, _, s in points])
    kept: list[tuple[str, float, int]] = []
    kept_times: list[int] = []
    for (key, value, step), ms in zip(points, times, strict=True):
        if (key, value, step, ms) not in seen:
            seen.add((key, value, step, ms))
            kept.append((key, value, step))
            kept_times.append(ms)
    return kept, kept_times
