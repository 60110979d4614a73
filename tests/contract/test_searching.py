"""Search: versions across models filtered, ordered and limited by the search language."""

from __future__ import annotations

import pytest

from modelreg import InvalidInput, NotFound, SearchSyntaxError

ISSUE_EXAMPLE = "metrics.accuracy > 0.9 and (params.C = '0.1' or tags.team = 'growth')"


@pytest.fixture
def catalogue(registry, write):
    """Five versions of "churn" and two of "fraud" with varied params, metrics and tags."""
    write("data/train.csv", "train v1")
    write("data/valid.csv", "valid")
    rows = [
        ("churn", 0.95, 0.1, "growth", ["data/train.csv"]),
        ("churn", 0.85, 0.1, "growth", []),
        ("churn", 0.97, 1.0, "growth", []),
        ("churn", 0.92, 1.0, "core", [{"path": "data/valid.csv", "role": "validation"}]),
        ("churn", 0.99, 0.1, "core", []),
        ("fraud", 0.99, 0.1, "growth", ["data/train.csv"]),
        ("fraud", 0.50, 0.5, "core", []),
    ]
    made = {}
    for i, (name, accuracy, c, team, datasets) in enumerate(rows):
        write("m.bin", f"model {i}")
        v = registry.register(
            name,
            "m.bin",
            params={"C": c},
            metrics={"accuracy": accuracy},
            tags={"team": team},
            datasets=datasets,
        )
        made[v.ref] = v
    registry.set_alias("churn", "production", "churn/3")
    registry.set_alias("fraud", "production", "fraud/1")
    return made


def refs(versions):
    return [v.ref for v in versions]


def test_the_issue_example_filters_orders_and_limits(registry, catalogue):
    found = registry.search(ISSUE_EXAMPLE, model="churn", order_by="metrics.accuracy desc", limit=5)
    assert refs(found) == ["churn/5", "churn/3", "churn/1"]


def test_the_limit_keeps_the_first_results_in_order(registry, catalogue):
    found = registry.search(ISSUE_EXAMPLE, model="churn", order_by="metrics.accuracy desc", limit=2)
    assert refs(found) == ["churn/5", "churn/3"]


def test_without_a_model_the_search_spans_every_model(registry, catalogue):
    found = registry.search(ISSUE_EXAMPLE, order_by="metrics.accuracy desc")
    assert set(refs(found)) == {"churn/5", "churn/3", "churn/1", "fraud/1"}
    assert refs(found)[-1] == "churn/1"


def test_search_returns_whole_versions(registry, catalogue):
    (found,) = registry.search("metrics.accuracy = 0.97")
    assert found.id == catalogue["churn/3"].id
    assert (found.params, found.metrics, found.tags) == (
        {"C": "1.0"},
        {"accuracy": 0.97},
        {"team": "growth"},
    )


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("name = 'fraud'", {"fraud/1", "fraud/2"}),
        ("name like 'fr%'", {"fraud/1", "fraud/2"}),
        ("name = 'churn' and number = 2", {"churn/2"}),
        ("number >= 4", {"churn/4", "churn/5"}),
        ("alias = 'production'", {"churn/3", "fraud/1"}),
        ("name = 'churn' and alias = 'production'", {"churn/3"}),
        ("dataset.name = 'train.csv'", {"churn/1", "fraud/1"}),
        ("dataset.name = 'valid.csv'", {"churn/4"}),
        ("tags.team = 'core' and metrics.accuracy < 0.95", {"churn/4", "fraud/2"}),
        ("params.C > 0.4", {"churn/3", "churn/4", "fraud/2"}),
        ("params.C in ('0.1', '0.5')", {"churn/1", "churn/2", "churn/5", "fraud/1", "fraud/2"}),
        ("not tags.team = 'growth'", {"churn/4", "churn/5", "fraud/2"}),
        ("metrics.missing > 0", set()),
    ],
)
def test_filters(registry, catalogue, query, expected):
    assert set(refs(registry.search(query))) == expected


def test_filter_by_dataset_digest(registry, catalogue):
    digest = catalogue["churn/1"].datasets[0].digest
    assert set(refs(registry.search(f"dataset.digest = '{digest}'"))) == {"churn/1", "fraud/1"}


def test_filter_by_creation_time(registry, catalogue):
    cut = catalogue["churn/5"].created_at
    assert set(refs(registry.search(f"created_at > '{cut}'"))) == {"fraud/1", "fraud/2"}
    assert set(refs(registry.search(f"created_at <= '{cut}'", model="churn"))) == {
        f"churn/{n}" for n in range(1, 6)
    }
    assert refs(registry.search("created_at < '2000-01-01'")) == []


def test_an_empty_filter_matches_every_version_newest_first(registry, catalogue):
    assert refs(registry.search("")) == list(reversed(catalogue))
    assert refs(registry.search("", model="fraud")) == ["fraud/2", "fraud/1"]


def test_search_pages_with_limit_and_offset(registry, catalogue):
    everything = refs(registry.search("", order_by="metrics.accuracy desc, number"))
    page = refs(registry.search("", order_by="metrics.accuracy desc, number", limit=3, offset=2))
    assert page == everything[2:5]


