"""Training runs and capture: what made a version is recorded without extra user code.

Inside a run, the code (git repository, commit, branch, dirty flag, uncommitted diff), the
command line, the environment, the host and user, the params, the metric history and the
datasets are recorded; a version registered in the run links to all of it. Registering
outside a run captures the code and environment of the current directory in the same way.
"""

from __future__ import annotations

import getpass
import hashlib
import os
import platform
import re
import shlex
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import pytest

from modelreg import InvalidInput, NotFound, capture
from modelreg.errors import Unavailable
from modelreg.timestamps import format_time


def git(*args: str) -> str:
    done = subprocess.run(["git", *args], capture_output=True, text=True, check=True)
    return done.stdout.strip()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def model_file(write):
    """A model file in ``out/``, which the test repository ignores."""
    return write("out/model.bin", "weights")


class TestCode:
    def test_a_run_records_repository_commit_branch_and_a_clean_tree(
        self, registry, git_repo, model_file
    ):
        with registry.start_run(name="nightly") as run:
            v = run.register("churn", model_file)

        code = registry.lineage(v.ref)["code"]

        assert code["repository"] == str(git_repo)
        assert code["commit"] == git("rev-parse", "HEAD")
        assert code["branch"] == "main"
        assert code["dirty"] is False
        assert code.get("diff_digest") is None

    def test_an_uncommitted_change_is_recorded_as_dirty_with_its_diff(
        self, registry, backend, git_repo, model_file
    ):
        Path("train.py").write_text("print('training')\nprint('uncommitted change')\n")
        with registry.start_run(name="nightly") as run:
            v = run.register("churn", model_file)

        code = registry.lineage(v.ref)["code"]
        diff = backend.read_blob(code["diff_digest"])

        assert code["dirty"] is True
        assert code["commit"] == git("rev-parse", "HEAD")
        assert sha256(diff) == code["diff_digest"]
        assert len(diff) == code["diff_size"]
        assert b"+print('uncommitted change')" in diff
        assert diff == git("diff", "HEAD", "--binary").encode() + b"\n"

    def test_an_untracked_file_makes_the_tree_dirty_and_is_named(
        self, registry, git_repo, model_file, write
    ):
        write("notes.txt", "scratch")
        with registry.start_run() as run:
            v = run.register("churn", model_file)
        code = registry.lineage(v.ref)["code"]
        assert code["dirty"] is True
        assert "notes.txt" in code["untracked"]

    def test_a_new_branch_and_commit_are_recorded(self, registry, git_repo, model_file):
        git("checkout", "-q", "-b", "feature/x")
        Path("train.py").write_text("print('v2')\n")
        git("commit", "-q", "-am", "second")
        with registry.start_run() as run:
            v = run.register("churn", model_file)
        code = registry.lineage(v.ref)["code"]
        assert (code["branch"], code["commit"], code["dirty"]) == (
            "feature/x",
            git("rev-parse", "HEAD"),
            False,
        )

    def test_the_remote_url_is_recorded_without_credentials(self, registry, git_repo, model_file):
        git("remote", "add", "origin", "https://alice:s3cret@example.com/team/churn.git")
        with registry.start_run() as run:
            v = run.register("churn", model_file)
        lineage = registry.lineage(v.ref)
        assert lineage["code"]["repository"] == "https://example.com/team/churn.git"
        assert "s3cret" not in repr(lineage)

    def test_outside_a_git_repository_no_code_is_recorded(self, registry, write):
        write("m.bin", "m")
        with registry.start_run() as run:
            v = run.register("churn", "m.bin")
        code = registry.lineage(v.ref)["code"]
        assert code.get("repository") is None
        assert code.get("commit") is None

    def test_the_command_line_is_recorded(self, registry, write):
        write("m.bin", "m")
        with registry.start_run() as run:
            v = run.register("churn", "m.bin")
        lineage = registry.lineage(v.ref)
        assert lineage["code"]["command"] == shlex.join(capture.runnable(sys.argv))
        assert lineage["run"]["command"] == shlex.join(capture.runnable(sys.argv))


