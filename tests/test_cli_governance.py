"""The governance commands, end to end: dataset retirement and its impact, pulling flagged
versions, evaluations, the leaderboard and the trend.

Same harness as tests/test_cli.py: ``modelreg.cli.main`` in-process against a registry in a
temporary directory, with the one-line error contract checked on every failing call.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from modelreg.cli import versions as cli_versions
from test_cli import CLI, sha256, write
from test_cli import run as run  # the fixture, shared

REASON = "erasure request #4242"
LINEAGE = ["churn/1", "churn/2", "churn-small/1"]


def three_generations(run: CLI) -> str:
    """churn/1 trained on churn-train, its child churn/2, their grandchild churn-small/1 with
    an alias, and fraud/1 unrelated to all of them; returns the dataset's digest."""
    write("model.bin")
    digest = sha256(write("train.csv", "x,y\n1,0\n"))
    run.ok("register", "churn", "model.bin", "--dataset", "train.csv,name=churn-train")
    run.ok("register", "churn", "model.bin", "--parent", "churn/1")
    run.ok("register", "churn-small", "model.bin", "--parent", "churn/2")
    run.ok("alias", "set", "churn-small", "production", "churn-small/1")
    run.ok("register", "fraud", "model.bin")
    return digest


def flags(run: CLI, ref: str) -> list[str]:
    found: list[str] = run.json("show", ref)["flags"]
    return found


def retired_refs(run: CLI) -> list[str]:
    return sorted(v["ref"] for v in run.json("search", "status = 'data-retired'"))


def test_help_lists_the_governance_commands(run: CLI) -> None:
    out = run.ok("--help").out
    for command in ("evaluate", "evaluations", "leaderboard", "trend"):
        assert re.search(rf"^\s+{command}\s", out, re.MULTILINE), command
    group = run.ok("dataset").out
    for command in ("impact", "retire"):
        assert re.search(rf"^\s+{command}\s", group, re.MULTILINE), command
    assert "--strict" in run.ok("pull", "--help").out


# -- impact and retirement -------------------------------------------------------------------


def test_impact_lists_every_generation_and_the_alias_on_it(run: CLI) -> None:
    digest = three_generations(run)
    report = run.json("dataset", "impact", "churn-train")
    assert {v["version"]: (v["relation"], v["uses"], v["via"]) for v in report["versions"]} == {
        "churn/1": ("direct", [f"train:churn-train@{digest[:12]}"], None),
        "churn/2": ("descendant", [], "churn/1"),
        "churn-small/1": ("descendant", [], "churn/2"),
    }
    assert report["aliases"] == [{"alias": "churn-small@production", "version": "churn-small/1"}]
    assert [(d["digest"], d["retired"]) for d in report["datasets"]] == [(digest, False)]

    out = run.ok("dataset", "impact", "churn-train").out
    assert out.splitlines()[0] == "retiring churn-train would flag 3 versions data-retired"
    assert re.search(rf"churn/1\s+direct\s+train:churn-train@{digest[:12]}", out)
    assert re.search(r"churn/2\s+descendant\s+churn/1", out)
    assert re.search(r"churn-small/1\s+descendant\s+churn/2", out)
    assert re.search(r"churn-small@production\s+churn-small/1", out)
    assert "fraud" not in out

    markdown = run.ok("dataset", "impact", f"churn-train@{digest[:12]}", "--markdown").out
    assert markdown.startswith(f"# Impact of retiring dataset `churn-train@{digest[:12]}`")
    assert "| churn-small/1 | descendant |  | churn/2 |" in markdown
    assert flags(run, "churn/1") == []


def test_datasets_and_dataset_show_mark_a_retired_dataset(run: CLI) -> None:
    three_generations(run)
    assert "retired" not in run.ok("dataset", "show", "churn-train").out
    run.ok("dataset", "retire", "churn-train", "--reason", "consent withdrawn")
    listed = run.ok("datasets").out
    assert "retired" in listed.splitlines()[0]
    # recorded, then retired: two times on the dataset's row
    assert len(re.findall(r"\d{4}-\d\d-\d\d \d\d:\d\d", listed.splitlines()[-1])) == 2
    shown = run.ok("dataset", "show", "churn-train").out
    assert re.search(r"retired\s+\d{4}-\d\d-\d\d.*: consent withdrawn", shown)
    [entry] = run.json("datasets")
    assert entry["retired_reason"] == "consent withdrawn"


