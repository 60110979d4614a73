"""How the command line lays out what it prints: help that names arguments as a person types
them, and tables that never split a number or a ``key=value`` pair across lines."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
import typer

from modelreg.cli import app, main
from modelreg.cli.support import Command
from test_cli import CLI, write
from test_cli import run as run  # the fixture, shared

# -- help --------------------------------------------------------------------------------


def _commands(command: Any = None, ctx: typer.Context | None = None) -> Iterator[typer.Context]:
    """A context for every command and group of the app, depth first."""
    if command is None:
        command = typer.main.get_command(app)
        ctx = typer.Context(command, info_name="modelreg")
    assert ctx is not None
    yield ctx
    for name in getattr(command, "list_commands", lambda _: [])(ctx):
        sub = command.get_command(ctx, name)
        yield from _commands(sub, typer.Context(sub, info_name=name, parent=ctx))


def test_usage_and_help_name_arguments_by_their_metavar(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "100")
    assert main(["register", "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Usage: modelreg register [OPTIONS] NAME PATH...\n")
    assert re.search(r"^  NAME +The model's name", out, re.MULTILINE), out
    assert re.search(r"^  PATH\.\.\. +Files or directories", out, re.MULTILINE), out

    assert main(["search", "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Usage: modelreg search [OPTIONS] [FILTER]\n")
    assert re.search(r"^  FILTER +A filter", out, re.MULTILINE), out

    assert main(["server", "--help"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^  --port PORT +Port to listen on", out, re.MULTILINE), out


def test_no_help_shows_a_python_type_or_braces() -> None:
    """Every command, however it is added later, gets the same help (``support.Command``):
    ``NAME``, not ``NAME <str>`` nor ``{NAME}``; ``--port PORT``, not ``--port <int range>``."""
    seen = 0
    for ctx in _commands():
        if ctx.parent is None or hasattr(ctx.command, "list_commands"):
            continue  # the root and the groups: their usage is COMMAND [ARGS]...
        assert isinstance(ctx.command, Command), ctx.command_path
        text = ctx.get_help()
        assert not re.search(r"<[a-z][^>]*>", text), (ctx.command_path, text)
        usage = text.splitlines()[0]
        assert "{" not in usage, usage
        assert "<" not in usage, usage
        seen += 1
    assert seen > 50


# -- tables ------------------------------------------------------------------------------

METRICS = {
    "train_accuracy": 0.982405,
    "train_f1": 0.985981,
    "train_loss": 0.0678869,
    "val_accuracy": 0.973684,
}
TAGS = {"dataset": "breast_cancer", "framework": "scikit-learn", "team": "diagnostics"}


@pytest.fixture
def demo_like(run: CLI) -> CLI:
    """Versions shaped like the demo's, whose table split ``train_accuracy=0`` / ``.9824``."""
    write("model.skops")
    write("holdout.csv", "a\n")
    for n in range(1, 4):
        args = ["register", "cancer-classifier", "model.skops"]
        for key, value in METRICS.items():
            args += ["--metric", f"{key}={value - n / 1000}"]
        for key, value in TAGS.items():
            args += ["--tag", f"{key}={value}"]
        run.ok(*args)
    run.ok("alias", "set", "cancer-classifier", "production", "cancer-classifier/2")
    run.ok("alias", "set", "cancer-classifier", "staging", "cancer-classifier/3")
    metrics = ["--metric", "accuracy=0.964912", "--metric", "f1=0.972603"]
    run.ok("evaluate", "cancer-classifier/3", "--dataset", "holdout.csv", *metrics)
    return run


def _lines(out: str, width: int) -> list[str]:
    lines = out.splitlines()
    assert lines, out
    assert max(len(line.rstrip()) for line in lines) <= width, out
    return lines


def _whole(token: str, lines: list[str]) -> bool:
    """Whether ``token`` is printed whole on one line, between spaces or at the line's ends."""
    pattern = rf"(?:^|\s){re.escape(token)}(?:\s|$|,)"
    return any(re.search(pattern, line) for line in lines)