class TestRunRecord:
    def test_a_run_records_environment_host_user_times_and_status(self, registry, write):
        write("m.bin", "m")
        with registry.start_run(name="nightly", params={"C": 0.1}) as run:
            assert run.status == "running"
            v = run.register("churn", "m.bin")
        assert run.status == "finished"

        lineage = registry.lineage(v.ref)
        recorded = lineage["run"]
        env = lineage["environment"]

        assert recorded["id"] == run.id == v.run_id
        assert (recorded["name"], recorded["status"]) == ("nightly", "finished")
        assert recorded["started_at"] <= recorded["ended_at"]
        assert recorded["hostname"] == lineage["hostname"] == socket.gethostname()
        assert recorded["user"] == getpass.getuser()
        assert recorded["params"] == {"C": "0.1"}
        assert recorded["error"] is None
        assert env["python"] == platform.python_version()
        assert env["platform"] == platform.platform()
        assert env["packages"]["sqlalchemy"] == metadata.version("sqlalchemy")
        assert env["packages"]["pytest"] == metadata.version("pytest")

    def test_a_block_that_raises_fails_the_run_and_the_exception_propagates(self, registry, write):
        write("m.bin", "m")
        made = []

        def train():
            with registry.start_run(name="bad") as run:
                made.append((run, run.register("churn", "m.bin")))
                raise ValueError("loss diverged")

        with pytest.raises(ValueError, match="loss diverged"):
            train()
        run, v = made[0]

        assert run.status == "failed"
        recorded = registry.lineage(v.ref)["run"]
        assert recorded["status"] == "failed"
        assert "loss diverged" in recorded["error"]
        assert recorded["ended_at"] >= recorded["started_at"]

    def test_a_failed_run_is_recorded_even_without_a_version(self, registry):
        with pytest.raises(KeyboardInterrupt), registry.start_run(name="interrupted"):
            raise KeyboardInterrupt
        (end,) = registry.audit(action="run.end")
        assert end.after["status"] == "failed"

    def test_run_methods_refuse_outside_the_block(self, registry, write):
        write("m.bin", "m")
        run = registry.start_run(name="never started")
        with pytest.raises(InvalidInput):
            run.log_metric("loss", 1.0)
        with registry.start_run(name="ended") as ended:
            pass
        for call in (
            lambda: ended.log_metric("loss", 1.0),
            lambda: ended.log_param("C", 1),
            lambda: ended.use_dataset("m.bin"),
            lambda: ended.register("churn", "m.bin"),
        ):
            with pytest.raises(InvalidInput):
                call()
        with pytest.raises(NotFound):
            registry.get("churn")

    def test_params_logged_during_the_run_are_kept_latest_value_winning(self, registry, write):
        write("m.bin", "m")
        with registry.start_run(params={"C": 0.1}) as run:
            run.log_param("penalty", "l2")
            run.log_params({"C": 0.2, "epochs": 10})
            v = run.register("churn", "m.bin")
        expected = {"C": "0.2", "epochs": "10", "penalty": "l2"}
        assert v.params == expected
        assert registry.lineage(v.ref)["run"]["params"] == expected


