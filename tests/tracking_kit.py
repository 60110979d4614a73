"""Tracked runs made through the store, as MLflow's routes record them, for the tests of the
pages that show them (``test_ui_tracking.py``, ``test_ui_browser.py``)."""

from __future__ import annotations

import uuid

from sqlalchemy.engine import Connection

from modelreg import experiments, metric_points, runs
from modelreg.local import LocalRegistry
from modelreg.timestamps import now


def new_experiment(reg: LocalRegistry, name: str) -> int:
    """A new experiment's id."""
    return reg.db.write(lambda conn: experiments.create(conn, name, tags={}, actor="tester"))


def track(
    reg: LocalRegistry,
    experiment_id: int,
    name: str,
    *,
    params: dict[str, str] | None = None,
    metrics: dict[str, list[float]] | None = None,
    tags: dict[str, str] | None = None,
    end: bool = True,
) -> str:
    """A run as MLflow's routes record one: created in an experiment by alice, its params, a
    metric history per key (steps 0, 1, ...) and tags, then finished unless ``end`` is false.
    Its id."""
    run_id = uuid.uuid4().hex

    def write(conn: Connection) -> None:
        runs.create_tracked(
            conn,
            run_id=run_id,
            name=name,
            experiment_id=experiment_id,
            user="alice",
            started_at=now(),
            tags=tags or {},
            actor="tester",
        )
        runs.log_params(conn, run_id, params or {}, actor="tester")
        points = [(k, v, s) for k, vs in (metrics or {}).items() for s, v in enumerate(vs)]
        metric_points.add_metrics(
            conn, run_id, metric_points.batch_of(points, None), actor="tester"
        )
        if end:
            runs.update_tracked(conn, run_id, status="finished", actor="tester")

    reg.db.write(write)
    return run_id
