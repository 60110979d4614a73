"""Prometheus metrics of the server, kept in the process and rendered as text."""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from typing import Any

from starlette.types import Scope

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Request:
    """One request being served: its route, status and bytes, counted when it finishes."""

    def __init__(self, metrics: Metrics, method: str, scope: Scope) -> None:
        self.metrics = metrics
        self.method = method
        self.scope = scope
        self.status = 0
        self.bytes_in = 0
        self.bytes_out = 0
        self.started = time.perf_counter()

    def finish(self) -> None:
        route = self.scope.get("route")
        # The route's template, never the raw path: paths hold names, and would grow the
        # label set without bound.
        path = getattr(route, "path", None) or "unmatched"
        self.metrics.record(
            self.method, path, self.status, time.perf_counter() - self.started, self
        )


class Metrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._count: dict[tuple[str, str, int], int] = defaultdict(int)
        self._buckets: dict[tuple[str, str], list[int]] = {}
        self._sum: dict[tuple[str, str], float] = defaultdict(float)
        self._bytes_in = 0
        self._bytes_out = 0
        self._corrupt_blobs = 0

    def corrupt_blob(self) -> None:
        """Count a blob whose bytes failed their digest while they were sent."""
        with self._lock:
            self._corrupt_blobs += 1

    def start(self, method: str, scope: Scope) -> Request:
        return Request(self, method, scope)

    def record(self, method: str, path: str, status: int, seconds: float, req: Any) -> None:
        with self._lock:
            self._count[(method, path, status)] += 1
            key = (method, path)
            buckets = self._buckets.setdefault(key, [0] * (len(BUCKETS) + 1))
            for i, bound in enumerate(BUCKETS):
                if seconds <= bound:
                    buckets[i] += 1
            buckets[-1] += 1
            self._sum[key] += seconds
            self._bytes_in += req.bytes_in
            self._bytes_out += req.bytes_out

    def render(self) -> str:
        lines = [
            "# HELP modelreg_http_requests_total HTTP requests by method, route and status.",
            "# TYPE modelreg_http_requests_total counter",
        ]
        with self._lock:
            for (method, path, status), n in sorted(self._count.items()):
                labels = f'method="{method}",route="{_escape(path)}",status="{status}"'
                lines.append(f"modelreg_http_requests_total{{{labels}}} {n}")
            lines += [
                "# HELP modelreg_http_request_duration_seconds Time to serve a request.",
                "# TYPE modelreg_http_request_duration_seconds histogram",
            ]
            for (method, path), buckets in sorted(self._buckets.items()):
                labels = f'method="{method}",route="{_escape(path)}"'
                for bound, n in zip((*BUCKETS, "+Inf"), buckets, strict=True):
                    name = "modelreg_http_request_duration_seconds_bucket"
                    lines.append(f'{name}{{{labels},le="{bound}"}} {n}')
                lines.append(
                    f"modelreg_http_request_duration_seconds_sum{{{labels}}} "
                    f"{self._sum[(method, path)]:.6f}"
                )
                lines.append(
                    f"modelreg_http_request_duration_seconds_count{{{labels}}} {buckets[-1]}"
                )
            lines += [
                "# HELP modelreg_http_received_bytes_total Request body bytes received.",
                "# TYPE modelreg_http_received_bytes_total counter",
                f"modelreg_http_received_bytes_total {self._bytes_in}",
                "# HELP modelreg_http_sent_bytes_total Response body bytes sent.",
                "# TYPE modelreg_http_sent_bytes_total counter",
                f"modelreg_http_sent_bytes_total {self._bytes_out}",
                "# HELP modelreg_blob_digest_mismatches_total Downloads cut short because the"
                " stored blob failed its digest (run modelreg fsck).",
                "# TYPE modelreg_blob_digest_mismatches_total counter",
                f"modelreg_blob_digest_mismatches_total {self._corrupt_blobs}",
            ]
        return "\n".join(lines) + "\n"


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
