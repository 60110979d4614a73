"""The runs half of the HTTP client: a training run's start, params, metric points,
datasets and end, sent to the server.

A mixin of :class:`modelreg.remote.RemoteRegistry`, apart only so that each file stays
readable. Metric points go as binary columns (``metric_columns``) to a server that reads
them, as JSON otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from modelreg import capture, wire
from modelreg.errors import InvalidInput
from modelreg.records import DatasetUse, MetricPointArg


class RemoteRuns:
    """Training runs, recorded on the server."""

    _columns: bool  # metric points go as columns until the server refuses them

    if TYPE_CHECKING:  # provided by RemoteRegistry

        def _call(self, method: str, path: str, **kwargs: Any) -> Any: ...

    def open_run(
        self,
        *,
        name: str,
        params: Mapping[str, Any],
        code: Mapping[str, Any],
        environment: Mapping[str, Any],
        facts: capture.ProcessFacts,
    ) -> str:
        body = {
            "name": name,
            "params": dict(params),
            "code": dict(code),
            "environment": dict(environment),
            "facts": facts.to_dict(),
        }
        run_id: str = self._call("POST", "/runs", json=body)["id"]
        return run_id

    def close_run(
        self,
        run_id: str,
        *,
        status: str,
        error: str | None = None,
        metrics: Mapping[str, float] | None = None,
        datasets: Sequence[DatasetUse] = (),
    ) -> None:
        body = {
            "status": status,
            "error": error,
            "metrics": dict(metrics or {}),
            "datasets": [d.to_dict() for d in datasets],
        }
        self._call("POST", f"/runs/{_run(run_id)}/end", json=body)

    def record_run_params(
        self, run_id: str, params: Mapping[str, Any], new: Mapping[str, Any]
    ) -> None:
        body = {"params": dict(params), "new": dict(new)}
        self._call("POST", f"/runs/{_run(run_id)}/params", json=body)

    def record_run_metrics(self, run_id: str, points: Sequence[MetricPointArg]) -> None:
        path = f"/runs/{_run(run_id)}/metrics"
        from modelreg import metric_columns  # numpy: loaded by the first points sent

        packed = metric_columns.encode(points) if self._columns else None
        if packed is not None:
            headers = {"content-type": metric_columns.MEDIA_TYPE}
            try:
                self._call("POST", path, content=packed, headers=headers)
                return
            except InvalidInput as exc:  # a server from before columns reads JSON alone
                if "the body is not JSON" not in str(exc):
                    raise
                self._columns = False
        # not all plain: as JSON, for the server to check point by point
        self._call("POST", path, json={"points": [list(p) for p in points]})

    def record_run_dataset(self, run_id: str, use: DatasetUse) -> None:
        self._call("POST", f"/runs/{_run(run_id)}/datasets", json={"dataset": use.to_dict()})


def _run(run_id: str) -> str:
    return wire.check_uuid(run_id, "run id")