def test_registering_on_retired_data_or_from_a_flagged_parent_warns(run: CLI) -> None:
    three_generations(run)
    run.ok("dataset", "retire", "churn-train", "--reason", "consent withdrawn")
    result = run.ok("register", "churn", "model.bin", "--dataset", "train.csv")
    assert result.out.startswith("churn/3 ")
    assert result.err.startswith("warning: churn/3 is flagged data-retired")
    child = run.ok("register", "tuned", "model.bin", "--parent", "churn/1")
    assert "warning: tuned/1 is flagged data-retired" in child.err
    clean = run.ok("register", "fraud", "model.bin")
    assert clean.err == ""


def test_impact_names_a_deleted_version_whose_files_remain_until_gc(run: CLI) -> None:
    three_generations(run)
    run.ok("delete", "churn/2", "--reason", "superseded")
    out = run.ok("dataset", "impact", "churn-train").out
    assert out.splitlines()[0] == "retiring churn-train would flag 2 versions data-retired"
    assert re.search(r"deleted versions that depended on it", out)
    assert re.search(r"churn/2\s+descendant\s+churn/1\s+\d{4}-\d\d-\d\d", out)
    assert "until `modelreg gc` removes" in out
    markdown = run.ok("dataset", "impact", "churn-train", "--markdown").out
    assert "## Deleted versions that depended on it (1)" in markdown
    assert "| churn/2 | descendant |  | churn/1 | 20" in markdown

    run.ok("alias", "delete", "churn-small", "production")
    run.ok("delete", "churn-small/1", "--reason", "superseded")
    run.ok("delete", "churn/1", "--reason", "superseded")
    out = run.ok("dataset", "impact", "churn-train").out
    assert "no version that is not deleted depends on it" in out
    markdown = run.ok("dataset", "impact", "churn-train", "--markdown").out
    assert "## Affected versions (0)\n\n- none\n" in markdown


def test_dry_run_reports_and_changes_nothing(run: CLI) -> None:
    three_generations(run)
    out = run.ok("dataset", "retire", "churn-train", "--reason", REASON, "--dry-run").out
    assert out.splitlines()[0] == (
        f"dry run: retiring churn-train would flag 3 versions data-retired; reason: {REASON}"
    )
    assert "churn-small@production" in out
    assert "nothing was changed" in out
    report = run.json("dataset", "retire", "churn-train", "--reason", REASON, "--dry-run")
    assert sorted(v["version"] for v in report["versions"]) == sorted(LINEAGE)
    assert report["datasets"][0]["retired"] is False

    for ref in LINEAGE:
        assert flags(run, ref) == []
    assert retired_refs(run) == []
    assert run.json("audit", "--action", "dataset.retire") == []
    assert run.json("dataset", "impact", "churn-train")["datasets"][0]["retired"] is False


def test_retire_flags_every_generation_once(run: CLI) -> None:
    three_generations(run)
    out = run.ok("dataset", "retire", "churn-train", "--reason", REASON).out
    assert out.splitlines()[0] == (
        f"retired churn-train: flagged 3 versions data-retired; reason: {REASON}"
    )
    assert re.search(r"churn-small@production\s+churn-small/1", out)

    for ref in LINEAGE:
        assert flags(run, ref) == ["data-retired"]
    assert flags(run, "fraud/1") == []
    assert retired_refs(run) == sorted(LINEAGE)
    [event] = run.json("audit", "--action", "dataset.retire")
    assert event["entity"] == "churn-train"

    shown = run.ok("show", "churn-small@production").out
    assert re.search(r"flags\s+data-retired", shown)
    table = run.ok("versions", "churn").out
    assert re.search(r"churn/2\s.*data-retired", table)
    assert "data-retired" not in run.ok("versions", "fraud").out

    impact = run.json("dataset", "impact", "churn-train")
    assert impact["datasets"][0]["retired"] is True
    assert impact["datasets"][0]["reason"] == REASON
    assert run.ok("dataset", "impact", "churn-train").out.startswith(
        f"churn-train is retired: 3 versions flagged data-retired; reason: {REASON}"
    )

    assert "already retired" in run.fails(1, "dataset", "retire", "churn-train", "--reason", "x")
    err = run.fails(1, "dataset", "retire", "churn-train", "--reason", "x", "--dry-run")
    assert "already retired" in err
    assert len(run.json("audit", "--action", "dataset.retire")) == 1


