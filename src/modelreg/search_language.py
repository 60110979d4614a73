"""The search language for model versions: tokenizer, parser and canonical printer.

    metrics.accuracy > 0.9 and (params.C = '0.1' or tags.team = 'growth')
    order by metrics.accuracy desc, number limit 10

``parse`` turns text into a small immutable AST (``Query``); ``unparse`` prints it back in
canonical form, so ``parse(unparse(q)) == q``. Pure: the client and the CLI check a filter here
before it is sent; ``search`` compiles it to SQL. The meaning of each form is in ``search``'s
docstring and docs/concepts.md.
"""

from __future__ import annotations

import difflib
import functools
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NoReturn, TypeAlias

from modelreg.errors import InvalidInput, SearchSyntaxError
from modelreg.timestamps import format_time

MAX_LENGTH = 4096
MAX_DEPTH = 64
MAX_IN_VALUES = 1000
MAX_LIMIT = 10_000

KEYED = ("metrics", "params", "tags")
SIMPLE = (
    "name",
    "number",
    "created_at",
    "alias",
    "status",
    "dataset.name",
    "dataset.digest",
    "description",
)
TEXT_FIELDS = frozenset(
    {"name", "description", "params", "tags", "alias", "status", "dataset.name", "dataset.digest"}
)
_PLAIN_TEXT = TEXT_FIELDS - {"params"}  # a bare number on these means its text as typed
UNORDERABLE = frozenset({"alias", "status", "dataset.name", "dataset.digest"})
OPS = {"=": "=", "==": "=", "!=": "!=", "<>": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}
KEYWORDS = frozenset(
    {"and", "or", "not", "in", "like", "order", "by", "asc", "desc", "limit", "true", "false"}
)

_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
_TOKEN = re.compile(
    r"(?P<space>\s+)|(?P<word>[A-Za-z_][A-Za-z0-9_.-]*)|(?P<quote>['\"])|(?P<punct>[(),])"
    r"|(?P<number>-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)|(?P<op>[=!<>]=|<>|[=<>])"
)
# Possessive: an unclosed string must not backtrack into ending at half of a doubled quote.
_QUOTED = {q: re.compile(rf"{q}((?:[^{q}\\]|{q}{q}|\\.)*+){q}", re.DOTALL) for q in "'\"`"}

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
    if "\x00" in text:
        raise SearchSyntaxError("unexpected NUL", text=text, column=text.index("\x00") + 1)
    tokens: list[Token] = []
    i = 0
    while m := _TOKEN.match(text, i):
        kind, lexeme, col, i = str(m.lastgroup), m.group(), i + 1, m.end()
        if kind == "word" and lexeme.endswith(".") and text.startswith("`", i):
            key, i = _read_quoted(text, i)  # metrics.`any text`
            tokens.append(Token("field", text[col - 1 : i], col, (lexeme[:-1], key)))
        elif kind == "quote":
            value, i = _read_quoted(text, col - 1)
            tokens.append(Token("string", text[col - 1 : i], col, value))
        elif kind == "number":
            tokens.append(Token(kind, lexeme, col, _number(text, lexeme, col)))
        elif kind != "space":
            tokens.append(Token(lexeme if kind == "punct" else kind, lexeme, col, lexeme))
    if i < len(text):
        raise SearchSyntaxError(f"unexpected character {text[i]!r}", text=text, column=i + 1)
    return [*tokens, Token("end", "", len(text) + 1)]


def _read_quoted(text: str, start: int) -> tuple[str, int]:
    """Read quoted text at ``start``: a doubled quote or ``\\q`` is a quote; ``\\\\`` is ``\\``."""
    quote = text[start]
    if m := _QUOTED[quote].match(text, start):
        unescape = re.compile(rf"\\([{quote}\\])|{quote}{quote}")
        return unescape.sub(lambda e: e.group(1) or quote, m.group(1)), m.end()
    message = (
        f"expected a closing {quote} for the quote at column {start + 1} but found end of input"
    )
    raise SearchSyntaxError(message, text=text, column=len(text) + 1)


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
    where = None if p.at_end or p.is_kw("order", "limit") else p.or_expr()
    follow = "'and', 'or', 'order by', 'limit' or end of input" if where else ""
    order: tuple[OrderItem, ...] = ()
    if p.take("order"):
        p.expect("by", "'by' after 'order'")
        order, follow = p.order_list(), "',', 'limit' or end of input"
    limit = p.limit() if p.take("limit") else None
    if not p.at_end:
        p.expected("end of input" if limit else follow or "a filter, 'order by' or 'limit'")
    return Query(where, order, limit)


def parse_order_by(text: str) -> tuple[OrderItem, ...]:
    """Parse just an order list such as ``metrics.accuracy desc, number``; "" gives ()."""
    p = _Parser(text)
    order = () if p.at_end else p.order_list()
    if not p.at_end:
        p.expected("',' or end of input")
    return order


class TokenCursor:
    """A position in a list of tokens ending with an "end" token: the parsers of the search
    language and of MLflow's filter grammar walk their tokens with it."""

    tokens: list[Token]
    pos: int

    @property
    def tok(self) -> Token:
        return self.tokens[self.pos]

    @property
    def at_end(self) -> bool:
        return self.tok.kind == "end"

    def next(self) -> Token:
        tok = self.tokens[self.pos]
        self.pos = min(self.pos + 1, len(self.tokens) - 1)
        return tok


