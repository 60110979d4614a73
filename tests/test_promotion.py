"""Promotion gates as pure rules, and approvals counted per distinct person."""

from __future__ import annotations

import pytest

import modelreg
from modelreg.errors import Conflict, PromotionRefused
from modelreg.promotion import Facts, Policy, evaluate, override_refusal, refusal


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
    assert "churn/1, has no evaluation" in next(c.detail for c in checks if c.name == "evaluated")


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
        with pytest.raises(
            PromotionRefused, match=r"has 1 approval \(ann\) and the policy needs 2"
        ):
            ann.set_alias("churn", "production", "churn/1")
        assert bob.approve("churn/1", alias="production") == ["ann", "bob"]
        bob.set_alias("churn", "production", "churn/1")
        assert ann.get("churn@production").ref == "churn/1"
        approvals = ann.audit(action="approval.create")
        assert sorted(e.actor for e in approvals) == ["ann", "bob"]


# -- what a refusal says: one sentence per failure, with its figures -------------------------

DIGEST = "5be08c9684a1" + "0" * 52


def said(policy, **changes):
    """The refusal of churn@production for ``facts(**changes)``."""
    checks = evaluate(policy, facts(**changes))
    assert not all(c.ok for c in checks)
    return refusal("churn", "production", policy, facts(**changes), checks)


MAY_FORCE = " A maintainer may move it anyway with --force and a --reason."


def test_a_retired_candidate_is_refused_in_a_sentence():
    assert said(Policy(), candidate_flags=["data-retired"]) == (
        "churn@production is protected by gates that churn/2 does not pass: churn/2 is flagged"
        " data-retired (it, or a version it descends from, was trained or evaluated on a"
        " retired dataset)." + MAY_FORCE
    )


def test_a_worse_candidate_is_refused_with_both_scores_and_the_bound():
    scores = {"holder_score": ("holdout.csv", DIGEST, 0.9)}
    worse = said(Policy(metric="accuracy"), candidate_score=("holdout.csv", DIGEST, 0.85), **scores)
    assert worse == (
        "churn@production is protected by gates that churn/2 does not pass: churn/2 scores"
        " accuracy 0.85 on holdout.csv@5be08c9684a1, where churn/1 scores 0.9, and the policy"
        " needs 0.9 or more." + MAY_FORCE
    )
    margin = Policy(metric="accuracy", min_margin=0.05)
    assert said(margin, candidate_score=("holdout.csv", DIGEST, 0.93), **scores) == (
        "churn@production is protected by gates that churn/2 does not pass: churn/2 scores"
        " accuracy 0.93 on holdout.csv@5be08c9684a1, where churn/1 scores 0.9, and the policy"
        " needs 0.95 or more (churn/1's score plus a margin of 0.05)." + MAY_FORCE
    )
    loss = Policy(metric="loss", higher_is_better=False)
    assert said(loss, candidate_score=("holdout.csv", DIGEST, 0.95), **scores) == (
        "churn@production is protected by gates that churn/2 does not pass: churn/2 scores"
        " loss 0.95 on holdout.csv@5be08c9684a1, where churn/1 scores 0.9, and the policy"
        " needs 0.9 or less." + MAY_FORCE
    )


def test_missing_evaluations_are_refused_saying_which_to_make():
    policy = Policy(metric="accuracy")
    assert said(policy, holder_score=None, candidate_score=None) == (
        "churn@production is protected by gates that churn/2 does not pass: the current holder,"
        " churn/1, has no evaluation with accuracy, so churn/2 cannot be compared with it on the"
        " same data (evaluate churn/1 first)." + MAY_FORCE
    )
    on_holdout = Policy(metric="accuracy", dataset="holdout.csv")
    assert said(on_holdout, holder_score=None, candidate_score=None).startswith(
        "churn@production is protected by gates that churn/2 does not pass: the current holder,"
        " churn/1, has no evaluation with accuracy on holdout.csv, so"
    )
    assert said(policy, holder_score=("holdout.csv", DIGEST, 0.9), candidate_score=None) == (
        "churn@production is protected by gates that churn/2 does not pass: churn/2 has not been"
        " evaluated with accuracy on holdout.csv@5be08c9684a1, the data churn/1 was evaluated"
        " on." + MAY_FORCE
    )
    assert said(policy, holder=None, holder_score=None, candidate_score=None) == (
        "churn@production is protected by gates that churn/2 does not pass: churn/2 has not been"
        " evaluated with accuracy on any dataset." + MAY_FORCE
    )


def test_missing_approvals_and_several_failures_are_listed_together():
    policy = Policy(approvals=2)
    assert said(policy, candidate_flags=["data-retired"], approvers=["ann"]) == (
        "churn@production is protected by gates that churn/2 does not pass: churn/2 is flagged"
        " data-retired (it, or a version it descends from, was trained or evaluated on a"
        " retired dataset); churn/2 has 1 approval (ann) and the policy needs 2 (each"
        " maintainer approves it with modelreg approve)." + MAY_FORCE
    )
    assert "churn/2 has 0 approvals and the policy needs 2 (each" in said(policy)
    passed = evaluate(policy, facts(approvers=["bob", "ann"]))
    assert passed[-1].detail == "churn/2 has 2 approvals (ann, bob) and the policy needs 2"


def test_the_refusal_says_who_may_override_it():
    retired = {"candidate_flags": ["data-retired"]}
    approved = said(Policy(overrides="approved"), **retired)
    assert approved.endswith(
        " A maintainer may move it anyway with --force and a --reason once someone else has"
        " approved churn/2 for production (modelreg approve)."
    )
    assert said(Policy(overrides="forbidden"), **retired).endswith(
        " The policy forbids overrides: only a version that passes the gates may take it."
    )


def test_a_refused_override_says_why():
    retired = facts(candidate_flags=["data-retired"], approvers=["ann"])
    policy = Policy(overrides="approved")
    why_not = override_refusal(policy, retired, "ann")
    checks = evaluate(policy, retired)
    assert refusal("churn", "production", policy, retired, checks, override_refused=why_not) == (
        "churn@production is protected by gates that churn/2 does not pass: churn/2 is flagged"
        " data-retired (it, or a version it descends from, was trained or evaluated on a"
        " retired dataset). --force is refused: the policy lets an override through only once"
        " someone other than ann has approved churn/2 for it (modelreg approve)."
    )
    assert override_refusal(policy, retired, "bob") is None  # ann approved: bob may force
    forbidden = Policy(overrides="forbidden")
    assert override_refusal(forbidden, retired, "ann") == (
        "the policy forbids overrides: only a version that passes the gates may take it"
    )
