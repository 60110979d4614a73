"""MLflow's registry searches over the store: registered models and model versions found by
the comparisons of an MLflow filter (``mlflow_filter.parse_filter`` with the grammars
``REGISTERED_MODELS`` and ``MODEL_VERSIONS``), ordered and paged, and the MLflow source each
version was made from.

Comparisons run as MLflow's own SQL store runs them: ``LIKE`` is the database's (SQLite folds
ASCII case, PostgreSQL does not), ``ILIKE`` ignores case everywhere, and a tag comparison
needs the tag, but for MLflow's rule that a model without ``mlflow.prompt.is_prompt`` is not
a prompt. Deleted versions are never found.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from modelreg import keyset, models, schema, versions
from modelreg.mlflow_filter import Clause, OrderKey, like_pattern
from modelreg.mlflow_mapping import logged_model_of

_m, _v, _a = schema.models, schema.versions, schema.aliases
_mt, _vt = schema.model_tags, schema.version_tags
IS_PROMPT = "mlflow.prompt.is_prompt"


def _compare(column: Any, condition: Clause) -> Any:
    op, value = condition.op, condition.value
    if op in ("IN", "NOT IN"):
        assert isinstance(value, tuple)
        return column.in_(list(value)) if op == "IN" else column.not_in(list(value))
    if op == "LIKE":
        return column.like(like_pattern(value))
    if op == "ILIKE":
        return column.ilike(like_pattern(value))
    comparisons = {
        "=": column.__eq__,
        "!=": column.__ne__,
        "<": column.__lt__,
        "<=": column.__le__,
        ">": column.__gt__,
        ">=": column.__ge__,
    }
    return comparisons[op](value)


def _tag(owned: Any, table: sa.Table, condition: Clause) -> Any:
    """Whether the row ``owned`` (a condition on ``table``'s owner column) has the tag."""
    own = (owned, table.c.key == condition.key)
    value = _compare(table.c.value, condition)
    matched = sa.exists(sa.select(1).select_from(table).where(*own, value))
    if matches_missing_tag(condition):
        return matched | ~sa.exists(sa.select(1).select_from(table).where(*own))
    return matched


def matches_missing_tag(c: Clause) -> bool:
    """MLflow's rule for models without the prompt tag: they are not prompts."""
    return (
        c.entity == "tag"
        and c.key == IS_PROMPT
        and ((c.op == "=" and c.value == "false") or (c.op == "!=" and c.value == "true"))
    )


def _keys(columns: dict[str, Any], order: Sequence[OrderKey]) -> list[tuple[Any, bool]]:
    """The sort keys of ``order``: a nullable column's rows without a value come last."""
    keys: list[tuple[Any, bool]] = []
    for o in order:
        column = columns[o.key]
        if getattr(column, "nullable", False):
            keys.append((sa.case((column.is_(None), 1), else_=0), False))
        keys.append((column, not o.ascending))
    return keys


def _page(
    conn: Connection,
    q: Any,
    keys: list[tuple[Any, bool]],
    *,
    offset: int,
    limit: int,
    after: Sequence[Any] | None,
) -> tuple[list[str], tuple[Any, ...] | None]:
    rows, last = keyset.page(conn, q, keys, limit=limit, offset=offset, after=after)
    return [str(r[0]) for r in rows], last


def search_models(
    conn: Connection,
    clauses: Sequence[Clause],
    order: Sequence[OrderKey],
    *,
    offset: int,
    limit: int,
    after: Sequence[Any] | None = None,
) -> tuple[list[str], tuple[Any, ...] | None]:
    """The ids of one page of the models a filter finds, in order (by name unless
    ``order`` says otherwise), from ``offset`` or ``after`` the sort values given, and the
    sort values of its last when more follow."""
    q = sa.select(_m.c.id).select_from(models.FROM)
    for c in clauses:
        if c.entity == "tag":
            q = q.where(_tag(_mt.c.model_id == _m.c.id, _mt, c))
        else:
            q = q.where(_compare(_m.c.name, c))
    columns = {
        "name": _m.c.name,
        "creation_timestamp": _m.c.created_at,
        "last_updated_timestamp": models.UPDATED_AT,
    }
    keys = [*_keys(columns, order), (_m.c.name, False)]
    return _page(conn, q, keys, offset=offset, limit=limit, after=after)


def search_versions(
    conn: Connection,
    clauses: Sequence[Clause],
    order: Sequence[OrderKey],
    *,
    offset: int,
    limit: int,
    after: Sequence[Any] | None = None,
) -> tuple[list[str], tuple[Any, ...] | None]:
    """The ids of one page of the versions (not deleted) a filter finds, in order (by name,
    newest first, unless ``order`` says otherwise), from ``offset`` or ``after`` the sort
    values given, and the sort values of its last when more follow."""
    columns: dict[str, Any] = {
        "name": _m.c.name,
        "run_id": _v.c.run_id,
        "version_number": _v.c.number,
        "creation_timestamp": _v.c.created_at,
        "last_updated_timestamp": _v.c.created_at,
    }
    q = sa.select(_v.c.id).join(_m, _m.c.id == _v.c.model_id).where(versions.LIVE)
    named = [c.value for c in clauses if (c.entity, c.key, c.op) == ("attribute", "name", "=")]
    if named:
        # One model's versions (the client's own search by name): read alone, in the order
        # of the index on (model id, number), with the name a constant. Joined to the model
        # and ordered by its name too, every version of a big model was read and sorted.
        model = sa.select(_m.c.id).where(_m.c.name == named[0]).scalar_subquery()
        q = sa.select(_v.c.id).where(_v.c.model_id == model, versions.LIVE)
        columns["name"] = sa.literal(named[0], sa.String)
    for c in clauses:
        if c.entity == "tag":
            q = q.where(_tag(_vt.c.version_id == _v.c.id, _vt, c))
        else:
            q = q.where(_compare(columns[c.key], c))
    if named:  # the name orders nothing among one model's versions
        order = [o for o in order if o.key != "name"]
        ties = [(_v.c.number, True)]
    else:
        ties = [(_m.c.name, False), (_v.c.number, True)]
    keys = [*_keys(columns, order), *ties]
    return _page(conn, q, keys, offset=offset, limit=limit, after=after)


def sources(conn: Connection, version_ids: Sequence[str]) -> dict[str, tuple[str, str | None]]:
    """{version id: (MLflow source, logged model id)} as kept in each version's code facts
    ("" and None for a version not made through MLflow's API)."""
    found: dict[str, tuple[str, str | None]] = {}
    ids = list(dict.fromkeys(version_ids))
    for start in range(0, len(ids), versions.CHUNK):
        q = sa.select(_v.c.id, _v.c.code).where(_v.c.id.in_(ids[start : start + versions.CHUNK]))
        for r in conn.execute(q):
            code = json.loads(r.code)
            code = code if isinstance(code, dict) else {}
            source = code.get("mlflow_source")
            found[r.id] = (source if isinstance(source, str) else "", logged_model_of(code))
    return found
