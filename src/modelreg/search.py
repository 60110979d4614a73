"""The search language compiled to SQL: ``select_versions`` turns a ``Query`` (parsed by
``search_language``, whose names this module also offers) into a ``SELECT versions.id`` in
portable SQLAlchemy Core. Every literal, key and pattern reaches SQL only as a bound
parameter.

A comparison on a key (``metrics.K``, ``params.K``, ``tags.K``) or on ``alias``/``dataset.*``
holds when the version *has* a matching row: a version without the key matches neither
``= 1`` nor ``!= 1`` (nor ``not in``, ``not like``), while ``not`` before a comparison
negates all of it and so includes such versions. A string on ``params.K`` compares the text
(``'0.1'``), a number compares numerically. Quotes are escaped by doubling or ``\\``.
``like`` ignores case on every backend (SQLite folds ASCII only); ``\\`` escapes ``%``, ``_``.
Ordering by a key puts versions without it last in either direction; ties break by
``created_at desc, number desc``.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable
from typing import Any, TypeAlias

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.visitors import InternalTraversal

from modelreg import schema
from modelreg.errors import InvalidInput
from modelreg.keyset import beyond
from modelreg.search_language import KEYED as KEYED
from modelreg.search_language import KEYWORDS as KEYWORDS
from modelreg.search_language import MAX_DEPTH as MAX_DEPTH
from modelreg.search_language import MAX_IN_VALUES as MAX_IN_VALUES
from modelreg.search_language import MAX_LENGTH as MAX_LENGTH
from modelreg.search_language import MAX_LIMIT as MAX_LIMIT
from modelreg.search_language import OPS as OPS
from modelreg.search_language import SIMPLE as SIMPLE
from modelreg.search_language import TEXT_FIELDS as TEXT_FIELDS
from modelreg.search_language import UNORDERABLE as UNORDERABLE
from modelreg.search_language import And as And
from modelreg.search_language import Compare as Compare
from modelreg.search_language import Field as Field
from modelreg.search_language import In as In
from modelreg.search_language import Like as Like
from modelreg.search_language import Node as Node
from modelreg.search_language import Not as Not
from modelreg.search_language import Or as Or
from modelreg.search_language import OrderItem as OrderItem
from modelreg.search_language import Query as Query
from modelreg.search_language import Token as Token
from modelreg.search_language import Value as Value
from modelreg.search_language import parse as parse
from modelreg.search_language import parse_order_by as parse_order_by
from modelreg.search_language import parse_search as parse_search
from modelreg.search_language import tokenize as tokenize
from modelreg.search_language import unparse as unparse
from modelreg.search_language import unparse_order_by as unparse_order_by

# -- SQL -----------------------------------------------------------------------------------

_v = schema.versions
SMALL_MODEL = 2000  # versions; fewer than this, and reading them all beats walking an index
_KEYED_TABLES = {
    "metrics": schema.version_metrics,
    "params": schema.version_params,
    "tags": schema.version_tags,
}
_OPERATORS = (operator.eq, operator.ne, operator.lt, operator.le, operator.gt, operator.ge)
_COMPARE: dict[str, Callable[[Any, Any], Any]] = dict(
    zip(("=", "!=", "<", "<=", ">", ">="), _OPERATORS, strict=True)
)
Cond: TypeAlias = sa.ColumnElement[bool]
Expr: TypeAlias = sa.ColumnElement[Any]


def compile_filter(node: Node, few: frozenset[Node] = frozenset()) -> Cond:
    """The WHERE condition on ``versions`` that ``node`` means; the keyed tests in ``few``
    (see ``few_matches``) as an IN list of the versions that pass them."""
    if isinstance(node, And):
        return sa.and_(*(compile_filter(i, few) for i in node.items))
    if isinstance(node, Or):
        if few and all(item in few for item in node.items):  # one list: SQLite reads it first
            return _v.c.id.in_(sa.union(*(_passing(item) for item in node.items)))
        return sa.or_(*(compile_filter(i, few) for i in node.items))
    if isinstance(node, Not):
        return sa.not_(compile_filter(node.item, few))
    kind = node.field.kind
    if kind in ("number", "created_at", "description"):
        return _test(node, _v.c[kind])
    if kind == "name":  # few models: read their ids once
        m = schema.models
        return _v.c.model_id.in_(sa.select(m.c.id).where(_test(node, m.c.name)))
    # EXISTS rather than IN: a query ordered by an index and limited stops at the first rows
    # that pass, instead of first collecting every version that matches.
    if kind in _KEYED_TABLES:
        t = _KEYED_TABLES[kind]
        num = t.c.value_num if kind == "params" else None
        if node in few:  # few pass: read them through the key's index, then their versions
            return _v.c.id.in_(_passing(node))
        test = _test(node, t.c.value, num)
        found = sa.exists().where(t.c.version_id == _v.c.id, t.c.key == node.field.key, test)
        return found.correlate_except(t)
    if kind == "alias":
        a = schema.aliases
        return (
            sa.exists().where(a.c.version_id == _v.c.id, _test(node, a.c.alias)).correlate_except(a)
        )
    if kind == "status":  # status flags such as data-retired
        f = schema.version_flags
        return (
            sa.exists().where(f.c.version_id == _v.c.id, _test(node, f.c.flag)).correlate_except(f)
        )
    vd, d = schema.version_datasets, schema.datasets
    test = _test(node, d.c[kind.partition(".")[2]])
    found = sa.exists().where(vd.c.version_id == _v.c.id, d.c.id == vd.c.dataset_id, test)
    return found.correlate_except(vd, d)


FEW = 10_000  # versions: a keyed test fewer pass is read through its index first (SQLite)


def few_matches(conn: Any, query: Query) -> frozenset[Node]:
    """The keyed tests of ``query``'s filter (not under a ``not``) that fewer than FEW
    versions pass, each counted through the (key, value) index up to FEW rows.

    For SQLite, whose planner knows no distribution of values: a search ordered by one key
    and filtered on another would walk the first key's index testing each row, and one
    filtered by an OR of rare tests would read every version. PostgreSQL estimates this
    itself, from its statistics, and is not asked.
    """
    if conn.dialect.name != "sqlite" or query.where is None:
        return frozenset()
    found = set()
    for node in _plain_leaves(query.where):
        if not isinstance(node, Compare | In | Like) or node.field.kind not in _KEYED_TABLES:
            continue
        counted = sa.select(sa.func.count()).select_from(_passing(node).limit(FEW).subquery())
        if conn.execute(counted).scalar_one() < FEW:
            found.add(node)
    return frozenset(found)


def _passing(node: Node) -> sa.Select[Any]:
    """The ids of the versions a keyed test holds for, through the (key, value) index."""
    assert isinstance(node, Compare | In | Like)
    t = _KEYED_TABLES[node.field.kind]
    num = t.c.value_num if node.field.kind == "params" else None
    return sa.select(t.c.version_id).where(t.c.key == node.field.key, _test(node, t.c.value, num))


def _plain_leaves(node: Node) -> list[Node]:
    """The tests under ``and`` and ``or`` only: a ``not`` keeps the EXISTS form."""
    if isinstance(node, And | Or):
        return [leaf for item in node.items for leaf in _plain_leaves(item)]
    return [] if isinstance(node, Not) else [node]


def _test(node: Compare | In | Like, col: Expr, num: Expr | None = None) -> Cond:
    """The test on one row's value; ``num`` is the numeric twin of a param's text ``col``."""
    if isinstance(node, Like):
        matched: Cond = col.ilike(node.pattern, escape="\\")
        return sa.not_(matched) if node.negated else matched
    if isinstance(node, Compare):
        if num is not None and not isinstance(node.value, str):
            if node.op == "!=":  # a non-numeric param differs from every number
                return sa.or_(num.is_(None), num != node.value)
            return _COMPARE[node.op](num, node.value)  # type: ignore[no-any-return]
        return _COMPARE[node.op](col, node.value)  # type: ignore[no-any-return]
    texts = [v for v in node.values if num is None or isinstance(v, str)]
    numbers = [v for v in node.values if num is not None and not isinstance(v, str)]
    parts: list[Cond] = [col.in_(texts)] if texts else []
    if num is not None and numbers:
        parts.append(sa.and_(num.is_not(None), num.in_(numbers)))
    matched = sa.or_(*parts)
    return sa.not_(matched) if node.negated else matched


def _key_value(kind: str, key: str, col: str) -> Expr:
    t = _KEYED_TABLES[kind]
    rows = sa.select(t.c[col]).where(t.c.version_id == _v.c.id, t.c.key == key)
    return rows.correlate_except(t).scalar_subquery()


def _flag(expr: Expr) -> Expr:
    """1 when ``expr`` is NULL: sorts missing values last in every dialect."""
    return sa.case((expr.is_(None), 1), else_=0)


def _sort_keys(item: OrderItem) -> list[tuple[Expr, bool]]:
    """(expression, descending) pairs that order ``versions`` rows by ``item``."""
    kind, key, desc = item.field.kind, item.field.key, item.descending
    if kind == "name":
        m = schema.models
        name = sa.select(m.c.name).where(m.c.id == _v.c.model_id).scalar_subquery()
        return [(name, desc)]
    if key is None:
        return [(_v.c[kind], desc)]
    value = _key_value(kind, key, "value")
    if kind != "params":
        return [(_flag(value), False), (value, desc)]
    num = _key_value(kind, key, "value_num")
    return [(_flag(value), False), (_flag(num), False), (num, desc), (value, desc)]


_TIEBREAK: list[tuple[Expr, bool]] = [(_v.c.created_at, True), (_v.c.number, True)]
_TIEBREAK.append((_v.c.id, False))  # two models' versions can share both


def _direction(expr: Expr, desc: bool) -> sa.UnaryExpression[Any]:
    return expr.desc() if desc else expr.asc()


@functools.lru_cache(maxsize=512)
def cached_select(
    query: Query,
    model_id: str | None,
    limit: int | None,
    offset: int,
    after: tuple[Any, ...] | None = None,
    few: frozenset[Node] = frozenset(),
) -> sa.Select[Any]:
    """``select_versions`` remembered by its arguments: building the statement costs more
    than running it on an indexed store, and statements are immutable."""
    return select_versions(
        query, model_id=model_id, limit=limit, offset=offset, after=after, few=few
    )


@functools.lru_cache(maxsize=512)
def sort_values(query: Query) -> sa.Select[Any]:
    """The values the version ``:after`` (an id) sorts by under ``query``'s order: the row
    ``select_versions(after=)`` takes, for the last version of a page."""
    # Labelled: a column twice (number, ordered by and a tiebreak) would be selected once.
    keys = (e.label(f"k{i}") for i, (e, _) in enumerate(_order_keys(query)))
    return sa.select(*keys).where(_v.c.id == sa.bindparam("after"))


def _order_keys(query: Query) -> list[tuple[Expr, bool]]:
    return [k for item in query.order for k in _sort_keys(item)] + _TIEBREAK


def select_versions(
    query: Query,
    *,
    model_id: str | None = None,
    limit: int | None = None,
    offset: int = 0,
    after: tuple[Any, ...] | None = None,
    few: frozenset[Node] = frozenset(),
) -> sa.Select[Any]:
    """``SELECT versions.id`` filtered and ordered by ``query``; ``limit`` overrides its own.
    ``few`` are the keyed tests few versions pass (``few_matches``).

    ``after`` (the row ``sort_values`` gives for the last version of a page) starts past that
    version, by the values it sorts by: a page that stays put as versions are registered, and
    costs the same however deep it is, where an offset reads every row before it.

    >>> best = select_versions(parse("order by metrics.accuracy desc limit 1"), model_id=m_id)
    >>> version_id = conn.execute(best).scalar()
    """
    if limit is not None and not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"limit must be between 1 and {MAX_LIMIT}, not {limit}")
    if offset < 0:
        raise InvalidInput(f"offset must not be negative, not {offset}")
    limit = query.limit if limit is None else limit
    conds: list[Cond] = [_v.c.deleted_at.is_(None)]  # deleted versions are never found
    if query.where is not None:
        conds.append(compile_filter(query.where, few))
    if limit is not None and query.order and query.order[0].field.key is not None:
        stmt = _select_by_key(query, conds, limit + offset, model_id, after).limit(limit)
    else:  # without a limit every row is read anyway
        if model_id is not None:
            conds.append(_v.c.model_id == model_id)
        keys = _order_keys(query)
        if after is not None:
            conds.append(beyond([(e, d, a) for (e, d), a in zip(keys, after, strict=True)]))
        stmt = sa.select(_v.c.id).where(*conds).order_by(*(_direction(e, d) for e, d in keys))
        stmt = stmt if limit is None else stmt.limit(limit)
    return stmt.offset(offset) if offset else stmt


def _select_by_key(
    query: Query,
    conds: list[Cond],
    wanted: int,
    model_id: str | None,
    after: tuple[Any, ...] | None = None,
) -> sa.Select[Any]:
    """The first ``wanted`` versions ordered by a key, those without it last.

    A LEFT JOIN would read every version. Instead each group of rows is one arm of a UNION
    ALL that sorts and limits itself: the first reads the (key, value) index in order and
    stops after ``wanted`` rows, and each later arm fetches only what the earlier ones left
    to fill (LIMIT 0: nothing). Params have two groups, numbers then text. The constant
    ``rank`` stays out of the arms' ORDER BY, where it would stop SQLite from reading the
    index in order. Within a small model, walking the index would pass over every other
    model's rows, so there an arm reads the model's versions instead. With ``after`` (see
    select_versions), the arms of the groups before that version's are left out, and its
    own starts at its values.
    """
    first, desc = query.order[0].field, query.order[0].descending
    kind, key, t = first.kind, first.key, _KEYED_TABLES[first.kind]
    on = sa.and_(t.c.version_id == _v.c.id, t.c.key == key)
    # Repeat the filter's top-level tests of this key in the join so the index serves them.
    tops = query.where.items if isinstance(query.where, And) else (query.where,)
    num = t.c.value_num if kind == "params" else None
    width = 1 if num is None else 2
    leaves = [n for n in tops if isinstance(n, Compare | In | Like) and n.field == first]
    pushed = [_test(n, t.c.value, num) for n in leaves]
    linked = {c: _key_value(kind, str(key), c) for c in ("value", "value_num")[:width]}
    rest = [k for item in query.order[1:] for k in _sort_keys(item)] + _TIEBREAK
    start_rank, start = _start(kind, after, len(rest))
    remaining: Any = wanted
    small: Cond | None = None
    if model_id is not None:
        few = sa.select(_v.c.id).where(_v.c.model_id == model_id).limit(SMALL_MODEL + 1)
        count = sa.select(sa.func.count()).select_from(few.subquery()).scalar_subquery()
        small = count <= SMALL_MODEL
    # The plan that walks the key's index tests the model row by row: written so that no
    # index on model_id serves it, or SQLite, which reckons a model holds few versions, reads
    # every version of a big one and sorts them instead (0.5 s for 100,000 versions).
    walking, reading = list(conds), list(conds)
    if model_id is not None:
        walking.append(_Unindexed(_v.c.model_id) == model_id)
        reading.append(_v.c.model_id == model_id)
    arms: list[sa.Select[Any]] = []
    groups = list(zip(_groups(kind, t.c), _groups(kind, linked), strict=True))
    nulls: list[Expr] = [sa.cast(sa.null(), e.type) for e in groups[0][0][0]]  # typed for PG
    for rank, ((values, cond), (linked_values, linked_cond)) in enumerate(groups):
        if rank < start_rank:
            continue
        join = _v.join(t, sa.and_(on, cond, *pushed))
        plans = [(_arm(rank, nulls, values, rest).select_from(join).where(*walking), values)]
        if small is not None:
            linked_arm = _arm(rank, nulls, linked_values, rest).where(*reading, linked_cond)
            plans.append((linked_arm, linked_values))
        found: Any = 0
        for i, (arm, sort) in enumerate(plans):
            if after is not None and rank == start_rank:
                keys = [(e, desc) for e in sort] + rest
                arm = arm.where(beyond([(e, d, a) for (e, d), a in zip(keys, start, strict=True)]))
            cap = remaining
            if small is not None:  # exactly one plan runs: the other gets LIMIT 0
                cap = sa.case((small, remaining if i else 0), else_=0 if i else remaining)
            keys = [(e, desc) for e in sort] + rest
            rows = arm.order_by(*(_direction(e, d) for e, d in keys)).limit(cap).cte()
            found = found + sa.select(sa.func.count()).select_from(rows).scalar_subquery()
            arms.append(sa.select(rows))
        remaining = remaining - found
    lacks = _arm(len(groups), nulls, [], rest).where(*reading, ~sa.exists().where(on))
    if after is not None and start_rank == len(groups):
        lacks = lacks.where(beyond([(e, d, a) for (e, d), a in zip(rest, start, strict=True)]))
    lacks = lacks.order_by(*(_direction(e, d) for e, d in rest)).limit(remaining)
    both = sa.union_all(*arms, sa.select(lacks.subquery())).subquery()
    keys = [(both.c[f"k{i}"], desc) for i in range(width)]
    keys += [(both.c[f"k{width + i}"], d) for i, (_, d) in enumerate(rest)]
    return sa.select(both.c.id).order_by(both.c.rank, *(_direction(e, d) for e, d in keys))


class _Unindexed(sa.sql.expression.ColumnElement[Any]):
    """A column no index serves, on SQLite (``col || ''``); the column itself elsewhere,
    where the planner weighs the index by the values' statistics."""

    inherit_cache = True
    _traverse_internals = [("column", InternalTraversal.dp_clauseelement)]  # its cache key

    def __init__(self, column: Expr) -> None:
        self.column = column
        self.type = column.type


