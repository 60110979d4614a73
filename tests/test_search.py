"""The search language: what parses, how it prints, and which versions a query finds."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import datetime
from typing import Any
from unittest import mock

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from modelreg import schema, search
from modelreg.db import Database, format_time
from modelreg.errors import InvalidInput, SearchSyntaxError
from modelreg.search import (
    And,
    Compare,
    Field,
    In,
    Like,
    Not,
    Or,
    OrderItem,
    Query,
    parse,
    parse_order_by,
    select_versions,
    tokenize,
    unparse,
)

NAME = Field("name")
NUMBER = Field("number")
_KEYED = ("metrics", "params", "tags")


def metric(key: str) -> Field:
    return Field("metrics", key)


def where(text: str) -> Any:
    return parse(text).where


# -- parsing -------------------------------------------------------------------------------


def test_empty_query_means_everything() -> None:
    assert parse("") == Query(None, (), None)
    assert parse("  \n ") == Query(None, (), None)


def test_and_binds_tighter_than_or() -> None:
    a, b, one = Compare(NAME, "=", "a"), Compare(NAME, "=", "b"), Compare(NUMBER, "=", 1)
    assert where("name = 'a' or name = 'b' and number = 1") == Or((a, And((b, one))))
    assert where("name = 'a' and name = 'b' or number = 1") == Or((And((a, b)), one))


def test_not_binds_tighter_than_and() -> None:
    a, one = Compare(NAME, "=", "a"), Compare(NUMBER, "=", 1)
    assert where("not name = 'a' and number = 1") == And((Not(a), one))
    assert where("not (name = 'a' and number = 1)") == Not(And((a, one)))
    assert where("not not name = 'a'") == Not(Not(a))


def test_parentheses_group_and_chains_stay_flat() -> None:
    a, b, one = Compare(NAME, "=", "a"), Compare(NAME, "=", "b"), Compare(NUMBER, "=", 1)
    assert where("(name = 'a' or name = 'b') and number = 1") == And((Or((a, b)), one))
    assert where("name = 'a' and name = 'b' and number = 1") == And((a, b, one))
    assert where("((name = 'a'))") == a


@pytest.mark.parametrize(
    ("op", "canonical"),
    [
        *[("=", "="), ("==", "="), ("!=", "!="), ("<>", "!=")],
        *[("<", "<"), ("<=", "<="), (">", ">"), (">=", ">=")],
    ],
)
def test_every_operator(op: str, canonical: str) -> None:
    assert where(f"metrics.acc {op} 1") == Compare(metric("acc"), canonical, 1)
    assert where(f"metrics.acc{op}-1") == Compare(metric("acc"), canonical, -1)


def test_in_and_like() -> None:
    team = Field("tags", "team")
    assert where("name in ('a', \"b\")") == In(NAME, ("a", "b"))
    assert where("name not in ('a')") == In(NAME, ("a",), negated=True)
    assert where("tags.team like 'gr%'") == Like(team, "gr%")
    assert where("tags.team not like 'gr%'") == Like(team, "gr%", negated=True)


@pytest.mark.parametrize(
    ("literal", "value"),
    [
        ("'plain'", "plain"),
        ("'it''s'", "it's"),
        (r"'it\'s'", "it's"),
        ('"say ""hi"""', 'say "hi"'),
        (r'"a\"b"', 'a"b'),
        ('"it\'s"', "it's"),
        (r"'back\\slash'", "back\\slash"),
        (r"'50\%'", "50\\%"),
        ("''", ""),
        ("'ünï cödé'", "ünï cödé"),
    ],
)
def test_quoting_and_escapes(literal: str, value: str) -> None:
    assert where(f"description = {literal}") == Compare(Field("description"), "=", value)


def test_keywords_in_any_case() -> None:
    query = parse("NAME = 'a' AnD NOT number = 1 Or tags.t LIKE 'x' ORDER BY number DESC LIMIT 5")
    a, one = Compare(NAME, "=", "a"), Compare(NUMBER, "=", 1)
    assert query.where == Or((And((a, Not(one))), Like(Field("tags", "t"), "x")))
    assert query.order == (OrderItem(NUMBER, descending=True),)
    assert query.limit == 5