def test_retire_markdown_is_a_ticket_ready_report(run: CLI) -> None:
    digest = three_generations(run)
    dry = run.ok("dataset", "retire", "churn-train", "--reason", REASON, "--dry-run", "--markdown")
    assert dry.out.startswith("# Impact of retiring dataset `churn-train`")
    assert "would be retired" in dry.out

    out = run.ok("dataset", "retire", "churn-train", "--reason", REASON, "--markdown").out
    assert out.startswith("# Retirement of dataset `churn-train`")
    for row in (
        f"| churn/1 | direct | train:churn-train@{digest[:12]} |  |",
        "| churn/2 | descendant |  | churn/1 |",
        "| churn-small/1 | descendant |  | churn/2 |",
        "- `churn-small@production` -> churn-small/1",
    ):
        assert row in out, row
    assert "erasure request \\#4242" in out  # escaped: the reason cannot break the table
    assert flags(run, "churn-small/1") == ["data-retired"]


def test_retiring_one_digest_leaves_the_other_versions_alone(run: CLI) -> None:
    old = three_generations(run)
    new = sha256(write("train.csv", "x,y\n1,0\n2,1\n"))
    run.ok("register", "churn", "model.bin", "--dataset", "train.csv,name=churn-train")
    run.ok("dataset", "retire", f"churn-train@{old[:12]}", "--reason", REASON)
    assert flags(run, "churn/3") == []
    assert retired_refs(run) == sorted(LINEAGE)
    report = run.json("dataset", "impact", "churn-train")
    assert {d["digest"]: d["retired"] for d in report["datasets"]} == {old: True, new: False}
    assert "1 of 2" in run.ok("dataset", "impact", "churn-train").out


# -- the same bytes under two names -----------------------------------------------------------


def two_names(run: CLI) -> str:
    """train.csv's bytes recorded as churn-train (churn/1, churn/2) and as train.csv (base/1,
    whose child is tuned/1); returns their digest."""
    write("model.bin")
    digest = sha256(write("train.csv", "x,y\n1,0\n"))
    for _ in range(2):
        run.ok("register", "churn", "model.bin", "--dataset", "train.csv,name=churn-train")
    run.ok("register", "base", "model.bin", "--dataset", "train.csv")
    run.ok("register", "tuned", "model.bin", "--parent", "base/1")
    return digest


def test_every_view_of_a_dataset_names_the_other_names_of_its_bytes(run: CLI) -> None:
    digest = two_names(run)
    listed = run.ok("datasets").out
    # Each name's row, and under its name the other names of the same bytes.
    assert re.search(
        rf"^churn-train +{digest[:12]} .*\n *also known as train\.csv *$", listed, re.M
    )
    assert re.search(
        rf"^train\.csv +{digest[:12]} .*\n *also known as churn-train *$", listed, re.M
    )
    assert [d["also_known_as"] for d in run.json("datasets")] == [["train.csv"], ["churn-train"]]
    shown = run.ok("dataset", "show", "churn-train").out
    assert re.search(r"also known as\s+train\.csv \(the same bytes\)", shown)
    models = run.ok("dataset", "models", "churn-train").out
    head = "versions that depend on churn-train (also known as train.csv: the same bytes)"
    assert models.splitlines()[0] == head
    assert re.search(rf"base/1\s+direct\s+train:train\.csv@{digest[:12]}", models)
    assert re.search(r"tuned/1\s+descendant\s+base/1", models)
    impact = run.ok("dataset", "impact", "churn-train").out
    assert impact.splitlines()[0] == (
        "retiring churn-train (also known as train.csv) would flag 4 versions data-retired"
    )
    markdown = run.ok("dataset", "impact", "train.csv", "--markdown").out
    assert "The same bytes are recorded as `churn-train`, `train.csv`" in markdown


