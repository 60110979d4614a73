"""The CLI's dataset, audit and maintenance commands, through the same harness as test_cli."""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import re
import sqlite3
import sys
import time

import pytest

import modelreg
from modelreg import demo
from test_cli import CLI, blob_path, sha256, write
from test_cli import run as run  # the fixture, shared

# -- datasets ------------------------------------------------------------------------------


def test_dataset_commands(run: CLI) -> None:
    write("model.bin")
    first = write("train.csv", "x\n1\n")
    first_digest = sha256(first)
    run.ok("register", "churn", "model.bin", "--dataset", "train.csv,name=churn-train")
    run.ok("register", "churn-small", "model.bin", "--parent", "churn/1")
    second_digest = sha256(write("train.csv", "x\n1\n2\n"))
    run.ok("register", "fraud", "model.bin", "--dataset", "train.csv,name=churn-train,role=test")

    listed = run.json("datasets")
    assert sorted(d["digest"] for d in listed) == sorted([first_digest, second_digest])
    assert "churn-train" in run.ok("datasets").out

    assert len(run.json("dataset", "show", "churn-train")) == 2
    one = run.json("dataset", "show", f"churn-train@{first_digest[:12]}")
    assert [d["digest"] for d in one] == [first_digest]
    assert first_digest in run.ok("dataset", "show", "churn-train").out

    users = run.json("dataset", "models", f"churn-train@{first_digest[:12]}")
    assert [(u["version"], u["relation"], u["via"]) for u in users] == [
        ("churn/1", "direct", None),
        ("churn-small/1", "descendant", "churn/1"),
    ]
    every = {u["version"] for u in run.json("dataset", "models", "churn-train")}
    assert every == {"churn/1", "churn-small/1", "fraud/1"}
    table = run.ok("dataset", "models", "churn-train").out
    assert re.search(r"churn-small/1\s+descendant\s+churn/1", table)

    run.fails(1, "dataset", "show", "nope")
    run.fails(2, "dataset", "show", "churn-train@xyz")
    run.fails(2, "dataset", "models", "Bad Name")


# -- audit and maintenance -----------------------------------------------------------------


def test_audit_listing_and_filters(run: CLI) -> None:
    write("model.bin")
    run.ok("register", "churn", "model.bin")
    run.ok("alias", "set", "churn", "production", "churn/1")
    run.ok("tag", "set", "churn/1", "stage", "live")

    events = run.json("audit")
    actions = [e["action"] for e in events]
    assert {"model.create", "version.create", "alias.set", "tag.set"} <= set(actions)
    assert [e["seq"] for e in events] == sorted((e["seq"] for e in events), reverse=True)
    assert {e["action"] for e in run.json("audit", "--action", "alias.set")} == {"alias.set"}
    assert {e["action"] for e in run.json("audit", "--entity", "churn/1")} == {
        "version.create",
        "tag.set",
    }
    assert len(run.json("audit", "--limit", "1")) == 1
    assert run.json("audit", "--actor", "nobody") == []
    table = run.ok("audit").out
    assert "alias.set" in table
    assert "churn@production" in table
    run.fails(2, "audit", "--entity", "Churn/x")


def test_audit_verify_names_the_first_bad_event(run: CLI) -> None:
    write("model.bin")
    run.ok("register", "churn", "model.bin")
    run.ok("alias", "set", "churn", "production", "churn/1")
    count = len(run.json("audit"))
    out = run.ok("audit", "verify").out
    assert re.fullmatch(rf"audit log ok: {count} events, head [0-9a-f]{{64}}\n", out)
    assert run.json("audit", "verify")["ok"] is True

    with contextlib.closing(sqlite3.connect(run.registry / "registry.db")) as db:
        db.execute("UPDATE audit_events SET actor = 'mallory' WHERE seq = 2")
        db.commit()
    # The check starts from the event found sound last; --full re-hashes the edited one too.
    since = run.ok("audit", "verify").out
    assert f"0 new since event {count}, found sound before; --full re-hashes all" in since
    err = run.fails(1, "audit", "verify", "--full")
    assert "event 2" in err


def test_fsck_finds_corrupt_and_missing_blobs(run: CLI) -> None:
    model = write("model.bin", "weights")
    other = write("other.bin", "other weights")
    run.ok("register", "churn", "model.bin")
    run.ok("register", "fraud", "other.bin")
    out = run.ok("fsck").out
    assert out.startswith("2 blobs: 2 referenced, 0 unreferenced")
    assert out.endswith("ok\n")
    assert run.json("fsck")["ok"] is True

    corrupt = sha256(model)
    blob_path(run.registry, corrupt).write_bytes(b"tampered")
    result = run("fsck")
    assert result.code == 1
    assert f"corrupt: {corrupt}" in result.out
    assert "1 corrupt" in result.err
    assert "corrupt" in run.fails(1, "pull", "churn", "-o", "out")

    missing = sha256(other)
    blob_path(run.registry, missing).unlink()
    result = run("fsck")
    assert result.code == 1
    assert f"missing: {missing}" in result.out
    assert "1 missing" in result.err


