"""The runs and datasets half of the embedded registry: a training run's start, params,
metric points, datasets and end, and the datasets runs and versions used.

A mixin of :class:`modelreg.local.LocalRegistry`, apart only so that each file stays
readable: the rules live in ``runs``, ``metric_points`` and ``datasets``, each change in one
transaction with its audit event.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from modelreg import capture, datasets, lineage, runs
from modelreg.datasets import Dataset, DatasetUse
from modelreg.db import Database
from modelreg.governance_records import DependentVersion
from modelreg.records import MetricPointArg
from modelreg.values import check_metrics, check_params

if TYPE_CHECKING:
    from modelreg.metric_columns import MetricBatch


class Runs:
    """Training runs and the datasets they used."""

    db: Database
    actor: str

    def open_run(
        self,
        *,
        name: str,
        params: Mapping[str, Any],
        code: Mapping[str, Any],
        environment: Mapping[str, Any],
        facts: capture.ProcessFacts,
    ) -> str:
        """Record a run as started, with the code, environment and process facts its caller
        captured (``Run`` does this on entering); returns its id."""
        checked = check_params(params)
        run_id = str(uuid.uuid4())
        env = capture.environment(dict(environment))
        self.db.write(
            lambda conn: runs.insert(
                conn,
                run_id=run_id,
                name=name,
                params=checked,
                code=dict(code),
                env=env,
                facts=facts,
                actor=self.actor,
            )
        )
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
        """Record a run as finished or failed, with its last metric values and datasets."""
        checked = check_metrics(metrics)
        self.db.write(
            lambda conn: runs.finish(
                conn,
                run_id,
                status=status,
                error=error,
                metrics=checked,
                datasets=list(datasets),
                actor=self.actor,
            )
        )

    def record_run_params(
        self, run_id: str, params: Mapping[str, Any], new: Mapping[str, Any]
    ) -> None:
        all_params, changed = check_params(params), check_params(new)
        self.db.write(
            lambda conn: runs.update_params(conn, run_id, all_params, changed, actor=self.actor)
        )

    def record_run_metrics(
        self, run_id: str, points: Sequence[MetricPointArg] | MetricBatch
    ) -> None:
        """Append metric points (key, value, step[, ms]), or a batch of them as columns, to a
        run's history: one transaction and one audit event for the batch."""
        from modelreg import metric_points  # numpy: loaded by the first points recorded
        from modelreg.metric_columns import MetricBatch

        if isinstance(points, MetricBatch):
            batch = metric_points.check_batch(points)
        else:
            batch = metric_points.check_points(points)
        self.db.write(lambda conn: metric_points.add_metrics(conn, run_id, batch, actor=self.actor))

    def record_run_dataset(self, run_id: str, use: DatasetUse) -> None:
        self.db.write(lambda conn: runs.add_dataset(conn, run_id, use, actor=self.actor))

    # -- datasets ----------------------------------------------------------------------------

    def datasets(self) -> list[Dataset]:
        return self.db.read(datasets.list_all)

    def dataset(self, ref: str) -> list[Dataset]:
        """Every recorded version of a dataset: ``NAME`` or ``NAME@DIGEST``."""
        return self.db.read(lambda conn: datasets.find(conn, ref))

    def dataset_models(self, ref: str) -> list[DependentVersion]:
        """Every version that used the dataset's bytes (under this name or any other they are
        recorded under), and every descendant through parent links."""
        return self.db.read(lambda conn: lineage.dataset_dependents(conn, ref))