def test_models_dry_run_and_retirement_flag_the_same_versions(run: CLI) -> None:
    two_names(run)
    models = run.json("dataset", "models", "churn-train")
    assert sorted(r["version"] for r in models) == ["base/1", "churn/1", "churn/2", "tuned/1"]
    dry = run.ok("dataset", "retire", "churn-train", "--reason", REASON, "--dry-run").out
    assert dry.splitlines()[0].startswith(
        "dry run: retiring churn-train (also known as train.csv) would flag 4 versions"
    )
    report = run.json("dataset", "retire", "churn-train", "--reason", REASON)
    assert report["versions"] == models
    assert retired_refs(run) == sorted(r["version"] for r in models)
    assert {(d["name"], d["retired_reason"], d["reason"]) for d in report["datasets"]} == {
        ("churn-train", REASON, REASON),
        ("train.csv", REASON, REASON),
    }
    assert [d["retired_reason"] for d in run.json("datasets")] == [REASON, REASON]
    out = run.ok("dataset", "impact", "train.csv").out
    assert out.splitlines()[0] == (
        f"train.csv (also known as churn-train) is retired: 4 versions flagged data-retired;"
        f" reason: {REASON}"
    )
    assert run.fails(1, "dataset", "retire", "train.csv", "--reason", "again").startswith(
        "error: dataset 'train.csv' is already retired"
    )


# -- pulling flagged versions ----------------------------------------------------------------


def test_pull_of_a_flagged_version_warns_in_one_line_and_pulls(run: CLI) -> None:
    three_generations(run)
    run.ok("dataset", "retire", "churn-train", "--reason", REASON)
    result = run.ok("pull", "churn-small@production", "-o", "out")
    [line] = result.err.splitlines()
    assert line.startswith("warning: churn-small/1 is flagged data-retired")
    assert "Warning" not in result.err
    assert Path("out/model.bin").read_text() == "content\n"
    assert "churn-small/1: 1 file in" in result.out

    quiet = run.ok("pull", "fraud/1", "-o", "fraud", "--strict")
    assert quiet.err == ""


def test_pull_warns_under_a_progress_bar_too(run: CLI, monkeypatch: pytest.MonkeyPatch) -> None:
    three_generations(run)
    run.ok("dataset", "retire", "churn-train", "--reason", REASON)
    monkeypatch.setattr(cli_versions, "PROGRESS_THRESHOLD", 0)
    err = run.ok("pull", "churn/2", "-o", "out").err
    assert "pulling churn/2" in err
    assert [ln for ln in err.splitlines() if ln.startswith("warning: ")] != []


def test_pull_strict_refuses_a_flagged_version_and_writes_nothing(run: CLI) -> None:
    three_generations(run)
    run.ok("dataset", "retire", "churn-train", "--reason", REASON)
    err = run.fails(1, "pull", "churn/1", "-o", "strict-out", "--strict")
    assert "churn/1 is flagged data-retired" in err
    assert "strict" in err
    target = Path("strict-out")
    assert not target.exists() or not any(target.rglob("*"))


# -- evaluations -----------------------------------------------------------------------------


def test_evaluate_records_and_evaluations_lists_them(run: CLI) -> None:
    three_generations(run)
    holdout = sha256(write("holdout.csv", "x,y\n5,1\n"))
    write("eval/october.csv", "x,y\n6,0\n")
    out = run.ok(
        "evaluate",
        "churn/2",
        "--dataset",
        "holdout.csv,name=holdout",
        "--metric",
        "accuracy=0.91",
        "--metric",
        "f1=0.8",
    ).out
    assert out == f"churn/2 on holdout@{holdout[:12]}: accuracy=0.91, f1=0.8\n"
    recorded = run.json("evaluate", "churn", "--dataset", "eval", "--metric", "accuracy=1")
    assert recorded["version"] == "churn/2"
    assert recorded["dataset"]["name"] == "eval"

    found = run.json("evaluations", "churn/2")
    assert [(e["dataset"]["name"], e["metrics"]) for e in found] == [
        ("holdout", {"accuracy": 0.91, "f1": 0.8}),
        ("eval", {"accuracy": 1.0}),
    ]
    assert found[0]["dataset"]["digest"] == holdout
    table = run.ok("evaluations", "churn/2").out
    assert re.search(rf"holdout@{holdout[:12]}\s+accuracy=0\.91, f1=0\.8", table)
    assert "eval@" in table
    assert run.json("evaluations", "churn/1") == []
    assert "no evaluations of churn/1" in run.ok("evaluations", "churn/1").out


