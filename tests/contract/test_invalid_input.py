"""Bad input is refused with a clear error, and a refused call stores nothing at all:
no model, no version, no blob, no dataset and no audit event."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelreg import InvalidInput, NotFound

# Each case registers one uniquely-named file ("fresh.bin", bytes nobody else stores), so a
# blob left behind by a refused call shows up in the snapshot.
BAD_NAMES = {
    "uppercase": "Churn",
    "empty": "",
    "blank": " ",
    "too long": "a" * 129,
    "uuid-shaped": "6f1c2d3e-0000-4000-8000-000000000000",
    "leading dash": "-churn",
    "slash": "churn/1",
    "at sign": "churn@production",
    "space inside": "my model",
    "non-ascii": "modèle",
}

BAD_PATHS = {
    "parent segment": {"../x": "fresh.bin"},
    "inner parent segment": {"a/../../x": "fresh.bin"},
    "absolute": {"/abs": "fresh.bin"},
    "backslash": {"a\\b": "fresh.bin"},
    "newline": {"a\nb": "fresh.bin"},
    "NUL": {"a\x00b": "fresh.bin"},
    "DEL": {"a\x7fb": "fresh.bin"},
    "empty": {"": "fresh.bin"},
    "empty segment": {"a//b": "fresh.bin"},
    "dot segment": {"./a": "fresh.bin"},
    "trailing slash": {"a/": "fresh.bin"},
    "drive letter": {"C:/x": "fresh.bin"},
    "duplicate after NFC normalisation": {
        "caf\u00e9.bin": "fresh.bin",
        "cafe\u0301.bin": "other.bin",
    },
    "file and directory clash": {"a": "fresh.bin", "a/b": "other.bin"},
    "unencodable (lone surrogate)": {"model-\udcff.bin": "fresh.bin"},
}


def _name(reg, name):
    reg.register(name, "fresh.bin")


def _files(reg, files):
    reg.register("m", files)


def _options(reg, options):
    reg.register("m", "fresh.bin", **options)


CASES = [
    *(pytest.param(_name, name, id=f"name {label}") for label, name in BAD_NAMES.items()),
    *(pytest.param(_files, files, id=f"path {label}") for label, files in BAD_PATHS.items()),
    pytest.param(_files, "missing.bin", id="file that does not exist"),
    pytest.param(_files, [], id="empty list of files"),
    pytest.param(_files, "", id="empty string as the files"),
    pytest.param(_files, "emptydir", id="directory without files"),
    pytest.param(_files, {"model.bin": "emptydir"}, id="mapping to a directory"),
    pytest.param(_files, ["fresh.bin", "dir/fresh.bin"], id="list with two files of one name"),
    pytest.param(_options, {"metrics": {"loss": float("nan")}}, id="NaN metric"),
    pytest.param(_options, {"metrics": {"loss": float("inf")}}, id="infinite metric"),
    pytest.param(_options, {"metrics": {"loss": float("-inf")}}, id="negative infinite metric"),
    pytest.param(_options, {"metrics": {"loss": "low"}}, id="text metric"),
    pytest.param(_options, {"metrics": {"": 1.0}}, id="empty metric key"),
    pytest.param(_options, {"params": {"C": "x" * 6001}}, id="oversized param"),
    pytest.param(_options, {"params": {" C": 1}}, id="param key with leading space"),
    pytest.param(_options, {"params": {f"p{i}": i for i in range(1001)}}, id="too many params"),
    pytest.param(_options, {"tags": {"team": "x" * 5001}}, id="oversized tag"),
    pytest.param(_options, {"tags": {"bad\nkey": "x"}}, id="tag key with newline"),
    pytest.param(_options, {"description": "x" * 20_001}, id="oversized description"),
    pytest.param(_options, {"description": "a\x00b"}, id="description with NUL"),
    pytest.param(_options, {"params": ["C", 0.1]}, id="params not a mapping"),
    pytest.param(
        _options,
        {"datasets": [{"path": "data/train.csv", "role": "training"}]},
        id="bad dataset role",
    ),
    pytest.param(_options, {"datasets": ["data/missing.csv"]}, id="dataset that does not exist"),
    pytest.param(_options, {"datasets": [{"role": "train"}]}, id="dataset mapping without path"),
    pytest.param(_options, {"datasets": [3]}, id="dataset that is not a path"),
    pytest.param(
        _options, {"datasets": [{"path": "data/train.csv", "name": "Bad"}]}, id="bad dataset name"
    ),
    pytest.param(
        _options,
        {"datasets": [{"path": "data/train.csv", "digest": "0" * 64}]},
        id="dataset digest that does not match",
    ),
    pytest.param(_options, {"datasets": ["s3://bucket/train.csv"]}, id="remote dataset no digest"),
    pytest.param(_options, {"parents": ["Base/1"]}, id="malformed parent reference"),
]


@pytest.fixture
def prepared(registry, write, snapshot):
    """A registry holding one model, and the local files the cases refer to."""
    write("existing.bin", "already registered")
    v = registry.register("existing", "existing.bin", params={"C": 1})
    registry.set_alias("existing", "production", v.ref)
    write("fresh.bin", "bytes that only a refused call would store")
    write("other.bin", "more bytes that only a refused call would store")
    write("dir/fresh.bin", "a second file named fresh.bin")
    write("data/train.csv", "x,y\n")
    Path("emptydir").mkdir()
    return snapshot()


@pytest.mark.parametrize(("call", "argument"), CASES)
def test_bad_input_is_refused_and_nothing_is_stored(registry, prepared, snapshot, call, argument):
    with pytest.raises(InvalidInput):
        call(registry, argument)
    assert snapshot() == prepared


@pytest.mark.parametrize(
    "parent",
    ["nosuchmodel/1", "existing/2", "existing@staging", "00000000-0000-4000-8000-000000000000"],
)
def test_an_unknown_parent_raises_not_found_and_nothing_is_stored(
    registry, prepared, snapshot, parent
):
    with pytest.raises(NotFound):
        registry.register("m", "fresh.bin", parents=["existing/1", parent])
    assert snapshot() == prepared


@pytest.mark.parametrize(
    ("call", "error"),
    [
        pytest.param(
            lambda r: r.set_alias("existing", "Prod", "existing/1"),
            InvalidInput,
            id="alias uppercase",
        ),
        pytest.param(
            lambda r: r.set_alias("existing", "1", "existing/1"), InvalidInput, id="alias a number"
        ),
        pytest.param(
            lambda r: r.set_alias("existing", "latest", "existing/1"),
            InvalidInput,
            id="alias latest",
        ),
        pytest.param(
            lambda r: r.set_alias("existing", "prod", "existing/9"),
            NotFound,
            id="alias to missing version",
        ),
        pytest.param(
            lambda r: r.set_alias("nosuch", "prod", "existing/1"),
            NotFound,
            id="alias on missing model",
        ),
        pytest.param(
            lambda r: r.delete_alias("existing", "staging"), NotFound, id="delete missing alias"
        ),
        pytest.param(
            lambda r: r.set_tag("existing/1", "team", "x" * 5001), InvalidInput, id="oversized tag"
        ),
        pytest.param(lambda r: r.set_tag("existing/1", "", "x"), InvalidInput, id="empty tag key"),
        pytest.param(
            lambda r: r.set_tag("existing/9", "team", "x"), NotFound, id="tag on missing version"
        ),
        pytest.param(
            lambda r: r.delete_tag("existing/1", "absent"), NotFound, id="delete missing tag"
        ),
        pytest.param(
            lambda r: r.set_description("existing/1", "x" * 20_001),
            InvalidInput,
            id="oversized description",
        ),
        pytest.param(
            lambda r: r.set_description("existing/9", "x"), NotFound, id="describe missing version"
        ),
        pytest.param(
            lambda r: r.get("existing@production", at="yesterday"), InvalidInput, id="at not a time"
        ),
        pytest.param(lambda r: r.get("existing/0"), InvalidInput, id="version zero"),
        pytest.param(lambda r: r.get("existing/-1"), InvalidInput, id="negative version"),
        pytest.param(lambda r: r.get(""), InvalidInput, id="empty reference"),
        pytest.param(lambda r: r.search("", limit=0), InvalidInput, id="search limit zero"),
        pytest.param(lambda r: r.dataset_models("nosuch"), NotFound, id="unknown dataset"),
    ],
)
def test_other_bad_calls_are_refused_and_change_nothing(registry, prepared, snapshot, call, error):
    with pytest.raises(error):
        call(registry)
    assert snapshot() == prepared


def _run(registry, name):
    with registry.start_run(name=name):
        pass


@pytest.mark.parametrize(
    "name", [pytest.param("x" * 100_000, id="huge"), pytest.param(5, id="not text")]
)
def test_a_bad_run_name_is_refused_and_nothing_is_stored(registry, prepared, snapshot, name):
    """Run names are bounded text like every other value a caller hands over."""
    with pytest.raises(InvalidInput):
        _run(registry, name)
    assert snapshot() == prepared
