"""The command line, end to end against a registry in a temporary directory.

Commands run in-process through ``modelreg.cli.main`` (the console script's entry point, so
error handling and exit codes are the real ones); a few run as a separate process to check
what a shell sees and what start-up imports.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import modelreg
from modelreg.cli import main
from modelreg.cli import versions as cli_versions

UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


@dataclass
class Result:
    code: int
    out: str
    err: str


class CLI:
    """Runs ``modelreg --registry <tmp> ...`` in-process and checks the error contract."""

    def __init__(self, registry: Path, capsys: pytest.CaptureFixture[str]) -> None:
        self.registry = registry
        self.capsys = capsys

    def __call__(self, *args: str) -> Result:
        code = main(["--registry", str(self.registry), *args])
        out, err = self.capsys.readouterr()
        assert "Traceback" not in out + err
        if code != 0:
            # One line naming what was wrong, never a traceback.
            assert err.startswith("error: "), err
            assert len(err.splitlines()) == 1, err
        return Result(code, out, err)

    def ok(self, *args: str) -> Result:
        result = self(*args)
        assert result.code == 0, result.err
        return result

    def json(self, *args: str) -> Any:
        return json.loads(self.ok(*args, "--json").out)

    def fails(self, code: int, *args: str) -> str:
        result = self(*args)
        assert result.code == code, (result.code, result.out, result.err)
        return result.err


@pytest.fixture
def run(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> CLI:
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.delenv("MODELREG_URI", raising=False)
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "160")
    return CLI(tmp_path / "reg", capsys)


def write(path: str | Path, content: str | bytes = "content\n") -> Path:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(content.encode() if isinstance(content, str) else content)
    return target


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def blob_path(registry: Path, digest: str) -> Path:
    return registry / "blobs" / "sha256" / digest[:2] / digest


def refs(versions: list[dict[str, Any]]) -> list[str]:
    return [v["ref"] for v in versions]


# -- help, version, registry location ----------------------------------------------------


def test_help_lists_the_commands_and_bare_groups_print_their_help(run: CLI) -> None:
    out = run.ok("--help").out
    for command in (
        "register",
        "models",
        "versions",
        "show",
        "pull",
        "alias",
        "tag",
        "describe",
        "search",
        "compare",
        "lineage",
        "datasets",
        "dataset",
        "audit",
        "fsck",
        "gc",
        "demo",
    ):
        assert re.search(rf"^\s+{command}\s", out, re.MULTILINE), command
    assert run.ok().out.startswith("Usage: modelreg")
    assert "history" in run.ok("alias").out
    assert run.ok("--version").out == f"modelreg {modelreg.__version__}\n"


def test_registry_comes_from_the_environment(
    tmp_path: Path, run: CLI, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "from-env"
    monkeypatch.setenv("MODELREG_URI", str(home))
    write("model.bin")
    assert main(["register", "churn", "model.bin"]) == 0
    assert (home / "registry.db").exists()
    assert main(["models", "--json"]) == 0
    out = capsys.readouterr().out
    assert json.loads(out.split("\n", 1)[1])[0]["name"] == "churn"


# -- registering and reading ---------------------------------------------------------------


def test_register_prints_ref_and_uuid_and_show_json_has_every_field(run: CLI) -> None:
    model = write("model.bin", b"\x00weights\x01")
    train = write("train.csv", "x,y\n1,0\n")
    write("valid/part-0.csv", "x,y\n2,1\n")
    out = run.ok(
        "register",
        "churn",
        "model.bin",
        "--param",
        "C=0.1",
        "--param",
        "solver=lbfgs",
        "--metric",
        "accuracy=0.93",
        "--metric",
        "loss=2e-1",
        "--tag",
        "team=growth",
        "--dataset",
        "train.csv,role=train,name=churn-train",
        "--dataset",
        "valid,role=validation",
        "--description",
        "first try",
    ).out
    match = re.fullmatch(rf"churn/1 ({UUID})\n", out)
    assert match, out
    version_id = match.group(1)
    second = run.ok("register", "churn", "model.bin", "--parent", "churn/1").out
    assert re.fullmatch(rf"churn/2 {UUID}\n", second)

    shown = run.json("show", "churn/1")
    assert shown["id"] == version_id
    assert (shown["model"], shown["number"], shown["ref"]) == ("churn", 1, "churn/1")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z", shown["created_at"])
    assert shown["description"] == "first try"
    assert shown["params"] == {"C": "0.1", "solver": "lbfgs"}
    assert shown["metrics"] == {"accuracy": 0.93, "loss": 0.2}
    assert shown["tags"] == {"team": "growth"}
    assert shown["aliases"] == []
    assert shown["files"] == [
        {"path": "model.bin", "digest": sha256(model), "size": model.stat().st_size}
    ]
    lineage = shown["lineage"]
    assert {"run", "code", "environment", "datasets", "parents"} <= lineage.keys()
    assert lineage["run"] is None
    assert lineage["parents"] == []
    assert lineage["environment"]["python"]
    used = {d["name"]: d for d in lineage["datasets"]}
    assert set(used) == {"churn-train", "valid"}
    assert used["churn-train"]["role"] == "train"
    assert used["churn-train"]["digest"] == sha256(train)
    assert used["churn-train"]["uri"] == train.resolve().as_uri()
    assert used["valid"]["role"] == "validation"

    child = run.json("show", "churn")
    assert child["ref"] == "churn/2"
    assert child["lineage"]["parents"] == ["churn/1"]
    assert run.json("show", version_id)["ref"] == "churn/1"
    assert run.json("register", "churn", "model.bin")["ref"] == "churn/3"


def test_register_one_directory_or_several_paths(run: CLI) -> None:
    write("export/model.json", "{}")
    write("export/weights/w0.bin", b"\x01")
    write("a.txt", "a")
    write("b.txt", "b")
    run.ok("register", "dir-model", "export")
    assert [f["path"] for f in run.json("show", "dir-model")["files"]] == [
        "model.json",
        "weights/w0.bin",
    ]
    run.ok("register", "files-model", "a.txt", "b.txt", "export")
    assert [f["path"] for f in run.json("show", "files-model")["files"]] == [
        "a.txt",
        "b.txt",
        "export/model.json",
        "export/weights/w0.bin",
    ]


def test_models_and_versions_as_tables_and_json(run: CLI) -> None:
    write("model.bin")
    run.ok("register", "churn", "model.bin", "--metric", "accuracy=0.81", "--tag", "team=growth")
    run.ok("register", "churn", "model.bin", "--metric", "accuracy=0.93")
    run.ok("register", "fraud", "model.bin")
    run.ok("alias", "set", "churn", "production", "churn/2")

    table = run.ok("models").out
    assert re.search(r"churn\s+2\s+2\s+production->2", table)
    assert re.search(r"fraud\s+1\s+1", table)
    listed = run.json("models")
    assert [m["name"] for m in listed] == ["churn", "fraud"]
    assert listed[0]["version_count"] == 2
    assert listed[0]["latest"] == 2
    assert listed[0]["aliases"] == {"production": 2}
    assert [m["name"] for m in run.json("models", "--limit", "1", "--offset", "1")] == ["fraud"]

    table = run.ok("versions", "churn").out
    assert table.index("churn/2") < table.index("churn/1")
    assert "accuracy=0.93" in table
    assert "production" in table
    assert "team=growth" in table
    versions = run.json("versions", "churn")
    assert refs(versions) == ["churn/2", "churn/1"]
    assert versions[0]["aliases"] == ["production"]
    assert refs(run.json("versions", "churn", "--limit", "1")) == ["churn/2"]
    assert refs(run.json("versions", "churn", "--offset", "1")) == ["churn/1"]


def test_show_prints_a_readable_summary(run: CLI) -> None:
    write("model.bin", "weights")
    write("train.csv", "x\n1\n")
    run.ok(
        "register",
        "churn",
        "model.bin",
        "--param",
        "C=0.1",
        "--metric",
        "accuracy=0.93",
        "--tag",
        "team=growth",
        "--dataset",
        "train.csv",
        "--description",
        "baseline [v1]",
    )
    out = run.ok("show", "churn/1").out
    for expected in (
        "churn/1",
        "C",
        "0.1",
        "accuracy",
        "0.93",
        "team",
        "growth",
        "model.bin",
        "train.csv",
        "baseline [v1]",
        "1 file",
    ):
        assert expected in out, expected


def test_empty_registry_listings(run: CLI) -> None:
    assert "no models yet" in run.ok("models").out
    assert run.json("models") == []
    assert run.json("datasets") == []
    assert run.json("search", "") == []


# -- pull ----------------------------------------------------------------------------------


def test_pull_writes_verified_files_and_refuses_to_overwrite_without_force(run: CLI) -> None:
    write("export/model.json", '{"w": 1}')
    write("export/weights/w0.bin", b"\x00\x01")
    run.ok("register", "churn", "export")

    out = run.ok("pull", "churn/1").out
    target = Path("churn-1")
    assert str(target.resolve()) in out
    assert (target / "model.json").read_text() == '{"w": 1}'
    assert (target / "weights" / "w0.bin").read_bytes() == b"\x00\x01"

    run.ok("pull", "churn", "-o", "elsewhere")
    assert Path("elsewhere/model.json").exists()

    (target / "model.json").write_text("edited")
    write(target / "notes.txt", "mine")
    err = run.fails(1, "pull", "churn/1")
    assert "model.json" in err
    assert "--force" in err
    assert (target / "model.json").read_text() == "edited"

    run.ok("pull", "churn/1", "--force")
    assert (target / "model.json").read_text() == '{"w": 1}'
    assert (target / "notes.txt").read_text() == "mine"


def test_pull_shows_a_progress_bar_for_large_versions(
    run: CLI, monkeypatch: pytest.MonkeyPatch
) -> None:
    write("model.bin", os.urandom(300_000))
    run.ok("register", "big", "model.bin")
    monkeypatch.setattr(cli_versions, "PROGRESS_THRESHOLD", 1000)
    result = run.ok("pull", "big", "-o", "out")
    assert "pulling big/1" in result.err
    assert sha256(Path("out/model.bin")) == sha256(Path("model.bin"))


def test_register_shows_a_progress_bar_for_large_files(
    run: CLI, monkeypatch: pytest.MonkeyPatch
) -> None:
    write("model.bin", os.urandom(300_000))
    monkeypatch.setattr(cli_versions, "PROGRESS_THRESHOLD", 1000)
    result = run.ok("register", "big", "model.bin")
    assert "registering big" in result.err
    assert "300.0/300.0 kB" in result.err
    assert result.out.startswith("big/1 ")


def test_pull_into_a_path_that_is_a_file_is_a_one_line_error(run: CLI) -> None:
    write("model.bin")
    write("taken", "not a directory")
    run.ok("register", "churn", "model.bin")
    err = run.fails(1, "pull", "churn", "-o", "taken")
    assert "taken" in err


# -- aliases, tags, descriptions -----------------------------------------------------------


def test_alias_set_history_delete_and_show_at(run: CLI) -> None:
    write("model.bin")
    run.ok("register", "churn", "model.bin")
    run.ok("register", "churn", "model.bin")
    assert run.ok("alias", "set", "churn", "production", "churn/1").out == (
        "churn@production -> churn/1\n"
    )
    run.ok("alias", "set", "churn", "production", "churn/2")
    assert run.json("show", "churn@production")["number"] == 2

    history = run.json("alias", "history", "churn", "production")
    assert [h["version"] for h in history] == ["churn/1", "churn/2"]
    first, second = history[0]["at"], history[1]["at"]
    assert run.json("show", "churn@production", "--at", first)["number"] == 1
    assert run.json("show", "churn@production", "--at", second)["number"] == 2

    assert run.ok("alias", "delete", "churn", "production").out == "deleted churn@production\n"
    assert "not found" in run.fails(1, "show", "churn@production")
    assert run.json("show", "churn@production", "--at", second)["number"] == 2
    run.fails(1, "show", "churn@production", "--at", "2000-01-01T00:00:00Z")

    history = run.json("alias", "history", "churn", "production")
    assert [h["version"] for h in history] == ["churn/1", "churn/2", None]
    table = run.ok("alias", "history", "churn", "production").out
    assert "(alias deleted)" in table
    assert table.index("churn/1") < table.index("churn/2")

    run.fails(1, "alias", "delete", "churn", "production")
    run.fails(2, "alias", "set", "churn", "latest", "churn/1")
    run.fails(2, "show", "churn@production", "--at", "yesterday")


def test_delete_a_version_with_a_reason_then_it_is_gone(run: CLI) -> None:
    write("model.bin")
    run.ok("register", "churn", "model.bin")
    run.ok("register", "churn", "model.bin")
    run.ok("alias", "set", "churn", "production", "churn/2")
    assert "--reason" in run.fails(2, "delete", "churn/1")
    assert run.fails(1, "delete", "churn/2", "--reason", "erasure") == (
        "error: churn/2 is what churn@production points at: move or delete that alias first\n"
    )
    refused = run.fails(2, "delete", "churn", "--reason", "x")
    assert "name the version to delete as NAME/N" in refused
    out = run.ok("delete", "churn/1", "--reason", "erasure request 1234").out
    assert out.startswith("deleted churn/1 (")
    assert "1 file, freed by the next `modelreg gc`" in out
    err = run.fails(1, "show", "churn/1")
    assert err.startswith("error: version churn/1 was deleted at ")
    assert err.endswith(": erasure request 1234\n")
    assert [v["number"] for v in run.json("versions", "churn")] == [2]
    run.ok("alias", "delete", "churn", "production")
    done = run.json("delete", "churn/2", "--reason", "superseded")
    assert (done["ref"], done["reason"], done["files"]) == ("churn/2", "superseded", 1)
    assert "has no versions: its 2 versions were deleted" in run.fails(1, "show", "churn")
    history = run.ok("alias", "history", "churn", "production").out
    assert "churn/2 (version deleted since)" in history


def test_lineage_marks_a_deleted_parent(run: CLI) -> None:
    write("model.bin")
    run.ok("register", "base", "model.bin")
    run.ok("register", "tuned", "model.bin", "--parent", "base/1")
    assert "(deleted)" not in run.ok("lineage", "tuned/1").out
    run.ok("delete", "base/1", "--reason", "superseded")
    assert "base/1 (deleted)" in run.ok("lineage", "tuned/1").out
    assert run.json("lineage", "tuned/1")["deleted_parents"] == ["base/1"]


def test_alias_must_point_at_a_version_of_the_same_model(run: CLI) -> None:
    write("model.bin")
    run.ok("register", "churn", "model.bin")
    run.ok("register", "fraud", "model.bin")
    err = run.fails(1, "alias", "set", "churn", "production", "fraud/1")
    assert "fraud" in err


def test_tags_and_description(run: CLI) -> None:
    write("model.bin")
    run.ok("register", "churn", "model.bin", "--tag", "team=growth")
    run.ok("tag", "set", "churn/1", "stage", "candidate")
    assert run.json("show", "churn/1")["tags"] == {"stage": "candidate", "team": "growth"}
    run.ok("tag", "delete", "churn/1", "team")
    assert run.json("show", "churn/1")["tags"] == {"stage": "candidate"}
    run.ok("describe", "churn/1", "retrained on November data")
    assert run.json("show", "churn/1")["description"] == "retrained on November data"


def test_deleting_a_missing_tag_fails(run: CLI) -> None:
    write("model.bin")
    run.ok("register", "churn", "model.bin")
    assert "team" in run.fails(1, "tag", "delete", "churn/1", "team")


# -- search, compare, lineage --------------------------------------------------------------


def test_search(run: CLI) -> None:
    write("model.bin")
    run.ok("register", "churn", "model.bin", "--metric", "accuracy=0.80", "--tag", "team=a")
    run.ok("register", "churn", "model.bin", "--metric", "accuracy=0.95", "--tag", "team=b")
    run.ok("register", "fraud", "model.bin", "--metric", "accuracy=0.99", "--tag", "team=b")

    found = run.json("search", "metrics.accuracy > 0.9")
    assert sorted(refs(found)) == ["churn/2", "fraud/1"]
    assert refs(run.json("search", "metrics.accuracy > 0.9", "--model", "churn")) == ["churn/2"]
    ordered = run.json(
        "search",
        "tags.team = 'b' or metrics.accuracy < 0.9",
        "--order-by",
        "metrics.accuracy desc",
        "--limit",
        "2",
    )
    assert refs(ordered) == ["fraud/1", "churn/2"]
    assert len(run.json("search")) == 3

    table = run.ok("search", "tags.team = 'a'").out
    assert "churn/1" in table
    assert "churn/2" not in table
    assert "no version matches" in run.ok("search", "metrics.accuracy > 2").out

    err = run.fails(2, "search", "metrics.accuracy >> 0.9")
    assert "column" in err
    run.fails(2, "search", "metrics.accuracy > 0.9", "--order-by", "desc desc")
    run.fails(1, "search", "", "--model", "nope")


def test_compare(run: CLI) -> None:
    write("model.bin", "v1")
    write("train.csv", "x\n1\n")
    run.ok(
        "register",
        "churn",
        "model.bin",
        "--param",
        "C=0.1",
        "--param",
        "solver=lbfgs",
        "--metric",
        "accuracy=0.8",
        "--dataset",
        "train.csv",
    )
    write("model.bin", "v2")
    write("extra.txt", "new")
    write("train.csv", "x\n1\n2\n")
    run.ok(
        "register",
        "churn",
        "model.bin",
        "extra.txt",
        "--param",
        "C=0.2",
        "--param",
        "max_iter=100",
        "--metric",
        "accuracy=0.9",
        "--dataset",
        "train.csv",
    )

    diff = run.json("compare", "churn/1", "churn/2")
    assert (diff["a"], diff["b"]) == ("churn/1", "churn/2")
    assert diff["params"] == {
        "changed": {"C": ["0.1", "0.2"]},
        "added": {"max_iter": "100"},
        "removed": {"solver": "lbfgs"},
    }
    assert diff["metrics"]["accuracy"]["delta"] == pytest.approx(0.1)
    assert [(d["name"], d["role"]) for d in diff["datasets"]] == [("train.csv", "train")]
    assert diff["files"] == {"added": ["extra.txt"], "removed": [], "changed": ["model.bin"]}

    out = run.ok("compare", "churn/1", "churn/2").out
    assert "churn/1 -> churn/2" in out
    assert re.search(r"C\s+0\.1\s+0\.2", out)
    assert re.search(r"max_iter\s+-\s+100", out)
    assert re.search(r"solver\s+lbfgs\s+-", out)
    assert re.search(r"accuracy\s+0\.8\s+0\.9\s+\+0\.1", out)
    assert "datasets whose digests differ" in out
    assert re.search(r"extra\.txt\s+added", out)
    assert re.search(r"model\.bin\s+changed", out)

    same = run.ok("compare", "churn/2", "churn/2").out
    assert "same files" in same
    assert "no differences" in same


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_lineage_tree_and_json(run: CLI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.name", "Test User")
    git(repo, "config", "user.email", "test@example.com")
    git(repo, "config", "commit.gpgsign", "false")
    write(repo / "train.py", "print('train')\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "first")
    monkeypatch.chdir(repo)
    commit = git(repo, "rev-parse", "HEAD")
    write("model.bin")
    write("data.csv", "x\n1\n")
    run.ok("register", "churn", "model.bin", "--dataset", "data.csv,name=churn-data")
    run.ok("register", "churn-small", "model.bin", "--parent", "churn/1")

    found = run.json("lineage", "churn/1")
    assert found["version"] == "churn/1"
    assert found["code"]["commit"] == commit
    assert found["code"]["branch"] == "main"
    assert found["children"] == ["churn-small/1"]
    assert [d["name"] for d in found["datasets"]] == ["churn-data"]
    assert found["environment"]["packages"]

    tree = run.ok("lineage", "churn/1").out
    for expected in (
        "churn/1",
        "parents",
        "datasets",
        "train: churn-data",
        "code",
        f"commit: {commit}",
        "branch: main",
        "dirty: yes",
        "environment",
        "python",
        "packages",
        "children",
        "churn-small/1",
    ):
        assert expected in tree, expected
    small = run.ok("lineage", "churn-small").out
    assert small.index("parents") < small.index("churn/1") < small.index("datasets")


# -- errors --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "args", "mentions"),
    [
        (1, ["show", "nope"], "model 'nope' not found"),
        (1, ["versions", "nope"], "nope"),
        (1, ["compare", "churn/1", "churn/9"], "churn/9"),
        (2, ["show", "Churn/x"], "Churn"),
        (2, ["show", "churn/x"], "churn/x"),
        (2, ["register", "churn", "model.bin", "--param", "C"], "--param"),
        (2, ["register", "churn", "model.bin", "--param", "C=1", "--param", "C=2"], "twice"),
        (2, ["register", "churn", "model.bin", "--metric", "accuracy=high"], "accuracy"),
        (2, ["register", "churn", "model.bin", "--dataset", "train.csv,colour=red"], "--dataset"),
        (2, ["register", "churn", "model.bin", "--dataset", "gone.csv,role=test"], "gone.csv"),
        (2, ["register", "churn", "model.bin", "--dataset", "train.csv,role=holdout"], "holdout"),
        (2, ["register", "churn", "model.bin", "--parent", "not a ref"], "not a ref"),
        (2, ["register", "Churn", "model.bin"], "Churn"),
        (2, ["register", "churn", "missing.bin"], "missing.bin"),
        (2, ["register", "churn"], "PATH"),
        (2, ["show"], "REF"),
        (2, ["show", "churn/1", "--at", "2026-11-01T12:00:00Z"], "alias"),
        (2, ["bogus"], "bogus"),
        (2, ["models", "--limit", "0"], "--limit"),
        (2, ["alias", "set", "churn", "Prod", "churn/1"], "Prod"),
    ],
)
def test_errors_are_one_line_with_the_right_exit_code(
    run: CLI, code: int, args: list[str], mentions: str
) -> None:
    write("model.bin")
    write("train.csv", "x\n1\n")
    run.ok("register", "churn", "model.bin")
    result = run(*args)
    assert result.code == code, result
    assert mentions in result.err
    assert result.out == ""


def test_usage_errors_do_not_create_the_registry(run: CLI) -> None:
    run.fails(2, "show", "Churn/x")
    run.fails(2, "register", "churn", "model.bin", "--param", "C")
    assert not run.registry.exists()


def test_output_fits_a_narrow_terminal(run: CLI, monkeypatch: pytest.MonkeyPatch) -> None:
    write("model.bin")
    write("a-rather-long-directory-name/train-data-for-november.csv", "x\n1\n")
    run.ok(
        "register",
        "churn-with-a-long-name",
        "model.bin",
        "--metric",
        "accuracy=0.93",
        "--metric",
        "roc_auc=0.88",
        "--tag",
        "team=growth-and-retention",
        "--dataset",
        "a-rather-long-directory-name/train-data-for-november.csv",
    )
    run.ok(
        "register", "churn-with-a-long-name", "model.bin", "--parent", "churn-with-a-long-name/1"
    )
    monkeypatch.setenv("COLUMNS", "48")
    for args in (
        ["models"],
        ["versions", "churn-with-a-long-name"],
        ["show", "churn-with-a-long-name/1"],
        ["lineage", "churn-with-a-long-name/1"],
        ["compare", "churn-with-a-long-name/1", "churn-with-a-long-name/2"],
        ["datasets"],
        ["audit"],
    ):
        out = run.ok(*args).out
        widest = max(len(line.rstrip()) for line in out.splitlines())
        assert widest <= 48, (args, out)


# -- as a separate process -------------------------------------------------------------------


def _modelreg(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "MODELREG_URI"}
    return subprocess.run(
        [sys.executable, "-m", "modelreg.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        check=False,
        timeout=120,
    )


def test_a_shell_sees_exit_codes_and_one_error_line(tmp_path: Path) -> None:
    reg = str(tmp_path / "reg")
    write(tmp_path / "model.bin")
    done = _modelreg("--registry", reg, "register", "churn", "model.bin", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert re.fullmatch(rf"churn/1 {UUID}\n", done.stdout)
    assert uuid.UUID(done.stdout.split()[1])

    done = _modelreg("--registry", reg, "show", "nope", cwd=tmp_path)
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == f"error: model 'nope' not found in the registry at {reg}\n"

    done = _modelreg("--registry", reg, "show", "Churn/x", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.startswith("error: ")
    assert len(done.stderr.splitlines()) == 1

    done = _modelreg("--registry", reg, "show", "--bogus", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.startswith("error: No such option")
    assert len(done.stderr.splitlines()) == 1


HEAVY = (
    "sqlalchemy",
    "alembic",
    "rich",
    "modelreg.local",
    "modelreg.versions",
    "modelreg.cli.render",
)
PROBE = """
import sys
from modelreg.cli import main
code = main(["--help"])
heavy = sorted(m for m in sys.modules if m.startswith({heavy!r}))
print("HEAVY", heavy, code)
"""


def test_help_starts_without_loading_anything_heavy(tmp_path: Path) -> None:
    # `modelreg --help` must stay well under 0.3 s: no SQLAlchemy, no Rich, no registry.
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(heavy=HEAVY)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=True,
        timeout=120,
    )
    assert done.stdout.splitlines()[-1] == "HEAVY [] 0"


@pytest.mark.parametrize(
    "option",
    [
        ["--param", "bad key!=1"],
        ["--tag", "t=" + "x" * 6000],
        ["--description", "x" * 30_000],
        ["--dataset", "train.csv,name=BAD"],
    ],
)
def test_malformed_register_options_are_usage_errors(run: CLI, option: list[str]) -> None:
    write("model.bin")
    write("train.csv", "a\n")
    err = run.fails(2, "register", "churn", "model.bin", *option)
    assert err.startswith("error: ")
    assert len(err.strip().splitlines()) == 1
    assert run.json("models") == []


def test_an_unexpected_error_is_still_one_line(run: CLI, monkeypatch: pytest.MonkeyPatch) -> None:
    import modelreg.local

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(modelreg.local.LocalRegistry, "models", broken)
    err = run.fails(1, "models")
    assert err == "error: internal error: RuntimeError: boom (MODELREG_DEBUG=1 shows more)\n"
