"""The CLI reference is generated from the code, and every command explains itself."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent
GENERATOR = ROOT / "scripts" / "gen_cli_docs.py"
REFERENCE = ROOT / "docs" / "cli.md"


@pytest.fixture(scope="module")
def gen() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_cli_docs", GENERATOR)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("gen_cli_docs", module)
    spec.loader.exec_module(module)
    return module


def test_cli_reference_is_up_to_date(gen: ModuleType) -> None:
    expected = gen.render()
    actual = REFERENCE.read_text(encoding="utf-8") if REFERENCE.exists() else ""
    assert actual == expected, (
        "docs/cli.md does not match the commands in src/modelreg/cli/:"
        " run `python scripts/gen_cli_docs.py` and commit the result"
    )


def test_every_command_and_parameter_has_help(gen: ModuleType) -> None:
    missing = []
    for ctx in gen.walk():
        if not (ctx.command.help or "").strip():
            missing.append(ctx.command_path)
        for param in ctx.command.get_params(ctx):
            if param.name != "help" and not (getattr(param, "help", None) or "").strip():
                missing.append(f"{ctx.command_path} {param.name}")
    assert not missing, f"commands or parameters without help text: {missing}"


def test_reference_lists_every_command(gen: ModuleType) -> None:
    text = REFERENCE.read_text(encoding="utf-8")
    paths = [ctx.command_path for ctx in gen.walk()]
    assert len(paths) > 20
    for path in paths[1:]:
        assert f"`{path}`" in text
    for form in ("modelreg pull", "modelreg audit verify", "modelreg dataset models"):
        assert form in paths


def test_check_mode_reports_a_stale_reference(
    gen: ModuleType,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    stale = tmp_path / "cli.md"
    stale.write_text("# out of date\n", encoding="utf-8")
    monkeypatch.setattr(gen, "OUTPUT", stale)
    assert gen.main(["--check"]) == 1
    assert "run python scripts/gen_cli_docs.py" in capsys.readouterr().err
    assert gen.main([]) == 0
    assert gen.main(["--check"]) == 0
    assert stale.read_text(encoding="utf-8") == gen.render()