def evaluated_twice(run: CLI) -> tuple[str, str]:
    """churn/1 and churn/2 on holdout (digest A), then churn/1 again on changed data (B)."""
    write("model.bin")
    run.ok("register", "churn", "model.bin")
    run.ok("register", "churn", "model.bin")
    first = sha256(write("holdout.csv", "x,y\n1,0\n"))
    holdout = ("--dataset", "holdout.csv,name=holdout")
    run.ok("evaluate", "churn/1", *holdout, "--metric", "accuracy=0.90", "--metric", "loss=0.3")
    run.ok("evaluate", "churn/2", *holdout, "--metric", "accuracy=0.95", "--metric", "loss=0.2")
    second = sha256(write("holdout.csv", "x,y\n1,0\n2,1\n"))
    run.ok("evaluate", "churn/1", *holdout, "--metric", "accuracy=0.99")
    return first, second


def test_leaderboard_ranks_on_exactly_one_digest(run: CLI) -> None:
    first, second = evaluated_twice(run)
    on_first = ("--dataset", f"holdout@{first[:12]}")
    board = run.json("leaderboard", "churn", *on_first, "--metric", "accuracy")
    assert board["digest"] == first
    assert [(r["rank"], r["version"], r["value"]) for r in board["ranking"]] == [
        (1, "churn/2", 0.95),
        (2, "churn/1", 0.90),  # its 0.99 was on another digest
    ]
    lower = run.json("leaderboard", "churn", *on_first, "--metric", "loss", "--lower-is-better")
    assert [r["version"] for r in lower["ranking"]] == ["churn/2", "churn/1"]
    lower = run.json("leaderboard", "churn", *on_first, "--metric", "accuracy", "--lower-is-better")
    assert [r["version"] for r in lower["ranking"]] == ["churn/1", "churn/2"]

    newest = run.json("leaderboard", "churn", "--dataset", "holdout", "--metric", "accuracy")
    assert newest["digest"] == second
    assert [(r["version"], r["value"]) for r in newest["ranking"]] == [("churn/1", 0.99)]

    out = run.ok("leaderboard", "churn", *on_first, "--metric", "accuracy").out
    assert out.splitlines()[0] == f"churn: accuracy on holdout@{first[:12]} (higher is better)"
    assert re.search(r"1\s+churn/2\s+0\.95\s+\d{4}-\d\d-\d\d", out)
    assert re.search(r"2\s+churn/1\s+0\.9\s", out)
    assert "0.99" not in out
    assert first in out
    out = run.ok("leaderboard", "churn", *on_first, "--metric", "loss", "--lower-is-better").out
    assert "(lower is better)" in out


def test_trend_lists_the_points_over_time(run: CLI) -> None:
    first, _ = evaluated_twice(run)
    on_first = ("--dataset", f"holdout@{first[:12]}")
    series = run.json("trend", "churn", *on_first, "--metric", "accuracy")
    assert series["digest"] == first
    assert [(p["version"], p["value"]) for p in series["points"]] == [
        ("churn/1", 0.90),
        ("churn/2", 0.95),
    ]
    out = run.ok("trend", "churn", *on_first, "--metric", "accuracy").out
    assert out.splitlines()[0] == f"churn: accuracy on holdout@{first[:12]}"
    assert out.index("churn/1") < out.index("churn/2")
    assert re.search(r"churn/2\s+0\.95\s+\+0\.05", out)
    assert run.json("trend", "churn", *on_first, "--metric", "f1")["points"] == []
    assert "no evaluation" in run.ok("trend", "churn", *on_first, "--metric", "f1").out


