"""Wrong types and values in SDK calls are refused with InvalidInput, never a TypeError or a
database error, and change nothing."""

from __future__ import annotations

import pytest

from modelreg import InvalidInput


@pytest.fixture
def reg(registry, write):
    write("m.bin", "m")
    write("d.csv", "x\n")
    registry.register("churn", "m.bin", datasets=["d.csv"])
    return registry


CALLS = {
    "models limit text": lambda r: r.models(limit="a"),
    "models negative offset": lambda r: r.models(offset=-1),
    "versions limit zero": lambda r: r.versions("churn", limit=0),
    "versions limit bool": lambda r: r.versions("churn", limit=True),
    "search offset text": lambda r: r.search("", offset="a"),
    "search limit huge": lambda r: r.search("", limit=10**6),
    "audit limit negative": lambda r: r.audit(limit=-5),
    "audit entity number": lambda r: r.audit(entity=123),
    "audit before_seq text": lambda r: r.audit(before_seq="x"),
    "get at number": lambda r: r.get("churn@production", at=123),
    "get at on a number ref": lambda r: r.get("churn/1", at="2026-01-01"),
    "dataset number": lambda r: r.dataset(123),
    "impact none": lambda r: r.dataset_impact(None),
    "leaderboard dataset number": lambda r: r.leaderboard("churn", dataset=1, metric="a"),
    "gc grace text": lambda r: r.gc(grace_seconds="x"),
    "gc grace nan": lambda r: r.gc(grace_seconds=float("nan")),
    "gc grace past the limit": lambda r: r.gc(grace_seconds=2 * 10**9),
    "parents as a string": lambda r: r.register("churn", "m.bin", parents="churn/1"),
    "datasets as a string": lambda r: r.register("churn", "m.bin", datasets="d.csv"),
    "reason without force": lambda r: r.set_alias("churn", "staging", "churn/1", reason="x"),
    "policy approvals bool": lambda r: r.set_policy("churn", "production", approvals=True),
    "policy direction text": lambda r: r.set_policy(
        "churn", "production", metric="a", higher_is_better="no"
    ),
    "policy dataset without metric": lambda r: r.set_policy("churn", "production", dataset="d"),
    "policy bad dataset name": lambda r: r.set_policy(
        "churn", "production", metric="a", dataset="Bad Name"
    ),
}


@pytest.mark.parametrize("call", CALLS.values(), ids=CALLS.keys())
def test_a_bad_argument_is_invalid_input(reg, call):
    before = len(reg.audit(limit=1000))
    with pytest.raises(InvalidInput):
        call(reg)
    assert len(reg.audit(limit=1000)) == before
    assert [v.ref for v in reg.versions("churn")] == ["churn/1"]


def test_metrics_for_a_run_must_be_a_mapping(reg):
    with reg.start_run("r") as run, pytest.raises(InvalidInput):
        run.log_metrics(None)


@pytest.mark.parametrize(
    ("grace", "text"),
    [
        (float("nan"), "grace period must be a number of seconds, not nan"),
        (2 * 10**9, "grace period must be 0 to 1,000,000,000 seconds"),
        (-1, "grace period must be 0 to 1,000,000,000 seconds"),
    ],
)
def test_gc_names_what_is_wrong_with_a_grace_period_the_same_everywhere(reg, grace, text):
    with pytest.raises(InvalidInput, match=text):
        reg.gc(grace_seconds=grace, dry_run=True)
