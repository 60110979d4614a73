"""MLflow's search grammar: the ``filter`` strings, ``order_by`` clauses and page tokens of
MLflow's searches, parsed into clauses that the stores compile to SQL (``tracking_search``
for runs and experiments, ``logged_models``, ``registry_search`` for registered models and
model versions). Pure.

    metrics.rmse < 0.8 AND params.alpha = '0.5' AND tags.`mlflow.user` LIKE 'a%'
    order_by: ["metrics.rmse ASC", "attributes.start_time DESC"]

A filter is comparisons joined by ``AND``, as MLflow's own server takes it (it has no ``OR``
and no parentheses). Each comparison names an entity and a key (``metrics.K``, ``params.K``,
``tags.K``, ``attributes.K`` or a bare attribute, ``datasets.K``), an operator and a value;
a key with other characters is quoted: ``tags.`mlflow.user``` or ``tags."mlflow.user"``. What
each search takes (its entities, attributes and operators) is a ``Grammar``: ``RUNS``,
``EXPERIMENTS``, ``LOGGED_MODELS``, ``REGISTERED_MODELS`` and ``MODEL_VERSIONS``. The tokens
are modelreg's own search language's (``search_language.tokenize``): one tokenizer reads both.

A page token names where the next page starts; every MLflow search pages with it.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NoReturn, TypeAlias

from modelreg.errors import InvalidInput, SearchSyntaxError
from modelreg.search_language import Token, TokenCursor, tokenize
from modelreg.values import MAX_OFFSET

MAX_LENGTH = 100_000  # a filter of a thousand run ids in an IN list fits
MAX_IN_VALUES = 10_000
MAX_ORDER = 20

# The names MLflow takes for each entity: singular, plural and short.
ENTITIES = {
    "metric": "metric",
    "metrics": "metric",
    "param": "param",
    "params": "param",
    "parameter": "param",
    "parameters": "param",
    "tag": "tag",
    "tags": "tag",
    "attribute": "attribute",
    "attributes": "attribute",
    "attr": "attribute",
    "run": "attribute",
    "dataset": "dataset",
    "datasets": "dataset",
}
PLURAL = {"metric": "metrics", "param": "params", "tag": "tags", "attribute": "attributes",
          "dataset": "datasets"}  # fmt: skip
COMPARE = ("=", "!=", "<", "<=", ">", ">=")
TEXT_OPS = ("=", "!=", "LIKE", "ILIKE")
NULL_OPS = ("IS NULL", "IS NOT NULL")
LIST_OPS = ("IN", "NOT IN")
_OPS = {"=": "=", "==": "=", "!=": "!=", "<>": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}

Value: TypeAlias = str | int | float | tuple[str, ...] | tuple[int, ...] | None


@dataclass(frozen=True)
class Grammar:
    """What one search takes: its entities, its attributes by type (``integers`` are numbers
    compared with whole numbers, given bare or quoted), the attributes that take a list
    (``IN``), those one may order by, other names for attributes, dataset fields, the
    operators of tags, the entities one may order by, and how many comparisons at most."""

    what: str
    entities: frozenset[str]
    strings: frozenset[str]
    numbers: frozenset[str]
    lists: frozenset[str] = frozenset()
    orderable: frozenset[str] = frozenset()
    aliases: Mapping[str, str] = field(default_factory=dict)
    datasets: frozenset[str] = frozenset()
    integers: frozenset[str] = frozenset()
    tag_ops: tuple[str, ...] = ("=", "!=", "LIKE", "ILIKE", "IS NULL", "IS NOT NULL")
    ordered_entities: frozenset[str] | None = None  # None: every entity but datasets
    max_clauses: int | None = None

    def attribute(self, key: str) -> str | None:
        """The attribute ``key`` names (through its aliases), or None."""
        key = self.aliases.get(key, key)
        known = self.strings | self.numbers | self.orderable
        return key if key in known else None

    def orders_by(self, entity: str) -> bool:
        if self.ordered_entities is None:
            return entity != "dataset"
        return entity in self.ordered_entities


RUNS = Grammar(
    what="runs",
    entities=frozenset({"metric", "param", "tag", "attribute", "dataset"}),
    strings=frozenset({"run_id", "run_name", "status", "user_id", "artifact_uri"}),
    numbers=frozenset({"start_time", "end_time"}),
    lists=frozenset({"run_id"}),
    orderable=frozenset(
        {"run_id", "run_name", "status", "user_id", "artifact_uri", "start_time", "end_time"}
    ),
    aliases={
        "created": "start_time",
        "Created": "start_time",
        "run name": "run_name",
        "Run name": "run_name",
        "Run Name": "run_name",
    },
    datasets=frozenset({"name", "digest", "context"}),
)

EXPERIMENTS = Grammar(
    what="experiments",
    entities=frozenset({"tag", "attribute"}),
    strings=frozenset({"name", "experiment_id"}),
    numbers=frozenset({"creation_time", "last_update_time"}),
    lists=frozenset({"experiment_id"}),
    orderable=frozenset({"name", "experiment_id", "creation_time", "last_update_time"}),
)

# MLflow 3's logged models (searched in ``logged_models``): their metrics are not held here.
LOGGED_MODELS = Grammar(
    what="logged models",
    entities=frozenset({"metric", "param", "tag", "attribute"}),
    strings=frozenset({"name", "model_id", "model_type", "status", "source_run_id"}),
    numbers=frozenset({"creation_timestamp", "last_updated_timestamp"}),
    lists=frozenset({"name", "model_id", "model_type", "status", "source_run_id"}),
    orderable=frozenset(
        {
            "name",
            "model_id",
            "model_type",
            "status",
            "source_run_id",
            "creation_timestamp",
            "last_updated_timestamp",
        }
    ),
    aliases={"creation_time": "creation_timestamp", "last_updated_time": "last_updated_timestamp"},
)

# MLflow's model registry: registered models by name and tags, versions also by run and
# number; ordered by attributes only. A tag takes no IS NULL there.
_REGISTRY_TAG_OPS = ("=", "!=", "LIKE", "ILIKE")
_REGISTRY_TIMES = frozenset({"creation_timestamp", "last_updated_timestamp"})
REGISTERED_MODELS = Grammar(
    what="registered models",
    entities=frozenset({"tag", "attribute"}),
    strings=frozenset({"name"}),
    numbers=frozenset(),
    lists=frozenset({"name"}),
    orderable=frozenset({"name"}) | _REGISTRY_TIMES,
    aliases={"timestamp": "creation_timestamp"},
    tag_ops=_REGISTRY_TAG_OPS,
    ordered_entities=frozenset({"attribute"}),
    max_clauses=50,
)
MODEL_VERSIONS = Grammar(
    what="model versions",
    entities=frozenset({"tag", "attribute"}),
    strings=frozenset({"name", "run_id"}),
    numbers=frozenset({"version_number"}),
    integers=frozenset({"version_number"}),
    lists=frozenset({"name", "run_id", "version_number"}),
    orderable=frozenset({"name", "version_number"}) | _REGISTRY_TIMES,
    tag_ops=_REGISTRY_TAG_OPS,
    ordered_entities=frozenset({"attribute"}),
    max_clauses=50,
)


@dataclass(frozen=True)
class Clause:
    """One comparison: ``entity`` is metric, param, tag, attribute or dataset; ``key`` is an
    attribute's canonical name for attributes; ``op`` one of =, !=, <, <=, >, >=, LIKE, ILIKE,
    IN, NOT IN, IS NULL, IS NOT NULL (and RANGE, NOT RANGE after ``stored_times``); ``value``
    a number, text, a tuple (IN, RANGE) or None (IS NULL)."""

    entity: str
    key: str
    op: str
    value: Value

    def __str__(self) -> str:
        return f"{PLURAL[self.entity]}.{self.key}"


@dataclass(frozen=True)
class OrderKey:
    entity: str
    key: str
    ascending: bool = True


def parse_filter(text: str | None, grammar: Grammar) -> tuple[Clause, ...]:
    """The comparisons of a filter, checked against ``grammar``; "" or None is no filter.

    >>> parse_filter("metrics.acc > 0.9 and tags.team = 'ml'", RUNS)[0]
    Clause(entity='metric', key='acc', op='>', value=0.9)
    """
    if text is None or (isinstance(text, str) and not text.strip()):
        return ()
    p = _Parser(text, grammar)
    clauses = [p.comparison()]
    while not p.at_end:
        if p.is_word("and"):
            p.next()
            clauses.append(p.comparison())
            if grammar.max_clauses is not None and len(clauses) > grammar.max_clauses:
                p.fail(
                    f"a search of {grammar.what} joins at most {grammar.max_clauses} comparisons"
                )
        elif p.is_word("or"):
            p.fail(
                f"MLflow's search joins comparisons with AND only; 'OR' is not supported in a"
                f" search of {grammar.what}"
            )
        else:
            p.expected("AND or the end of the filter")
    return tuple(clauses)


def parse_order_by(clauses: Sequence[str] | None, grammar: Grammar) -> tuple[OrderKey, ...]:
    """``["metrics.acc DESC", "start_time"]`` as order keys; a field given twice is refused.

    >>> parse_order_by(["metrics.acc DESC"], RUNS)
    (OrderKey(entity='metric', key='acc', ascending=False),)
    """
    if not clauses:
        return ()
    if isinstance(clauses, str) or len(clauses) > MAX_ORDER:
        raise InvalidInput(f"order_by must be a list of at most {MAX_ORDER} clauses")
    keys: list[OrderKey] = []
    for text in clauses:
        try:
            keys.append(_order_key(text, grammar, keys))
        except SearchSyntaxError as exc:
            raise SearchSyntaxError(f"order_by {text!r}: {exc.message}", text=exc.text) from None
    return tuple(keys)


def _order_key(text: str, grammar: Grammar, keys: list[OrderKey]) -> OrderKey:
    p = _Parser(text, grammar)
    entity, key, tok = p.field(ordering=True)
    ascending = True
    if p.is_word("asc", "desc"):
        ascending = p.next().text.lower() == "asc"
    if not p.at_end:
        p.expected("ASC, DESC or the end of the order_by clause")
    if any((k.entity, k.key) == (entity, key) for k in keys):
        p.fail(f"order_by names {PLURAL[entity]}.{key} twice", tok)
    return OrderKey(entity, key, ascending)


def stored_times(
    clauses: Sequence[Clause], grammar: Grammar, stamp: Callable[[int], str]
) -> tuple[Clause, ...]:
    """``clauses`` with those on time attributes (MLflow's milliseconds since the epoch) made
    comparisons of stored times, exact to the millisecond: ``>=`` or ``<`` a time, or
    ``RANGE``/``NOT RANGE`` (from, to), from included. ``stamp`` turns milliseconds into a
    stored time and refuses those outside its years (below them the bound is "", above "~").

    A stored time in millisecond ``m`` is after X when it is at or after ``floor(X) + 1``,
    and equal to a whole X when it lies in [X, X + 1).
    """

    def bound(ms: int) -> str:
        try:
            return stamp(ms)
        except InvalidInput:
            return "" if ms < 0 else "~"

    out = []
    for c in clauses:
        if c.entity != "attribute" or c.key not in grammar.numbers:
            out.append(c)
            continue
        x = c.value
        assert isinstance(x, int | float)
        after, at = math.floor(x) + 1, math.ceil(x)
        value: Value
        if c.op in (">", "<="):
            op, value = (">=" if c.op == ">" else "<"), bound(after)
        elif c.op in (">=", "<"):
            op, value = c.op, bound(at)
        elif x == math.floor(x):
            op, value = ("RANGE" if c.op == "=" else "NOT RANGE"), (bound(at), bound(at + 1))
        else:  # no millisecond equals a fraction: = holds for none, != for every time
            op, value = ("<" if c.op == "=" else ">="), ""
        out.append(Clause(c.entity, c.key, op, value))
    return tuple(out)


class _Parser(TokenCursor):
    def __init__(self, text: str, grammar: Grammar) -> None:
        if not isinstance(text, str):
            raise InvalidInput(f"a search filter must be text, not {type(text).__name__}")
        if len(text) > MAX_LENGTH:
            raise InvalidInput(
                f"the filter is {len(text)} characters long; the limit is {MAX_LENGTH}"
            )
        self.text = text
        self.grammar = grammar
        try:
            self.tokens = tokenize(text)
        except SearchSyntaxError as exc:
            if not exc.message.startswith("unexpected character '`'"):
                raise
            raise SearchSyntaxError(
                "a backquoted key follows its entity: attributes.`Run name`, tags.`a b`",
                text=text,
                column=exc.column,
            ) from None
        self.pos = 0

    def is_word(self, *words: str) -> bool:
        return self.tok.kind == "word" and self.tok.text.lower() in words

    def fail(self, message: str, tok: Token | None = None) -> NoReturn:
        raise SearchSyntaxError(message, text=self.text, column=(tok or self.tok).column)

    def expected(self, what: str) -> NoReturn:
        self.fail(f"expected {what} but found {_describe(self.tok)}")

    def field(self, *, ordering: bool = False) -> tuple[str, str, Token]:
        """(entity, key, its token) of the field at the current token."""
        g, tok = self.grammar, self.tok
        after = self.tokens[self.pos + 1] if tok.kind != "end" else tok
        if tok.kind == "field":  # entity.`key`
            head, key = tok.value
            self.next()
        elif tok.kind == "word" and tok.text.endswith(".") and after.kind == "string":
            head = tok.text[:-1]  # entity."key"
            self.next()
            key = self.next().value
        elif tok.kind == "word" and tok.text.lower() not in ("and", "or"):
            head, dot, key = tok.text.partition(".")
            if not dot:
                head, key = "attribute", tok.text
            self.next()
        else:
            self.expected(f"a field such as {_example(g)}")
        entity = ENTITIES.get(head.lower())
        takes = sorted(e for e in g.entities if not ordering or g.orders_by(e))
        if entity is None or entity not in takes:
            kinds = ", ".join(f"{PLURAL[e]}." for e in takes)
            self.fail(
                f"unknown entity {head!r} in {tok.text!r}: a search of {g.what} takes {kinds}",
                tok,
            )
        if not key:
            self.fail(f"expected a key after {head}.", tok)
        if entity == "attribute":
            found = g.attribute(key)
            names = g.orderable if ordering else g.strings | g.numbers
            if found is None or found not in names:
                listed = ", ".join(sorted(names))
                if ordering:
                    self.fail(f"unknown attribute {key!r}: {g.what} are ordered by {listed}", tok)
                keyed = ", ".join(f"{PLURAL[e]}.KEY" for e in takes if e != "attribute")
                self.fail(
                    f"unknown attribute {key!r}: {g.what} are searched by {listed}"
                    + (f" and {keyed}" if keyed else ""),
                    tok,
                )
            key = found
        elif entity == "dataset" and key not in g.datasets:
            self.fail(f"unknown dataset field {key!r}: use {', '.join(sorted(g.datasets))}", tok)
        return entity, key, tok

    def comparison(self) -> Clause:
        entity, key, _ = self.field()
        name = f"{PLURAL[entity]}.{key}"
        op_tok = self.tok
        op = self.operator(name)
        allowed = self.operators(entity, key)
        if op not in allowed:
            self.fail(f"{name} takes {', '.join(allowed)}, not {op}", op_tok)
        if op in NULL_OPS:
            return Clause(entity, key, op, None)
        whole = entity == "attribute" and key in self.grammar.integers
        if op in LIST_OPS:
            return Clause(entity, key, op, self.integers(name) if whole else self.values(name))
        if whole:
            return Clause(entity, key, op, self.integer(name))
        numeric = entity == "metric" or (entity == "attribute" and key in self.grammar.numbers)
        tok = self.tok
        if numeric:
            if tok.kind != "number":
                what = "a number" if tok.kind != "string" else f"a number, not the text {tok.text}"
                self.fail(f"{name} is a number: compare it with {what}")
            return Clause(entity, key, op, self.next().value)
        if tok.kind != "string":
            if tok.kind == "number":
                self.fail(f"{name} is text: quote the value ('{tok.text}')")
            self.expected(f"a quoted value after {op}")
        return Clause(entity, key, op, self.next().value)

    def operator(self, name: str) -> str:
        tok = self.tok
        if tok.kind == "op":
            self.next()
            return _OPS[tok.text]
        if self.is_word("like", "ilike", "in"):
            return self.next().text.upper()
        if self.is_word("not"):
            self.next()
            if not self.is_word("in"):
                self.expected("IN after NOT")
            self.next()
            return "NOT IN"
        if self.is_word("is"):
            self.next()
            negated = self.is_word("not")
            if negated:
                self.next()
            if not self.is_word("null"):
                self.expected("NULL after IS" + (" NOT" if negated else ""))
            self.next()
            return "IS NOT NULL" if negated else "IS NULL"
        self.expected(f"an operator (=, !=, <, <=, >, >=, LIKE, ILIKE, IN, IS NULL) after {name}")

    def operators(self, entity: str, key: str) -> tuple[str, ...]:
        g = self.grammar
        if entity == "metric":
            return COMPARE
        if entity == "param":
            return TEXT_OPS + NULL_OPS
        if entity == "tag":
            return g.tag_ops
        if entity == "dataset":
            return TEXT_OPS + LIST_OPS
        if key in g.numbers:
            return COMPARE + (LIST_OPS if key in g.lists else ())
        if key in g.lists:
            return TEXT_OPS + LIST_OPS
        return TEXT_OPS

    def values(self, name: str) -> tuple[str, ...]:
        if self.tok.kind != "(":
            self.expected(f"'(' and a list of quoted values after IN ({name})")
        self.next()
        found: list[str] = []
        while True:
            tok = self.tok
            if tok.kind != "string":
                self.expected("a quoted value in the list")
            found.append(self.next().value)
            if len(found) > MAX_IN_VALUES:
                self.fail(f"IN takes at most {MAX_IN_VALUES} values", tok)
            if self.tok.kind == ")":
                self.next()
                return tuple(found)
            if self.tok.kind != ",":
                self.expected("',' or ')' in the list")
            self.next()

    def integer(self, name: str) -> int:
        """A whole number, bare or quoted (MLflow's registry takes ``version_number = '2'``)."""
        tok = self.tok
        value = tok.value if tok.kind == "number" else None
        text = str(tok.value).strip() if tok.kind == "string" else ""
        if text.isascii() and text.isdecimal() and len(text) <= 18:
            value = int(text)
        if not isinstance(value, int) or isinstance(value, bool):
            self.fail(f"{name} is compared with a whole number, not {_describe(tok)}")
        self.next()
        return value

    def integers(self, name: str) -> tuple[int, ...]:
        if self.tok.kind != "(":
            self.expected(f"'(' and a list of whole numbers after IN ({name})")
        self.next()
        found: list[int] = []
        while True:
            tok = self.tok
            found.append(self.integer(name))
            if len(found) > MAX_IN_VALUES:
                self.fail(f"IN takes at most {MAX_IN_VALUES} values", tok)
            if self.tok.kind == ")":
                self.next()
                return tuple(found)
            if self.tok.kind != ",":
                self.expected("',' or ')' in the list")
            self.next()


def _describe(tok: Token) -> str:
    if tok.kind == "end":
        return "the end of the filter"
    shown = tok.text if len(tok.text) <= 40 else tok.text[:37] + "..."
    return f"{shown!r}"


def _example(g: Grammar) -> str:
    if "metric" in g.entities:
        return "metrics.KEY, params.KEY, tags.KEY or attributes.status"
    return "name or tags.KEY"


# -- pages -------------------------------------------------------------------------------------


def like_pattern(value: object) -> str:
    """A LIKE or ILIKE pattern as the database takes it: a backslash escapes the character
    after it, so a pattern may not end in one that escapes nothing."""
    text = str(value)
    trailing = len(text) - len(text.rstrip("\\"))
    if trailing % 2:
        raise InvalidInput(
            f"the pattern {text[:80]!r} ends in a backslash that escapes nothing: write \\\\"
            " for a backslash itself"
        )
    return text


_BAD_TOKEN = "page_token is invalid: pass the next_page_token of the page before, unchanged"  # noqa: S105 (a message)


def page_token(offset: int, after: Sequence[Any] | None = None) -> str:
    """The token of the page that starts ``offset`` results in; ``after``: the sort values
    of the last result before it, where the search reads on from them (``keyset``)."""
    data: dict[str, Any] = {"offset": offset}
    if after is not None:
        data["after"] = list(after)
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode()


def page_start(token: Any) -> tuple[int, tuple[Any, ...] | None]:
    """Where the page a ``page_token`` names starts (0 without one), and the sort values it
    starts after, if it carries them (the search checks them against its keys)."""
    if token is None or token == "":
        return 0, None
    try:
        data = json.loads(base64.urlsafe_b64decode(str(token).encode()))
        offset, after = data["offset"], data.get("after")
    except (
        ValueError,
        TypeError,
        KeyError,
        AttributeError,
        RecursionError,
        binascii.Error,
        UnicodeError,
    ):
        raise InvalidInput(_BAD_TOKEN) from None
    if isinstance(offset, bool) or not isinstance(offset, int) or not 0 <= offset <= MAX_OFFSET:
        raise InvalidInput(_BAD_TOKEN)
    if after is not None and not isinstance(after, list):
        raise InvalidInput(_BAD_TOKEN)
    return offset, None if after is None else tuple(after)


def page_offset(token: Any) -> int:
    """Where the page a ``page_token`` names starts (0 without one)."""
    return page_start(token)[0]