class TestMetrics:
    def test_metric_history_keeps_every_point_in_step_order(self, registry, write):
        write("m.bin", "m")
        with registry.start_run() as run:
            for loss in (0.9, 0.7, 0.5):
                run.log_metric("loss", loss)
            run.log_metric("accuracy", 0.5, step=10)
            run.log_metric("accuracy", 0.6, step=20)
            run.log_metric("accuracy", 0.7)
            run.log_metrics({"f1": 0.1, "auc": 0.2}, step=3)
            v = run.register("churn", "m.bin")

        history = registry.lineage(v.ref)["run"]["metric_history"]

        def points(key):
            return [(p["step"], p["value"]) for p in history[key]]

        assert points("loss") == [(0, 0.9), (1, 0.7), (2, 0.5)]
        assert points("accuracy") == [(10, 0.5), (20, 0.6), (21, 0.7)]
        assert points("f1") == [(3, 0.1)]
        assert points("auc") == [(3, 0.2)]
        assert all(p["timestamp"] for series in history.values() for p in series)

    def test_a_version_registered_in_a_run_takes_the_last_value_of_each_metric(
        self, registry, write
    ):
        write("m.bin", "m")
        with registry.start_run() as run:
            run.log_metric("loss", 0.9)
            run.log_metric("loss", 0.4)
            run.log_metric("accuracy", 0.8)
            v = run.register("churn", "m.bin", metrics={"accuracy": 0.85}, params={"C": 1})
        assert v.metrics == {"accuracy": 0.85, "loss": 0.4}
        assert v.params == {"C": "1"}

    @pytest.mark.parametrize(
        ("value", "step"),
        [(float("nan"), None), (float("inf"), None), (1.0, -1), (1.0, 1.5), (1.0, 2**31)],
    )
    def test_bad_metric_points_are_refused(self, registry, value, step):
        with registry.start_run() as run:
            with pytest.raises(InvalidInput):
                run.log_metric("loss", value, step=step)
            run.log_metric("loss", 0.5)
            v_metrics = dict(run.metrics)
        assert v_metrics == {"loss": 0.5}

    def test_points_go_in_batches_each_with_the_time_it_was_logged(self, registry, write):
        write("m.bin", "m")
        with registry.start_run() as run:
            before = time.time()
            for step in range(5000):
                run.log_metrics({"loss": 1 / (step + 1), "lr": 0.1}, step=step)
            after = time.time()
            run.flush()
            stored = registry.lineage(run.register("churn", "m.bin").ref)["run"]
        history = stored["metric_history"]
        assert [p["step"] for p in history["loss"]] == list(range(5000))
        assert [p["value"] for p in history["lr"]] == [0.1] * 5000
        # Each point keeps the time it was logged, not the time its batch was stored.
        stamps = {p["timestamp"] for p in history["loss"]}
        assert min(stamps) >= format_time(datetime.fromtimestamp(before - 0.001, UTC))
        assert max(stamps) <= format_time(datetime.fromtimestamp(after + 0.001, UTC))
        # 10,000 points make a handful of audit events (one per batch), not 10,000.
        batches = registry.audit(entity=run.id, action="run.metric")
        assert sum(e.after["points"] for e in batches) == 10_000
        assert 1 <= len(batches) < 20

    def test_a_history_is_logged_at_once_in_either_shape(self, registry, write):
        write("m.bin", "m")
        with registry.start_run() as run:
            run.log_metric("loss", 1.0)
            run.log_metrics_history({"loss": [0.9, 0.8], "acc": (0.5, 0.6, 0.7)})
            run.log_metrics_history([("f1", 0.25, 10), ("f1", 0.5, 20), ("auc", 0.75, 0)])
            run.log_metrics_history(("auc", float(v), s) for s, v in ((1, 0.8), (2, 0.9)))
            v = run.register("churn", "m.bin")
        history = registry.lineage(v.ref)["run"]["metric_history"]
        assert [(p["step"], p["value"]) for p in history["loss"]] == [(0, 1.0), (1, 0.9), (2, 0.8)]
        assert [p["step"] for p in history["acc"]] == [0, 1, 2]
        assert [(p["step"], p["value"]) for p in history["f1"]] == [(10, 0.25), (20, 0.5)]
        assert [p["value"] for p in history["auc"]] == [0.75, 0.8, 0.9]
        assert v.metrics == {"loss": 0.8, "acc": 0.7, "f1": 0.5, "auc": 0.9}

    @pytest.mark.parametrize(
        ("history", "message"),
        [
            ({"loss": 0.5}, "metric 'loss': the history is a sequence of values"),
            ({"loss": "0.5"}, "metric 'loss': the history is a sequence of values"),
            ({"loss": [0.5, float("nan")]}, "loss"),
            ([("loss", 0.5)], "a metric point is (key, value, step)"),
            ([("loss", 0.5, -1)], "metric 'loss': step must be from 0 to 2147483647, not -1"),
            ([("loss", 0.5, 2**31)], "step must be from 0 to 2147483647, not 2147483648"),
            ([("loss", 0.5, True)], "step must be a non-negative integer"),
            (0.5, "a metric history is a mapping of key to values"),
            ([("bad key!", 0.5, 0)], "bad key!"),
        ],
    )
    def test_a_bad_history_is_refused_whole(self, registry, history, message):
        with registry.start_run() as run:
            with pytest.raises(InvalidInput, match=re.escape(message)):
                run.log_metrics_history(history)
            run.flush()
            assert registry.audit(entity=run.id, action="run.metric") == []

    def test_a_batch_that_cannot_be_stored_is_reported_and_fails_the_run(
        self, registry, monkeypatch
    ):
        calls = []
        store = registry.record_run_metrics

        def unavailable(run_id, points):  # fault injection: the registry refuses a batch
            calls.append(len(points))
            if len(calls) == 1:
                raise Unavailable("the database is not ready")
            store(run_id, points)

        monkeypatch.setattr(registry, "record_run_metrics", unavailable)
        lost = r"^3 metric points were not recorded \(run .*\): the database is not ready"
        with registry.start_run() as run:
            for step in range(3):
                run.log_metric("loss", 0.5, step=step)
            with pytest.raises(Unavailable, match=lost):
                run.flush()
        # Reported once: points logged after the report are stored again.
        with registry.start_run() as second:
            second.log_metric("loss", 0.5)
        failed = registry.audit(entity=run.id, action="run.end")[0].after
        assert failed["status"] == "failed"
        assert "3 metric points" in failed["error"]

    def test_a_failure_at_the_end_fails_the_run_and_is_raised(self, registry, monkeypatch):
        def unavailable(run_id, points):
            raise Unavailable("the server went away")

        monkeypatch.setattr(registry, "record_run_metrics", unavailable)
        lost = r"^1 metric point was not recorded \(run .*\): the server went away"
        run = registry.start_run()
        with pytest.raises(Unavailable, match=lost), run:
            run.log_metric("loss", 0.5)
        assert registry.audit(entity=run.id, action="run.end")[0].after["status"] == "failed"


