"""Datasets: each dataset version is a name plus a digest of its content, and the registry
answers "which models depend on this data?", through any number of derived generations."""

from __future__ import annotations

import hashlib
import re

import pytest

from modelreg import InvalidInput, NotFound


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def family(registry, write):
    """A dataset used directly by two versions, and a family tree derived from one of them.

    customers ─train──> churn/1 ──> distilled/1 ──> tiny/1 ──> tiny/2
               └─validation─> scorer/1               (ensemble/1 has parents tiny/1, other/1)
    other/1 uses nothing
    """
    write("data/customers.csv", "id,churned\n1,0\n")
    write("m.bin", "m")
    churn = registry.register("churn", "m.bin", datasets=["data/customers.csv"])
    scorer = registry.register(
        "scorer",
        "m.bin",
        datasets=[{"path": "data/customers.csv", "role": "validation"}],
    )
    distilled = registry.register("distilled", "m.bin", parents=[churn.ref])
    tiny1 = registry.register("tiny", "m.bin", parents=[distilled.ref])
    registry.register("tiny", "m.bin", parents=[tiny1.ref])
    other = registry.register("other", "m.bin")
    registry.register("ensemble", "m.bin", parents=[tiny1.ref, other.ref])
    return {"churn": churn, "scorer": scorer}


def test_direct_users_are_listed_with_their_role(registry, family):
    digest = sha256(b"id,churned\n1,0\n")
    direct = [r for r in registry.dataset_models("customers.csv") if r["relation"] == "direct"]
    assert [(r["version"], r["uses"], r["via"]) for r in direct] == [
        ("churn/1", [f"train:{digest[:12]}"], None),
        ("scorer/1", [f"validation:{digest[:12]}"], None),
    ]
    assert direct[0]["id"] == family["churn"].id


def test_descendants_are_listed_through_every_generation_with_the_parent_they_came_by(
    registry, family
):
    descendants = {
        r["version"]: r["via"]
        for r in registry.dataset_models("customers.csv")
        if r["relation"] == "descendant"
    }
    assert descendants == {
        "distilled/1": "churn/1",
        "tiny/1": "distilled/1",
        "tiny/2": "tiny/1",
        "ensemble/1": "tiny/1",
    }


def test_versions_unrelated_to_the_dataset_are_not_listed(registry, family):
    listed = {r["version"] for r in registry.dataset_models("customers.csv")}
    assert "other/1" not in listed
    assert len(listed) == 6


def test_a_dataset_version_can_be_named_by_digest_prefix(registry, family, write):
    old = sha256(b"id,churned\n1,0\n")
    write("data/customers.csv", "id,churned\n1,0\n2,1\n")
    registry.register("churn", "m.bin", datasets=["data/customers.csv"])

    everything = {r["version"] for r in registry.dataset_models("customers.csv")}
    old_only = {r["version"] for r in registry.dataset_models(f"customers.csv@{old[:12]}")}

    assert "churn/2" in everything
    assert "churn/2" not in old_only
    assert "churn/1" in old_only


def test_datasets_lists_every_dataset_version(registry, family, write):
    write("data/customers.csv", "changed")
    registry.register("churn", "m.bin", datasets=["data/customers.csv"])
    versions = registry.dataset("customers.csv")
    assert [d.digest for d in versions] == [
        sha256(b"id,churned\n1,0\n"),
        sha256(b"changed"),
    ]
    assert [(d.name, d.digest) for d in registry.datasets()] == [
        (d.name, d.digest) for d in versions
    ]
    assert versions[0].size == len(b"id,churned\n1,0\n")
    assert versions[0].file_count == 1


def test_the_same_data_under_the_same_name_is_one_dataset_version(registry, write):
    write("data/a.csv", "same")
    write("elsewhere/a.csv", "same")
    write("m.bin", "m")
    registry.register("one", "m.bin", datasets=["data/a.csv"])
    registry.register("two", "m.bin", datasets=["elsewhere/a.csv"])
    assert len(registry.dataset("a.csv")) == 1
    assert {r["version"] for r in registry.dataset_models("a.csv")} == {"one/1", "two/1"}


def test_unknown_datasets_raise_not_found(registry, family):
    with pytest.raises(NotFound):
        registry.dataset("nosuch")
    with pytest.raises(NotFound):
        registry.dataset_models("customers.csv@deadbeefdeadbeef")


def test_malformed_dataset_references_raise_invalid_input(registry, family):
    for ref in ("Customers", "customers.csv@not-hex", ""):
        with pytest.raises(InvalidInput):
            registry.dataset_models(ref)


@pytest.mark.parametrize(
    ("ref", "text"),
    [
        ("train.csv@", "give a digest after '@', or no '@'"),
        ("train.csv@ABCDEF12", "8 to 64 lowercase hex digits"),
        ("train.csv@abc", "8 to 64 lowercase hex digits"),
    ],
)
def test_a_dataset_reference_with_a_bad_digest_part_says_what_is_wrong(registry, ref, text):
    with pytest.raises(InvalidInput, match=re.escape(text)):
        registry.dataset(ref)
