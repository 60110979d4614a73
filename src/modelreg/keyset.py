"""Keyset pages: the next page of an ordered listing starts after the sort values of the last
row of the page before, so the millionth row comes as fast as the first (OFFSET reads every
row before it and drops them).

A listing orders by keys (an expression, and whether it descends), the last of them unique
(an id). ``page`` reads one page (``ordered``: the statement, for a caller that reads on
until its own page is full); ``beyond`` is the condition for the rows after given values,
``values_fit`` checks values that came back from a client (in a page token or a
link) against the keys' types before they reach SQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeAlias

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from modelreg.errors import InvalidInput

REFUSED = (
    "the page's cursor (an MLflow page_token, a page link's after=) is not one this list"
    " gave: pass the one the page before gave, unchanged"
)

Cond: TypeAlias = sa.ColumnElement[bool]
Expr: TypeAlias = sa.ColumnElement[Any]


def beyond(keys: Sequence[tuple[Expr, bool, Any]]) -> Cond:
    """The rows that sort after one whose values of the sort ``keys`` (expression,
    descending, its value) are given. A NULL value is a missing key's, which sorts after
    its flag: within the flag's group every row has NULL there too, so NULL only ties.
    The first key is also bounded on its own, so that an index on it starts at the value."""
    after: list[Cond] = []
    same: list[Cond] = []
    bound: list[Cond] = []
    for expr, desc, value in keys:
        if value is None:
            same.append(expr.is_(None))
            continue
        if not bound and not same:
            bound.append(expr <= value if desc else expr >= value)
        after.append(sa.and_(*same, expr < value if desc else expr > value))
        same.append(expr == value)
    return sa.and_(*bound, sa.or_(*after)) if after else sa.false()


def values_fit(values: Sequence[Any], keys: Sequence[tuple[Expr, bool]]) -> bool:
    """Whether ``values`` (from JSON) are one per key, each NULL or of its key's type: a
    number for a number, text for text (PostgreSQL refuses to compare across types), and
    each one the database takes as that type (a whole number in the column's bits, UTF-8
    text without NUL)."""
    if len(values) != len(keys):
        return False
    for value, (expr, _) in zip(values, keys, strict=True):
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            return False
        if isinstance(value, str) and not _storable(value):
            return False
        try:
            kind = expr.type.python_type
        except NotImplementedError:  # a type SQLAlchemy cannot name: none of the keys here
            return False
        if kind is float and not isinstance(value, (int, float)):
            return False
        if kind is not float and not isinstance(value, kind):
            return False
        if isinstance(value, int):  # SQLite binds 64 bits; PostgreSQL casts to the column's
            bits = 64 if kind is float or isinstance(expr.type, sa.BigInteger) else 32
            if not -(2 ** (bits - 1)) <= value < 2 ** (bits - 1):
                return False
    return True


def _storable(text: str) -> bool:
    """Text a database compares: UTF-8 (no lone surrogates) without NUL."""
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return "\x00" not in text


def ordered(
    query: sa.Select[Any], keys: Sequence[tuple[Expr, bool]], after: Sequence[Any] | None = None
) -> sa.Select[Any]:
    """``query`` ordered by ``keys``, with their values as its last columns (``sort_0``,
    ...), and given ``after`` only the rows after those sort values (InvalidInput when they
    do not fit the keys)."""
    if after is not None:
        if not values_fit(after, keys):
            raise InvalidInput(REFUSED)
        query = query.where(beyond([(e, d, a) for (e, d), a in zip(keys, after, strict=True)]))
    sorts = [e.label(f"sort_{i}") for i, (e, _) in enumerate(keys)]
    return query.add_columns(*sorts).order_by(*(e.desc() if d else e.asc() for e, d in keys))


def page(
    conn: Connection,
    query: sa.Select[Any],
    keys: Sequence[tuple[Expr, bool]],
    *,
    limit: int,
    offset: int = 0,
    after: Sequence[Any] | None = None,
) -> tuple[list[Any], tuple[Any, ...] | None]:
    """A page of the rows ``query`` selects, ordered by ``keys``: from ``offset``, or, given
    ``after``, from the row after those sort values. With it, the sort values of the page's
    last row when more rows follow, for the next page's ``after``."""
    start = 0 if after is not None else offset
    rows = list(conn.execute(ordered(query, keys, after).limit(limit + 1).offset(start)))
    if len(rows) <= limit:
        return rows, None
    return rows[:limit], tuple(rows[limit - 1][-len(keys) :])
