"""A batch of metric points as columns, and its binary form on the wire.

A training run sends its points in batches of up to 100,000; parsing them as JSON lists and
checking them one by one cost more than storing them. ``MetricBatch`` holds a batch as numpy
columns: the distinct keys (``names``), each point's key as an index into them (``codes``),
its value, step and time. The client sends it as ``MEDIA_TYPE``:

    one line of JSON: {"keys": [...], "count": n, "times": true | false}, then "\\n"
    codes   n x uint32 (little-endian)
    values  n x float64
    steps   n x int64
    times   n x int64, milliseconds since the epoch (when "times" is true)

``decode`` checks the layout; ``metric_points.check_batch`` checks the values (finite
numbers, steps and times in range, keys valid), as it does for a JSON batch.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from modelreg.errors import InvalidInput

MEDIA_TYPE = "application/vnd.modelreg.metric-points"
MAX_HEADER = 1 << 20  # bytes of the JSON line at most
Column = np.ndarray[Any, Any]


@dataclass(frozen=True)
class MetricBatch:
    """Metric points as columns: point i is ``(names[codes[i]], values[i], steps[i])``,
    logged at ``times[i]`` (milliseconds; a single int for every point, or None for now)."""

    names: list[str]
    codes: Column  # uint32
    values: Column  # float64
    steps: Column  # int64
    times: Column | int | None

    def __len__(self) -> int:
        return len(self.values)

    def keys(self) -> list[str]:
        """Each point's key."""
        if len(self.names) == 1:
            return self.names * len(self)
        return [self.names[c] for c in self.codes.tolist()]

    def points(self) -> list[tuple[str, float, int]]:
        """The points as (key, value, step)."""
        return list(zip(self.keys(), self.values.tolist(), self.steps.tolist(), strict=True))

    def digest(self) -> str:
        """sha256 of the batch as logged: the JSON list of its keys, a newline, then each
        point's key index (uint32), value (float64) and step (int64) as columns, in order,
        little-endian."""
        h = hashlib.sha256(json.dumps(self.names, separators=(",", ":")).encode() + b"\n")
        for column, kind in ((self.codes, "<u4"), (self.values, "<f8"), (self.steps, "<i8")):
            h.update(np.ascontiguousarray(column, dtype=kind).tobytes())
        return h.hexdigest()


def of_points(
    keys: Sequence[str], values: Sequence[float], steps: Sequence[int], times: Any
) -> MetricBatch:
    """A batch from columns of plain Python values (checked already, or checked after)."""
    names = sorted(set(keys))
    if len(names) == 1:
        codes = np.zeros(len(keys), dtype=np.uint32)
    else:
        index = {k: i for i, k in enumerate(names)}
        codes = np.fromiter(map(index.__getitem__, keys), np.uint32, len(keys))
    column = times if times is None or isinstance(times, int) else np.asarray(times, np.int64)
    return MetricBatch(
        names,
        codes,
        np.asarray(values, dtype=np.float64),
        np.asarray(steps, dtype=np.int64),
        column,
    )


def encode(points: Sequence[Any]) -> bytes | None:
    """A client's points ``(key, value, step, ms)`` in the binary form; None when they are
    not all plain (str, float or int, int, int), for the JSON form to carry (and the server
    to refuse what is wrong, naming it)."""
    if not points or set(map(type, points)) - {tuple, list} or set(map(len, points)) != {4}:
        return None
    keys, values, steps, times = zip(*points, strict=True)
    if set(map(type, keys)) != {str} or set(map(type, values)) - {float, int}:
        return None
    if set(map(type, steps)) != {int} or set(map(type, times)) != {int}:
        return None
    try:
        batch = of_points(keys, values, steps, times)
    except OverflowError:  # an int past 64 bits: the server names it
        return None
    header = json.dumps({"keys": batch.names, "count": len(batch), "times": True}).encode()
    assert isinstance(batch.times, np.ndarray)
    return b"".join(
        [
            header,
            b"\n",
            batch.codes.astype("<u4").tobytes(),
            batch.values.astype("<f8").tobytes(),
            batch.steps.astype("<i8").tobytes(),
            batch.times.astype("<i8").tobytes(),
        ]
    )


def decode(body: bytes, *, limit: int) -> MetricBatch:
    """A batch from its binary form, its layout checked (at most ``limit`` points)."""
    end = body.find(b"\n", 0, MAX_HEADER)
    if end < 0:
        raise InvalidInput(f"a {MEDIA_TYPE} body starts with one line of JSON")
    try:
        header = json.loads(body[:end])
    except RecursionError:
        raise InvalidInput(f"the first line of a {MEDIA_TYPE} body is nested too deeply") from None
    except ValueError as exc:
        raise InvalidInput(f"the first line of a {MEDIA_TYPE} body is not JSON ({exc})") from None
    if not isinstance(header, dict) or set(header) != {"keys", "count", "times"}:
        raise InvalidInput('the first line is {"keys": [...], "count": n, "times": true|false}')
    names, count, timed = header["keys"], header["count"], header["times"]
    if type(count) is not int or not 0 < count <= limit:
        raise InvalidInput(f"a batch holds from 1 to {limit} metric points, not {count!r}")
    if not isinstance(names, list) or not names or not isinstance(timed, bool):
        raise InvalidInput('"keys" is a list of the batch\'s metric keys, "times" true or false')
    size = count * (28 if timed else 20)
    if len(body) - end - 1 != size:
        raise InvalidInput(
            f"a batch of {count} points takes {size} bytes after its first line,"
            f" not {len(body) - end - 1}"
        )
    at = end + 1
    codes = np.frombuffer(body, "<u4", count, at)
    values = np.frombuffer(body, "<f8", count, at + 4 * count)
    steps = np.frombuffer(body, "<i8", count, at + 12 * count)
    times = np.frombuffer(body, "<i8", count, at + 20 * count) if timed else None
    if int(codes.max()) >= len(names):
        raise InvalidInput(f"a point's key index is past the {len(names)} keys given")
    return MetricBatch(list(names), codes, values, steps, times)