class TestDatasets:
    def test_a_file_dataset_is_named_by_its_file_and_digested_from_its_bytes(self, registry, write):
        write("data/train.csv", "x,y\n1,0\n")
        write("m.bin", "m")
        with registry.start_run() as run:
            use = run.use_dataset("data/train.csv")
            v = run.register("churn", "m.bin")
        assert (use.name, use.role, use.digest) == ("train.csv", "train", sha256(b"x,y\n1,0\n"))
        assert [(d.name, d.digest, d.role) for d in v.datasets] == [
            ("train.csv", use.digest, "train")
        ]
        assert [d.digest for d in registry.dataset("train.csv")] == [use.digest]

    def test_datasets_take_a_name_and_a_role(self, registry, write):
        write("data/train.csv", "t")
        write("data/valid.csv", "v")
        write("m.bin", "m")
        with registry.start_run() as run:
            run.use_dataset("data/train.csv", name="churn-train")
            run.use_dataset("data/valid.csv", name="churn-valid", role="validation")
            with pytest.raises(InvalidInput):
                run.use_dataset("data/valid.csv", role="holdout")
            v = run.register("churn", "m.bin")
        assert sorted((d.name, d.role) for d in v.datasets) == [
            ("churn-train", "train"),
            ("churn-valid", "validation"),
        ]

    def test_a_directory_digest_changes_when_a_file_changes_or_is_renamed(self, registry, write):
        write("data/a.csv", "a")
        write("data/sub/b.csv", "b")
        with registry.start_run() as run:
            original = run.use_dataset("data").digest
            write("data/a.csv", "a changed")
            changed = run.use_dataset("data").digest
            write("data/a.csv", "a")
            os.rename("data/sub/b.csv", "data/sub/c.csv")
            renamed = run.use_dataset("data").digest
            os.rename("data/sub/c.csv", "data/sub/b.csv")
            restored = run.use_dataset("data").digest
        assert len({original, changed, renamed}) == 3
        assert restored == original
        assert {d.digest for d in registry.dataset("data")} == {original, changed, renamed}

    def test_a_directory_dataset_does_not_depend_on_where_it_lives(self, registry, write, tmp_path):
        write("one/data/a.csv", "a")
        write("two/data/a.csv", "a")
        with registry.start_run() as run:
            assert run.use_dataset("one/data").digest == run.use_dataset("two/data").digest

    def test_datasets_passed_to_register_join_those_of_the_run(self, registry, write):
        write("data/train.csv", "t")
        write("data/test.csv", "e")
        write("m.bin", "m")
        with registry.start_run() as run:
            run.use_dataset("data/train.csv")
            v = run.register("churn", "m.bin", datasets=[{"path": "data/test.csv", "role": "test"}])
        assert sorted((d.name, d.role) for d in v.datasets) == [
            ("test.csv", "test"),
            ("train.csv", "train"),
        ]


class TestOutsideARun:
    def test_registering_outside_a_run_captures_code_and_environment(
        self, registry, backend, git_repo, model_file
    ):
        Path("train.py").write_text("print('tweaked')\n")

        v = registry.register("churn", model_file)
        lineage = registry.lineage(v.ref)

        assert lineage["run"] is None
        assert v.run_id is None
        assert lineage["code"]["repository"] == str(git_repo)
        assert lineage["code"]["commit"] == git("rev-parse", "HEAD")
        assert lineage["code"]["branch"] == "main"
        assert lineage["code"]["dirty"] is True
        assert b"+print('tweaked')" in backend.read_blob(lineage["code"]["diff_digest"])
        assert lineage["code"]["command"] == shlex.join(capture.runnable(sys.argv))
        assert lineage["environment"]["packages"]["sqlalchemy"] == metadata.version("sqlalchemy")
        assert lineage["environment"]["python"] == platform.python_version()
        assert lineage["hostname"] == socket.gethostname()


def test_lineage_holds_run_code_environment_datasets_parents_and_children(registry, write):
    write("data/train.csv", "t")
    write("base.bin", "base")
    write("m.bin", "m")
    write("child.bin", "child")
    base = registry.register("base", "base.bin")
    with registry.start_run(name="train") as run:
        run.use_dataset("data/train.csv")
        v = run.register("churn", "m.bin", parents=[base.ref])
    child = registry.register("distilled", "child.bin", parents=[v.ref])

    lineage = registry.lineage(v.ref)

    assert lineage["version"] == "churn/1"
    assert lineage["id"] == v.id
    assert lineage["run"]["id"] == run.id
    assert "command" in lineage["code"]
    assert lineage["environment"]["python"] == platform.python_version()
    assert [(d["name"], d["role"]) for d in lineage["datasets"]] == [("train.csv", "train")]
    assert lineage["parents"] == ["base/1"]
    assert lineage["children"] == [child.ref]
    assert registry.lineage(base.ref)["children"] == ["churn/1"]
    assert registry.get(v.ref).lineage == lineage
