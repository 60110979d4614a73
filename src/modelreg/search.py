"""The search language for model versions: tokenizer, parser, canonical printer and compiler.

    metrics.accuracy > 0.9 and (params.C = '0.1' or tags.team = 'growth')
    order by metrics.accuracy desc, number limit 10

``parse`` turns text into a small immutable AST (``Query``); ``unparse`` prints it back in
canonical form, so ``parse(unparse(q)) == q``; ``select_versions`` compiles it to a
``SELECT versions.id`` in portable SQLAlchemy Core. Every literal, key and pattern reaches SQL
only as a bound parameter.

A comparison on a key (``metrics.K``, ``params.K``, ``tags.K``) or on ``alias``/``dataset.*``
holds when the version *has* a matching row: a version without the key matches neither
``= 1`` nor ``!= 1``, while ``not (...)`` negates the whole comparison and so includes it.
``like`` is case-insensitive (ASCII) on every backend; a backslash escapes ``%`` and ``_``.
Ordering by a key puts versions without it last in either direction; ties break by
``created_at desc, number desc``.
"""

from __future__ import annotations

import difflib
import math
import operator
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NoReturn, TypeAlias

import sqlalchemy as sa

from modelreg import schema
from modelreg.db import format_time
from modelreg.errors import InvalidInput, SearchSyntaxError

MAX_LENGTH = 4096
MAX_DEPTH = 64
MAX_IN_VALUES = 1000
MAX_LIMIT = 10_000

KEYED = ("metrics", "params", "tags")
SIMPLE = ("name", "number", "created_at", "alias", "dataset.name", "dataset.digest", "description")
TEXT_FIELDS = frozenset(
    {"name", "description", "params", "tags", "alias", "dataset.name", "dataset.digest"}
)
_PLAIN_TEXT = TEXT_FIELDS - {"params"}  # a bare number on these means its text as typed
UNORDERABLE = frozenset({"alias", "dataset.name", "dataset.digest"})
OPS = {"=": "=", "==": "=", "!=": "!=", "<>": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}
KEYWORDS = frozenset(
    {"and", "or", "not", "in", "like", "order", "by", "asc", "desc", "limit", "true", "false"}
)

