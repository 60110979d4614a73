"""The metric buffer between a training loop and the registry: points go in batches, in
order, on a timer, with bounded memory, and none is lost without a report."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time

import pytest

from modelreg.errors import InvalidInput, ModelregError, NotFound
from modelreg.metric_buffer import MetricBuffer


def wait_for(condition, what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.005)


def test_points_arrive_in_order_in_batches_of_at_most_the_batch_size():
    sent: list[list[tuple]] = []
    buffer = MetricBuffer(sent.append, batch=100, interval=60)
    for step in range(1050):
        buffer.add("loss", float(step), step)
    buffer.close()
    assert [p[:3] for batch in sent for p in batch] == [("loss", float(s), s) for s in range(1050)]
    assert max(len(batch) for batch in sent) == 100
    assert all(isinstance(p[3], int) for batch in sent for p in batch)


def test_a_point_is_sent_on_the_timer_without_a_flush():
    sent: list[list[tuple]] = []
    buffer = MetricBuffer(sent.append, batch=100, interval=0.05)
    buffer.add("loss", 0.5, 0)
    wait_for(lambda: sent, "the timer to send the point")
    assert [p[:3] for p in sent[0]] == [("loss", 0.5, 0)]
    buffer.close()


def test_memory_is_bounded_the_loop_waits_for_a_slow_sender():
    release = threading.Event()
    sent: list[int] = []

    def slow(points):
        release.wait()
        sent.append(len(points))

    buffer = MetricBuffer(slow, batch=10, interval=60, limit=50)
    logger = threading.Thread(target=lambda: [buffer.add("k", 1.0, i) for i in range(200)])
    logger.start()
    # The sender holds one batch; the loop fills the buffer to the limit and waits there.
    wait_for(lambda: buffer._added == 60 and len(buffer._points) == 50, "the buffer to fill")
    time.sleep(0.05)
    assert logger.is_alive()
    assert buffer._added == 60
    release.set()
    logger.join(timeout=30)
    buffer.close()
    assert sum(sent) == 200


def test_a_failed_batch_is_reported_once_and_later_points_are_sent():
    sent: list[int] = []

    def send(points):
        if not sent:
            sent.append(0)
            raise NotFound("run abc not found")
        sent.append(len(points))

    buffer = MetricBuffer(send, batch=5, interval=60, owner="run abc")
    for step in range(5):
        buffer.add("loss", 0.5, step)
    with pytest.raises(NotFound, match=r"^5 metric points were not recorded \(run abc\)"):
        buffer.flush()
    buffer.add("loss", 0.5, 5)
    buffer.close()  # no second report: the later point was stored
    assert sent == [0, 1]


def test_an_error_that_is_not_the_registrys_is_reported_as_one():
    def send(points):
        raise OSError("connection reset")

    buffer = MetricBuffer(send, interval=60)
    buffer.add("loss", 0.5, 0)
    with pytest.raises(ModelregError, match=r"1 metric point was not recorded.*connection reset"):
        buffer.close()


def test_points_still_waiting_when_the_interpreter_exits_are_sent():
    script = textwrap.dedent(
        """
        from modelreg.metric_buffer import MetricBuffer
        buffer = MetricBuffer(lambda points: print("sent", len(points)), interval=600)
        for step in range(7):
            buffer.add("loss", 0.5, step)
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["sent", "7"]


def test_a_forked_child_starts_empty_and_exits_at_once():
    script = textwrap.dedent(
        """
        import os, sys
        from modelreg.metric_buffer import MetricBuffer
        sent = []
        buffer = MetricBuffer(lambda points: sent.append(len(points)), interval=600)
        for step in range(5):
            buffer.add("loss", 0.5, step)
        child = os.fork()
        if child == 0:
            buffer.add("loss", 0.5, 5)   # its own point, sent by its own thread
            buffer.close()
            print("child sent", sent, flush=True)
            sys.exit(0)
        os.waitpid(child, 0)
        buffer.close()
        print("parent sent", sent, flush=True)
        """
    )
    done = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["child sent [1]", "parent sent [5]"]


def test_a_sender_killed_by_a_base_exception_is_reported_and_nothing_hangs():
    def send(points):
        raise SystemExit("a library called sys.exit")

    buffer = MetricBuffer(send, interval=60)
    buffer.add("loss", 0.5, 0)
    buffer.add("loss", 0.5, 1)
    with pytest.raises(ModelregError, match=r"^2 metric points were not recorded"):
        buffer.flush()
    assert buffer.lost == 2


def test_a_flush_with_a_time_limit_reports_what_it_did_not_send():
    release = threading.Event()
    buffer = MetricBuffer(lambda points: release.wait(), interval=60)
    buffer.add("loss", 0.5, 0)
    with pytest.raises(ModelregError, match=r"^1 metric point was not recorded.*within 0.2 s"):
        buffer.flush(timeout=0.2)
    release.set()
    buffer.close()


def test_points_cannot_be_added_after_the_buffer_is_closed():
    buffer = MetricBuffer(lambda points: None, owner="run abc")
    buffer.close()
    with pytest.raises(InvalidInput, match=r"after the end \(run abc\)"):
        buffer.add("loss", 0.5, 0)
