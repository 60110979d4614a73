"""What may change about a version (tags, description) and what never does (params,
metrics, files): every change is an audit event, and no call edits the immutable parts."""

from __future__ import annotations

import pytest

from modelreg import InvalidInput


@pytest.fixture
def version(registry, write):
    write("m.bin", "model")
    return registry.register(
        "churn",
        "m.bin",
        params={"C": 0.1, "penalty": "l2"},
        metrics={"accuracy": 0.93},
        tags={"team": "growth"},
        description="first try",
    )


def latest_event(registry):
    return registry.audit(limit=1)[0]


def test_a_tag_can_be_added_changed_and_removed(registry, version):
    registry.set_tag(version.ref, "stage", "candidate")
    assert registry.get(version.ref).tags == {"stage": "candidate", "team": "growth"}

    registry.set_tag(version.ref, "team", "core")
    assert registry.get(version.ref).tags == {"stage": "candidate", "team": "core"}

    registry.delete_tag(version.ref, "stage")
    assert registry.get(version.ref).tags == {"team": "core"}


def test_setting_a_tag_is_an_audit_event_with_before_and_after(registry, backend, version):
    registry.set_tag(version.ref, "team", "core")
    event = latest_event(registry)
    assert (event.action, event.entity, event.actor) == ("tag.set", "churn/1", backend.actor)
    assert (event.before, event.after) == ({"team": "growth"}, {"team": "core"})

    registry.set_tag(version.ref, "stage", "candidate")
    event = latest_event(registry)
    assert (event.before, event.after) == (None, {"stage": "candidate"})


def test_deleting_a_tag_is_an_audit_event(registry, version):
    registry.delete_tag(version.ref, "team")
    event = latest_event(registry)
    assert (event.action, event.entity) == ("tag.delete", "churn/1")
    assert (event.before, event.after) == ({"team": "growth"}, None)


def test_tag_values_that_are_not_text_are_stored_as_text(registry, version):
    registry.set_tag(version.ref, "epochs", 12)
    assert registry.get(version.ref).tags["epochs"] == "12"


def test_the_description_can_change_and_each_change_is_audited(registry, version):
    registry.set_description(version.ref, "the one we shipped")
    assert registry.get(version.ref).description == "the one we shipped"
    event = latest_event(registry)
    assert (event.action, event.entity) == ("version.describe", "churn/1")
    assert event.before == {"description": "first try"}
    assert event.after == {"description": "the one we shipped"}


def test_tags_and_description_are_changed_through_any_reference(registry, version):
    registry.set_alias("churn", "production", version.ref)
    registry.set_tag("churn@production", "a", "1")
    registry.set_tag(version.id, "b", "2")
    registry.set_description("churn", "latest")
    got = registry.get(version.ref)
    assert got.tags == {"a": "1", "b": "2", "team": "growth"}
    assert got.description == "latest"


def test_changing_tags_or_description_leaves_the_content_alone(registry, version):
    registry.set_tag(version.ref, "team", "core")
    registry.set_description(version.ref, "changed")
    got = registry.get(version.ref)
    assert (got.params, got.metrics, got.files, got.manifest_digest) == (
        version.params,
        version.metrics,
        version.files,
        version.manifest_digest,
    )


def test_editing_a_returned_version_object_does_not_edit_the_registry(registry, version):
    version.params["C"] = "999"
    version.metrics["accuracy"] = 0.0
    version.tags["team"] = "nobody"
    version.files.clear()
    got = registry.get("churn/1")
    assert got.params == {"C": "0.1", "penalty": "l2"}
    assert got.metrics == {"accuracy": 0.93}
    assert got.tags == {"team": "growth"}
    assert len(got.files) == 1


def test_logging_to_a_run_after_registering_does_not_change_the_version(registry, write):
    write("m.bin", "model")
    with registry.start_run(name="train", params={"C": 0.1}) as run:
        run.log_metric("loss", 0.5)
        v = run.register("churn", "m.bin")
        run.log_param("C", 0.2)
        run.log_metric("loss", 0.1)
    got = registry.get(v.ref)
    assert got.params == {"C": "0.1"}
    assert got.metrics == {"loss": 0.5}


def test_there_is_no_call_that_edits_params_metrics_or_files(registry):
    """The SDK offers setters only for what may change."""
    setters = [
        name
        for name in dir(registry)
        if name.startswith(("set_", "update_", "edit_", "delete_", "log_"))
    ]
    assert {"set_alias", "set_description", "set_tag"} <= set(setters)
    assert not [n for n in setters if any(w in n for w in ("param", "metric", "file", "manifest"))]


def test_a_refused_change_leaves_the_version_as_it_was(registry, version):
    with pytest.raises(InvalidInput):
        registry.set_tag(version.ref, "team", "x" * 5001)
    with pytest.raises(InvalidInput):
        registry.set_description(version.ref, "x" * 20_001)
    got = registry.get(version.ref)
    assert (got.tags, got.description) == ({"team": "growth"}, "first try")


def test_a_version_can_be_read_without_its_lineage(registry, version, write):
    """What a deployer resolving an alias asks for: the version, its files and what it was
    trained on, without the lineage's code, environment and run."""
    write("data.csv", "a\n1\n")
    child = registry.register("churn", "m.bin", parents=[version.ref], datasets=["data.csv"])
    registry.set_alias("churn", "staging", child.ref)
    light = registry.get("churn@staging", lineage=False)
    full = registry.get("churn@staging")
    assert light.lineage is None
    assert full.lineage is not None
    assert (light.id, light.files, light.parents, light.datasets) == (
        full.id,
        full.files,
        full.parents,
        full.datasets,
    )
    assert light.parents == [version.ref]
    assert light.to_dict() == {k: v for k, v in full.to_dict().items() if k != "lineage"}
