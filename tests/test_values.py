"""Checks on params, metrics, tags and descriptions: finite limits, clear refusals."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelreg.errors import InvalidInput
from modelreg.values import (
    MAX_DESCRIPTION,
    MAX_ENTRIES,
    MAX_KEY,
    MAX_PARAM_VALUE,
    MAX_TAG_VALUE,
    check_description,
    check_key,
    check_metric,
    check_metrics,
    check_params,
    check_tags,
    param_number,
    param_text,
    parse_assignment,
)

keys = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.\-/]{0,40}", fullmatch=True)


@given(keys, st.floats(allow_nan=False, allow_infinity=False))
def test_every_finite_metric_is_kept_exactly(key, value):
    assert check_metric(key, value) == value


@given(keys, st.integers(min_value=-(2**53), max_value=2**53))
def test_integer_metrics_become_floats(key, value):
    result = check_metric(key, value)
    assert isinstance(result, float)
    assert result == value


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, "nan", "inf", "x", None, [1]])
def test_non_finite_or_non_numeric_metrics_are_refused(value):
    with pytest.raises(InvalidInput):
        check_metric("loss", value)


def test_a_metric_error_names_the_key():
    with pytest.raises(InvalidInput, match="'val_loss'"):
        check_metrics({"val_loss": math.nan})


@given(
    st.dictionaries(
        keys,
        st.one_of(
            st.text(st.characters(blacklist_characters="\x00"), max_size=50),
            st.integers(),
            st.floats(allow_nan=False, allow_infinity=False),
            st.booleans(),
        ),
    )
)
def test_params_are_stored_as_text_and_strings_unchanged(params):
    checked = check_params(params)
    assert set(checked) == set(params)
    for key, value in params.items():
        assert checked[key] == (value if isinstance(value, str) else json.dumps(value))


@pytest.mark.parametrize(
    "value", [float("nan"), float("inf"), object(), {1, 2}, b"bytes", "nul \x00 inside"]
)
def test_params_that_are_not_plain_data_are_refused(value):
    with pytest.raises(InvalidInput):
        check_params({"p": value})


def test_param_text_and_number():
    assert param_text(0.1) == "0.1"
    assert param_text(True) == "true"
    assert param_text([1, 2]) == "[1, 2]"
    assert param_text({"b": 1, "a": 2}) == '{"a": 2, "b": 1}'
    assert param_number("0.1") == 0.1
    assert param_number("1e3") == 1000.0
    assert param_number("l2") is None
    assert param_number("nan") is None
    assert param_number("inf") is None


def test_limits_are_inclusive():
    assert check_params({"p": "x" * MAX_PARAM_VALUE})["p"] == "x" * MAX_PARAM_VALUE
    assert check_tags({"t": "x" * MAX_TAG_VALUE})["t"] == "x" * MAX_TAG_VALUE
    assert check_description("x" * MAX_DESCRIPTION) == "x" * MAX_DESCRIPTION
    assert check_key("k" * MAX_KEY, kind="param") == "k" * MAX_KEY
    assert len(check_params({f"p{i}": i for i in range(MAX_ENTRIES)})) == MAX_ENTRIES


@pytest.mark.parametrize(
    "call",
    [
        lambda: check_params({"p": "x" * (MAX_PARAM_VALUE + 1)}),
        lambda: check_tags({"t": "x" * (MAX_TAG_VALUE + 1)}),
        lambda: check_description("x" * (MAX_DESCRIPTION + 1)),
        lambda: check_key("k" * (MAX_KEY + 1), kind="param"),
        lambda: check_params({f"p{i}": i for i in range(MAX_ENTRIES + 1)}),
        lambda: check_metrics({f"m{i}": i for i in range(MAX_ENTRIES + 1)}),
        lambda: check_description("a\x00b"),
        lambda: check_description(3),
        lambda: check_params(["a"]),
        lambda: check_tags("a=b"),
    ],
    ids=[
        "param value",
        "tag value",
        "description",
        "key",
        "too many params",
        "too many metrics",
        "NUL in description",
        "description not text",
        "params not a mapping",
        "tags not a mapping",
    ],
)
def test_values_over_the_limits_are_refused(call):
    with pytest.raises(InvalidInput):
        call()


@pytest.mark.parametrize("key", ["", " a", "a ", "-a", ".a", "a\nb", "a=b", "é", 3, None])
def test_malformed_keys_are_refused(key):
    with pytest.raises(InvalidInput):
        check_key(key, kind="param")


@pytest.mark.parametrize("key", ["a", "_a", "0", "lr/schedule", "a.b-c", "with inner space"])
def test_well_formed_keys_are_accepted(key):
    assert check_key(key, kind="tag") == key


def test_none_means_empty():
    assert check_params(None) == {}
    assert check_metrics(None) == {}
    assert check_tags(None) == {}
    assert check_description(None) == ""


def test_tag_values_that_are_not_text_are_stored_as_json_text():
    assert check_tags({"epochs": 3, "ok": True}) == {"epochs": "3", "ok": "true"}


def test_parse_assignment_splits_on_the_first_equals_sign():
    assert parse_assignment("C=0.1", kind="param") == ("C", "0.1")
    assert parse_assignment("expr=a=b", kind="param") == ("expr", "a=b")
    assert parse_assignment("empty=", kind="tag") == ("empty", "")
    for bad in ("C", "=0.1", ""):
        with pytest.raises(InvalidInput, match="--param"):
            parse_assignment(bad, kind="param")