def test_keys_plain_dotted_and_backquoted() -> None:
    assert where("params.optim.lr-max = 1") == Compare(Field("params", "optim.lr-max"), "=", 1)
    assert where("metrics.`val loss` < 2") == Compare(metric("val loss"), "<", 2)
    assert where("tags.`a``b` = 'x'") == Compare(Field("tags", "a`b"), "=", "x")
    assert where("Metrics.Acc > 1") == Compare(metric("Acc"), ">", 1)  # keys keep their case


@pytest.mark.parametrize(
    ("literal", "value"),
    [("3", 3), ("-3", -3), ("0.5", 0.5), (".5", 0.5), ("1e3", 1000.0), ("-2.5E-2", -0.025)],
)
def test_numbers(literal: str, value: float) -> None:
    parsed = where(f"metrics.x = {literal}").value
    assert parsed == value
    assert type(parsed) is type(value)


def test_values_on_text_fields_are_text() -> None:
    assert where("params.flag = true") == Compare(Field("params", "flag"), "=", "true")
    assert where("tags.ok = FALSE") == Compare(Field("tags", "ok"), "=", "false")
    assert where("tags.build = 0042") == Compare(Field("tags", "build"), "=", "0042")
    assert where("params.C = 0.1") == Compare(Field("params", "C"), "=", 0.1)
    assert where("params.C = '0.1'") == Compare(Field("params", "C"), "=", "0.1")


@pytest.mark.parametrize(
    ("literal", "stored"),
    [
        ("'2026-11-01'", "2026-11-01T00:00:00.000000Z"),
        ("'2026-11-01T12:00:00Z'", "2026-11-01T12:00:00.000000Z"),
        ("'2026-11-01T14:00:00+02:00'", "2026-11-01T12:00:00.000000Z"),
        ("'2026-11-01T12:00:00.25Z'", "2026-11-01T12:00:00.250000Z"),
        ("'2026-11-01T12:00:00.000000Z'", "2026-11-01T12:00:00.000000Z"),
    ],
)
def test_created_at_is_normalised_to_the_stored_format(literal: str, stored: str) -> None:
    assert where(f"created_at >= {literal}") == Compare(Field("created_at"), ">=", stored)


def test_parse_order_by() -> None:
    assert parse_order_by("metrics.accuracy desc, number") == (
        OrderItem(metric("accuracy"), descending=True),
        OrderItem(NUMBER),
    )
    assert parse_order_by("name ASC") == (OrderItem(NAME),)
    assert parse_order_by("") == ()
    with pytest.raises(SearchSyntaxError) as err:
        parse_order_by("number asc extra")
    assert err.value.column == 12


def test_unparse_is_canonical() -> None:
    text = "NAME == 'it''s' AND metrics.x <> 1 OR tags.`a b` NOT IN (1, 'z') ORDER BY number DESC"
    expected = (
        "name = 'it''s' and metrics.x != 1 or tags.`a b` not in ('1', 'z') order by number desc"
    )
    assert unparse(parse(text)) == expected
    assert unparse(parse("(name = 'a' or name = 'b') and not (number = 1 or number = 2)")) == (
        "(name = 'a' or name = 'b') and not (number = 1 or number = 2)"
    )
    assert unparse(Query()) == ""


