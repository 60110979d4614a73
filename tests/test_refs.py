"""References and names: one parser for NAME, NAME/N, NAME@ALIAS and version UUIDs."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from modelreg.errors import InvalidInput
from modelreg.refs import NAME_PATTERN, Ref, check_alias, check_name, is_uuid, parse_ref

names = st.from_regex(NAME_PATTERN, fullmatch=True).filter(lambda s: not is_uuid(s))
aliases = names.filter(lambda s: not s.isdigit() and s != "latest")
numbers = st.integers(min_value=1, max_value=10**18 - 1)
version_ids = st.uuids().map(str)

valid_refs = st.one_of(
    names,
    st.builds(lambda n, k: f"{n}/{k}", names, numbers),
    st.builds(lambda n, a: f"{n}@{a}", names, aliases),
    version_ids,
)

# Text built from the characters that matter to the parser finds the edge cases faster.
ref_like = st.text(alphabet="abcdef0189-._/@ ABCZ\n\t\x00é", max_size=40)


@given(valid_refs)
@example("a")
@example("a/1")
@example("a" * 128 + "@" + "b" * 128)
def test_a_valid_reference_round_trips_through_the_parser(text):
    assert str(parse_ref(text)) == text


@given(st.one_of(st.text(), ref_like))
@example("churn/01")
@example("/1")
@example("@prod")
@example("churn@")
@example("churn/1/2")
@example("churn@prod@x")
def test_parsing_arbitrary_text_either_gives_a_ref_or_raises_invalid_input(text):
    try:
        ref = parse_ref(text)
    except InvalidInput:
        return
    assert parse_ref(str(ref)) == ref


@given(st.one_of(st.text(), ref_like))
def test_check_name_raises_only_invalid_input_and_accepts_exactly_the_pattern(text):
    import re

    try:
        assert check_name(text) == text
    except InvalidInput:
        assert not re.fullmatch(NAME_PATTERN, text) or is_uuid(text)
    else:
        assert re.fullmatch(NAME_PATTERN, text)
        assert not is_uuid(text)


def test_each_kind_of_reference_parses_to_its_fields():
    vid = "6f1c2d3e-0000-4000-8000-00000000abcd"
    assert parse_ref("churn") == Ref(model="churn")
    assert parse_ref("churn").is_latest
    assert parse_ref("churn/3") == Ref(model="churn", number=3)
    assert parse_ref("churn@production") == Ref(model="churn", alias="production")
    assert parse_ref(vid) == Ref(version_id=vid)


def test_a_version_uuid_is_normalised_to_lowercase():
    vid = str(uuid.uuid4())
    assert parse_ref(vid.upper()) == Ref(version_id=vid)


def test_surrounding_whitespace_is_ignored():
    assert parse_ref("  churn/3\n") == Ref(model="churn", number=3)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "Churn",
        "churn/0",
        "churn/01",
        "churn/-1",
        "churn/1.0",
        "churn/",
        "churn/x",
        "churn/" + "9" * 19,
        "churn@",
        "churn@1",
        "churn@latest",
        "churn@Prod",
        "@production",
        "/3",
        "a" * 129,
        "churn/1@prod",
        "café",
    ],
)
def test_malformed_references_are_refused(text):
    with pytest.raises(InvalidInput):
        parse_ref(text)


def test_a_non_string_reference_is_refused():
    with pytest.raises(InvalidInput):
        parse_ref(3)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["a", "0", "churn", "churn-v2", "my_model.v1", "a" * 128])
def test_valid_names(name):
    assert check_name(name) == name


@pytest.mark.parametrize(
    "name",
    [
        "",
        "A",
        "Churn",
        "-a",
        ".a",
        "_a",
        "a b",
        "a/b",
        "a@b",
        "a" * 129,
        "5b19ded2-a613-463d-b1a6-3583c379396d",
    ],
)
def test_invalid_names(name):
    with pytest.raises(InvalidInput):
        check_name(name)


def test_a_name_error_suggests_the_lowercase_form():
    with pytest.raises(InvalidInput, match="'churn'"):
        check_name("Churn")


@pytest.mark.parametrize("alias", ["1", "42", "latest"])
def test_numbers_and_latest_are_not_aliases(alias):
    with pytest.raises(InvalidInput):
        check_alias(alias)
