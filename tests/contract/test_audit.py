"""The audit log: every change is an event naming who did what to which entity, with the
values before and after, and the chain of events verifies."""

from __future__ import annotations

import itertools

from modelreg.metric_points import batch_of


def actions(registry, **filters):
    return [e.action for e in reversed(registry.audit(limit=1000, **filters))]


def test_a_new_registry_has_an_empty_verified_log(registry):
    result = registry.verify_audit()
    assert (result.ok, result.events, result.bad_seq) == (True, 0, None)
    assert registry.audit() == []


def test_registering_records_the_model_and_the_version(registry, backend, write):
    write("m.bin", "m")
    v = registry.register("churn", "m.bin", params={"C": 0.1}, metrics={"accuracy": 0.9})
    registry.register("churn", "m.bin")

    events = list(reversed(registry.audit()))

    assert [(e.action, e.entity) for e in events] == [
        ("model.create", "churn"),
        ("version.create", "churn/1"),
        ("version.create", "churn/2"),
    ]
    created = events[1]
    assert created.actor == backend.actor
    assert created.entity_type == "version"
    assert created.entity_id == v.id
    assert created.before is None
    assert created.after["ref"] == "churn/1"
    assert created.after["manifest_digest"] == v.manifest_digest
    assert created.after["params"] == {"C": "0.1"}
    assert created.after["metrics"] == {"accuracy": 0.9}
    assert created.after["files"] == [f.to_dict() for f in v.files]


def test_every_mutation_is_an_event_in_order(registry, backend, write):
    write("m.bin", "m")
    write("data/train.csv", "t")
    registry.register("churn", "m.bin")
    registry.register("churn", "m.bin")
    registry.set_alias("churn", "production", "churn/1")
    registry.set_alias("churn", "production", "churn/2")
    registry.delete_alias("churn", "production")
    registry.set_tag("churn/1", "team", "growth")
    registry.delete_tag("churn/1", "team")
    registry.set_description("churn/1", "first")
    with registry.start_run(name="nightly") as run:
        run.log_param("C", 0.1)
        run.use_dataset("data/train.csv")
        run.register("churn", "m.bin")

    events = list(reversed(registry.audit(limit=1000)))

    assert [(e.action, e.entity) for e in events] == [
        ("model.create", "churn"),
        ("version.create", "churn/1"),
        ("version.create", "churn/2"),
        ("alias.set", "churn@production"),
        ("alias.set", "churn@production"),
        ("alias.delete", "churn@production"),
        ("tag.set", "churn/1"),
        ("tag.delete", "churn/1"),
        ("version.describe", "churn/1"),
        ("run.start", "nightly"),
        ("run.params", run.id),
        ("run.dataset", run.id),
        ("version.create", "churn/3"),
        ("run.end", "nightly"),
    ]
    assert {e.actor for e in events} == {backend.actor}
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert all(a.at <= b.at for a, b in itertools.pairwise(events))
    assert registry.verify_audit().ok


def test_alias_events_carry_before_and_after(registry, write):
    write("m.bin", "m")
    registry.register("churn", "m.bin")
    registry.register("churn", "m.bin")
    registry.set_alias("churn", "production", "churn/1")
    registry.set_alias("churn", "production", "churn/2")
    registry.delete_alias("churn", "production")

    created, moved, deleted = reversed(registry.audit(entity_type="alias"))

    assert (created.before, created.after) == (None, {"version": "churn/1"})
    assert (moved.before, moved.after) == ({"version": "churn/1"}, {"version": "churn/2"})
    assert (deleted.before, deleted.after) == ({"version": "churn/2"}, None)


def test_run_events_record_what_the_run_did(registry, write):
    write("data/train.csv", "t")
    with registry.start_run(name="nightly", params={"C": 0.1}) as run:
        run.log_params({"epochs": 3})
        for step in range(2000):
            run.log_metric("loss", 1 / (step + 1))
        run.use_dataset("data/train.csv")
    events = list(reversed(registry.audit(entity_type="run")))
    start, params, *middle, end = events
    assert start.entity_id == run.id
    assert start.after["params"] == {"C": "0.1"}
    assert params.after == {"epochs": "3"}
    (dataset,) = [e for e in middle if e.action == "run.dataset"]
    assert dataset.after["name"] == "train.csv"
    # Points are sent in batches, each summarised by one event with the digest of its points.
    metric_events = [e for e in middle if e.action == "run.metric"]
    assert 1 <= len(metric_events) < 20
    points = [("loss", 1 / (step + 1), step) for step in range(2000)]
    for event in metric_events:
        batch, points = points[: event.after["points"]], points[event.after["points"] :]
        assert event.after == {
            "points": len(batch),
            "keys": ["loss"],
            "steps": [batch[0][2], batch[-1][2]],
            "digest": batch_of(batch, None).digest(),
        }
    assert points == []
    assert end.after["status"] == "finished"
    assert end.after["metrics"] == {"loss": 1 / 2000}


def test_the_log_can_be_filtered_and_paged(registry, write):
    write("m.bin", "m")
    for _ in range(3):
        registry.register("churn", "m.bin")
    registry.register("fraud", "m.bin")
    registry.set_tag("churn/2", "team", "growth")

    assert actions(registry, action="version.create") == ["version.create"] * 4
    assert [e.entity for e in registry.audit(entity="churn/2")] == ["churn/2", "churn/2"]
    newest = registry.audit(limit=2)
    older = registry.audit(limit=2, before_seq=newest[-1].seq)
    assert [e.seq for e in newest + older] == [7, 6, 5, 4]


def test_reads_are_not_audited(registry, write, tmp_path):
    write("m.bin", "m")
    registry.register("churn", "m.bin")
    before = registry.verify_audit().events
    registry.get("churn")
    registry.search("")
    registry.lineage("churn/1")
    registry.compare("churn/1", "churn/1")
    registry.pull("churn/1", tmp_path / "out")
    registry.models()
    registry.audit()
    assert registry.verify_audit().events == before


def test_the_chain_verifies_after_many_changes(registry, write):
    write("m.bin", "m")
    for i in range(20):
        registry.register("churn", "m.bin", metrics={"step": i})
        registry.set_tag(f"churn/{i + 1}", "i", i)
    result = registry.verify_audit()
    assert (result.ok, result.events) == (True, 41)
    assert result.head == registry.audit(limit=1)[0].hash
