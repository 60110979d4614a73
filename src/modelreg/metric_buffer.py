"""Metric points on their way from a training loop to the registry.

A training loop logs a point per step; the registry stores them in batches. ``MetricBuffer``
sits between the two: ``add`` appends the point to a list and returns (a few microseconds),
and a background thread sends what has gathered as one batch (one request, one transaction,
one audit event) when ``batch`` points are waiting or ``interval`` seconds have passed.

- Memory is bounded: ``add`` waits while ``limit`` points are waiting to be sent.
- Nothing is dropped silently: a batch that fails to send is reported by the next ``add``,
  ``flush`` or ``close``, naming how many points were not recorded and why.
- ``flush`` returns once every point added before it is stored; ``close`` flushes and stops
  the thread. Buffers still open when the interpreter exits are flushed then.
"""

from __future__ import annotations

import atexit
import sys
import threading
import time
import weakref
from collections.abc import Callable
from typing import TypeAlias

from modelreg.errors import ModelregError

# (key, value, step, time in milliseconds since the epoch)
Point: TypeAlias = tuple[str, float, int, int]
Send: TypeAlias = Callable[[list[Point]], None]

BATCH = 10_000  # points a request carries at most (the server takes up to 100,000)
INTERVAL = 1.0  # seconds a point waits at most before it is sent
LIMIT = 200_000  # points waiting to be sent before ``add`` waits for the sender


class MetricBuffer:
    """Points added by one thread, sent in order by a background thread through ``send``."""

    def __init__(
        self,
        send: Send,
        *,
        owner: str = "",
        batch: int = BATCH,
        interval: float = INTERVAL,
        limit: int = LIMIT,
    ) -> None:
        self._send = send
        self._owner = owner  # whose points: named in a failure
        self._batch = batch
        self._interval = interval
        self._limit = max(limit, batch)
        self._points: list[Point] = []
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._added = 0  # points added since the start
        self._done = 0  # points sent (or failed) since the start
        self._failure: Exception | None = None  # the first failure not yet reported
        self._lost = 0  # points that failed to be sent since the last report
        self.lost = 0  # points that failed to be sent, in all
        self._closing = False
        self._flushing = 0  # callers waiting in ``flush``
        self._thread: threading.Thread | None = None

    def add(self, key: str, value: float, step: int) -> None:
        """Queue a point; it is sent within ``interval`` seconds."""
        point = (key, value, step, time.time_ns() // 1_000_000)
        with self._lock:
            if self._failure is not None:
                self._raise_failure()
            if self._thread is None:
                self._start()
            self._points.append(point)
            self._added += 1
            if len(self._points) >= self._batch:
                self._changed.notify_all()
                while len(self._points) >= self._limit and self._failure is None:
                    self._changed.wait()  # the sender is behind: wait until it takes a batch

    def flush(self) -> None:
        """Return when every point added so far is stored; raise if any failed to be."""
        with self._lock:
            target = self._added
            self._flushing += 1
            self._changed.notify_all()
            try:
                while self._done < target and self._thread is not None:
                    self._changed.wait()
            finally:
                self._flushing -= 1
            if self._failure is not None:
                self._raise_failure()

    def close(self) -> None:
        """Flush, then stop the sender; raise if any point failed to be stored."""
        try:
            self.flush()
        finally:
            with self._lock:
                self._closing = True
                self._changed.notify_all()
                thread = self._thread
            if thread is not None and thread is not threading.current_thread():
                thread.join()
            _open.discard(self)

    # -- the sender ---------------------------------------------------------------------------

    def _start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="modelreg-metrics", daemon=True)
        self._thread.start()
        _open.add(self)

    def _due(self, deadline: float) -> bool:
        """Whether the waiting points should go now (the lock is held)."""
        if len(self._points) >= self._batch:
            return True
        return bool(self._points) and (
            self._closing or self._flushing > 0 or time.monotonic() >= deadline
        )

    def _run(self) -> None:
        deadline = time.monotonic() + self._interval
        while True:
            with self._lock:
                while not self._due(deadline):
                    if self._closing and not self._points:
                        self._thread = None
                        self._changed.notify_all()
                        return
                    if not self._points:
                        deadline = time.monotonic() + self._interval  # the clock starts at a point
                    self._changed.wait(max(deadline - time.monotonic(), 0.001))
                batch = self._points[: self._batch]
                del self._points[: len(batch)]
                self._changed.notify_all()  # an ``add`` waiting for room goes on
            failure = None
            try:
                self._send(batch)
            except Exception as exc:  # reported to the training loop, never lost
                failure = exc
            with self._lock:
                self._done += len(batch)
                if failure is not None:
                    self._lost += len(batch)
                    self.lost += len(batch)
                    self._failure = self._failure or failure
                self._changed.notify_all()
            deadline = time.monotonic() + self._interval

    def _raise_failure(self) -> None:
        """Raise the pending failure once (the lock is held); later points are sent again."""
        cause, lost = self._failure, self._lost
        self._failure, self._lost = None, 0
        points = "1 metric point was" if lost == 1 else f"{lost} metric points were"
        message = f"{points} not recorded ({self._owner}): {cause}"
        kind = type(cause) if isinstance(cause, ModelregError) else ModelregError
        try:
            error = kind(message)
        except TypeError:  # an error class that takes more than a message
            error = ModelregError(message)
        raise error from cause


_open: weakref.WeakSet[MetricBuffer] = weakref.WeakSet()


@atexit.register
def _flush_at_exit() -> None:
    for buffer in list(_open):
        try:
            buffer.close()
        except ModelregError as exc:
            print(f"modelreg: {exc}", file=sys.stderr)
