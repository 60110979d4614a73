"""Promotion gates as pure rules, and approvals counted per distinct person."""

from __future__ import annotations

import pytest

import modelreg
from modelreg.errors import Conflict, PromotionRefused
from modelreg.promotion import Facts, Policy, evaluate


def facts(**changes):
    base = {
        "candidate": "churn/2",
        "candidate_flags": [],
        "holder": "churn/1",
        "holder_score": ("test", "a" * 64, 0.90),
        "candidate_score": ("test", "a" * 64, 0.91),
        "approvers": [],
    }
    return Facts(**{**base, **changes})


def names(checks):
    return {c.name: c.ok for c in checks}


def test_the_default_policy_only_blocks_retired_data():
    assert names(evaluate(Policy(), facts())) == {"not-data-retired": True}
    assert names(evaluate(Policy(), facts(candidate_flags=["data-retired"]))) == {
        "not-data-retired": False
    }


def test_equal_scores_pass_without_a_margin_and_fail_with_one():
    same = facts(candidate_score=("test", "a" * 64, 0.90))
    assert names(evaluate(Policy(metric="accuracy"), same))["not-worse"] is True
    assert names(evaluate(Policy(metric="accuracy", min_margin=0.01), same))["not-worse"] is False


def test_no_holder_means_only_an_evaluation_is_needed():
    checks = evaluate(Policy(metric="accuracy"), facts(holder=None, holder_score=None))
    assert names(checks) == {"not-data-retired": True, "evaluated": True}


def test_a_holder_without_an_evaluation_blocks_the_comparison():
    checks = evaluate(Policy(metric="accuracy"), facts(holder_score=None, candidate_score=None))
    assert names(checks)["evaluated"] is False
    assert "churn/1 has no evaluation" in next(c.detail for c in checks if c.name == "evaluated")


def test_approvals_count_distinct_people():
    policy = Policy(approvals=2)
    assert names(evaluate(policy, facts(approvers=["ann", "ann"])))["approvals"] is False
    assert names(evaluate(policy, facts(approvers=["ann", "bob"])))["approvals"] is True


def test_two_maintainers_approve_and_one_cannot_approve_twice(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "m.bin").write_bytes(b"m")
    root = tmp_path / "reg"
    with modelreg.connect(root, actor="ann") as ann, modelreg.connect(root, actor="bob") as bob:
        ann.register("churn", "m.bin")
        ann.set_policy("churn", "production", approvals=2)
        assert ann.approve("churn/1", alias="production") == ["ann"]
        with pytest.raises(Conflict, match="already approved"):
            ann.approve("churn/1", alias="production")
        with pytest.raises(PromotionRefused, match="1 of 2"):
            ann.set_alias("churn", "production", "churn/1")
        assert bob.approve("churn/1", alias="production") == ["ann", "bob"]
        bob.set_alias("churn", "production", "churn/1")
        assert ann.get("churn@production").ref == "churn/1"
        approvals = ann.audit(action="approval.create")
        assert sorted(e.actor for e in approvals) == ["ann", "bob"]