def test_search_pages_after_the_last_version_of_a_page(registry, catalogue, write):
    """Keyset pages: each starts past the last version read, by the values it sorts by, so
    a version registered meanwhile at the top shifts nothing."""
    order = "metrics.accuracy desc, number"
    everything = refs(registry.search("", order_by=order))
    pages, after = [], None
    while True:
        page = registry.search("", order_by=order, limit=3, after=after)
        if not page:
            break
        pages.append(refs(page))
        after = page[-1].id
        write("m.bin", f"model {len(pages)} on top")
        registry.register("churn", "m.bin", metrics={"accuracy": 1.0})  # above every page read
    assert [ref for page in pages for ref in page] == everything
    assert [len(page) for page in pages] == [3, 3, 1]


def test_search_after_something_other_than_a_version_id_is_refused(registry, catalogue):
    with pytest.raises(InvalidInput, match="after"):
        registry.search("", after="churn/1")
    with pytest.raises(NotFound, match="after"):
        registry.search("", after="00000000-0000-4000-8000-000000000000")


@pytest.mark.parametrize(
    "query",
    [
        "metrics.accuracy >",
        "metrics.accuracy > 0.9 and",
        "(metrics.accuracy > 0.9",
        "metrics.accuracy > 0.9)",
        "accuracy > 0.9",
        "metrics.accuracy > 'high'",
        "number = 'two'",
        "params.C = 'unterminated",
        "metrics.accuracy ! 0.9",
        "created_at > 'yesterday'",
        "name = 'churn' order by",
    ],
)
def test_bad_syntax_raises_search_syntax_error(registry, query):
    with pytest.raises(SearchSyntaxError) as caught:
        registry.search(query)
    assert isinstance(caught.value, InvalidInput)


def test_a_syntax_error_names_the_column(registry):
    with pytest.raises(SearchSyntaxError) as caught:
        registry.search("metrics.accuracy > 0.9 and nosuchfield = 1")
    assert caught.value.column == len("metrics.accuracy > 0.9 and ") + 1


def test_bad_order_by_raises_search_syntax_error(registry):
    with pytest.raises(SearchSyntaxError):
        registry.search("", order_by="metrics.accuracy sideways")
    with pytest.raises(SearchSyntaxError):
        registry.search("", order_by="alias")


def test_search_in_an_unknown_model_raises_not_found(registry, catalogue):
    from modelreg import NotFound

    with pytest.raises(NotFound):
        registry.search("", model="nosuchmodel")


def test_values_are_never_read_as_sql(registry, catalogue):
    assert registry.search("name = 'x'' or 1=1 --'") == []
    assert len(registry.search("")) == 7


class TestMissingKeys:
    """A version without a key matches neither ``= x`` nor ``!= x``; ``not`` includes it;
    ordering by a key puts versions without it last in either direction."""

    @pytest.fixture
    def sparse(self, registry, write):
        write("m.bin", "m")
        registry.register("a", "m.bin", metrics={"acc": 0.5}, params={"C": 1.0})
        registry.register("a", "m.bin", metrics={"acc": 0.9}, params={"C": "l2"})
        registry.register("a", "m.bin")
        registry.register("a", "m.bin", metrics={"acc": 0.7}, params={"C": 1})

    def test_comparisons_need_the_key(self, registry, sparse):
        assert refs(registry.search("metrics.acc = 0.5")) == ["a/1"]
        assert set(refs(registry.search("metrics.acc != 0.5"))) == {"a/2", "a/4"}
        assert set(refs(registry.search("not metrics.acc = 0.5"))) == {"a/2", "a/3", "a/4"}

    def test_versions_without_the_key_sort_last_both_ways(self, registry, sparse):
        assert refs(registry.search("", order_by="metrics.acc desc")) == [
            "a/2",
            "a/4",
            "a/1",
            "a/3",
        ]
        assert refs(registry.search("", order_by="metrics.acc")) == ["a/1", "a/4", "a/2", "a/3"]
        assert refs(registry.search("", order_by="metrics.acc desc", limit=2)) == ["a/2", "a/4"]
        assert refs(registry.search("", order_by="metrics.acc", limit=2, offset=2)) == [
            "a/2",
            "a/3",
        ]

    def test_a_number_matches_params_numerically_and_a_string_matches_the_text(
        self, registry, sparse
    ):
        assert set(refs(registry.search("params.C = 1"))) == {"a/1", "a/4"}
        assert refs(registry.search("params.C = '1.0'")) == ["a/1"]
        assert refs(registry.search("params.C != 1")) == ["a/2"]


def test_like_is_case_insensitive_and_a_backslash_escapes(registry, write):
    write("m.bin", "m")
    registry.register("a", "m.bin", tags={"t": "Hello_World"})
    registry.register("a", "m.bin", tags={"t": "hello%"})
    assert set(refs(registry.search("tags.t like 'HELLO%'"))) == {"a/1", "a/2"}
    assert refs(registry.search("tags.t like 'hello\\%'")) == ["a/2"]
    assert refs(registry.search("tags.t like 'hello\\_world'")) == ["a/1"]


def test_a_limit_written_in_the_filter_applies(registry, write):
    write("m.bin", "m")
    for accuracy in (0.7, 0.9, 0.8):
        registry.register("churn", "m.bin", metrics={"accuracy": accuracy})
    found = registry.search("order by metrics.accuracy desc limit 1")
    assert [v.ref for v in found] == ["churn/2"]