# -- errors --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "column", "fragment"),
    [
        ("metrics.accuracy > ", 20, "expected a value after '>' but found end of input"),
        ("name = 'abc", 12, "expected a closing ' for the quote at column 8"),
        ('tags.`team = "x"', 17, "expected a closing ` for the quote at column 6"),
        ("(name = 'a' or number = 1", 26, "expected ')' to close the '(' at column 1"),
        ("metric.accuracy > 0.9", 1, "did you mean 'metrics.accuracy'?"),
        ("nmae = 'x'", 1, "did you mean 'name'?"),
        ("datasets.name = 'x'", 1, "did you mean 'dataset.name'?"),
        ("accuracy > 1", 1, "unknown field 'accuracy'; the fields are name, number"),
        ("created_at > '2026-13-01'", 14, "created_at needs a quoted date"),
        ("created_at > 2026", 14, "created_at needs a quoted date"),
        ("metrics.acc = 'high'", 15, "metrics are numbers"),
        ("metrics.acc in (1, 'x')", 20, "metrics are numbers"),
        ("name = 'a' junk", 12, "expected 'and', 'or', 'order by', 'limit' or end of input"),
        ("name = 'a' )", 12, "but found ')'"),
        ("order by number desc name", 22, "expected ',', 'limit' or end of input"),
        ("order number", 7, "expected 'by' after 'order'"),
        ("tags.team > 5", 13, "tags.team is text"),
        ("number = 1.5", 10, "version numbers are integers"),
        ("name ~ 'a'", 6, "unexpected character '~'"),
        ("name 'a'", 6, "expected an operator"),
        ("name like 5", 11, "expected a quoted pattern after 'like'"),
        ("metrics.x like 'a'", 11, "'like' needs a text field"),
        ("name not = 'a'", 10, "expected 'in' or 'like' after 'not'"),
        ("name in 'a'", 9, "expected '(' after 'in'"),
        ("name in ('a' 'b')", 14, "expected ',' or ')'"),
        ("= 3", 1, "expected a field"),
        ("and = 3", 1, "expected a field"),
        ("metrics. > 1", 1, "expected a key after 'metrics.'"),
        ("metrics.1x > 1", 1, "quote it"),
        ("name = 'a' order by alias", 21, "cannot order by alias"),
        ("limit 0", 7, "limit must be between 1 and 10000"),
        ("limit 10001", 7, "limit must be between 1 and 10000"),
        ("limit 2.5", 7, "expected a whole number after 'limit'"),
        ("metrics.x > 1e999", 13, "out of range"),
        ("number = 99999999999999999999", 10, "out of range"),
        ("description like 'a\\\\'", 18, "lone backslash"),
    ],
)
def test_syntax_errors_name_the_column(text: str, column: int, fragment: str) -> None:
    with pytest.raises(SearchSyntaxError) as err:
        parse(text)
    assert err.value.column == column
    assert fragment in err.value.message
    assert err.value.message.endswith(f" at column {column}")
    assert err.value.text == text


def test_error_message_reads_as_a_sentence() -> None:
    with pytest.raises(SearchSyntaxError) as err:
        parse("tags.x = 'a' and number >")
    assert str(err.value) == "expected a value after '>' but found end of input at column 26"


def test_limits() -> None:
    parse("name = '" + "x" * 4000 + "'")
    with pytest.raises(InvalidInput, match="4096"):
        parse("name = '" + "x" * 4090 + "'")
    parse("(" * 64 + "number = 1" + ")" * 64)
    with pytest.raises(SearchSyntaxError, match="64 levels") as err:
        parse("(" * 65 + "number = 1" + ")" * 65)
    assert err.value.column == 65
    with pytest.raises(SearchSyntaxError, match="64 levels"):
        parse("not " * 65 + "number = 1")
    assert len(where("number in (" + ", ".join(["1"] * 1000) + ")").values) == 1000
    with pytest.raises(SearchSyntaxError, match="at most 1000 values"):
        parse("number in (" + ", ".join(["1"] * 1001) + ")")
    assert parse("limit 10000").limit == 10000


# -- properties ----------------------------------------------------------------------------

_text = st.text(max_size=8).filter(lambda s: "\x00" not in s)
_keys = _text.filter(bool)
_ints = st.integers(-(2**63) + 1, 2**63 - 1)
_numbers = _ints | st.floats(allow_nan=False, allow_infinity=False)
_times = st.datetimes(min_value=datetime(1000, 1, 1)).map(format_time)
_patterns = _text.filter(lambda s: (len(s) - len(s.rstrip("\\"))) % 2 == 0)
_VALUES = {"metrics": _numbers, "params": _numbers | _text, "number": _ints, "created_at": _times}
_ORDERABLE = ["name", "number", "created_at", "description", "metrics", "params", "tags"]


def _field(kind: str) -> st.SearchStrategy[Field]:
    return _keys.map(lambda k: Field(kind, k)) if kind in search.KEYED else st.just(Field(kind))


@st.composite
def _leaf(draw: st.DrawFn) -> Any:
    kind = draw(st.sampled_from([*search.KEYED, *search.SIMPLE]))
    field = draw(_field(kind))
    values = _VALUES.get(kind, _text)
    shapes = ["compare", "in"] + (["like"] if kind in search.TEXT_FIELDS else [])
    shape = draw(st.sampled_from(shapes))
    if shape == "like":
        return Like(field, draw(_patterns), draw(st.booleans()))
    if shape == "in":
        return In(field, tuple(draw(st.lists(values, min_size=1, max_size=3))), draw(st.booleans()))
    return Compare(field, draw(st.sampled_from(sorted(set(search.OPS.values())))), draw(values))