# -- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "args", "mentions"),
    [
        (2, ["evaluate", "churn/1", "--dataset", "holdout.csv", "--metric", "x=notanumber"], "x"),
        (2, ["evaluate", "churn/1", "--dataset", "holdout.csv"], "--metric"),
        (2, ["evaluate", "churn/1", "--metric", "x=1"], "--dataset"),
        (2, ["evaluate", "churn/1", "--dataset", "gone.csv", "--metric", "x=1"], "gone.csv"),
        (
            2,
            ["evaluate", "churn/1", "--dataset", "holdout.csv,role=test", "--metric", "x=1"],
            "role",
        ),
        (2, ["evaluate", "Churn/1", "--dataset", "holdout.csv", "--metric", "x=1"], "Churn"),
        (1, ["evaluate", "churn/9", "--dataset", "holdout.csv", "--metric", "x=1"], "churn/9"),
        (
            1,
            ["evaluate", "churn/1", "--dataset", "train.csv,name=churn-train", "--metric", "x=1"],
            "retired",
        ),
        (2, ["dataset", "retire", "churn-train"], "--reason"),
        (2, ["dataset", "retire", "churn-train", "--reason", ""], "needs a reason"),
        (2, ["dataset", "retire", "churn-train", "--reason", "   "], "needs a reason"),
        (2, ["dataset", "retire", "Bad Name", "--reason", REASON], "Bad Name"),
        (2, ["dataset", "retire", "churn-train@xyz", "--reason", REASON], "hex"),
        (2, ["dataset", "impact", "churn-train", "--json", "--markdown"], "--markdown"),
        (1, ["dataset", "retire", "nope", "--reason", REASON], "dataset 'nope' not found"),
        (1, ["dataset", "retire", "nope", "--reason", REASON, "--dry-run"], "'nope' not found"),
        (1, ["dataset", "impact", "nope"], "dataset 'nope' not found"),
        (1, ["leaderboard", "churn", "--dataset", "nope", "--metric", "accuracy"], "nope"),
        (1, ["leaderboard", "churn", "--dataset", "churn-train", "--metric", "f1"], "f1"),
        (1, ["leaderboard", "nope", "--dataset", "churn-train", "--metric", "f1"], "nope"),
        (2, ["leaderboard", "churn", "--dataset", "churn-train"], "--metric"),
        (2, ["leaderboard", "churn", "--dataset", "churn-train", "--metric", "b@d"], "b@d"),
        (2, ["trend", "churn", "--dataset", "Bad Name", "--metric", "f1"], "Bad Name"),
        (1, ["trend", "churn", "--dataset", "nope", "--metric", "f1"], "nope"),
        (1, ["pull", "churn/1", "--strict", "-o", "out"], "strict"),
    ],
)
def test_errors_are_one_line_with_the_right_exit_code(
    run: CLI, code: int, args: list[str], mentions: str
) -> None:
    write("holdout.csv", "x\n1\n")
    three_generations(run)
    run.ok("dataset", "retire", "churn-train", "--reason", REASON)
    result = run(*args)
    assert result.code == code, result
    assert mentions in result.err
    assert result.out == ""


def test_usage_errors_do_not_create_the_registry(run: CLI) -> None:
    write("holdout.csv")
    run.fails(2, "dataset", "retire", "churn-train", "--reason", " ")
    run.fails(2, "evaluate", "churn/1", "--dataset", "holdout.csv", "--metric", "x=high")
    run.fails(2, "leaderboard", "churn", "--dataset", "d", "--metric", "b@d")
    assert not run.registry.exists()


def test_output_fits_a_narrow_terminal(run: CLI, monkeypatch: pytest.MonkeyPatch) -> None:
    three_generations(run)
    write("holdout.csv")
    run.ok("evaluate", "churn/2", "--dataset", "holdout.csv", "--metric", "accuracy=0.9")
    run.ok("evaluate", "churn/1", "--dataset", "holdout.csv", "--metric", "accuracy=0.8")
    monkeypatch.setenv("COLUMNS", "48")
    out = run.ok("dataset", "retire", "churn-train", "--reason", REASON).out
    outputs = [out]
    for args in (
        ["dataset", "impact", "churn-train"],
        ["versions", "churn"],
        ["show", "churn/1"],
        ["evaluations", "churn/2"],
        ["leaderboard", "churn", "--dataset", "holdout.csv", "--metric", "accuracy"],
        ["trend", "churn", "--dataset", "holdout.csv", "--metric", "accuracy"],
    ):
        outputs.append(run.ok(*args).out)
    for text in outputs:
        widest = max(len(line.rstrip()) for line in text.splitlines())
        assert widest <= 48, text
