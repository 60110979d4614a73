"""run metric points stored as blocks: one row per key of each logged batch, its points
compressed, with summaries for charts and each key's latest point

Revision ID: 0015
Revises: 0014

The rows of ``run_metrics`` are read once in (run, key, logged) order and written as blocks
of at most 100,000 points, then the table is dropped: about 8 s per million points on
PostgreSQL and SQLite. On PostgreSQL the table is locked against writes first (SHARE), so a
server of the version before that logs points meanwhile waits and then fails, instead of
writing rows the move would not see.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

from modelreg.timestamps import from_ms, to_ms

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

BLOCK = 100_000  # points per block made from the rows of run_metrics

_blocks = sa.table(
    "metric_blocks",
    *(
        sa.column(c)
        for c in (
            "id",
            "run_id",
            "key",
            "count",
            "min_step",
            "max_step",
            "total",
            "low",
            "high",
            "min_ms",
            "max_ms",
            "ordered",
            "points",
        )
    ),
)
_levels = sa.table("metric_levels", sa.column("block_id"), sa.column("level"), sa.column("entries"))
_latest = sa.table(
    "metric_latest",
    *(sa.column(c) for c in ("run_id", "key", "count", "value", "step", "timestamp")),
)
_rows = sa.table(
    "run_metrics", *(sa.column(c) for c in ("id", "run_id", "key", "value", "step", "timestamp"))
)


def upgrade() -> None:
    op.create_table(
        "metric_blocks",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("run_id", sa.String(length=36), nullable=False),
        sa.Column("key", sa.String(length=256), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("min_step", sa.Integer(), nullable=False),
        sa.Column("max_step", sa.Integer(), nullable=False),
        sa.Column("total", sa.Float(), nullable=False),
        sa.Column("low", sa.Float(), nullable=False),
        sa.Column("high", sa.Float(), nullable=False),
        sa.Column("min_ms", sa.BigInteger(), nullable=False),
        sa.Column("max_ms", sa.BigInteger(), nullable=False),
        sa.Column("ordered", sa.Boolean(), nullable=False),
        sa.Column("points", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name=op.f("fk_metric_blocks_run_id_runs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_metric_blocks")),
    )
    op.create_index(
        op.f("ix_metric_blocks_run_id_key_id"), "metric_blocks", ["run_id", "key", "id"]
    )
    op.create_table(
        "metric_levels",
        sa.Column("block_id", sa.Integer(), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("entries", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["block_id"], ["metric_blocks.id"], name=op.f("fk_metric_levels_block_id_metric_blocks")
        ),
        sa.PrimaryKeyConstraint("block_id", "level", name=op.f("pk_metric_levels")),
    )
    op.create_table(
        "metric_latest",
        sa.Column("run_id", sa.String(length=36), nullable=False),
        sa.Column("key", sa.String(length=256), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("timestamp", sa.String(length=27), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name=op.f("fk_metric_latest_run_id_runs")),
        sa.PrimaryKeyConstraint("run_id", "key", name=op.f("pk_metric_latest")),
    )
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute("LOCK TABLE run_metrics IN SHARE MODE")
    _move_rows(bind)
    op.drop_index("ix_run_metrics_run_id", table_name="run_metrics")
    op.drop_table("run_metrics")


def _move_rows(bind: sa.Connection) -> None:
    if bind.execute(sa.select(_rows.c.id).limit(1)).first() is None:
        return  # a new registry: nothing to move (nor numpy to load)
    import numpy as np

    from modelreg import metric_blocks, metric_columns

    query = sa.select(
        _rows.c.run_id, _rows.c.key, _rows.c.value, _rows.c.step, _rows.c.timestamp
    ).order_by(_rows.c.run_id, _rows.c.key, _rows.c.id)
    ms: dict[str, int] = {}
    latest: dict[tuple[str, str], tuple[Any, ...]] = {}
    counts: dict[tuple[str, str], int] = {}
    group: tuple[str, str] | None = None
    points: list[tuple[float, int, int]] = []

    def flush() -> None:
        if group is None or not points:
            return
        values, steps, times = zip(*points, strict=True)
        batch = metric_columns.of_points([group[1]] * len(points), values, steps, times)
        (block,) = metric_blocks.blocks(batch, np.asarray(times, dtype=np.int64))
        row = block.row(group[0])
        block_id = bind.execute(_blocks.insert().values(row).returning(_blocks.c.id)).scalar_one()
        before = counts.get(group, 0)
        levels = [{"block_id": block_id, "level": k, "entries": e} for k, e in block.levels(before)]
        if levels:
            bind.execute(_levels.insert(), levels)
        counts[group] = before + len(points)
        value, step, at = block.latest()
        mine = (step, at, value)
        if group not in latest or mine >= latest[group]:
            latest[group] = mine
        points.clear()

    for row in bind.execute(query.execution_options(stream_results=True, yield_per=BLOCK)):
        if (row.run_id, row.key) != group or len(points) >= BLOCK:
            flush()
            group = (row.run_id, row.key)
        at = ms.get(row.timestamp)
        if at is None:
            if len(ms) > 100_000:  # the times of a history of points stamped one by one
                ms.clear()
            at = ms[row.timestamp] = to_ms(row.timestamp) or 0
        points.append((row.value, row.step, at))
    flush()
    rows = [
        {
            "run_id": run,
            "key": key,
            "count": counts[run, key],
            "value": value,
            "step": step,
            "timestamp": from_ms(at, "a metric point's time"),
        }
        for (run, key), (step, at, value) in latest.items()
    ]
    if rows:
        bind.execute(_latest.insert(), rows)


def downgrade() -> None:
    op.create_table(
        "run_metrics",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("run_id", sa.String(length=36), nullable=False),
        sa.Column("key", sa.String(length=256), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("timestamp", sa.String(length=27), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name=op.f("fk_run_metrics_run_id_runs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_run_metrics")),
    )
    op.create_index("ix_run_metrics_run_id", "run_metrics", ["run_id"])
    from modelreg import metric_blocks

    bind = op.get_bind()
    if bind.dialect.name == "postgresql":  # a server of this version waits, then fails
        op.execute("LOCK TABLE metric_blocks IN SHARE MODE")
    query = sa.select(_blocks.c.run_id, _blocks.c.key, _blocks.c.count, _blocks.c.points).order_by(
        _blocks.c.id
    )
    stamps: dict[int, str] = {}
    for run_id, key, count, data in bind.execute(
        query.execution_options(stream_results=True, yield_per=10)
    ):
        steps, values, times = metric_blocks.unpack(data, count)
        rows = []
        for step, value, at in zip(steps.tolist(), values.tolist(), times.tolist(), strict=True):
            stamp = stamps.get(at)
            if stamp is None:
                if len(stamps) > 100_000:
                    stamps.clear()
                stamp = stamps[at] = from_ms(at, "a metric point's time")
            rows.append(
                {
                    "run_id": run_id,
                    "key": key,
                    "value": value,
                    "step": step,
                    "timestamp": stamp,
                }
            )
        bind.execute(_rows.insert(), rows)
    op.drop_table("metric_levels")
    op.drop_table("metric_latest")
    op.drop_index(op.f("ix_metric_blocks_run_id_key_id"), table_name="metric_blocks")
    op.drop_table("metric_blocks")