_nodes = st.recursive(
    _leaf(),
    lambda children: (
        st.lists(children, min_size=2, max_size=3).map(lambda xs: And(tuple(xs)))
        | st.lists(children, min_size=2, max_size=3).map(lambda xs: Or(tuple(xs)))
        | children.map(Not)
    ),
    max_leaves=8,
)
_orders = st.lists(
    st.builds(OrderItem, st.sampled_from(_ORDERABLE).flatmap(_field), st.booleans()), max_size=3
).map(tuple)
_queries = st.builds(Query, st.none() | _nodes, _orders, st.none() | st.integers(1, 10_000))


@settings(max_examples=300)
@given(_queries)
def test_unparse_round_trips(query: Query) -> None:
    text = unparse(query)
    assert parse(text) == query
    assert unparse(parse(text)) == text


@given(st.text())
def test_tokenizer_and_parser_raise_only_search_errors(text: str) -> None:
    with contextlib.suppress(SearchSyntaxError):
        tokenize(text)
    with contextlib.suppress(InvalidInput):  # SearchSyntaxError included
        parse(text)


def _parse_or_error(text: str) -> Query | SearchSyntaxError:
    try:
        return parse(text)
    except SearchSyntaxError as exc:
        return exc


@settings(max_examples=300)
@given(st.text(alphabet="metrics.acunod_ (),'\"`\\<>=!-0.5e9 tagsinlkbyORDER", max_size=60))
def test_parser_on_near_miss_text(text: str) -> None:
    result = _parse_or_error(text)
    if isinstance(result, SearchSyntaxError):
        assert 1 <= result.column <= len(text) + 1
    else:
        assert parse(unparse(result)) == result


# -- SQL against SQLite --------------------------------------------------------------------

T0 = "2026-11-{:02d}T12:00:00.000000Z"
# id: (model, number, day, description, accuracy, C, team)
VERSIONS: dict[str, tuple[str, int, int, str, float | None, str | None, str | None]] = {
    "c1": ("churn", 1, 1, "baseline", 0.95, "0.1", "alpha"),
    "c2": ("churn", 2, 2, "50% off", 0.85, "1", "growth"),
    "c3": ("churn", 3, 3, "5000", 0.99, "0.1", "core"),
    "c4": ("churn", 4, 4, "", None, "10", None),
    "c5": ("churn", 5, 5, "", 0.95, "auto", "growth"),
    "f1": ("fraud", 1, 10, "", 0.91, "0.1", "growth"),
    "f2": ("fraud", 2, 11, "", None, None, None),
}


def _num(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path_factory.mktemp('search')}/t.db")
    schema.metadata.create_all(database.engine)
    ts = T0.format(1)

    def load(conn: sa.Connection) -> None:
        def insert(table: sa.Table, **values: Any) -> None:
            conn.execute(table.insert().values(**values))

        for name in ("churn", "fraud"):
            insert(schema.models, id=f"m-{name}", name=name, created_at=ts, updated_at=ts,
                   description="", created_by="ann")  # fmt: skip
        for vid, (model, number, day, description, acc, c, team) in VERSIONS.items():
            insert(schema.versions, id=vid, model_id=f"m-{model}", number=number,
                   description=description, created_at=T0.format(day), created_by="ann",
                   manifest_digest="0" * 64, size=1, file_count=1, code="", command="",
                   hostname="h")  # fmt: skip
            insert(schema.version_metrics, version_id=vid, key="loss", value=0.1)
            if acc is not None:
                insert(schema.version_metrics, version_id=vid, key="accuracy", value=acc)
            if c is not None:
                insert(schema.version_params, version_id=vid, key="C", value=c, value_num=_num(c))
            if team is not None:
                insert(schema.version_tags, version_id=vid, key="team", value=team)
        for model, alias, vid in [("churn", "prod", "c3"), ("churn", "staging", "c1")]:
            insert(schema.aliases, model_id=f"m-{model}", alias=alias, version_id=vid,
                   updated_at=ts, updated_by="ann")  # fmt: skip
        insert(schema.aliases, model_id="m-fraud", alias="prod", version_id="f1",
               updated_at=ts, updated_by="ann")  # fmt: skip
        for did, name, digest in [("d1", "customers", "a" * 64), ("d2", "payments", "b" * 64)]:
            insert(schema.datasets, id=did, name=name, digest=digest, uri="s3://x", size=1,
                   file_count=1, created_at=ts)  # fmt: skip
        for vid, did in [("c1", "d1"), ("c3", "d1"), ("f1", "d2")]:
            insert(schema.version_datasets, version_id=vid, dataset_id=did, role="train")

    database.write(load)
    yield database
    database.dispose()


