"""Datasets: each dataset version is a name plus a digest of its content, and the registry
answers "which models depend on this data?", through any number of derived generations."""

from __future__ import annotations

import hashlib
import re

import pytest

from modelreg import Conflict, InvalidInput, NotFound


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
        ("churn/1", [f"train:customers.csv@{digest[:12]}"], None),
        ("scorer/1", [f"validation:customers.csv@{digest[:12]}"], None),
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


# -- what a dataset name means: its bytes, whatever they are called -----------------------------


@pytest.fixture
def two_names(registry, write):
    """The same bytes recorded as churn-train and as train.csv; train.csv has other bytes too.

    churn-train ─train─> churn/1, churn/2
    train.csv   ─train─> base/1 ──> tuned/1         (the same bytes as churn-train)
    train.csv'  ─train─> later/1                    (other bytes under the name train.csv)
    """
    write("data/train.csv", "id,churned\n1,0\n")
    write("m.bin", "m")
    named = {"path": "data/train.csv", "name": "churn-train"}
    registry.register("churn", "m.bin", datasets=[named])
    registry.register("churn", "m.bin", datasets=[named])
    base = registry.register("base", "m.bin", datasets=["data/train.csv"])
    registry.register("tuned", "m.bin", parents=[base.ref])
    write("elsewhere/train.csv", "id,churned\n2,1\n")
    registry.register("later", "m.bin", datasets=["elsewhere/train.csv"])
    return {"same": sha256(b"id,churned\n1,0\n"), "other": sha256(b"id,churned\n2,1\n")}


def test_every_listing_names_the_other_names_of_the_same_bytes(registry, two_names):
    same, other = two_names["same"], two_names["other"]
    listed = {(d.name, d.digest): d for d in registry.datasets()}
    assert listed["churn-train", same].also_known_as == ("train.csv",)
    assert listed["train.csv", same].also_known_as == ("churn-train",)
    assert listed["train.csv", other].also_known_as == ()
    [shown] = registry.dataset("churn-train")
    assert shown.also_known_as == ("train.csv",)
    assert shown.to_dict()["also_known_as"] == ["train.csv"]
    assert {d.digest: d.also_known_as for d in registry.dataset("train.csv")} == {
        same: ("churn-train",),
        other: (),
    }


def test_the_versions_of_a_dataset_are_those_of_its_bytes_under_every_name(registry, two_names):
    same = two_names["same"][:12]
    models = registry.dataset_models("churn-train")
    assert {r["version"]: (r["uses"], r["via"]) for r in models} == {
        "base/1": ([f"train:train.csv@{same}"], None),  # the name it used the bytes under
        "churn/1": ([f"train:churn-train@{same}"], None),
        "churn/2": ([f"train:churn-train@{same}"], None),
        "tuned/1": ([], "base/1"),
    }
    # Named by the other name, or by digest, the same bytes have the same versions; the
    # other bytes recorded as train.csv are not part of churn-train.
    assert registry.dataset_models(f"train.csv@{same}") == models
    assert "later/1" in {r["version"] for r in registry.dataset_models("train.csv")}


def test_models_impact_dry_run_and_retirement_count_the_same_versions(registry, two_names):
    models = registry.dataset_models("churn-train")
    impact = registry.dataset_impact("churn-train")
    dry = registry.retire_dataset("churn-train", reason="erasure request 17", dry_run=True)
    retired = registry.retire_dataset("churn-train", reason="erasure request 17")
    assert impact["versions"] == dry["versions"] == retired["versions"] == models
    assert len(models) == 4
    flagged = {v.ref for v in registry.search("status = 'data-retired'")}
    assert flagged == {r["version"] for r in models}
    assert registry.dataset_models("churn-train") == models  # retiring changes no count
    for report in (impact, dry, retired):
        assert [(d["name"], d["also_known_as"]) for d in report["datasets"]] == [
            ("churn-train", ["train.csv"]),
            ("train.csv", ["churn-train"]),
        ]


def test_a_retirement_says_its_reason_in_every_field_that_holds_it(registry, two_names):
    def states(report):
        return {(d["retired"], d["retired_reason"], d["reason"]) for d in report["datasets"]}

    dry = registry.retire_dataset("churn-train", reason="erasure request 17", dry_run=True)
    assert states(dry) == {(False, None, None)}
    assert {d["retired_at"] for d in dry["datasets"]} == {None}
    report = registry.retire_dataset("churn-train", reason="erasure request 17")
    assert states(report) == {(True, "erasure request 17", "erasure request 17")}
    assert None not in {d["retired_at"] for d in report["datasets"]}
    assert states(registry.dataset_impact("train.csv")) == {
        (True, "erasure request 17", "erasure request 17"),
        (False, None, None),  # the other bytes recorded as train.csv
    }
    retired = {(d.name, d.digest): d.retired_reason for d in registry.datasets()}
    assert retired == {
        ("churn-train", two_names["same"]): "erasure request 17",
        ("train.csv", two_names["same"]): "erasure request 17",
        ("train.csv", two_names["other"]): None,  # other bytes under the same name
    }
    event = registry.audit(action="dataset.retire")[0]
    assert event.after["names"] == ["churn-train", "train.csv"]
    assert event.after["digests"] == [two_names["same"]]


def test_bytes_recorded_under_a_new_name_after_a_retirement_are_retired(registry, two_names):
    registry.retire_dataset("churn-train", reason="erasure request 17")
    late = registry.register(
        "late", "m.bin", datasets=[{"path": "data/train.csv", "name": "renamed"}]
    )
    assert late.flags == ["data-retired"]
    [renamed] = registry.dataset("renamed")
    assert renamed.retired_reason == "erasure request 17"
    assert renamed.also_known_as == ("churn-train", "train.csv")
    assert "late/1" in {r["version"] for r in registry.dataset_models("churn-train")}
    assert registry.dataset_models("renamed") == registry.dataset_models("churn-train")
    with pytest.raises(Conflict, match="already retired"):
        registry.retire_dataset("renamed", reason="again")