class _Parser(TokenCursor):
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

    def is_kw(self, *words: str) -> bool:
        """Whether the current token is one of ``words`` (keywords, or ``(`` ``)`` ``,``)."""
        tok = self.tok
        return tok.text.lower() in words if tok.kind == "word" else tok.kind in words

    def take(self, *words: str) -> bool:
        found = self.is_kw(*words)
        if found:
            self.next()
        return found

    def expect(self, word: str, what: str) -> Token:
        if not self.is_kw(word):
            self.expected(what)
        return self.next()

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
        while self.take("or"):
            items.append(self.and_expr())
        return items[0] if len(items) == 1 else Or(tuple(items))

    def and_expr(self) -> Node:
        items = [self.not_expr()]
        while self.take("and"):
            items.append(self.not_expr())
        return items[0] if len(items) == 1 else And(tuple(items))

    def not_expr(self) -> Node:
        if self.is_kw("not"):
            self.enter(self.next())
            node: Node = Not(self.not_expr())
        elif self.is_kw("("):
            opening = self.next()
            self.enter(opening)
            node = self.or_expr()
            self.expect(")", f"')' to close the '(' at column {opening.column}")
        else:
            return self.comparison()
        self.depth -= 1
        return node

    def comparison(self) -> Node:
        field_tok = self.tok
        field = self.field()
        negated = self.take("not")
        if negated and not self.is_kw("in", "like"):
            self.expected("'in' or 'like' after 'not'")
        if self.take("in"):
            self.expect("(", "'(' after 'in'")
            values = [self.value(field, "=", "'('")]
            while self.take(","):
                if len(values) == MAX_IN_VALUES:
                    self.fail(f"'in' takes at most {MAX_IN_VALUES} values")
                values.append(self.value(field, "=", "','"))
            self.expect(")", "',' or ')' in the 'in' list")
            return In(field, tuple(values), negated)
        if self.is_kw("like"):
            like = self.next()
            if field.kind not in TEXT_FIELDS:
                self.fail(f"'like' needs a text field but {field} is not text", like)
            pattern = self.tok
            if pattern.kind != "string":
                self.expected("a quoted pattern after 'like'")
            if (len(pattern.value) - len(pattern.value.rstrip("\\"))) % 2:
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
                example = "'2026-11-01' or '2026-11-01T12:00:00Z'"
                self.fail(f"created_at needs a quoted date such as {example}", tok)
            return moment
        if kind in _PLAIN_TEXT and not isinstance(raw, str):
            if op not in ("=", "!="):
                self.fail(f"{field} is text: compare it with a quoted string", tok)
            return tok.text
        return raw

    def field(self) -> Field:
        tok = self.tok
        if tok.kind == "word" and tok.text.lower() in SIMPLE:
            self.next()
            return Field(tok.text.lower())
        if tok.kind == "field":  # a backquoted key
            head, key = tok.value
        elif tok.kind == "word" and tok.text.lower() not in KEYWORDS:
            head, _, key = tok.text.partition(".")
        else:
            self.expected("a field such as name, number, metrics.KEY, params.KEY or tags.KEY")
        if head.lower() not in KEYED:
            self.fail(_unknown_field(tok.text))
        if not key:
            self.fail(f"expected a key after '{head}.'")
        if tok.kind == "word" and not _KEY.fullmatch(key):
            self.fail(f"key {key!r} must start with a letter or '_'; quote it: `{key}`")
        self.next()
        return Field(head.lower(), key)

    def order_list(self) -> tuple[OrderItem, ...]:
        items = [self.order_item()]
        while self.take(","):
            items.append(self.order_item())
        return tuple(items)

    def order_item(self) -> OrderItem:
        tok = self.tok
        field = self.field()
        if field.kind in UNORDERABLE:
            self.fail(f"cannot order by {field}: a version can have several", tok)
        if self.take("desc"):
            return OrderItem(field, descending=True)
        self.take("asc")
        return OrderItem(field)

    def limit(self) -> int:
        tok = self.tok
        if tok.kind != "number" or not isinstance(tok.value, int):
            self.expected("a whole number after 'limit'")
        if not 1 <= tok.value <= MAX_LIMIT:
            self.fail(f"limit must be between 1 and {MAX_LIMIT}")
        self.next()
        return int(tok.value)


def _unknown_field(text: str) -> str:
    head, dot, rest = text.partition(".")
    match = difflib.get_close_matches(head.lower(), [*KEYED, "dataset"] if dot else SIMPLE, n=1)
    guess = (f"{match[0]}.{rest}" if dot else match[0]) if match else None
    if guess and guess.startswith("dataset."):
        sub = difflib.get_close_matches(rest.lower(), ["name", "digest"], n=1)
        guess = f"dataset.{sub[0]}" if sub else None
    if guess:
        return f"unknown field '{text}'; did you mean '{guess}'?"
    fields = ", ".join([*SIMPLE, "metrics.KEY", "params.KEY", "tags.KEY"])
    return f"unknown field '{text}'; the fields are {fields}"


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


def parse_search(filter: str, order_by: str | None = None) -> Query:
    """A filter and an optional order-by expression as one query (remembered: dashboards and
    deploy jobs repeat the same few searches)."""
    if not isinstance(filter, str) or not isinstance(order_by, (str, type(None))):
        query = parse(filter)  # raises, naming what is wrong
        return query if not order_by else Query(query.where, parse_order_by(order_by), query.limit)
    return _parse_search(filter, order_by)


@functools.lru_cache(maxsize=512)
def _parse_search(filter: str, order_by: str | None) -> Query:
    query = parse(filter)
    if order_by:
        query = Query(query.where, parse_order_by(order_by), query.limit)
    return query