def ids(db: Database, text: str, **options: Any) -> list[str]:
    stmt = select_versions(parse(text), **options)
    return db.read(lambda conn: list(conn.execute(stmt).scalars()))


def test_the_issue_example(db: Database) -> None:
    text = (
        "metrics.accuracy > 0.9 and (params.C = '0.1' or tags.team = 'growth')"
        " order by metrics.accuracy desc"
    )
    assert ids(db, text) == ["c3", "c5", "c1", "f1"]  # c5 and c1 tie: the newer first


def test_default_order_is_newest_first(db: Database) -> None:
    assert ids(db, "") == ["f2", "f1", "c5", "c4", "c3", "c2", "c1"]
    assert ids(db, "limit 2") == ["f2", "f1"]
    assert ids(db, "", model_id="m-fraud") == ["f2", "f1"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("metrics.accuracy > 0.9", {"c1", "c3", "c5", "f1"}),
        ("metrics.accuracy != 0.95", {"c2", "c3", "f1"}),  # has the metric, and it differs
        ("not metrics.accuracy > 0.9", {"c2", "c4", "f2"}),  # includes versions without it
        ("not metrics.accuracy = 0.95", {"c2", "c3", "c4", "f1", "f2"}),
        ("metrics.accuracy in (0.85, 0.99)", {"c2", "c3"}),
        ("metrics.accuracy not in (0.85, 0.99)", {"c1", "c5", "f1"}),
        ("params.C = '0.1'", {"c1", "c3", "f1"}),
        ("params.C = '0.10'", set()),
        ("params.C = 0.1", {"c1", "c3", "f1"}),
        ("params.C > 0.5", {"c2", "c4"}),
        ("params.C != 1", {"c1", "c3", "c4", "c5", "f1"}),  # 'auto' differs from 1 too
        ("params.C in (10, 'auto')", {"c4", "c5"}),
        ("params.C not in (0.1, 'auto')", {"c2", "c4"}),
        ("params.C like 'a%'", {"c5"}),
        ("tags.team = 'growth'", {"c2", "c5", "f1"}),
        ("tags.team != 'growth'", {"c1", "c3"}),
        ("tags.team like 'GRO%'", {"c2", "c5", "f1"}),
        ("tags.team not like 'g%'", {"c1", "c3"}),
        ("tags.team < 'b'", {"c1"}),
        ("name = 'fraud'", {"f1", "f2"}),
        ("name like 'ch%' and number >= 4", {"c4", "c5"}),
        ("name in ('fraud', 'nope')", {"f1", "f2"}),
        ("number = 2 or description = 'baseline'", {"c1", "c2", "f2"}),
        ("description like '50\\%%'", {"c2"}),  # the backslash makes % literal: not c3
        ("description like '50%'", {"c2", "c3"}),
        ("created_at >= '2026-11-05'", {"c5", "f1", "f2"}),
        ("created_at < '2026-11-02T13:00:00+02:00'", {"c1"}),
        ("created_at < '2026-11-02T13:00:00-02:00'", {"c1", "c2"}),
        ("alias = 'prod'", {"c3", "f1"}),
        ("alias like 'st%'", {"c1"}),
        ("not alias = 'prod'", {"c1", "c2", "c4", "c5", "f2"}),
        ("dataset.name = 'customers'", {"c1", "c3"}),
        ("dataset.digest = '" + "b" * 64 + "'", {"f1"}),
        ("metrics.nope > 0 or metrics.`loss` = 0.1 and number = 5", {"c5"}),
    ],
)
def test_filters(db: Database, text: str, expected: set[str]) -> None:
    assert set(ids(db, text)) == expected
    query = parse(text)
    with db.engine.connect() as conn, mock.patch.object(search, "FEW", 10):
        few = search.few_matches(conn, query)  # here every keyed test not under a not
    if query.where is not None:
        keyed = [n for n in search._plain_leaves(query.where) if n.field.kind in _KEYED]
        assert few == frozenset(keyed)
    assert set(ids(db, text, few=few)) == expected  # read through the index first, the same


