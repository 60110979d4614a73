"""Deleting a version: its record stays, its number is never given again, it is no longer
listed, found or pulled, and gc frees its files unless another version holds them."""

from __future__ import annotations

from datetime import datetime

import pytest

from modelreg import Conflict, Gone, InvalidInput, NotFound


@pytest.fixture
def three(registry, write):
    """churn/1 and churn/3 hold the same bytes; churn/2 holds its own."""
    write("shared.bin", "shared bytes\n")
    write("own.bin", "only churn/2 holds these\n")
    return [
        registry.register("churn", "shared.bin", params={"C": 0.1}, metrics={"auc": 0.8}),
        registry.register("churn", "own.bin", params={"C": 0.2}, metrics={"auc": 0.9}),
        registry.register("churn", "shared.bin", params={"C": 0.3}, metrics={"auc": 0.7}),
    ]


def test_a_deleted_version_is_gone_by_every_reference_and_says_when_by_whom_and_why(
    registry, three
):
    done = registry.delete_version("churn/2", reason="erasure request 1234")
    assert (done["ref"], done["id"], done["reason"], done["files"]) == (
        "churn/2",
        three[1].id,
        "erasure request 1234",
        1,
    )
    for ref in ("churn/2", three[1].id):
        with pytest.raises(Gone) as info:
            registry.get(ref)
        message = str(info.value)
        assert message.startswith(f"version churn/2 was deleted at {done['deleted_at']} by ")
        assert message.endswith(": erasure request 1234")
    assert issubclass(Gone, NotFound)  # code that handles a missing version handles this


def test_listings_search_and_counts_leave_a_deleted_version_out(registry, three):
    registry.delete_version("churn/3", reason="trained on withdrawn data")
    assert [v.ref for v in registry.versions("churn")] == ["churn/2", "churn/1"]
    assert [v.ref for v in registry.search("metrics.auc > 0.5", model="churn")] == [
        "churn/2",
        "churn/1",
    ]
    best = registry.search("", model="churn", order_by="metrics.auc asc", limit=1)
    assert [v.ref for v in best] == ["churn/1"]
    assert registry.search("number = 3", model="churn") == []
    (model,) = registry.models()
    assert (model.version_count, model.latest) == (2, 2)
    assert registry.get("churn").ref == "churn/2"  # the newest version not deleted


def test_a_number_is_never_given_again(registry, three, write):
    registry.delete_version("churn/3", reason="bad build")
    again = registry.register("churn", write("next.bin", "next\n"))
    assert again.number == 4
    with pytest.raises(Gone):
        registry.get("churn/3")


def test_a_version_an_alias_points_at_is_refused_until_the_alias_moves(registry, three, snapshot):
    registry.set_alias("churn", "production", "churn/2")
    before = snapshot()
    with pytest.raises(Conflict) as info:
        registry.delete_version("churn/2", reason="erasure")
    assert str(info.value) == (
        "churn/2 is what churn@production points at: move or delete that alias first"
    )
    assert snapshot() == before
    registry.set_alias("churn", "production", "churn/1")
    assert registry.delete_version("churn/2", reason="erasure")["ref"] == "churn/2"


@pytest.mark.parametrize(
    ("ref", "reason", "error", "text"),
    [
        ("churn", "x", InvalidInput, "name the version to delete as NAME/N or by its UUID"),
        ("churn@production", "x", InvalidInput, "not 'churn@production'"),
        ("churn/2", "", InvalidInput, "deleting a version needs a reason"),
        ("churn/2", "   ", InvalidInput, "deleting a version needs a reason"),
        ("churn/2", "x" * 2001, InvalidInput, "the limit is 2000"),
        ("churn/2", 5, InvalidInput, "a reason is text, not int"),
        ("churn/9", "x", NotFound, "version churn/9 not found"),
        ("nosuch/1", "x", NotFound, "model 'nosuch' not found"),
        ("../1", "x", InvalidInput, ""),
    ],
)
def test_bad_deletions_are_refused_and_change_nothing(
    registry, three, snapshot, ref, reason, error, text
):
    registry.set_alias("churn", "production", "churn/1")
    before = snapshot()
    with pytest.raises(error) as info:
        registry.delete_version(ref, reason=reason)
    assert text in str(info.value)
    assert snapshot() == before


