"""Promotion gates: a protected alias takes a version only when it passes the alias's checks,
and an override is possible for a maintainer with a reason, on the record."""

from __future__ import annotations

import pytest

from modelreg import InvalidInput, NotFound, PromotionRefused


@pytest.fixture
def churn(registry, write):
    """churn/1 in production, evaluated on test.csv; churn/2 worse, churn/3 better."""
    write("m.bin", "m")
    write("data/test.csv", "a\n1\n")
    write("data/other.csv", "a\n2\n")
    for _ in range(3):
        registry.register("churn", "m.bin")
    registry.set_alias("churn", "production", "churn/1")
    registry.evaluate("churn/1", "data/test.csv", metrics={"accuracy": 0.90, "loss": 0.30})
    registry.evaluate("churn/2", "data/test.csv", metrics={"accuracy": 0.85, "loss": 0.35})
    registry.evaluate("churn/3", "data/test.csv", metrics={"accuracy": 0.93, "loss": 0.25})
    registry.set_policy("churn", "production", metric="accuracy")
    return registry


def holder(registry) -> str:
    return registry.get("churn@production").ref


def test_production_is_protected_by_default_against_retired_data(registry, write):
    write("m.bin", "m")
    write("data/train.csv", "x\n")
    registry.register("churn", "m.bin", datasets=["data/train.csv"])
    registry.retire_dataset("train.csv", reason="erasure request")
    assert registry.policy("churn", "production")["block_retired"] is True
    with pytest.raises(PromotionRefused, match="data-retired"):
        registry.set_alias("churn", "production", "churn/1")
    registry.set_alias("churn", "staging", "churn/1")  # unprotected aliases move freely


def test_a_worse_candidate_is_refused_with_the_figures(churn):
    with pytest.raises(PromotionRefused) as refused:
        churn.set_alias("churn", "production", "churn/2")
    message = str(refused.value)
    assert "churn/2 scores accuracy 0.85 on test.csv@" in message
    assert "where churn/1 scores 0.9, and the policy needs 0.9 or more." in message
    failed = [c for c in refused.value.checks if not c["ok"]]
    assert [c["name"] for c in failed] == ["not-worse"]
    assert holder(churn) == "churn/1"


def test_a_better_candidate_is_promoted(churn):
    churn.set_alias("churn", "production", "churn/3")
    assert holder(churn) == "churn/3"


def test_the_candidate_must_be_evaluated_on_the_holders_digest(churn, write):
    write("m.bin", "m4")
    churn.register("churn", "m.bin")
    churn.evaluate("churn/4", "data/other.csv", metrics={"accuracy": 0.99})
    with pytest.raises(PromotionRefused, match="churn/4 has not been evaluated with accuracy on"):
        churn.set_alias("churn", "production", "churn/4")


def test_a_minimum_margin_and_a_lower_is_better_metric(churn):
    churn.set_policy("churn", "production", metric="accuracy", min_margin=0.05)
    with pytest.raises(PromotionRefused, match=r"the policy needs 0\.95 or more"):
        churn.set_alias("churn", "production", "churn/3")
    churn.set_policy("churn", "production", metric="loss", higher_is_better=False)
    churn.set_alias("churn", "production", "churn/3")
    assert holder(churn) == "churn/3"


def test_a_check_runs_the_gates_without_moving_anything(churn):
    result = churn.check_promotion("churn", "production", "churn/2")
    assert result["protected"] is True
    assert result["ok"] is False
    assert {c["name"]: c["ok"] for c in result["checks"]} == {
        "not-data-retired": True,
        "evaluated": True,
        "not-worse": False,
    }
    assert holder(churn) == "churn/1"


def test_a_forced_override_needs_a_reason_and_is_audited(churn):
    with pytest.raises(InvalidInput, match="reason"):
        churn.set_alias("churn", "production", "churn/2", force=True)
    churn.set_alias("churn", "production", "churn/2", force=True, reason="hotfix for incident 7")
    assert holder(churn) == "churn/2"
    override = churn.audit(action="alias.override")[0]
    assert override.after["reason"] == "hotfix for incident 7"
    assert [c["name"] for c in override.after["failed"]] == ["not-worse"]
    assert churn.verify_audit().ok


def test_rollback_returns_to_the_previous_target_through_the_gates(churn):
    churn.set_alias("churn", "production", "churn/3")
    with pytest.raises(PromotionRefused):  # churn/1 is worse than churn/3 now
        churn.rollback_alias("churn", "production")
    assert holder(churn) == "churn/3"
    churn.rollback_alias("churn", "production", force=True, reason="churn/3 misbehaves live")
    assert holder(churn) == "churn/1"
    history = [h["version"] for h in churn.alias_history("churn", "production")]
    assert history == ["churn/1", "churn/3", "churn/1"]


