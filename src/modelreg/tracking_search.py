"""MLflow's searches of runs and experiments compiled to SQL: the clauses ``mlflow_filter``
parses, over runs, the latest value of each metric (``metric_blocks.latest_points``), run
tags, params and datasets, and over experiments and their tags. Every literal reaches SQL as a bound
parameter.

Comparisons mean what they mean on MLflow's server: a run without the metric, param or tag
matches neither ``= x`` nor ``!= x``; ``LIKE`` is case-sensitive on every backend (SQLite's
own LIKE is not: there it runs as GLOB), ``ILIKE`` ignores case. Time attributes arrive as
stored times (``mlflow_filter.stored_times``). Runs are ordered by the keys asked for, those
without a value last, then newest first, then by id; experiments newest first, then by id.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeAlias

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection

from modelreg import experiments, keyset, metric_blocks, schema
from modelreg.errors import InvalidInput
from modelreg.mlflow_filter import Clause, OrderKey, like_pattern
from modelreg.records import Experiment

VIEWS = ("ACTIVE_ONLY", "DELETED_ONLY", "ALL")
Cond: TypeAlias = sa.ColumnElement[bool]
Expr: TypeAlias = sa.ColumnElement[Any]

_r, _e = schema.runs, schema.experiments
_rt, _et = schema.run_tags, schema.experiment_tags
_rd, _d = schema.run_datasets, schema.datasets


def search_runs(
    conn: Connection,
    *,
    experiment_ids: Sequence[int],
    clauses: Sequence[Clause] = (),
    order: Sequence[OrderKey] = (),
    view: str = "ACTIVE_ONLY",
    limit: int,
    offset: int = 0,
    after: Sequence[Any] | None = None,
) -> tuple[list[str], tuple[Any, ...] | None]:
    """The ids of one page of the runs of ``experiment_ids`` that pass every clause, in
    order, and the sort values of its last run when more follow (None when none do): the
    next page passes them as ``after`` and starts there (``offset`` is then not read)."""
    scope = sa.select(_r.c.id).where(_r.c.experiment_id.in_(list(experiment_ids)))
    source: Any = _r.outerjoin(_e, _e.c.id == _r.c.experiment_id)
    conds: list[Cond] = [_r.c.experiment_id.in_(list(experiment_ids)), _view(view)]
    dialect = conn.dialect.name
    for clause in clauses:
        conds.append(_run_clause(clause, scope, dialect))
    keys: list[tuple[Expr, bool]] = []
    for item in order:
        if item.entity == "metric":
            latest = metric_blocks.latest_points(scope, key=item.key)
            source = source.outerjoin(latest, latest.c.run_id == _r.c.id)
            value: Expr = latest.c.value
        else:
            value = _run_value(item.entity, item.key, dialect)
        keys += [(sa.case((value.is_(None), 1), else_=0), False), (value, not item.ascending)]
    if not any(k.entity == "attribute" and k.key == "start_time" for k in order):
        keys.append((_r.c.started_at, True))
    keys.append((_r.c.id, False))
    query = sa.select(_r.c.id).select_from(source).where(*conds)
    rows, last = keyset.page(conn, query, keys, limit=limit, offset=offset, after=after)
    return [r.id for r in rows], last


def _view(view: str) -> Cond:
    stage = sa.func.coalesce(_e.c.lifecycle_stage, "active")
    deleted = sa.or_(_r.c.deleted_at.is_not(None), stage != "active")
    if view == "ACTIVE_ONLY":
        return sa.not_(deleted)
    if view == "DELETED_ONLY":
        return deleted
    if view == "ALL":
        return sa.true()
    raise InvalidInput(f"run_view_type {view!r} is invalid: use one of {', '.join(VIEWS)}")


def _run_clause(c: Clause, scope: sa.Select[Any], dialect: str) -> Cond:
    if c.entity == "metric":
        latest = metric_blocks.latest_points(scope, key=c.key)
        matched = sa.select(latest.c.run_id).where(_test(latest.c.value, c, dialect))
        return _r.c.id.in_(matched)
    if c.entity == "tag":
        has = sa.select(_rt.c.run_id).where(_rt.c.run_id == _r.c.id, _rt.c.key == c.key)
        if c.op in ("IS NULL", "IS NOT NULL"):
            found = sa.exists(has.correlate(_r))
            return sa.not_(found) if c.op == "IS NULL" else found
        return sa.exists(has.where(_test(_rt.c.value, c, dialect)).correlate(_r))
    if c.entity == "dataset":
        value = _dataset_value(c.key, dialect)
        used = (
            sa.select(_rd.c.run_id)
            .join(_d, _d.c.id == _rd.c.dataset_id)
            .where(_rd.c.run_id == _r.c.id, _test(value, c, dialect))
        )
        return sa.exists(used.correlate(_r))
    return _test(_run_value(c.entity, c.key, dialect), c, dialect)


def _run_value(entity: str, key: str, dialect: str) -> Expr:
    """The value of ``entity.key`` on each run (NULL where it has none)."""
    if entity == "param":
        return _json_text(_r.c.params, dialect, key)
    if entity == "tag":
        q = sa.select(_rt.c.value).where(_rt.c.run_id == _r.c.id, _rt.c.key == key)
        return q.correlate(_r).scalar_subquery()
    columns: dict[str, Expr] = {
        "run_id": _r.c.id,
        "run_name": _r.c.name,
        "user_id": _r.c.user,
        "status": sa.func.upper(_r.c.status, type_=sa.String),
        "start_time": _r.c.started_at,
        "end_time": _r.c.ended_at,
        "artifact_uri": sa.literal("mlflow-artifacts:/")
        + sa.cast(_r.c.experiment_id, sa.String)
        + "/"
        + _r.c.id
        + "/artifacts",
    }
    return columns[key]


def _dataset_value(key: str, dialect: str) -> Expr:
    """A dataset field of a run's input: as the MLflow client logged it, else modelreg's."""
    if key == "context":
        logged = _json_text(_rd.c.details, dialect, "tags", "mlflow.data.context")
        return sa.func.coalesce(logged, _rd.c.role)
    return sa.func.coalesce(_json_text(_rd.c.details, dialect, key), _d.c[key])


def _json_text(column: Any, dialect: str, *path: str) -> Expr:
    """The text at ``path`` in a column of JSON text (NULL where there is none)."""
    if any('"' in p or "\\" in p for p in path):  # never a stored key: matches nothing
        return sa.null()
    if dialect == "postgresql":
        node: Any = sa.cast(column, postgresql.JSONB)
        for step in path[:-1]:
            node = node[step]
        return node[path[-1]].astext  # type: ignore[no-any-return]
    where = "$" + "".join(f'."{p}"' for p in path)
    return sa.func.json_extract(column, where, type_=sa.Text)


def _test(column: Expr, c: Clause, dialect: str) -> Cond:
    """The comparison ``c`` on a column (SQL's NULL fails every test but IS NULL)."""
    op, value = c.op, c.value
    if op == "IS NULL":
        return column.is_(None)
    if op == "IS NOT NULL":
        return column.is_not(None)
    if op in ("IN", "NOT IN"):
        assert isinstance(value, tuple)
        listed = column.in_(list(value))
        return listed if op == "IN" else sa.and_(column.is_not(None), sa.not_(listed))
    if op == "LIKE":
        pattern = like_pattern(value)  # refused alike on every database
        if dialect == "sqlite":  # its LIKE folds case; GLOB does not
            return column.op("GLOB")(_glob(pattern))
        return column.like(pattern)
    if op == "ILIKE":
        return column.ilike(like_pattern(value))
    if op in ("RANGE", "NOT RANGE"):
        assert isinstance(value, tuple)
        low, high = value
        inside = sa.and_(column >= low, column < high)
        return inside if op == "RANGE" else sa.or_(column < low, column >= high)
    tests = {
        "=": column.__eq__,
        "!=": column.__ne__,
        "<": column.__lt__,
        "<=": column.__le__,
        ">": column.__gt__,
        ">=": column.__ge__,
    }
    return tests[op](value)


def _glob(pattern: str) -> str:
    """A LIKE pattern as a GLOB pattern: % and _ become * and ?; GLOB's own are escaped."""
    special = {"%": "*", "_": "?", "*": "[*]", "?": "[?]", "[": "[[]"}
    return "".join(special.get(ch, ch) for ch in pattern)


# -- experiments -------------------------------------------------------------------------------


def search_experiments(
    conn: Connection,
    *,
    clauses: Sequence[Clause] = (),
    order: Sequence[OrderKey] = (),
    view: str = "ACTIVE_ONLY",
    limit: int,
    offset: int = 0,
    after: Sequence[Any] | None = None,
) -> tuple[list[Experiment], tuple[Any, ...] | None]:
    """One page of the experiments that pass every clause, in order (newest first unless
    ``order`` says otherwise), and the sort values of its last when more follow: the next
    page's ``after``."""
    if view not in VIEWS:
        raise InvalidInput(f"view_type {view!r} is invalid: use one of {', '.join(VIEWS)}")
    conds: list[Cond] = []
    if view != "ALL":
        conds.append(_e.c.lifecycle_stage == ("active" if view == "ACTIVE_ONLY" else "deleted"))
    dialect = conn.dialect.name
    conds += [_experiment_clause(c, dialect) for c in clauses]
    columns: dict[str, Expr] = {
        "name": _e.c.name,
        "experiment_id": _e.c.id,
        "creation_time": _e.c.created_at,
        "last_update_time": _e.c.updated_at,
    }
    keys = [(columns[k.key], not k.ascending) for k in order] or [(_e.c.created_at, True)]
    if not any(k.key == "experiment_id" for k in order):
        keys.append((_e.c.id, False))
    query = sa.select(_e).where(*conds)
    rows, last = keyset.page(conn, query, keys, limit=limit, offset=offset, after=after)
    return experiments.load_many(conn, rows), last


def _experiment_clause(c: Clause, dialect: str) -> Cond:
    if c.entity == "tag":
        has = sa.select(_et.c.experiment_id).where(
            _et.c.experiment_id == _e.c.id, _et.c.key == c.key
        )
        if c.op in ("IS NULL", "IS NOT NULL"):
            found = sa.exists(has.correlate(_e))
            return sa.not_(found) if c.op == "IS NULL" else found
        return sa.exists(has.where(_test(_et.c.value, c, dialect)).correlate(_e))
    if c.key == "experiment_id":
        if c.op not in ("=", "!=", "IN", "NOT IN"):
            raise InvalidInput(f"experiment_id takes =, !=, IN and NOT IN, not {c.op}")
        given = c.value if isinstance(c.value, tuple) else (c.value,)
        ids = tuple(experiment_number(v) for v in given)
        value = ids if isinstance(c.value, tuple) else ids[0]
        return _test(_e.c.id, _replace(c, value), dialect)
    columns = {"name": _e.c.name, "creation_time": _e.c.created_at,
               "last_update_time": _e.c.updated_at}  # fmt: skip
    return _test(columns[c.key], c, dialect)


def _replace(c: Clause, value: Any) -> Clause:
    return Clause(c.entity, c.key, c.op, value)


def experiment_number(text: Any) -> int:
    """An experiment id as MLflow sends it (``"2"``) as the stored number."""
    shown = str(text)[:40]
    if isinstance(text, bool) or not isinstance(text, (str, int)):
        raise InvalidInput(f"experiment id {shown!r} is invalid: ids are whole numbers such as '1'")
    digits = str(text).strip()
    if not digits.isascii() or not digits.isdigit() or len(digits) > 9:
        raise InvalidInput(f"experiment id {shown!r} is invalid: ids are whole numbers such as '1'")
    return int(digits)