_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
_NUMBER = re.compile(r"-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_OP = re.compile(r"==|!=|<>|<=|>=|=|<|>")

Value: TypeAlias = str | int | float


# -- the AST -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Field:
    """``Field("name")`` or ``Field("metrics", "accuracy")``."""

    kind: str
    key: str | None = None

    def __str__(self) -> str:
        if self.key is None:
            return self.kind
        if _KEY.fullmatch(self.key):
            return f"{self.kind}.{self.key}"
        return f"{self.kind}.`{_escape(self.key, '`')}`"


@dataclass(frozen=True)
class Compare:
    field: Field
    op: str  # canonical: = != < <= > >=
    value: Value


@dataclass(frozen=True)
class In:
    field: Field
    values: tuple[Value, ...]
    negated: bool = False


@dataclass(frozen=True)
class Like:
    field: Field
    pattern: str
    negated: bool = False


@dataclass(frozen=True)
class And:
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    item: Node


Node: TypeAlias = "Compare | In | Like | And | Or | Not"


@dataclass(frozen=True)
class OrderItem:
    field: Field
    descending: bool = False


@dataclass(frozen=True)
class Query:
    """A parsed search: an optional filter, an order and a limit."""

    where: Node | None = None
    order: tuple[OrderItem, ...] = ()
    limit: int | None = None


# -- tokens --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Token:
    kind: str  # word, field (backquoted key), string, number, op, (, ), ",", end
    text: str  # as typed
    column: int  # 1-based
    value: Any = None


def tokenize(text: str) -> list[Token]:
    """Split ``text`` into tokens ending with an ``end`` token; raise SearchSyntaxError."""
    tokens: list[Token] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
            continue
        col = i + 1
        if m := _WORD.match(text, i):
            word, i = m.group(), m.end()
            if word.endswith(".") and i < n and text[i] == "`":
                key, i = _read_quoted(text, i)
                tokens.append(Token("field", text[col - 1 : i], col, (word[:-1], key)))
            else:
                tokens.append(Token("word", word, col, word))
        elif ch in "'\"":
            value, i = _read_quoted(text, i)
            tokens.append(Token("string", text[col - 1 : i], col, value))
        elif m := _NUMBER.match(text, i):
            i = m.end()
            tokens.append(Token("number", m.group(), col, _number(text, m.group(), col)))
        elif m := _OP.match(text, i):
            i = m.end()
            tokens.append(Token("op", m.group(), col))
        elif ch in "(),":
            i += 1
            tokens.append(Token(ch, ch, col))
        else:
            raise SearchSyntaxError(f"unexpected character {ch!r}", text=text, column=col)
    tokens.append(Token("end", "", n + 1))
    return tokens


def _read_quoted(text: str, start: int) -> tuple[str, int]:
    """Read a quoted string or key at ``start``: a doubled quote or ``\\q`` is a quote."""
    quote, out, j, n = text[start], [], start + 1, len(text)
    while j < n:
        c = text[j]
        if c == "\\" and j + 1 < n and text[j + 1] in (quote, "\\"):
            out.append(text[j + 1])
            j += 2
        elif c == quote and j + 1 < n and text[j + 1] == quote:
            out.append(quote)
            j += 2
        elif c == quote:
            return "".join(out), j + 1
        elif c == "\x00":
            raise SearchSyntaxError("unexpected NUL character", text=text, column=j + 1)
        else:
            out.append(c)
            j += 1
    raise SearchSyntaxError(
        f"expected a closing {quote} for the quote at column {start + 1} but found end of input",
        text=text,
        column=n + 1,
    )


def _number(text: str, literal: str, col: int) -> int | float:
    value: int | float
    if any(c in literal for c in ".eE"):
        value = float(literal)
    elif len(literal) <= 20:
        value = int(literal)
    else:
        value = math.inf
    if not math.isfinite(value) or (isinstance(value, int) and abs(value) >= 2**63):
        raise SearchSyntaxError(f"number {literal} is out of range", text=text, column=col)
    return value


def _describe(tok: Token) -> str:
    if tok.kind == "end":
        return "end of input"
    shown = tok.text if len(tok.text) <= 40 else tok.text[:37] + "..."
    if tok.kind in ("string", "number"):
        return f"the {tok.kind} {shown}"
    return f"'{shown}'"


# -- the parser ----------------------------------------------------------------------------


def parse(text: str) -> Query:
    """Parse a search query; raise SearchSyntaxError (or InvalidInput) naming the problem.

    >>> parse("metrics.acc > 0.9 order by metrics.acc desc limit 1").limit
    1
    """
    p = _Parser(text)
    where = None
    if not (p.tok.kind == "end" or p.is_kw("order", "limit")):
        where = p.or_expr()
    order: tuple[OrderItem, ...] = ()
    follow = "'and', 'or', 'order by', 'limit' or end of input" if where else ""
    if p.is_kw("order"):
        p.next()
        if not p.is_kw("by"):
            p.expected("'by' after 'order'")
        p.next()
        order = p.order_list()
        follow = "',', 'limit' or end of input"
    limit = None
    if p.is_kw("limit"):
        p.next()
        limit = p.limit()
        follow = "end of input"
    if p.tok.kind != "end":
        p.expected(follow or "a filter, 'order by', 'limit' or end of input")
    return Query(where, order, limit)


def parse_order_by(text: str) -> tuple[OrderItem, ...]:
    """Parse just an order list such as ``metrics.accuracy desc, number``; "" gives ()."""
    p = _Parser(text)
    if p.tok.kind == "end":
        return ()
    order = p.order_list()
    if p.tok.kind != "end":
        p.expected("',' or end of input")
    return order


class _Parser:
    def __init__(self, text: str) -> None:
        if not isinstance(text, str):
            raise InvalidInput(f"a search query must be a string, not {type(text).__name__}")
        if len(text) > MAX_LENGTH:
            raise InvalidInput(
                f"the search query is {len(text)} characters long; the limit is {MAX_LENGTH}"
            )
        self.text = text
        self.tokens = tokenize(text)
        self.pos = 0
        self.depth = 0

    @property
    def tok(self) -> Token:
        return self.tokens[self.pos]

    def next(self) -> Token:
        tok = self.tokens[self.pos]
        self.pos = min(self.pos + 1, len(self.tokens) - 1)
        return tok

    def is_kw(self, *words: str) -> bool:
        return self.tok.kind == "word" and self.tok.text.lower() in words

    def fail(self, message: str, tok: Token | None = None) -> NoReturn:
        column = (tok or self.tok).column
        raise SearchSyntaxError(message, text=self.text, column=column)

    def expected(self, what: str) -> NoReturn:
        self.fail(f"expected {what} but found {_describe(self.tok)}")

    def enter(self, tok: Token) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            self.fail(f"the filter nests more than {MAX_DEPTH} levels deep", tok)

    def or_expr(self) -> Node:
        items = [self.and_expr()]
        while self.is_kw("or"):
            self.next()
            items.append(self.and_expr())
        return items[0] if len(items) == 1 else Or(tuple(items))

    def and_expr(self) -> Node:
        items = [self.not_expr()]
        while self.is_kw("and"):
            self.next()
            items.append(self.not_expr())
        return items[0] if len(items) == 1 else And(tuple(items))

    def not_expr(self) -> Node:
        if self.is_kw("not"):
            self.enter(self.next())
            node: Node = Not(self.not_expr())
        elif self.tok.kind == "(":
            opening = self.next()
            self.enter(opening)
            node = self.or_expr()
            if self.tok.kind != ")":
                self.expected(f"')' to close the '(' at column {opening.column}")
            self.next()
        else:
            return self.comparison()
        self.depth -= 1
        return node

    def comparison(self) -> Node:
        field_tok = self.tok
        field = self.field()
        negated = self.is_kw("not")
        if negated:
            self.next()
            if not self.is_kw("in", "like"):
                self.expected("'in' or 'like' after 'not'")
        if self.is_kw("in"):
            self.next()
            if self.tok.kind != "(":
                self.expected("'(' after 'in'")
            self.next()
            values = [self.value(field, "=", "'('")]
            while self.tok.kind == ",":
                self.next()
                if len(values) == MAX_IN_VALUES:
                    self.fail(f"'in' takes at most {MAX_IN_VALUES} values")
                values.append(self.value(field, "=", "','"))
            if self.tok.kind != ")":
                self.expected("',' or ')' in the 'in' list")
            self.next()
            return In(field, tuple(values), negated)
        if self.is_kw("like"):
            like = self.next()
            if field.kind not in TEXT_FIELDS:
                self.fail(f"'like' needs a text field but {field} is not text", like)
            pattern = self.tok
            if pattern.kind != "string":
                self.expected("a quoted pattern after 'like'")
            trailing = len(pattern.value) - len(pattern.value.rstrip("\\"))
            if trailing % 2:
                self.fail("a like pattern cannot end with a lone backslash (write \\\\\\\\)")
            self.next()
            return Like(field, pattern.value, negated)
        if self.tok.kind != "op":
            self.expected(f"an operator (=, !=, <, <=, >, >=, in, like) after '{field_tok.text}'")
        op_tok = self.next()
        op = OPS[op_tok.text]
        return Compare(field, op, self.value(field, op, f"'{op_tok.text}'"))

    def value(self, field: Field, op: str, after: str) -> Value:
        tok = self.tok
        raw: Value
        if tok.kind in ("string", "number"):
            raw = tok.value
        elif self.is_kw("true", "false"):
            raw = tok.text.lower()
        else:
            self.expected(f"a value after {after}")
        self.next()
        kind = field.kind
        if kind == "metrics" and isinstance(raw, str):
            self.fail(f"metrics are numbers: {field} cannot be compared with {_describe(tok)}", tok)
        if kind == "number" and not isinstance(raw, int):
            self.fail(f"version numbers are integers but found {_describe(tok)}", tok)
        if kind == "created_at":
            moment = _normalise_time(raw) if isinstance(raw, str) else None
            if moment is None:
                self.fail(
                    f"created_at needs a quoted date such as '2026-11-01' or"
                    f" '2026-11-01T12:00:00Z' but found {_describe(tok)}",
                    tok,
                )
            return moment
        if kind in _PLAIN_TEXT and not isinstance(raw, str):
            if op not in ("=", "!="):
                self.fail(f"{field} is text: compare it with a quoted string", tok)
            return tok.text
        return raw

    def field(self) -> Field:
        tok = self.tok
        if tok.kind == "field":
            prefix, key = tok.value
            if prefix.lower() not in KEYED:
                self.fail(_unknown_field(prefix + ".", key))
            if not key:
                self.fail("a key cannot be empty")
            self.next()
            return Field(prefix.lower(), key)
        if tok.kind != "word" or tok.text.lower() in KEYWORDS:
            self.expected("a field such as name, number, metrics.KEY, params.KEY or tags.KEY")
        word = tok.text
        if word.lower() in SIMPLE:
            self.next()
            return Field(word.lower())
        head, dot, key = word.partition(".")
        if dot and head.lower() in KEYED:
            if not key:
                self.fail(f"expected a key after '{word}'")
            if not _KEY.fullmatch(key):
                self.fail(f"key {key!r} must start with a letter or '_'; quote it: `{key}`")
            self.next()
            return Field(head.lower(), key)
        self.fail(_unknown_field(word))

    def order_list(self) -> tuple[OrderItem, ...]:
        items = [self.order_item()]
        while self.tok.kind == ",":
            self.next()
            items.append(self.order_item())
        return tuple(items)

    def order_item(self) -> OrderItem:
        tok = self.tok
        field = self.field()
        if field.kind in UNORDERABLE:
            self.fail(f"cannot order by {field}: a version can have several", tok)
        descending = self.is_kw("desc")
        if descending or self.is_kw("asc"):
            self.next()
        return OrderItem(field, descending)

    def limit(self) -> int:
        tok = self.tok
        if tok.kind != "number" or not isinstance(tok.value, int):
            self.expected("a whole number after 'limit'")
        if not 1 <= tok.value <= MAX_LIMIT:
            self.fail(f"limit must be between 1 and {MAX_LIMIT}")
        self.next()
        return int(tok.value)


def _unknown_field(word: str, key: str | None = None) -> str:
    message = f"unknown field '{word}{'' if key is None else f'`{key}`'}'"
    head, dot, rest = word.lower().partition(".")
    guess = None
    if dot:
        match = difflib.get_close_matches(head, [*KEYED, "dataset"], n=1)
        if match and match[0] == "dataset":
            sub = difflib.get_close_matches(rest, ["name", "digest"], n=1)
            guess = f"dataset.{sub[0]}" if sub else None
        elif match:
            suffix = word.partition(".")[2]
            guess = str(Field(match[0], key)) if key is not None else f"{match[0]}.{suffix}"
    else:
        match = difflib.get_close_matches(head, SIMPLE, n=1)
        guess = match[0] if match else None
    if guess:
        return f"{message}; did you mean '{guess}'?"
    return f"{message}; the fields are {', '.join(SIMPLE)}, metrics.KEY, params.KEY, tags.KEY"


def _normalise_time(text: str) -> str | None:
    try:
        stored = format_time(datetime.fromisoformat(text))
    except (ValueError, OverflowError):
        return None
    return stored if len(stored) == 27 else None  # years before 1000 do not fit the format


# -- canonical text ------------------------------------------------------------------------


def unparse(query: Query) -> str:
    """Print ``query`` in canonical form: ``parse(unparse(q)) == q``."""
    parts = []
    if query.where is not None:
        parts.append(_unparse(query.where))
    if query.order:
        parts.append("order by " + unparse_order_by(query.order))
    if query.limit is not None:
        parts.append(f"limit {query.limit}")
    return " ".join(parts)


def unparse_order_by(order: Sequence[OrderItem]) -> str:
    return ", ".join(f"{item.field}{' desc' if item.descending else ''}" for item in order)


def _unparse(node: Node) -> str:
    if isinstance(node, Compare):
        return f"{node.field} {node.op} {_literal(node.value)}"
    if isinstance(node, In):
        values = ", ".join(_literal(v) for v in node.values)
        return f"{node.field} {'not ' if node.negated else ''}in ({values})"
    if isinstance(node, Like):
        return f"{node.field} {'not ' if node.negated else ''}like {_literal(node.pattern)}"
    if isinstance(node, Not):
        inner = _unparse(node.item)
        return f"not ({inner})" if isinstance(node.item, And | Or) else f"not {inner}"
    nested = (And, Or) if isinstance(node, And) else (Or,)
    parts = [f"({_unparse(i)})" if isinstance(i, nested) else _unparse(i) for i in node.items]
    return (" and " if isinstance(node, And) else " or ").join(parts)


def _literal(value: Value) -> str:
    if isinstance(value, str):
        return "'" + _escape(value, "'") + "'"
    return repr(value)


def _escape(text: str, quote: str) -> str:
    return text.replace("\\", "\\\\").replace(quote, quote * 2)


# -- SQL -----------------------------------------------------------------------------------

_v = schema.versions
_KEYED_TABLES = {
    "metrics": schema.version_metrics,
    "params": schema.version_params,
    "tags": schema.version_tags,
}
_COMPARE: dict[str, Callable[[Any, Any], Any]] = {
    "=": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
Cond: TypeAlias = sa.ColumnElement[bool]
Expr: TypeAlias = sa.ColumnElement[Any]


def compile_filter(node: Node) -> Cond:
    """The WHERE condition on ``versions`` that ``node`` means."""
    if isinstance(node, And):
        return sa.and_(*(compile_filter(i) for i in node.items))
    if isinstance(node, Or):
        return sa.or_(*(compile_filter(i) for i in node.items))
    if isinstance(node, Not):
        return sa.not_(compile_filter(node.item))
    kind = node.field.kind
    if kind in _KEYED_TABLES:
        t = _KEYED_TABLES[kind]
        num = t.c.value_num if kind == "params" else None
        rows = sa.select(t.c.version_id).where(
            t.c.key == node.field.key, _test(node, t.c.value, num)
        )
        return _v.c.id.in_(rows)
    if kind in ("number", "created_at", "description"):
        return _test(node, _v.c[kind])
    if kind == "name":
        m = schema.models
        return _v.c.model_id.in_(sa.select(m.c.id).where(_test(node, m.c.name)))
    if kind == "alias":
        a = schema.aliases
        return _v.c.id.in_(sa.select(a.c.version_id).where(_test(node, a.c.alias)))
    vd, d = schema.version_datasets, schema.datasets
    rows = sa.select(vd.c.version_id).join(d, d.c.id == vd.c.dataset_id)
    return _v.c.id.in_(rows.where(_test(node, d.c[kind.partition(".")[2]])))


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
    return rows.scalar_subquery()


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


_TIEBREAK: list[tuple[Expr, bool]] = [
    (_v.c.created_at, True),
    (_v.c.number, True),
    (_v.c.id, False),
]


def _direction(expr: Expr, desc: bool) -> sa.UnaryExpression[Any]:
    return expr.desc() if desc else expr.asc()


def select_versions(
    query: Query, *, model_id: str | None = None, limit: int | None = None, offset: int = 0
) -> sa.Select[Any]:
    """``SELECT versions.id`` filtered and ordered by ``query``.

    ``limit`` overrides the query's own limit. Ordering by a metric, param or tag first reads
    the versions that have the key through the (key, value) index, then those that lack it.
    """
    if limit is not None and not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"limit must be between 1 and {MAX_LIMIT}, not {limit}")
    if offset < 0:
        raise InvalidInput(f"offset must not be negative, not {offset}")
    limit = query.limit if limit is None else limit
    conds: list[Cond] = []
    if query.where is not None:
        conds.append(compile_filter(query.where))
    if model_id is not None:
        conds.append(_v.c.model_id == model_id)
    order = list(query.order)
    if not order or order[0].field.key is None:
        keys = [k for item in order for k in _sort_keys(item)] + _TIEBREAK
        stmt = sa.select(_v.c.id).where(*conds).order_by(*(_direction(e, d) for e, d in keys))
    else:
        return _select_by_key(order[0], order[1:], conds, limit, offset)
    if limit is not None:
        stmt = stmt.limit(limit)
    return stmt.offset(offset) if offset else stmt


def _select_by_key(
    first: OrderItem, rest: list[OrderItem], conds: list[Cond], limit: int | None, offset: int
) -> sa.Select[Any]:
    """Order by a key: the versions that have it (an indexed join), then those that don't.

    A LEFT JOIN would have to read every version; the UNION ALL lets each arm read in index
    order and stop early, and the second arm runs only when the first leaves rows to fill.
    """
    kind, desc = first.field.kind, first.descending
    t = _KEYED_TABLES[kind]
    on = sa.and_(t.c.version_id == _v.c.id, t.c.key == first.field.key)
    has_keys: list[Expr] = [sa.literal_column("0")]
    descending = [False]
    if kind == "params":
        has_keys += [_flag(t.c.value_num), t.c.value_num, t.c.value]
        descending += [False, desc, desc]
    else:
        has_keys.append(t.c.value)
        descending.append(desc)
    lacks_keys: list[Expr] = [sa.literal_column("1")]
    lacks_keys += [sa.null()] * (len(has_keys) - 1)
    for e, d in [k for item in rest for k in _sort_keys(item)] + _TIEBREAK:
        has_keys.append(e)
        lacks_keys.append(e)
        descending.append(d)

    def columns(keys: list[Expr]) -> list[Expr]:
        return [_v.c.id.label("id"), *(e.label(f"k{i}") for i, e in enumerate(keys))]

    has = sa.select(*columns(has_keys)).select_from(_v.join(t, on)).where(*conds)
    lacks = sa.select(*columns(lacks_keys)).where(*conds, ~sa.exists().where(on))
    if limit is not None:
        wanted = limit + offset
        found = sa.select(_v.c.id).select_from(_v.join(t, on)).where(*conds).limit(wanted)
        count = sa.select(sa.func.count()).select_from(found.subquery()).scalar_subquery()
        lacks = lacks.where(count < wanted)
    both = sa.union_all(has, lacks)
    keys = [_direction(sa.literal_column(f"k{i}"), d) for i, d in enumerate(descending)]
    inner = both.order_by(*keys).limit(limit).offset(offset or None).subquery("ordered")
    # The compound's own ORDER BY ... LIMIT lets SQLite merge the arms in index order; the
    # outer ORDER BY only re-sorts the rows kept, because SQL keeps no subquery's order.
    outer = [_direction(inner.c[f"k{i}"], d) for i, d in enumerate(descending)]
    return sa.select(inner.c.id).order_by(*outer)