def test_gc_removes_only_unreferenced_blobs(run: CLI) -> None:
    model = write("model.bin", "weights")
    run.ok("register", "churn", "model.bin")
    orphan_bytes = b"nobody needs me"
    orphan = hashlib.sha256(orphan_bytes).hexdigest()
    orphan_path = blob_path(run.registry, orphan)
    write(orphan_path, orphan_bytes)
    old = time.time() - 7200
    os.utime(orphan_path, (old, old))

    out = run.ok("gc", "--dry-run").out
    assert f"would remove: {orphan}" in out
    assert "interrupted writes" not in out  # a dry run removes none of them either
    assert orphan_path.exists()
    assert run.json("gc", "--dry-run")["removed"] == [orphan]

    recent = run.json("gc", "--grace", "86400")
    assert recent["removed"] == []
    assert recent["kept_recent"] == 1

    out = run.ok("gc").out
    assert f"removed: {orphan}" in out
    assert "removed 1 blob; kept 0 recent unreferenced; 0 leftovers of interrupted writes" in out
    assert not orphan_path.exists()
    assert blob_path(run.registry, sha256(model)).exists()
    run.ok("fsck")
    run.fails(2, "gc", "--grace", "-1")


def test_fsck_and_gc_count_the_packs_of_a_large_file(run: CLI) -> None:
    write("big.bin", os.urandom(9 << 20))  # chunked: at least the 8 MiB threshold
    run.ok("register", "big", "big.bin")
    out = run.ok("fsck").out
    assert re.search(r"^1 pack holding \d+ chunks$", out, re.MULTILINE), out
    assert out.endswith("ok\n")

    run.ok("delete", "big/1", "--reason", "superseded")
    out = run.ok("gc", "--grace", "0").out
    assert "removed 1 blob;" in out
    assert re.search(r"^removed 1 pack, rewrote 0 sparse packs, freed \d", out, re.MULTILINE), out
    assert "0 packs holding 0 chunks" in run.ok("fsck").out


def test_repack_converts_a_large_whole_blob(run: CLI) -> None:
    model = os.urandom(9 << 20)
    store = modelreg.connect(run.registry)
    digest, _ = store.blobs.inner.put(io.BytesIO(model))  # as stored before chunking
    store.close()
    assert run.ok("repack", "--dry-run").out == (
        f"would convert: {digest}\nwould convert 1 blob (9.4 MB)\n"
    )
    out = run.ok("repack").out
    assert re.fullmatch(
        rf"converted: {digest}\nconverted 1 blob \(9.4 MB\) into 9.\d MB of new packs\n", out
    ), out
    assert run.ok("repack").out == "no whole blob of 8 MiB or more: nothing to convert\n"
    assert re.search(r"^1 pack holding \d+ chunks$", run.ok("fsck").out, re.MULTILINE)


def test_demo_fills_the_registry(run: CLI) -> None:
    out = run.ok("demo").out
    assert out.startswith(f"{demo.PRODUCTION_MOVE[0]}\n")
    assert {m["name"] for m in run.json("models")} == set(demo.MODELS)
    for name, aliases in demo.ALIASES.items():
        for alias, ref in aliases.items():
            assert run.json("show", f"{name}@{alias}")["ref"] == ref
    moves = run.json("alias", "history", demo.MAIN_MODEL, "production")
    assert [m["version"] for m in moves] == list(demo.PRODUCTION_MOVE)

    parent, child, grandchild = demo.CHAIN
    lineage = run.json("lineage", child)
    assert lineage["parents"] == [parent]
    assert lineage["children"] == [grandchild]
    history = lineage["run"]["metric_history"]
    assert [point["step"] for point in history["val_accuracy"]] == list(range(10))
    assert {d["role"]: d["name"] for d in lineage["datasets"]} == {
        "train": "breast-cancer-train",
        "validation": "breast-cancer-validation",
    }
    shown = run.json("show", child)
    assert {f["path"] for f in shown["files"]} == {"flavor.json", "model.skops"}
    assert shown["tags"]["framework"] == "scikit-learn"

    for name, dataset in demo.TEST_DATASETS.items():
        for version in run.json("versions", name):
            (evaluation,) = run.json("evaluations", version["ref"])
            assert evaluation["dataset"]["name"] == dataset
    board = run.json(
        "leaderboard", "diabetes-regressor", "--dataset", "diabetes-test", "--metric", "rmse",
        "--lower-is-better",
    )  # fmt: skip
    assert board["ranking"][0]["version"] == demo.ALIASES["diabetes-regressor"]["production"]


def test_demo_without_scikit_learn_says_what_to_install(
    run: CLI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "sklearn", None)  # import sklearn raises ImportError
    assert run.fails(1, "demo").strip() == f"error: {demo.MISSING}"
    assert run.json("models") == []
