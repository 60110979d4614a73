"""Training runs: a context manager that records what a training did while it does it.

with reg.start_run(name="nightly", params={"C": 0.1}) as run:
    run.use_dataset("data/train.csv")
    run.log_metric("loss", 0.4, step=1)
    run.register("churn", "model.skops")
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from modelreg import audit, capture, datasets, schema, versions
from modelreg.datasets import DatasetUse
from modelreg.db import insert_rows, now
from modelreg.errors import Conflict, InvalidInput, NotFound
from modelreg.manifest import FilesArg
from modelreg.values import check_key, check_metric, check_params

if TYPE_CHECKING:
    from modelreg.flavors.autolog import Autolog
    from modelreg.versions import Version


class RunHost(Protocol):
    """What a run records through: a registry, embedded or remote."""

    def _put_diff(self, diff: bytes) -> tuple[str, int]: ...

    def open_run(
        self,
        *,
        name: str,
        params: Mapping[str, Any],
        code: Mapping[str, Any],
        environment: Mapping[str, Any],
        facts: capture.ProcessFacts,
    ) -> str: ...

    def close_run(
        self,
        run_id: str,
        *,
        status: str,
        error: str | None = None,
        metrics: Mapping[str, float] | None = None,
        datasets: Sequence[DatasetUse] = (),
    ) -> None: ...

    def record_run_params(
        self, run_id: str, params: Mapping[str, Any], new: Mapping[str, Any]
    ) -> None: ...

    def record_run_metrics(self, run_id: str, points: Sequence[tuple[str, float, int]]) -> None: ...

    def record_run_dataset(self, run_id: str, use: DatasetUse) -> None: ...

    def register(self, *args: Any, **options: Any) -> Version: ...


MAX_NAME = 256


class Run:
    """A training run. Use it as a context manager; it fails if the block raises."""

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
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.status = "failed" if exc_type is not None else "finished"
        error = None if exc is None else f"{exc_type.__name__ if exc_type else ''}: {exc}"
        try:
            if self._autolog is not None:
                self._autolog.stop()
        finally:
            assert self.id is not None
            self._registry.close_run(
                self.id,
                status=self.status,
                error=error,
                metrics=self.metrics,
                datasets=self.datasets,
            )

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
        """Append a point to the metric's history; steps count up from 0 when not given."""
        self.log_metrics({key: value}, step)

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        """Append one point per metric, in one transaction and one audit event."""
        run_id = self._live()
        if not isinstance(metrics, Mapping):
            raise InvalidInput(f"metrics must be a mapping of key to value, not {metrics!r}")
        if isinstance(step, bool) or not (step is None or (isinstance(step, int) and step >= 0)):
            raise InvalidInput(f"step must be a non-negative integer, not {step!r}")
        points = []
        seen = self._steps  # keys already checked by an earlier point of this run
        for key, value in metrics.items():
            if type(value) is float and type(key) is str and key in seen and math.isfinite(value):
                number = value
            else:
                number = check_metric(key, value)
            at = seen.get(key, -1) + 1 if step is None else step
            points.append((key, number, at))
        if not points:
            return
        self._registry.record_run_metrics(run_id, points)
        for key, number, at in points:
            self._steps[key] = max(at, self._steps.get(key, -1))
            self.metrics[key] = number

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
        use = datasets.describe(path_or_uri, name=name, role=role, digest=digest)
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