def test_deleting_twice_is_gone_and_writes_one_event(registry, three):
    registry.delete_version("churn/2", reason="first")
    events = registry.verify_audit().events
    with pytest.raises(Gone, match=r": first$"):
        registry.delete_version("churn/2", reason="second")
    assert registry.verify_audit().events == events


def test_the_audit_log_keeps_what_was_deleted(registry, three):
    registry.delete_version("churn/2", reason="erasure request 1234")
    (event,) = registry.audit(entity="churn/2", action="version.delete")
    assert event.before["files"] == [f.to_dict() for f in three[1].files]
    assert event.before["manifest_digest"] == three[1].manifest_digest
    assert event.after["reason"] == "erasure request 1234"
    assert registry.verify_audit().ok


def test_gc_frees_a_deleted_versions_files_unless_another_version_holds_them(
    backend, registry, three, tmp_path
):
    own = three[1].files[0].digest
    shared = three[2].files[0].digest
    registry.delete_version("churn/2", reason="erasure")
    registry.delete_version("churn/3", reason="erasure")
    with pytest.raises(Gone):
        registry.pull("churn/2", tmp_path / "out")
    assert registry.gc(grace_seconds=0)["removed"] == [own]
    assert own not in backend.blob_digests()
    assert shared in backend.blob_digests()
    assert registry.get("churn/1").pull(tmp_path / "one").joinpath("shared.bin").read_text() == (
        "shared bytes\n"
    )
    assert registry.fsck()["ok"]


def test_lineage_keeps_a_deleted_parent_and_drops_a_deleted_child(registry, write):
    write("m.bin", "m")
    write("data/train.csv", "x\n1\n")
    base = registry.register("base", "m.bin", datasets=["data/train.csv"])
    tuned = registry.register("tuned", "m.bin", parents=[base.ref])
    small = registry.register("small", "m.bin", parents=[tuned.ref])
    registry.delete_version(tuned.ref, reason="superseded")
    assert registry.lineage(small.ref)["parents"] == ["tuned/1"]
    assert registry.lineage(small.ref)["deleted_parents"] == ["tuned/1"]
    assert registry.lineage(base.ref)["deleted_parents"] == []
    assert registry.lineage(base.ref)["children"] == []
    # small/1 still derives from the data, through the deleted version
    found = {r["version"]: r["via"] for r in registry.dataset_models("train.csv")}
    assert found == {"base/1": None, "small/1": "tuned/1"}


def test_the_retirement_impact_names_deleted_versions_whose_files_remain(registry, write):
    write("m.bin", "m")
    write("data/train.csv", "x\n1\n")
    base = registry.register("base", "m.bin", datasets=["data/train.csv"])
    tuned = registry.register("tuned", "m.bin", parents=[base.ref])
    registry.delete_version(base.ref, reason="superseded")
    report = registry.dataset_impact("train.csv")
    assert [(v["version"], v["relation"], v["via"]) for v in report["versions"]] == [
        ("tuned/1", "descendant", "base/1")
    ]
    [gone] = report["deleted_versions"]
    assert (gone["version"], gone["relation"]) == ("base/1", "direct")
    assert gone["uses"][0].startswith("train:")
    deleted_at = datetime.fromisoformat(gone["deleted_at"])
    event_at = datetime.fromisoformat(registry.audit(action="version.delete")[0].at)
    assert abs((event_at - deleted_at).total_seconds()) < 5
    # Retiring flags the live dependent only, and its report still names the deleted one.
    retired = registry.retire_dataset("train.csv", reason="consent withdrawn")
    assert [v["version"] for v in retired["deleted_versions"]] == ["base/1"]
    assert registry.get(tuned.ref).flags == ["data-retired"]


def test_an_alias_cannot_be_pointed_at_a_deleted_version(registry, three):
    registry.delete_version("churn/2", reason="erasure")
    with pytest.raises(Gone):
        registry.set_alias("churn", "staging", "churn/2")
    with pytest.raises(Gone):
        registry.compare("churn/1", "churn/2")


