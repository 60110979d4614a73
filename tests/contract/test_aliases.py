"""Aliases: movable names for versions (``churn@production``), with a full history."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from modelreg import InvalidInput, NotFound


@pytest.fixture
def churn(registry, write):
    """Three versions of "churn" and one of "fraud"."""
    made = []
    for i in range(3):
        write("m.bin", f"churn {i}")
        made.append(registry.register("churn", "m.bin"))
    write("f.bin", "fraud")
    registry.register("fraud", "f.bin")
    return made


def earlier(stamp: str, microseconds: int = 1) -> str:
    moment = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    return (moment - timedelta(microseconds=microseconds)).isoformat()


def test_an_alias_resolves_to_the_version_it_was_set_to(registry, churn):
    returned = registry.set_alias("churn", "production", "churn/2")
    assert returned.id == churn[1].id
    assert registry.get("churn@production").id == churn[1].id
    assert registry.get("churn/2").aliases == ["production"]


def test_an_alias_can_be_set_by_any_reference(registry, churn):
    registry.set_alias("churn", "a", churn[0].id)
    registry.set_alias("churn", "b", "churn")
    registry.set_alias("churn", "c", "churn@a")
    assert registry.get("churn@a").number == 1
    assert registry.get("churn@b").number == 3
    assert registry.get("churn@c").number == 1


def test_moving_an_alias_changes_what_it_names_and_nothing_else(registry, churn):
    registry.set_alias("churn", "production", "churn/1")
    registry.set_alias("churn", "production", "churn/3")
    assert registry.get("churn@production").number == 3
    assert registry.get("churn/1").aliases == []
    assert registry.get("churn/3").aliases == ["production"]
    assert registry.get("churn/1").manifest_digest == churn[0].manifest_digest


def test_several_aliases_may_name_one_version(registry, churn):
    registry.set_alias("churn", "production", "churn/2")
    registry.set_alias("churn", "canary", "churn/2")
    assert registry.get("churn/2").aliases == ["canary", "production"]
    assert registry.models()[0].aliases == {"canary": 2, "production": 2}


def test_aliases_belong_to_one_model(registry, churn):
    registry.set_alias("churn", "production", "churn/1")
    registry.set_alias("fraud", "production", "fraud/1")
    assert registry.get("churn@production").model == "churn"
    assert registry.get("fraud@production").model == "fraud"


def test_an_alias_cannot_point_at_another_models_version(registry, churn):
    registry.set_alias("churn", "production", "churn/1")
    with pytest.raises(InvalidInput):
        registry.set_alias("churn", "production", "fraud/1")
    assert registry.get("churn@production").number == 1
    assert [e["version"] for e in registry.alias_history("churn", "production")] == ["churn/1"]


def test_a_deleted_alias_no_longer_resolves(registry, churn):
    registry.set_alias("churn", "production", "churn/1")
    registry.delete_alias("churn", "production")
    with pytest.raises(NotFound):
        registry.get("churn@production")
    assert registry.get("churn/1").aliases == []
    with pytest.raises(NotFound):
        registry.delete_alias("churn", "production")


def test_setting_an_alias_to_where_it_already_points_changes_nothing(registry, churn):
    registry.set_alias("churn", "production", "churn/1")
    events = registry.verify_audit().events
    registry.set_alias("churn", "production", "churn/1")
    assert registry.verify_audit().events == events
    assert len(registry.alias_history("churn", "production")) == 1


def test_alias_history_lists_every_move_oldest_first(registry, churn):
    registry.set_alias("churn", "production", "churn/1")
    registry.set_alias("churn", "production", "churn/2")
    registry.delete_alias("churn", "production")
    registry.set_alias("churn", "production", "churn/3")

    history = registry.alias_history("churn", "production")

    assert [e["version"] for e in history] == ["churn/1", "churn/2", None, "churn/3"]
    assert [e["at"] for e in history] == sorted(e["at"] for e in history)
    assert all(e["actor"] for e in history)


def test_the_history_of_an_alias_that_never_existed_is_not_found(registry, churn):
    with pytest.raises(NotFound):
        registry.alias_history("churn", "never")
    with pytest.raises(NotFound):
        registry.alias_history("nosuchmodel", "production")


class TestAt:
    """``get(NAME@ALIAS, at=TIME)`` resolves the alias as it was at that time."""

    @pytest.fixture
    def history(self, registry, churn):
        registry.set_alias("churn", "production", "churn/1")
        registry.set_alias("churn", "production", "churn/2")
        registry.delete_alias("churn", "production")
        registry.set_alias("churn", "production", "churn/3")
        return registry.alias_history("churn", "production")

    def test_at_each_move_the_alias_named_the_version_it_was_moved_to(self, registry, history):
        assert registry.get("churn@production", at=history[0]["at"]).number == 1
        assert registry.get("churn@production", at=history[1]["at"]).number == 2
        assert registry.get("churn@production", at=history[3]["at"]).number == 3

    def test_just_before_a_move_the_alias_still_named_the_previous_version(self, registry, history):
        assert registry.get("churn@production", at=earlier(history[1]["at"])).number == 1

    def test_before_the_alias_was_created_it_named_nothing(self, registry, history):
        with pytest.raises(NotFound):
            registry.get("churn@production", at=earlier(history[0]["at"]))

    def test_while_the_alias_was_deleted_it_named_nothing(self, registry, history):
        with pytest.raises(NotFound):
            registry.get("churn@production", at=history[2]["at"])

    def test_at_accepts_a_datetime_and_a_z_suffixed_time(self, registry, history):
        moment = datetime.fromisoformat(history[1]["at"].replace("Z", "+00:00"))
        assert registry.get("churn@production", at=moment).number == 2
        assert registry.get("churn@production", at=history[1]["at"]).number == 2
        now = datetime.now(moment.tzinfo) + timedelta(seconds=1)
        assert registry.get("churn@production", at=now).number == 3