def test_rollback_without_history_is_not_found(churn):
    churn.set_alias("churn", "staging", "churn/2")
    with pytest.raises(NotFound):
        churn.rollback_alias("churn", "staging")


def test_policies_are_audited_and_can_be_lifted(churn):
    churn.set_policy("churn", "production", protected=False)
    assert churn.policy("churn", "production") is None
    churn.set_alias("churn", "production", "churn/2")
    events = churn.audit(action="policy.set")
    assert events[0].after["protected"] is False
    assert events[1].after["metric"] == "accuracy"


@pytest.mark.parametrize(
    "options",
    [
        {"approvals": -1},
        {"approvals": 100},
        {"min_margin": -0.1, "metric": "accuracy"},
        {"min_margin": 0.1},
        {"metric": "bad key!"},
        {"colour": "red"},
    ],
)
def test_a_malformed_policy_is_refused(churn, options):
    with pytest.raises(InvalidInput):
        churn.set_policy("churn", "production", **options)
    assert churn.policy("churn", "production")["metric"] == "accuracy"


def test_approvals_are_required_when_the_policy_asks(churn):
    churn.set_policy("churn", "production", approvals=1)
    with pytest.raises(PromotionRefused, match="churn/3 has 0 approvals and the policy needs 1"):
        churn.set_alias("churn", "production", "churn/3")
    assert churn.approve("churn/3", alias="production") != []
    churn.set_alias("churn", "production", "churn/3")
    assert holder(churn) == "churn/3"


def test_checking_another_models_version_is_refused(churn, write):
    write("f.bin", "f")
    churn.register("fraud", "f.bin")
    with pytest.raises(InvalidInput, match="fraud"):
        churn.check_promotion("churn", "production", "fraud/1")


@pytest.mark.parametrize("margin", [float("nan"), float("inf")])
def test_a_margin_must_be_a_finite_number(churn, margin):
    with pytest.raises(InvalidInput):
        churn.set_policy("churn", "production", metric="accuracy", min_margin=margin)


def test_a_policy_can_forbid_overrides(churn):
    churn.set_policy("churn", "production", metric="accuracy", overrides="forbidden")
    with pytest.raises(PromotionRefused, match="forbids overrides") as refused:
        churn.set_alias("churn", "production", "churn/2", force=True, reason="hotfix")
    assert [c["name"] for c in refused.value.checks if not c["ok"]] == ["not-worse"]
    assert holder(churn) == "churn/1"
    assert churn.audit(action="alias.override") == []
    churn.set_alias("churn", "production", "churn/3")  # a version that passes still moves it


def test_an_override_can_need_another_persons_approval(churn, backend):
    import modelreg

    churn.set_policy("churn", "production", metric="accuracy", overrides="approved")
    assert churn.policy("churn", "production")["overrides"] == "approved"
    churn.approve("churn/2", alias="production")  # the overriding maintainer's own: not enough
    with pytest.raises(PromotionRefused, match=f"someone other than {backend.actor}"):
        churn.set_alias("churn", "production", "churn/2", force=True, reason="hotfix")
    assert holder(churn) == "churn/1"
    with modelreg.connect(backend.uri, actor="second-maintainer") as other:
        other.approve("churn/2", alias="production")
    churn.set_alias("churn", "production", "churn/2", force=True, reason="hotfix")
    assert holder(churn) == "churn/2"
    override = churn.audit(action="alias.override")[0]
    assert override.actor == backend.actor
    assert override.after["approvers"] == sorted([backend.actor, "second-maintainer"])


def test_overrides_take_one_of_three_rules(churn):
    with pytest.raises(InvalidInput, match="overrides must be one of allowed, forbidden"):
        churn.set_policy("churn", "production", overrides="sometimes")
    assert churn.policy("churn", "production")["overrides"] == "allowed"


def test_deleting_a_protected_alias_does_not_open_its_gates(churn):
    """Set again after it was deleted, the alias compares a candidate with what it last
    held: a worse version cannot slip in through the delete."""
    churn.set_policy("churn", "production", metric="accuracy", overrides="forbidden")
    churn.delete_alias("churn", "production")
    with pytest.raises(PromotionRefused, match=r"where churn/1 scores 0\.9,"):
        churn.set_alias("churn", "production", "churn/2")
    churn.set_alias("churn", "production", "churn/3")
    assert holder(churn) == "churn/3"
