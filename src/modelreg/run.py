"""A training run as the training script sees it: a context manager that records what the
training did while it does it, through a registry (embedded or remote).

with reg.start_run(name="nightly", params={"C": 0.1}) as run:
    run.use_dataset("data/train.csv")
    run.log_metric("loss", 0.4, step=1)
    run.register("churn", "model.skops")

Metric points are buffered and sent in batches by a background thread (``metric_buffer``):
``log_metric`` returns in microseconds, and the registry stores a batch in one transaction
with one audit event. The run flushes them before it registers a version and when it ends.

What the store does with it (the runs tables) is in ``runs``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol, Unpack

from modelreg import capture, dataset_files
from modelreg.errors import InvalidInput, ModelregError
from modelreg.manifest import FilesArg
from modelreg.metric_buffer import MetricBuffer
from modelreg.records import DatasetUse
from modelreg.registry import Registry
from modelreg.values import MAX_STEP, check_metric, check_params, check_step

if TYPE_CHECKING:
    from modelreg.flavors.autolog import Autolog
    from modelreg.options import RegisterOptions
    from modelreg.records import Version


class RunHost(Registry, Protocol):
    """What a run records through: a registry, embedded or remote (the Registry contract,
    and where the uncommitted diff goes)."""

    def _put_diff(self, diff: bytes) -> tuple[str, int]: ...

    def register(
        self,
        name: str,
        files: Any,
        *,
        _run: Run | None = None,
        **options: Unpack[RegisterOptions],
    ) -> Version: ...


MAX_NAME = 256


class Run:
    """A training run. Use it as a context manager; it fails if the block raises. A run is
    used from one thread: steps given by none count up per key."""

    def __init__(
        self, registry: RunHost, *, name: str | None, params: Mapping[str, Any] | None
    ) -> None:
        self._registry = registry
        if name is not None and (not isinstance(name, str) or len(name) > MAX_NAME):
            raise InvalidInput(f"run name must be text of at most {MAX_NAME} characters")
        self.name = name or ""
        self.params: dict[str, str] = check_params(params)
        self.metrics: dict[str, float] = {}
        self.datasets: list[DatasetUse] = []
        self._steps: dict[str, int] = {}
        self.id: str | None = None
        self.status = "pending"
        self._autolog: Autolog | None = None
        self._buffer: MetricBuffer | None = None

    def __repr__(self) -> str:
        return f"<Run {self.name!r} {self.id} {self.status}>"

    def __enter__(self) -> Run:
        # Code and environment are facts of the process that trains, captured here; the
        # command line first, so that a bad redaction setting fails before a diff is stored.
        facts = capture.process_facts()
        code, diff = capture.capture_code()
        if diff is not None:
            code["diff_digest"], code["diff_size"] = self._registry._put_diff(diff)
        self.id = self._registry.open_run(
            name=self.name,
            params=self.params,
            code=code,
            environment=capture.capture_environment().data,
            facts=facts,
        )
        self.status = "running"
        registry, run_id = self._registry, self.id

        def send(points: list[tuple[str, float, int, int]]) -> None:
            registry.record_run_metrics(run_id, points)

        self._buffer = MetricBuffer(send, owner=f"run {run_id}")
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.status = "failed" if exc_type is not None else "finished"
        error = None if exc is None else f"{exc_type.__name__ if exc_type else ''}: {exc}"
        lost: ModelregError | None = None
        ended = False
        try:
            try:
                if self._autolog is not None:
                    self._autolog.stop()
            finally:
                try:
                    if self._buffer is not None:
                        self._buffer.close()  # sends what is left
                except ModelregError as failure:
                    lost = failure
            ended = True
        finally:
            # The run is closed whatever happened above, Ctrl-C while points were being
            # sent included; a history that is not whole makes it a failed run.
            missing = self._buffer.lost if self._buffer is not None else 0
            if not ended:
                self.status = "failed"
                error = error or "interrupted while ending (autologging, sending metric points)"
            if missing:
                self.status = "failed"
                note = f"{missing} metric points were not recorded"
                error = note if error is None else f"{error}; {note}"
            assert self.id is not None
            self._registry.close_run(
                self.id,
                status=self.status,
                error=error,
                metrics=self.metrics,
                datasets=self.datasets,
            )
        if lost is not None and exc is None:
            raise lost

    def _live(self) -> str:
        if self.id is None or self.status != "running":
            raise InvalidInput("this run is not active: use it inside `with reg.start_run(...)`")
        return self.id

    def log_param(self, key: str, value: Any) -> None:
        self.log_params({key: value})

    def log_params(self, params: Mapping[str, Any]) -> None:
        run_id = self._live()
        checked = check_params(params)
        self.params.update(checked)
        self._registry.record_run_params(run_id, self.params, checked)

    def log_metric(self, key: str, value: float, step: int | None = None) -> None:
        """Append a point to the metric's history; steps count up from 0 when not given.

        The point is sent in the background with others (see ``flush``)."""
        buffer = self._metric_buffer()
        point = self._point(key, value, step)
        buffer.add_many((point,))
        self._logged(point)

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        """Append one point per metric, all at ``step`` (each key's next step if not given)."""
        buffer = self._metric_buffer()
        if not isinstance(metrics, Mapping):
            raise InvalidInput(f"metrics must be a mapping of key to value, not {metrics!r}")
        points = [self._point(key, value, step) for key, value in metrics.items()]
        buffer.add_many(points)
        for point in points:
            self._logged(point)

    def log_metrics_history(
        self, history: Mapping[str, Sequence[float]] | Iterable[tuple[str, float, int]]
    ) -> None:
        """Append many points of many metrics at once: ``{"loss": [0.9, 0.7, ...]}`` (each
        key's steps go on from its last one), or ``(key, value, step)`` triples (MLflow's
        ``log_batch`` takes the same three, with a time). Every point is checked before any
        is queued."""
        buffer = self._metric_buffer()
        points: list[tuple[str, float, int]] = []
        if isinstance(history, Mapping):
            for key, values in history.items():
                if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
                    raise InvalidInput(
                        f"metric {key!r}: the history is a sequence of values, not {values!r}"
                    )
                next_step = self._steps.get(key, -1) + 1
                points += [self._point(key, v, next_step + i) for i, v in enumerate(values)]
        elif isinstance(history, (str, bytes)) or not isinstance(history, Iterable):
            raise InvalidInput(
                "a metric history is a mapping of key to values, or (key, value, step) triples,"
                f" not {history!r}"
            )
        else:
            for point in history:
                if not isinstance(point, (tuple, list)) or len(point) != 3:
                    raise InvalidInput(f"a metric point is (key, value, step), not {point!r}")
                key, value, step = point
                if step is None:
                    raise InvalidInput(f"metric {key!r}: a point of a history needs its step")
                points.append(self._point(key, value, step))
        buffer.add_many(points)
        for point in points:
            self._logged(point)

    def flush(self) -> None:
        """Wait until every metric point logged so far is stored. A point that could not be
        stored is reported here (or by the next ``log_metric``), never dropped silently."""
        if self._buffer is not None:
            self._buffer.flush()

    def _point(self, key: Any, value: Any, step: Any) -> tuple[str, float, int]:
        """A point, checked as the registry checks it: a key seen before and a finite float
        pass without conversion; a step, given or next, is from 0 to MAX_STEP."""
        steps = self._steps
        if (
            type(value) is not float
            or type(key) is not str
            or key not in steps
            or not (-math.inf < value < math.inf)
        ):
            value = check_metric(key, value)  # a new key, or a value to convert or refuse
        if step is None:
            step = steps.get(key, -1) + 1
        if type(step) is not int or not 0 <= step <= MAX_STEP:
            step = check_step(key, step)
        return key, value, step

    def _logged(self, point: tuple[str, float, int]) -> None:
        key, value, step = point
        if step > self._steps.get(key, -1):
            self._steps[key] = step
        self.metrics[key] = value

    def _metric_buffer(self) -> MetricBuffer:
        self._live()
        assert self._buffer is not None
        return self._buffer

    def use_dataset(
        self,
        path_or_uri: str | Path,
        name: str | None = None,
        role: str = "train",
        *,
        digest: str | None = None,
    ) -> DatasetUse:
        """Record a dataset the run reads; its digest is computed from the data itself."""
        run_id = self._live()
        use = dataset_files.describe(path_or_uri, name=name, role=role, digest=digest)
        self._registry.record_run_dataset(run_id, use)
        self.datasets.append(use)
        return use

    def autolog(self) -> None:
        """Record what each ``fit()`` in this run uses and produces (scikit-learn, and other
        libraries with a patcher in modelreg.flavors.autolog): the estimator's params, its
        training score, and the fitted model for ``register(name)``. Undone when the run ends.
        """
        from modelreg.flavors.autolog import Autolog

        self._live()
        if self._autolog is not None:
            return
        session = Autolog(self)
        session.start()
        self._autolog = session

    def register(self, name: str, files: FilesArg | Any = None, **options: Any) -> Version:
        """Register a version made by this run: it inherits the run's params, last metric
        values and datasets, and links to the run for its code and environment.

        ``files`` is paths or a model object; with autologging on and no ``files``, the
        model fitted last is registered.
        """
        self._live()
        self.flush()  # the version links to a run whose history is stored
        if files is None:
            if self._autolog is None or self._autolog.model is None:
                raise InvalidInput(
                    "no files or model given, and no model was fitted under run.autolog()"
                )
            files = self._autolog.model
        params = {**self.params, **check_params(options.pop("params", None))}
        metrics = {**self.metrics, **(options.pop("metrics", None) or {})}
        return self._registry.register(
            name, files, params=params, metrics=metrics, _run=self, **options
        )
