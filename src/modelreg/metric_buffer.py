"""Metric points on their way from a training loop to the registry.

A training loop logs a point per step; the registry stores them in batches. ``MetricBuffer``
sits between the two: ``add`` appends the point to a list and returns (a few microseconds),
and a background thread sends what has gathered as one batch (one request, one transaction,
one audit event) when ``batch`` points are waiting or ``interval`` seconds have passed.

- Memory is bounded: ``add`` waits while ``limit`` points are waiting to be sent.
- Nothing is dropped silently: a batch that fails to send is reported by the next ``add``,
  ``flush`` or ``close``, naming how many points were not recorded and why (the point that
  ``add`` was given is queued all the same); ``lost`` counts them all.
- ``flush`` returns once every point added before it is stored; ``close`` flushes and stops
  the thread. Buffers still open when the interpreter exits are flushed then, for at most
  ``EXIT_TIMEOUT`` seconds. A process killed by a signal (SIGKILL, or SIGTERM without a
  handler that exits Python normally) loses the points not sent yet: at most ``interval``
  seconds of them when the registry keeps up.
- A forked child starts with an empty buffer of its own: the points logged before the fork
  are the parent's to send.

A buffer is filled from one thread (the training loop's) and drained by its own.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
import time
import weakref
from collections.abc import Callable, Iterable
from typing import TypeAlias

from modelreg.errors import InvalidInput, ModelregError

# (key, value, step, time in milliseconds since the epoch)
Point: TypeAlias = tuple[str, float, int, int]
Send: TypeAlias = Callable[[list[Point]], None]

BATCH = 10_000  # points a request carries at most (the server takes up to 100,000)
INTERVAL = 1.0  # seconds a point waits at most before it is sent
LIMIT = 200_000  # points waiting to be sent before ``add`` waits for the sender
EXIT_TIMEOUT = 30.0  # seconds the interpreter's exit waits for points still to be sent


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
        self._fresh_state()
        self.lost = 0  # points that failed to be sent, in all

    def _fresh_state(self) -> None:
        self._points: list[Point] = []
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._added = 0  # points added since the start
        self._done = 0  # points sent (or failed) since the start
        self._failure: BaseException | None = None  # the first failure not yet reported
        self._lost = 0  # points that failed to be sent since the last report
        self._closing = False
        self._closed = False
        self._flushing = 0  # callers waiting in ``flush``
        self._thread: threading.Thread | None = None

    def add(self, key: str, value: float, step: int) -> None:
        """Queue a point; it is sent within ``interval`` seconds. Raises, once, the failure
        of points added earlier (this one is queued all the same)."""
        self.add_many(((key, value, step),))

    def add_many(self, points: Iterable[tuple[str, float, int]]) -> None:
        """Queue points (key, value, step), all stamped now, under one lock."""
        stamp = time.time_ns() // 1_000_000
        with self._lock:
            if self._closed:
                raise InvalidInput(f"metric points cannot be added after the end ({self._owner})")
            if self._thread is None:
                self._start()
            for key, value, step in points:
                self._points.append((key, value, step, stamp))
                self._added += 1
                if len(self._points) >= self._batch:
                    self._changed.notify_all()
                    while len(self._points) >= self._limit and self._alive():
                        self._changed.wait(1.0)  # the sender is behind: wait for room
            if self._failure is not None:
                self._raise_failure()

    def flush(self, timeout: float | None = None) -> None:
        """Return when every point added so far is stored (or ``timeout`` seconds passed);
        raise the failure not reported yet, if any."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            target = self._added
            self._flushing += 1
            self._changed.notify_all()
            try:
                while self._done < target and self._alive():
                    left = None if deadline is None else deadline - time.monotonic()
                    if left is not None and left <= 0:
                        break
                    self._changed.wait(1.0 if left is None else min(left, 1.0))
            finally:
                self._flushing -= 1
            unsent = target - self._done
            if unsent > 0 and self._failure is None:
                self._failure = TimeoutError(f"not sent within {timeout} s")
                self._lost += unsent
                self.lost += unsent
            if self._failure is not None:
                self._raise_failure()

    def close(self, timeout: float | None = None) -> None:
        """Flush, then stop the sender; raise if any point failed to be stored."""
        try:
            self.flush(timeout)
        finally:
            with self._lock:
                self._closing = self._closed = True
                self._changed.notify_all()
                thread = self._thread
            if thread is not None and thread is not threading.current_thread():
                thread.join(timeout)
            _open.discard(self)

    # -- the sender ---------------------------------------------------------------------------

    def _alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

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
        try:
            self._sending()
        except BaseException as exc:  # the thread is gone: what it held is lost, and said so
            with self._lock:
                unsent = self._added - self._done  # waiting, and the batch in flight
                self._points = []
                self._done = self._added
                self._failed(unsent, exc)  # raised by the next add, flush or close
        finally:
            with self._lock:
                self._thread = None
                self._changed.notify_all()

    def _sending(self) -> None:
        deadline = time.monotonic() + self._interval
        while True:
            with self._lock:
                while not self._due(deadline):
                    if self._closing and not self._points:
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
                    self._failed(len(batch), failure)
                self._changed.notify_all()
            deadline = time.monotonic() + self._interval

    def _failed(self, count: int, exc: BaseException) -> None:
        """Count ``count`` points lost to ``exc`` (the lock is held)."""
        self._lost += count
        self.lost += count
        self._failure = self._failure or exc

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

    def _after_fork(self) -> None:
        """In a forked child: a buffer of its own, empty (the parent sends what it held)."""
        lost = self.lost
        self._fresh_state()
        self.lost = lost


_open: weakref.WeakSet[MetricBuffer] = weakref.WeakSet()


def _forked() -> None:
    for buffer in list(_open):
        buffer._after_fork()
        _open.discard(buffer)


os.register_at_fork(after_in_child=_forked)


@atexit.register
def _flush_at_exit() -> None:
    for buffer in list(_open):
        try:
            buffer.close(EXIT_TIMEOUT)
        except ModelregError as exc:
            print(f"modelreg: {exc}", file=sys.stderr)