def encode(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


# -- the run records -------------------------------------------------------------------------


def insert(
    conn: Connection,
    *,
    run_id: str,
    name: str,
    params: dict[str, str],
    code: dict[str, Any],
    env: capture.Environment,
    facts: capture.ProcessFacts,
    actor: str,
) -> None:
    conn.execute(
        schema.runs.insert().values(
            id=run_id,
            name=name,
            status="running",
            started_at=now(),
            hostname=facts.hostname,
            user=facts.user,
            command=facts.command,
            code=encode(code),
            environment_digest=versions.ensure_environment(conn, env),
            params=encode(params),
        )
    )
    audit.append(
        conn,
        actor=actor,
        action="run.start",
        entity_type="run",
        entity_id=run_id,
        entity=name or run_id,
        after={"name": name, "params": params, "code": code},
    )


STATUSES = ("finished", "failed")


def check_exists(conn: Connection, run_id: str) -> None:
    found = conn.execute(sa.select(schema.runs.c.id).where(schema.runs.c.id == run_id)).first()
    if found is None:
        raise NotFound(f"run {run_id!r} not found")


def check_live(conn: Connection, run_id: str) -> str:
    """The name of a running run; NotFound or Conflict when there is none by that id."""
    row = conn.execute(
        sa.select(schema.runs.c.name, schema.runs.c.status).where(schema.runs.c.id == run_id)
    ).first()
    if row is None:
        raise NotFound(f"run {run_id!r} not found")
    if row.status != "running":
        raise Conflict(f"run {run_id} has ended ({row.status}): start a new run")
    return str(row.name)


def finish(
    conn: Connection,
    run_id: str,
    *,
    status: str,
    error: str | None,
    metrics: dict[str, float],
    datasets: list[DatasetUse],
    actor: str,
) -> None:
    if status not in STATUSES:
        raise InvalidInput(f"run status {status!r} is invalid: use one of {', '.join(STATUSES)}")
    name = check_live(conn, run_id)
    conn.execute(
        schema.runs.update()
        .where(schema.runs.c.id == run_id)
        .values(status=status, ended_at=now(), error=error)
    )
    audit.append(
        conn,
        actor=actor,
        action="run.end",
        entity_type="run",
        entity_id=run_id,
        entity=name or run_id,
        after={
            "status": status,
            "error": error,
            "metrics": metrics,
            "datasets": [d.to_dict() for d in datasets],
        },
    )


def update_params(
    conn: Connection, run_id: str, params: dict[str, str], new: dict[str, str], *, actor: str
) -> None:
    check_live(conn, run_id)
    conn.execute(
        schema.runs.update().where(schema.runs.c.id == run_id).values(params=encode(params))
    )
    audit.append(
        conn,
        actor=actor,
        action="run.params",
        entity_type="run",
        entity_id=run_id,
        entity=run_id,
        after=new,
    )


MAX_POINTS = 100_000
MAX_STEP = 2**31 - 1  # a 32-bit integer column on every backend


def check_points(points: Any) -> list[tuple[str, float, int]]:
    """Metric points as (key, value, step) triples, each checked.

    A batch repeats a few keys many times: each distinct key is checked once, and a finite
    float passes without conversion.
    """
    if not isinstance(points, (list, tuple)) or len(points) > MAX_POINTS:
        raise InvalidInput(f"metric points must be a list of at most {MAX_POINTS} entries")
    keys: set[str] = set()
    checked = []
    for point in points:
        if not isinstance(point, (list, tuple)) or len(point) != 3:
            raise InvalidInput(f"a metric point is (key, value, step), not {point!r}")
        key, value, step = point
        if type(key) is not str or key not in keys:
            keys.add(check_key(key, kind="metric"))
        if type(step) is not int and (isinstance(step, bool) or not isinstance(step, int)):
            raise InvalidInput(f"metric {key!r}: step must be a non-negative integer")
        if not 0 <= step <= MAX_STEP:
            raise InvalidInput(f"metric {key!r}: step must be from 0 to {MAX_STEP}, not {step}")
        if type(value) is not float or not math.isfinite(value):
            value = check_metric(key, value)
        checked.append((key, value, int(step)))
    return checked


def add_metrics(
    conn: Connection, run_id: str, points: list[tuple[str, float, int]], *, actor: str
) -> None:
    """Append metric points (key, value, step) to a run's history, audited like any change."""
    check_live(conn, run_id)
    if not points:  # nothing to record, nor to audit
        return
    stamp = now()
    insert_rows(
        conn,
        schema.run_metrics,
        ("run_id", "key", "value", "step", "timestamp"),
        [(run_id, k, v, s, stamp) for k, v, s in points],
    )
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


def points_digest(points: list[tuple[str, float, int]]) -> str:
    """sha256 of a batch of metric points (key, value, step) as canonical JSON."""
    text = json.dumps([[k, v, s] for k, v, s in points], separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def add_dataset(conn: Connection, run_id: str, use: DatasetUse, *, actor: str) -> None:
    check_live(conn, run_id)
    did = datasets.ensure(conn, use)
    t = schema.run_datasets
    exists = conn.execute(
        sa.select(t.c.run_id).where(
            t.c.run_id == run_id, t.c.dataset_id == did, t.c.role == use.role
        )
    ).first()
    if exists is None:
        conn.execute(t.insert().values(run_id=run_id, dataset_id=did, role=use.role))
        audit.append(
            conn,
            actor=actor,
            action="run.dataset",
            entity_type="run",
            entity_id=run_id,
            entity=run_id,
            after=use.to_dict(),
        )


def record(conn: Connection, run_id: str) -> dict[str, Any]:
    """A run as lineage shows it, with the full metric history per key."""
    r = conn.execute(sa.select(schema.runs).where(schema.runs.c.id == run_id)).one()
    t = schema.run_metrics
    history: dict[str, list[dict[str, Any]]] = {}
    q = sa.select(t).where(t.c.run_id == run_id).order_by(t.c.key, t.c.step, t.c.id)
    for m in conn.execute(q):
        history.setdefault(m.key, []).append(
            {"step": m.step, "value": m.value, "timestamp": m.timestamp}
        )
    return {
        "id": r.id,
        "name": r.name,
        "status": r.status,
        "started_at": r.started_at,
        "ended_at": r.ended_at,
        "hostname": r.hostname,
        "user": r.user,
        "command": r.command,
        "params": json.loads(r.params),
        "error": r.error,
        "metric_history": history,
        "code": json.loads(r.code),
        "environment_digest": r.environment_digest,
    }
