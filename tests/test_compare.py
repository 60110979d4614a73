"""compare() as a pure function of two version dicts."""

from __future__ import annotations

import hashlib

from hypothesis import given
from hypothesis import strategies as st

from modelreg.compare import compare

keys = st.sampled_from(["a", "b", "c", "d", "e"])
texts = st.sampled_from(["0.1", "0.2", "l2", "x"])
numbers = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)
paths = st.sampled_from(["model.bin", "config.json", "sub/a.txt", "sub/b.txt"])
digests = st.sampled_from([hashlib.sha256(bytes([i])).hexdigest() for i in range(3)])


def version(
    ref="m/1",
    *,
    params=None,
    metrics=None,
    tags=None,
    files=None,
    datasets=None,
    code=None,
    environment=None,
    parents=None,
):
    files = files or {}
    canonical = sorted(files.items())
    return {
        "ref": ref,
        "manifest_digest": hashlib.sha256(repr(canonical).encode()).hexdigest(),
        "params": params or {},
        "metrics": metrics or {},
        "tags": tags or {},
        "files": [{"path": p, "digest": d, "size": 1} for p, d in canonical],
        "lineage": {
            "datasets": datasets or [],
            "code": code or {},
            "environment": environment or {},
            "parents": parents or [],
        },
    }


versions = st.builds(
    version,
    params=st.dictionaries(keys, texts),
    metrics=st.dictionaries(keys, numbers),
    tags=st.dictionaries(keys, texts),
    files=st.dictionaries(paths, digests, min_size=1),
)


@given(versions)
def test_a_version_compared_with_itself_has_no_differences(v):
    diff = compare(v, v)
    empty = {"changed": {}, "added": {}, "removed": {}}
    assert diff["same_content"] is True
    assert diff["params"] == diff["tags"] == empty
    assert diff["files"] == {"added": [], "removed": [], "changed": []}
    assert diff["datasets"] == []
    assert all(m["delta"] == 0 for m in diff["metrics"].values())
    assert diff["environment"] == {"python": None, "platform": None, "packages": empty}
    assert diff["code"]["changed"] is False


@given(versions, versions)
def test_mapping_differences_account_for_every_key_exactly_once(a, b):
    diff = compare(a, b)["params"]
    changed, added, removed = diff["changed"], diff["added"], diff["removed"]
    assert set(added) == b["params"].keys() - a["params"].keys()
    assert set(removed) == a["params"].keys() - b["params"].keys()
    assert changed == {
        k: [a["params"][k], b["params"][k]]
        for k in a["params"].keys() & b["params"].keys()
        if a["params"][k] != b["params"][k]
    }
    assert all(b["params"][k] == v for k, v in added.items())
    assert all(a["params"][k] == v for k, v in removed.items())


@given(versions, versions)
def test_every_metric_appears_with_its_delta(a, b):
    metrics = compare(a, b)["metrics"]
    assert set(metrics) == a["metrics"].keys() | b["metrics"].keys()
    for key, m in metrics.items():
        assert (m["a"], m["b"]) == (a["metrics"].get(key), b["metrics"].get(key))
        if m["a"] is None or m["b"] is None:
            assert m["delta"] is None
        else:
            assert m["delta"] == m["b"] - m["a"]


@given(versions, versions)
def test_file_changes_partition_the_paths(a, b):
    fa = {f["path"]: f["digest"] for f in a["files"]}
    fb = {f["path"]: f["digest"] for f in b["files"]}
    files = compare(a, b)["files"]
    assert files["added"] == sorted(fb.keys() - fa.keys())
    assert files["removed"] == sorted(fa.keys() - fb.keys())
    assert files["changed"] == sorted(p for p in fa.keys() & fb.keys() if fa[p] != fb[p])


@given(versions, versions)
def test_comparing_the_other_way_swaps_sides(a, b):
    ab, ba = compare(a, b), compare(b, a)
    assert ab["files"]["added"] == ba["files"]["removed"]
    assert ab["params"]["added"] == ba["params"]["removed"]
    assert {k: v[::-1] for k, v in ab["params"]["changed"].items()} == ba["params"]["changed"]
    for key, m in ab["metrics"].items():
        assert (ba["metrics"][key]["a"], ba["metrics"][key]["b"]) == (m["b"], m["a"])


def test_only_datasets_whose_digest_differs_are_listed():
    def use(name, digest, role="train"):
        return {"name": name, "digest": digest, "role": role}

    a = version(datasets=[use("train", "d1"), use("valid", "v1", "validation"), use("old", "o")])
    b = version(datasets=[use("train", "d2"), use("valid", "v1", "validation"), use("new", "n")])

    assert compare(a, b)["datasets"] == [
        {"role": "train", "name": "new", "a": None, "b": "n"},
        {"role": "train", "name": "old", "a": "o", "b": None},
        {"role": "train", "name": "train", "a": "d1", "b": "d2"},
    ]


def test_package_and_python_changes():
    a = version(
        environment={"python": "3.11.7", "platform": "linux", "packages": {"x": "1", "y": "1"}}
    )
    b = version(
        environment={"python": "3.12.1", "platform": "linux", "packages": {"x": "2", "z": "1"}}
    )
    env = compare(a, b)["environment"]
    assert env["python"] == ["3.11.7", "3.12.1"]
    assert env["platform"] is None
    assert env["packages"] == {
        "changed": {"x": ["1", "2"]},
        "added": {"z": "1"},
        "removed": {"y": "1"},
    }


def test_code_changes_by_commit_or_uncommitted_diff():
    base = {"repository": "r", "commit": "c1"}
    same = compare(version(code=base), version(code=dict(base)))["code"]
    assert same == {"a": "c1", "b": "c1", "changed": False}
    assert compare(version(code=base), version(code={**base, "commit": "c2"}))["code"]["changed"]
    dirty = {**base, "diff_digest": "d"}
    assert compare(version(code=base), version(code=dirty))["code"]["changed"]


def test_parents_of_both_sides_are_shown():
    diff = compare(version(parents=["base/1"]), version(parents=["base/2"]))
    assert diff["parents"] == {"a": ["base/1"], "b": ["base/2"]}