def test_injection_is_just_text(db: Database) -> None:
    assert ids(db, "name = 'x'' OR 1=1 --'") == []
    assert ids(db, "tags.`team' OR 1=1 --` = 'growth'") == []
    assert ids(db, 'description = "\'; DROP TABLE versions; --"') == []
    stmt = select_versions(parse("name = 'x'' OR 1=1 --' order by tags.`k OR 1=1` desc"))
    assert "1=1" not in str(stmt.compile())
    assert len(ids(db, "")) == 7


@pytest.mark.parametrize("small_model", [0, 2000])  # read by index, or the model's versions
def test_missing_keys_sort_last_both_ways(
    db: Database, monkeypatch: pytest.MonkeyPatch, small_model: int
) -> None:
    monkeypatch.setattr(search, "SMALL_MODEL", small_model)
    desc = "order by metrics.accuracy desc"
    assert ids(db, desc) == ["c3", "c5", "c1", "f1", "c2", "f2", "c4"]
    assert ids(db, "order by metrics.accuracy") == ["c2", "f1", "c5", "c1", "c3", "f2", "c4"]
    assert ids(db, desc + " limit 1") == ["c3"]
    assert ids(db, desc, limit=3, offset=4) == ["c2", "f2", "c4"]  # across the boundary
    assert ids(db, desc, model_id="m-churn") == ["c3", "c5", "c1", "c2", "c4"]
    assert ids(db, desc, model_id="m-churn", limit=2) == ["c3", "c5"]
    assert ids(db, desc, model_id="m-churn", limit=2, offset=3) == ["c2", "c4"]
    assert ids(db, "order by metrics.accuracy limit 9", model_id="m-fraud") == ["f1", "f2"]
    assert ids(db, "order by metrics.nope desc limit 2") == ["f2", "f1"]


@pytest.mark.parametrize("small_model", [0, 2000])
def test_params_sort_numbers_then_text_then_missing(
    db: Database, monkeypatch: pytest.MonkeyPatch, small_model: int
) -> None:
    monkeypatch.setattr(search, "SMALL_MODEL", small_model)
    assert ids(db, "order by params.C") == ["f1", "c3", "c1", "c2", "c4", "c5", "f2"]
    assert ids(db, "order by params.C desc") == ["c4", "c2", "f1", "c3", "c1", "c5", "f2"]
    assert ids(db, "order by params.C", model_id="m-churn", limit=3, offset=2) == [
        "c2",
        "c4",
        "c5",
    ]
    assert ids(db, "order by params.C desc limit 6") == ["c4", "c2", "f1", "c3", "c1", "c5"]


def test_order_by_several_fields(db: Database) -> None:
    assert ids(db, "order by number desc") == ["c5", "c4", "c3", "f2", "c2", "f1", "c1"]
    assert ids(db, "order by name desc, number") == ["f1", "f2", "c1", "c2", "c3", "c4", "c5"]
    assert ids(db, "order by name, metrics.accuracy desc") == [
        *["c3", "c5", "c1", "c2", "c4"],
        *["f1", "f2"],
    ]
    # c1 and c5 tie on accuracy; the team then orders them, and versions without a team last
    assert ids(db, "order by metrics.accuracy desc, tags.team limit 3") == ["c3", "c1", "c5"]
    # growth: numbers (f1 0.1, c2 1) before text (c5 auto); no team last, with no C last of all
    assert ids(db, "order by tags.team desc, params.C") == [
        *["f1", "c2", "c5", "c3", "c1"],
        *["c4", "f2"],
    ]


def test_filter_on_the_ordering_key(db: Database) -> None:
    assert ids(db, "metrics.accuracy < 0.96 order by metrics.accuracy limit 2") == ["c2", "f1"]
    assert ids(db, "not metrics.accuracy < 0.96 order by metrics.accuracy") == ["c3", "f2", "c4"]


