"""Governance: retiring a dataset shows and flags everything that depends on it; versions are
evaluated on exact dataset digests and ranked on them."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from modelreg import Conflict, InvalidInput, NotFound, RetiredDataWarning


@pytest.fixture
def chain(registry, write):
    """customers -train-> churn/1 -> distilled/1 -> tiny/1 (aliased production);
    holdout evaluates scorer/1; other/1 uses nothing."""
    write("data/customers.csv", "id,churned\n1,0\n")
    write("data/holdout.csv", "id,churned\n9,1\n")
    write("m.bin", "m")
    churn = registry.register("churn", "m.bin", datasets=["data/customers.csv"])
    distilled = registry.register("distilled", "m.bin", parents=[churn.ref])
    tiny = registry.register("tiny", "m.bin", parents=[distilled.ref])
    registry.set_alias("tiny", "production", tiny.ref)
    registry.register("other", "m.bin")
    return {"churn": churn, "distilled": distilled, "tiny": tiny}


def flagged(registry) -> list[str]:
    return sorted(v.ref for v in registry.search("status = 'data-retired'"))


def test_impact_lists_three_generations_and_the_aliases_on_them(registry, chain):
    report = registry.dataset_impact("customers.csv")
    relations = {v["version"]: (v["relation"], v["via"]) for v in report["versions"]}
    assert relations == {
        "churn/1": ("direct", None),
        "distilled/1": ("descendant", "churn/1"),
        "tiny/1": ("descendant", "distilled/1"),
    }
    assert report["aliases"] == [{"alias": "tiny@production", "version": "tiny/1"}]
    assert [d["retired"] for d in report["datasets"]] == [False]


def test_a_dry_run_changes_nothing(registry, chain):
    before = len(registry.audit(limit=1000))
    report = registry.retire_dataset("customers.csv", reason="erasure request 17", dry_run=True)
    assert len(report["versions"]) == 3
    assert flagged(registry) == []
    assert registry.get("tiny/1").flags == []
    assert len(registry.audit(limit=1000)) == before


def test_retiring_flags_every_dependent_version_and_is_audited(registry, chain):
    report = registry.retire_dataset("customers.csv", reason="erasure request 17")
    assert flagged(registry) == ["churn/1", "distilled/1", "tiny/1"]
    assert registry.get("tiny@production").flags == ["data-retired"]
    assert registry.get("other/1").flags == []
    assert report["datasets"][0]["retired"] is True
    assert report["datasets"][0]["reason"] == "erasure request 17"
    event = registry.audit(action="dataset.retire")[0]
    assert event.after["flagged"] == ["churn/1", "distilled/1", "tiny/1"]
    assert event.after["aliases"] == [{"alias": "tiny@production", "version": "tiny/1"}]
    assert registry.verify_audit().ok


def test_listing_and_showing_a_dataset_say_when_and_why_it_was_retired(registry, chain):
    before = {d.name: d for d in registry.datasets()}
    assert before["customers.csv"].retired_at is None
    registry.retire_dataset("customers.csv", reason="erasure request 17")
    listed = {d.name: d for d in registry.datasets()}
    assert listed["customers.csv"].retired_reason == "erasure request 17"
    assert listed["customers.csv"].retired_at is not None
    assert all(d.retired_at is None for name, d in listed.items() if name != "customers.csv")
    [shown] = registry.dataset("customers.csv")
    assert shown.to_dict()["retired_reason"] == "erasure request 17"
    assert shown.retired_at == listed["customers.csv"].retired_at


def test_a_retired_dataset_cannot_be_retired_again(registry, chain):
    registry.retire_dataset("customers.csv", reason="erasure request 17")
    with pytest.raises(Conflict):
        registry.retire_dataset("customers.csv", reason="again")
    assert registry.dataset_impact("customers.csv")["datasets"][0]["retired"] is True


def test_a_new_digest_of_a_retired_dataset_can_be_retired(registry, chain, write):
    registry.retire_dataset("customers.csv", reason="erasure request 17")
    write("data/customers.csv", "id,churned\n2,1\n")
    registry.register("churn", "m.bin", datasets=["data/customers.csv"])
    report = registry.retire_dataset("customers.csv", reason="erasure request 18")
    assert [d["retired"] for d in report["datasets"]] == [True, True]
    assert "churn/2" in flagged(registry)


@pytest.mark.parametrize("reason", ["", "   ", None, "x" * 2001])
def test_a_retirement_needs_a_reasonable_reason(registry, chain, reason):
    with pytest.raises(InvalidInput):
        registry.retire_dataset("customers.csv", reason=reason)
    assert flagged(registry) == []


def test_retiring_an_unknown_dataset_is_not_found(registry, chain):
    with pytest.raises(NotFound):
        registry.retire_dataset("nosuch", reason="x")


def test_pulling_a_flagged_version_warns_and_strict_refuses(registry, chain, tmp_path: Path):
    registry.retire_dataset("customers.csv", reason="erasure request 17")
    with pytest.warns(RetiredDataWarning, match="data-retired"):
        registry.get("tiny@production").pull(tmp_path / "warned")
    assert (tmp_path / "warned" / "m.bin").exists()
    with pytest.raises(Conflict, match="strict"):
        registry.pull("tiny@production", tmp_path / "strict", strict=True)
    assert not (tmp_path / "strict").exists() or not any((tmp_path / "strict").iterdir())


def test_an_unflagged_version_pulls_without_warning(registry, chain, tmp_path: Path):
    registry.retire_dataset("customers.csv", reason="erasure request 17")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        registry.pull("other/1", tmp_path / "out", strict=True)


def test_an_evaluation_makes_a_version_depend_on_the_data(registry, chain):
    registry.evaluate("other/1", "data/holdout.csv", metrics={"accuracy": 0.8})
    report = registry.dataset_impact("holdout.csv")
    assert [(v["version"], v["relation"]) for v in report["versions"]] == [("other/1", "direct")]
    assert report["versions"][0]["uses"][0].startswith("evaluation:")


def test_evaluations_are_kept_per_version_and_dataset(registry, chain, write):
    first = registry.evaluate("churn/1", "data/holdout.csv", metrics={"accuracy": 0.8, "f1": 0.7})
    registry.evaluate("churn/1", "data/customers.csv", metrics={"accuracy": 0.9})
    found = registry.evaluations("churn/1")
    assert [e["dataset"]["name"] for e in found] == ["holdout.csv", "customers.csv"]
    assert found[0]["metrics"] == {"accuracy": 0.8, "f1": 0.7}
    assert found[0]["id"] == first["id"]
    assert registry.audit(action="evaluation.create")[0].entity == "churn/1"


def test_evaluating_on_retired_data_is_refused(registry, chain):
    registry.retire_dataset("customers.csv", reason="erasure request 17")
    with pytest.raises(Conflict, match="retired"):
        registry.evaluate("other/1", "data/customers.csv", metrics={"accuracy": 0.5})


@pytest.mark.parametrize(
    "metrics", [{}, {"accuracy": float("nan")}, {"accuracy": "high"}, {"bad key!": 1.0}]
)
def test_an_evaluation_needs_valid_metrics(registry, chain, metrics):
    with pytest.raises(InvalidInput):
        registry.evaluate("churn/1", "data/holdout.csv", metrics=metrics)
    assert registry.evaluations("churn/1") == []


def test_the_leaderboard_compares_versions_on_exactly_one_digest(registry, write):
    write("m.bin", "m")
    write("data/test.csv", "a\n1\n")
    for _ in range(3):
        registry.register("churn", "m.bin")
    registry.evaluate("churn/1", "data/test.csv", metrics={"accuracy": 0.80, "loss": 0.5})
    registry.evaluate("churn/2", "data/test.csv", metrics={"accuracy": 0.90, "loss": 0.3})
    registry.evaluate("churn/1", "data/test.csv", metrics={"accuracy": 0.85, "loss": 0.4})
    old_digest = registry.dataset("test.csv")[0].digest
    write("data/test.csv", "a\n2\n")  # new data, new digest: not comparable
    registry.evaluate("churn/3", "data/test.csv", metrics={"accuracy": 0.99})

    board = registry.leaderboard("churn", dataset=f"test.csv@{old_digest}", metric="accuracy")
    assert [(r["version"], r["value"]) for r in board["ranking"]] == [
        ("churn/2", 0.90),
        ("churn/1", 0.85),  # its latest evaluation on that digest
    ]
    assert board["digest"] == old_digest
    lowest = registry.leaderboard(
        "churn", dataset=f"test.csv@{old_digest[:12]}", metric="loss", higher_is_better=False
    )
    assert [r["version"] for r in lowest["ranking"]] == ["churn/2", "churn/1"]
    newest = registry.leaderboard("churn", dataset="test.csv", metric="accuracy")
    assert [r["version"] for r in newest["ranking"]] == ["churn/3"]
    trend = registry.metric_trend("churn", dataset=f"test.csv@{old_digest}", metric="accuracy")
    assert [(p["version"], p["value"]) for p in trend["points"]] == [
        ("churn/1", 0.80),
        ("churn/2", 0.90),
        ("churn/1", 0.85),
    ]
    with pytest.raises(NotFound):
        registry.leaderboard("churn", dataset="test.csv", metric="f1")


def test_retiring_data_covers_the_same_bytes_under_another_name(registry, chain):
    registry.register("copycat", "m.bin", datasets=[{"path": "data/customers.csv", "name": "crm"}])
    report = registry.retire_dataset("customers.csv", reason="erasure request 17")
    assert sorted(d["name"] for d in report["datasets"]) == ["crm", "customers.csv"]
    assert "copycat/1" in flagged(registry)
    with pytest.raises(Conflict, match="retired"):
        registry.evaluate("other/1", {"path": "data/customers.csv", "name": "renamed"},
                          metrics={"accuracy": 0.5})  # fmt: skip


def test_versions_registered_after_a_retirement_are_flagged_from_the_start(registry, chain):
    registry.retire_dataset("customers.csv", reason="erasure request 17")
    trained = registry.register("late", "m.bin", datasets=["data/customers.csv"])
    assert trained.flags == ["data-retired"]
    child = registry.register("late-child", "m.bin", parents=["tiny/1"])
    assert child.flags == ["data-retired"]
    assert registry.get(child.ref).flags == ["data-retired"]
    assert registry.register("clean", "m.bin", parents=["other/1"]).flags == []


def test_a_dry_run_of_a_retired_dataset_is_refused_like_the_real_run(registry, chain):
    registry.retire_dataset("customers.csv", reason="erasure request 17")
    with pytest.raises(Conflict):
        registry.retire_dataset("customers.csv", reason="again", dry_run=True)


def test_affected_versions_are_listed_in_version_order(registry, write):
    write("data/d.csv", "x\n")
    write("m.bin", "m")
    for _ in range(10):
        registry.register("churn", "m.bin", datasets=["data/d.csv"])
    versions = registry.dataset_impact("d.csv")["versions"]
    assert [v["version"] for v in versions] == [f"churn/{n}" for n in range(1, 11)]


def test_the_markdown_report_cannot_be_broken_by_a_reason(registry, chain):
    from modelreg.reports import retirement_markdown as markdown

    report = registry.retire_dataset("customers.csv", reason="a | b\n# not a heading")
    table = [line for line in markdown(report, dry_run=False).splitlines() if "customers" in line]
    assert table[1].count(" | ") == 4  # five cells: the pipe in the reason is escaped
    assert "\n# not a heading" not in markdown(report, dry_run=False)