def test_a_deleted_version_leaves_the_leaderboard_and_the_trend(registry, three, write):
    write("holdout.csv", "x,y\n1,0\n")
    for version, auc in zip(three, (0.8, 0.95, 0.7), strict=True):
        registry.evaluate(version.ref, "holdout.csv", metrics={"auc": auc})
    registry.delete_version("churn/2", reason="erasure")
    board = registry.leaderboard("churn", dataset="holdout.csv", metric="auc")
    assert [r["version"] for r in board["ranking"]] == ["churn/1", "churn/3"]
    trend = registry.metric_trend("churn", dataset="holdout.csv", metric="auc")
    assert [p["version"] for p in trend["points"]] == ["churn/1", "churn/3"]


def test_a_rollback_passes_over_a_target_deleted_since(registry, three):
    for ref in ("churn/1", "churn/2", "churn/3"):
        registry.set_alias("churn", "production", ref)
    registry.set_alias("churn", "production", "churn/3")
    registry.set_alias("churn", "staging", "churn/2")
    registry.delete_alias("churn", "staging")
    registry.delete_version("churn/2", reason="erasure")
    assert registry.rollback_alias("churn", "production").ref == "churn/1"


def test_alias_history_says_which_targets_were_deleted_since(registry, three):
    registry.set_alias("churn", "production", "churn/2")
    registry.set_alias("churn", "production", "churn/3")
    registry.delete_version("churn/2", reason="erasure")
    history = registry.alias_history("churn", "production")
    assert [e["version"] for e in history] == ["churn/2", "churn/3"]
    assert history[0]["version_deleted_at"] is not None
    assert history[1]["version_deleted_at"] is None


def test_a_rollback_whose_earlier_targets_were_all_deleted_says_so(registry, three):
    registry.set_alias("churn", "production", "churn/2")
    registry.set_alias("churn", "production", "churn/3")
    registry.delete_version("churn/2", reason="erasure")
    with pytest.raises(NotFound, match=r"pointed at before \(1\) were deleted since"):
        registry.rollback_alias("churn", "production")


def test_a_model_whose_versions_were_all_deleted_says_so(registry, write):
    write("m.bin", "m")
    registry.register("solo", "m.bin")
    registry.delete_version("solo/1", reason="withdrawn")
    with pytest.raises(NotFound, match="has no versions: its 1 version was deleted"):
        registry.get("solo")


def test_the_trace_of_a_deleted_version_still_answers_and_says_so(registry, three):
    child = registry.register("child", "own.bin", parents=["churn/2"])
    done = registry.delete_version("churn/2", reason="erasure request 1234")
    found = registry.trace(three[1].id)
    assert found["version"] == "churn/2"
    assert found["deleted"] == {
        "at": done["deleted_at"],
        "by": done["deleted_by"],
        "reason": "erasure request 1234",
    }
    ancestors = registry.trace(child.id)["ancestors"]
    assert [(a["version"], a["deleted"]["reason"]) for a in ancestors] == [
        ("churn/2", "erasure request 1234")
    ]
    assert registry.trace(three[0].id)["deleted"] is None


def test_deleting_moves_the_models_last_update(registry, three):
    before = registry.models()[0].updated_at
    done = registry.delete_version("churn/3", reason="erasure")
    assert registry.models()[0].updated_at == done["deleted_at"] > before


@pytest.mark.parametrize("reason", ["a\x00b", "clear\x1b[2J", "bell\x07"])
def test_a_reason_with_control_characters_is_refused(registry, three, snapshot, reason):
    before = snapshot()
    with pytest.raises(InvalidInput, match="reason contains the control character"):
        registry.delete_version("churn/2", reason=reason)
    assert snapshot() == before
    done = registry.delete_version("churn/2", reason="line one\n\tline two  ")
    assert done["reason"] == "line one\n\tline two"


def test_listings_page_by_a_cursor_as_well_as_by_offset(registry, three, write):
    registry.register("alpha", write("a.bin", "a\n"))
    assert [v.ref for v in registry.versions("churn", before=3)] == ["churn/2", "churn/1"]
    assert [v.ref for v in registry.versions("churn", before=3, limit=1)] == ["churn/2"]
    registry.delete_version("churn/2", reason="withdrawn")
    assert [v.ref for v in registry.versions("churn", before=3)] == ["churn/1"]
    assert [m.name for m in registry.models(after="alpha")] == ["churn"]
    assert [m.name for m in registry.models(after="churn")] == []
    for bad in (0, -1, True, "2"):
        with pytest.raises(InvalidInput):
            registry.versions("churn", before=bad)
    with pytest.raises(InvalidInput):
        registry.models(after="Not A Name")