@pytest.mark.parametrize("width", [80, 100, 64, 40])
def test_version_listings_keep_every_metric_whole(
    demo_like: CLI, monkeypatch: pytest.MonkeyPatch, width: int
) -> None:
    monkeypatch.setenv("COLUMNS", str(width))
    shown = demo_like.json("versions", "cancer-classifier")
    for args in (["versions", "cancer-classifier"], ["search", ""]):
        lines = _lines(demo_like.ok(*args).out, width)
        for version in shown:
            for key, value in list(version["metrics"].items())[:3]:
                assert _whole(f"{key}={value:.4g}", lines), (width, key, "\n".join(lines))
            assert _whole(version["ref"], lines)
        # A tag is shown whole, or cut with "..." when the terminal is narrow; never folded
        # onto the next line.
        tags = {f"{k}={v}" for k, v in TAGS.items()}
        for word in (w for line in lines for w in line.split()):
            if word.split("=")[0] in TAGS:
                cut = word.endswith("…") and any(t.startswith(word[:-1]) for t in tags)
                assert word in tags or cut, (word, "\n".join(lines))


def test_at_80_columns_the_demo_like_tables_fit_and_split_no_number(
    demo_like: CLI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    lines = _lines(demo_like.ok("versions", "cancer-classifier").out, 80)
    # The table itself, not the narrow-terminal fallback: a header row and one row a version.
    assert re.match(r"ref +created +aliases +metrics +tags", lines[0]), lines
    assert _whole("production", lines)
    assert _whole("staging", lines)

    lines = _lines(demo_like.ok("models").out, 80)
    assert _whole("production->2,", lines)
    assert _whole("staging->3", lines)

    lines = _lines(demo_like.ok("evaluations", "cancer-classifier/3").out, 80)
    for token in ("accuracy=0.964912", "f1=0.972603", "cancer-classifier/3", "holdout.csv"):
        assert _whole(token, lines), (token, "\n".join(lines))

    lines = _lines(demo_like.ok("compare", "cancer-classifier/1", "cancer-classifier/3").out, 80)
    for value in ("0.981405", "0.979405", "-0.002"):
        assert _whole(value, lines), (value, "\n".join(lines))

    lines = _lines(demo_like.ok("show", "cancer-classifier/3").out, 80)
    assert _whole("0.979405", lines)


def test_a_terminal_too_narrow_for_the_table_gets_a_block_a_version(
    demo_like: CLI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "48")
    lines = _lines(demo_like.ok("versions", "cancer-classifier").out, 48)
    assert lines[0].startswith("cancer-classifier/3  ")
    assert "staging" in lines[0]
    assert lines[1].startswith("  train_accuracy=0.9794  ")


# -- the command that runs ---------------------------------------------------------------


def test_the_app_built_for_one_command_prints_what_the_whole_app_prints(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``main`` builds only the command its arguments name (``cli.command_for``); every help
    page and usage error reads the same as from the whole app."""
    import modelreg.cli

    monkeypatch.setenv("COLUMNS", "100")
    monkeypatch.delenv("MODELREG_URI", raising=False)
    whole = typer.main.get_command(app)
    calls = [[*ctx.command_path.split()[1:], "--help"] for ctx in _commands()]
    calls += [["show"], ["alias", "set", "churn"], ["--registry", "r", "show"], ["shwo"]]
    calls += [["--registry=r", "tag", "set", "--nope"], ["versions", "--limit", "0", "m"]]
    for args in calls:
        code = main(args)
        printed = capsys.readouterr()
        with monkeypatch.context() as patched:
            patched.setattr(modelreg.cli, "command_for", lambda _: whole)
            assert main(args) == code, args
        assert capsys.readouterr() == printed, args
    built = modelreg.cli.command_for(["--registry", "r", "show", "churn/1"])
    assert list(built.commands) == ["show"]
    built = modelreg.cli.command_for(["tag", "set", "churn/1", "k", "v"])
    assert list(built.commands) == ["tag"]
    assert len(modelreg.cli.command_for(["--help"]).commands) == len(whole.commands)