@compiles(_Unindexed)
def _unindexed(element: _Unindexed, compiler: Any, **kw: Any) -> str:
    return str(compiler.process(element.column, **kw))


@compiles(_Unindexed, "sqlite")
def _unindexed_sqlite(element: _Unindexed, compiler: Any, **kw: Any) -> str:
    return f"({compiler.process(element.column, **kw)} || '')"


def _start(kind: str, after: tuple[Any, ...] | None, rest: int) -> tuple[int, tuple[Any, ...]]:
    """The group (rank) of the version ``after`` describes (its ``sort_values`` row, whose
    first key's part is flag and value, or for params flag, number flag, number and text),
    and the values its group's arms sort by; (0, ()) without one."""
    if after is None:
        return 0, ()
    width = 2 if kind != "params" else 4
    first, others = after[:width], after[width:]
    assert len(others) == rest
    if kind != "params":
        flag, value = first
        return (0, (value, *others)) if flag == 0 else (1, others)
    flag, number_flag, number, text = first
    if flag == 1:
        return 2, others
    return (0, (number, text, *others)) if number_flag == 0 else (1, (text, *others))


def _groups(kind: str, c: Any) -> list[tuple[list[Expr], Cond]]:
    """Sort columns and condition of each group of versions that have the key, in order."""
    if kind != "params":
        return [([c["value"]], c["value"].is_not(None))]
    numbers = ([c["value_num"], c["value"]], c["value_num"].is_not(None))
    return [numbers, ([c["value"]], sa.and_(c["value_num"].is_(None), c["value"].is_not(None)))]


def _arm(rank: int, nulls: list[Expr], values: list[Expr], rest: list[tuple[Expr, bool]]) -> Any:
    """One arm's columns: id, rank, the key's sort columns (typed NULLs where it has none)."""
    exprs = [*nulls[: len(nulls) - len(values)], *values, *(e for e, _ in rest)]
    labelled = (e.label(f"k{i}") for i, e in enumerate(exprs))
    return sa.select(_v.c.id, sa.literal_column(str(rank)).label("rank"), *labelled)