def test_limit_argument_wins_and_is_checked(db: Database) -> None:
    assert len(ids(db, "limit 1", limit=3)) == 3
    assert ids(db, "order by number", limit=2, offset=1) == ["c1", "f2"]
    with pytest.raises(InvalidInput):
        select_versions(parse(""), limit=0)
    with pytest.raises(InvalidInput):
        select_versions(parse(""), offset=-1)


def _reference_order(order: list[OrderItem], model: str | None) -> list[str]:
    """The order select_versions must produce, computed in Python from VERSIONS."""
    rows = [vid for vid, v in VERSIONS.items() if model is None or v[0] == model]
    columns = {"accuracy": 4, "C": 5, "team": 6}

    def by(key: Any, reverse: bool = False) -> None:  # stable: least significant key first
        rows.sort(key=key, reverse=reverse)

    by(lambda vid: vid)
    by(lambda vid: (T0.format(VERSIONS[vid][2]), VERSIONS[vid][1]), reverse=True)
    for item in reversed(order):
        kind, desc = item.field.kind, item.descending
        if kind in ("name", "number"):
            by(lambda vid, i=0 if kind == "name" else 1: VERSIONS[vid][i], reverse=desc)
            continue
        value = {vid: VERSIONS[vid][columns[str(item.field.key)]] for vid in rows}
        missing = 0.0 if kind == "metrics" else ""
        by(lambda vid: missing if value[vid] is None else value[vid], reverse=desc)
        if kind == "params":  # numbers first, numerically
            num = {vid: _num(str(value[vid])) for vid in rows}
            by(lambda vid: num[vid] or 0.0, reverse=desc)
            by(lambda vid: num[vid] is None)
        by(lambda vid: value[vid] is None)
    return rows


_ORDER_ITEMS = [
    *(Field("metrics", "accuracy"), Field("params", "C"), Field("tags", "team")),
    *(Field("name"), Field("number")),
]


@settings(max_examples=100, deadline=None)
@given(
    order=st.lists(
        st.builds(OrderItem, st.sampled_from(_ORDER_ITEMS), st.booleans()), min_size=1, max_size=2
    ),
    model=st.sampled_from([None, "churn", "fraud"]),
    small_model=st.sampled_from([0, 2000]),
)
def test_ordering_matches_a_reference(
    db: Database, order: list[OrderItem], model: str | None, small_model: int
) -> None:
    expected = _reference_order(order, model)
    model_id = None if model is None else f"m-{model}"
    # every window that ends on, or starts at, each row: each boundary between the arms
    windows = [(None, 0)] + [(n, 0) for n in range(1, 9)] + [(1, n) for n in range(8)]
    with mock.patch.object(search, "SMALL_MODEL", small_model):
        for limit, offset in windows:
            stmt = select_versions(
                Query(None, tuple(order)), model_id=model_id, limit=limit, offset=offset
            )
            found = db.read(lambda conn, stmt=stmt: list(conn.execute(stmt).scalars()))
            end = None if limit is None else offset + limit
            assert found == expected[offset:end], (limit, offset)


@settings(max_examples=100, deadline=None)
@given(
    order=st.lists(
        st.builds(OrderItem, st.sampled_from(_ORDER_ITEMS), st.booleans()), min_size=0, max_size=2
    ),
    model=st.sampled_from([None, "churn", "fraud"]),
    small_model=st.sampled_from([0, 2000]),
)
def test_a_page_after_any_version_is_the_rest_of_the_order(
    db: Database, order: list[OrderItem], model: str | None, small_model: int
) -> None:
    """Keyset pages: past any version (by the values it sorts by), in every group of the
    order (with the key, numbers then text, without it), the versions that follow it."""
    query = Query(None, tuple(order))
    expected = _reference_order(order, model)
    model_id = None if model is None else f"m-{model}"
    with mock.patch.object(search, "SMALL_MODEL", small_model):
        for i, last in enumerate(expected):
            start = db.read(
                lambda conn, last=last: tuple(
                    conn.execute(search.sort_values(query), {"after": last}).one()
                )
            )
            for limit in (None, 1, 3):
                stmt = select_versions(query, model_id=model_id, limit=limit, after=start)
                found = db.read(lambda conn, stmt=stmt: list(conn.execute(stmt).scalars()))
                end = None if limit is None else i + 1 + limit
                assert found == expected[i + 1 : end], (last, limit)
