"""The README runs as written: its Python blocks in order as one script, then its shell blocks,
in a new directory holding the files the README says a reader has.

A block preceded by ``<!-- not run: why -->`` is shown only (the set-up commands are what CI
itself runs; the team server's block needs a real S3 account's credentials); every other
```python and ```bash block runs here and must succeed.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCK = re.compile(r"(<!-- not run: [^>]+-->\n+)?```(python|bash)\n(.*?)```", re.DOTALL)


def blocks(language: str) -> list[str]:
    found = BLOCK.findall(README.read_text(encoding="utf-8"))
    return [code for skip, lang, code in found if lang == language and not skip]


def run(argv: list[str], cwd: Path, env: dict[str, str], what: str) -> str:
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{what} failed:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    return done.stdout


@pytest.fixture
def reader(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A new directory with a model file and its data, and a home of its own."""
    work = tmp_path / "work"
    (work / "data").mkdir(parents=True)
    (work / "model.skops").write_bytes(b"a trained model's bytes\n")
    (work / "data" / "train.csv").write_text("x,y\n1,0\n2,1\n3,1\n")
    (work / "data" / "holdout.csv").write_text("x,y\n4,1\n5,0\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELREG_")}
    bin_dir = str(Path(sys.executable).parent)
    env |= {
        "HOME": str(tmp_path / "home"),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
        "PATH": f"{bin_dir}{os.pathsep}{env.get('PATH', '')}",
        "COLUMNS": "100",
    }
    return work, env


def test_the_readme_has_its_examples_marked_to_run():
    assert len(blocks("python")) >= 5
    assert len(blocks("bash")) >= 1
    assert "<!-- not run:" in README.read_text(encoding="utf-8")


def test_the_readmes_python_then_its_shell_blocks_run_in_order(reader):
    work, env = reader
    script = work / "readme.py"
    script.write_text("\n".join(blocks("python")), encoding="utf-8")
    run([sys.executable, str(script)], work, env, "the README's Python blocks")
    assert (work / "deploy" / "model.skops").read_bytes() == b"a trained model's bytes\n"

    for number, code in enumerate(blocks("bash"), start=1):
        out = run(["bash", "-euo", "pipefail", "-c", code], work, env, f"shell block {number}")
    # The last block ends with `modelreg fsck` on the registry the blocks filled.
    assert "ok" in out.lower()
