"""scripts/bootstrap says what it is doing, one line a step, and keeps pip's output in a log.

The script runs unchanged on a copy of itself beside a small stand-in project (a
``pyproject.toml`` whose in-tree build backend writes a wheel with no code), with pip held to
a local folder of wheels (``PIP_NO_INDEX``): the virtualenv, the pip upgrade and the install
are real, and take seconds instead of the minutes that modelreg's dependencies take.
"""

from __future__ import annotations

import os
import pty
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# An in-tree build backend: a wheel that holds only its metadata, with the project's
# dependencies read from pyproject.toml. `python backend.py NAME DIR` writes one for NAME.
BACKEND = """
import base64, hashlib, sys, tomllib, zipfile
from pathlib import Path


def wheel(directory, name, requires=()):
    dist = f"{name.replace('-', '_')}-0.dist-info"
    metadata = f"Metadata-Version: 2.1\\nName: {name}\\nVersion: 0\\n"
    metadata += "Provides-Extra: sklearn\\nProvides-Extra: dev\\n"
    metadata += "".join(f"Requires-Dist: {r}\\n" for r in requires)
    files = {
        f"{dist}/METADATA": metadata,
        f"{dist}/WHEEL": "Wheel-Version: 1.0\\nGenerator: test\\nRoot-Is-Purelib: true\\n"
        "Tag: py3-none-any\\n",
    }
    def digest(text):
        raw = hashlib.sha256(text.encode()).digest()
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
    record = [f"{path},sha256={digest(text)},{len(text.encode())}" for path, text in files.items()]
    files[f"{dist}/RECORD"] = "\\n".join([*record, f"{dist}/RECORD,,"]) + "\\n"
    filename = f"{dist[: -len('.dist-info')]}-py3-none-any.whl"
    with zipfile.ZipFile(Path(directory) / filename, "w") as archive:
        for path, text in files.items():
            archive.writestr(path, text)
    return filename


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    project = tomllib.loads(Path("pyproject.toml").read_text())["project"]
    return wheel(wheel_directory, project["name"], project.get("dependencies", []))


build_editable = build_wheel

if __name__ == "__main__":
    wheel(sys.argv[2], sys.argv[1])
"""


def _pyproject(dependencies: list[str]) -> str:
    listed = ", ".join(f'"{d}"' for d in dependencies)
    return (
        '[build-system]\nrequires = []\nbuild-backend = "backend"\nbackend-path = ["."]\n'
        f'[project]\nname = "modelreg"\nversion = "0"\ndependencies = [{listed}]\n'
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A stand-in project with scripts/bootstrap, needing one package from ``wheels/``."""
    root = tmp_path / "project"
    (root / "scripts").mkdir(parents=True)
    shutil.copy2(ROOT / "scripts" / "bootstrap", root / "scripts" / "bootstrap")
    (root / "backend.py").write_text(BACKEND)
    (root / "pyproject.toml").write_text(_pyproject(["modelreg-stand-in-dependency"]))
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    made = [sys.executable, "backend.py", "modelreg-stand-in-dependency", str(wheels)]
    subprocess.run(made, cwd=root, check=True)
    return root


def _environment(project: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "VIRTUAL_ENV"))}
    env.update(
        PYTHON=sys.executable,
        PIP_NO_INDEX="1",
        PIP_FIND_LINKS=str(project.parent / "wheels"),
        PIP_CONFIG_FILE=os.devnull,  # no index or links from this machine's pip.conf
        PIP_NO_CACHE_DIR="1",
    )
    return env


def change_dependencies(project: Path, dependencies: list[str]) -> None:
    """Rewrite pyproject.toml, newer than the install's stamp even on a coarse clock."""
    pyproject = project / "pyproject.toml"
    pyproject.write_text(_pyproject(dependencies))
    later = (project / ".venv" / ".installed[sklearn]").stat().st_mtime + 10
    os.utime(pyproject, (later, later))


def bootstrap(project: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["scripts/bootstrap"],
        cwd=project,
        env=_environment(project),
        capture_output=True,
        text=True,
        timeout=300,
    )


def on_a_terminal(project: Path) -> str:
    """What scripts/bootstrap writes to a terminal (a pseudo-terminal here)."""
    leader, follower = pty.openpty()
    with subprocess.Popen(
        ["scripts/bootstrap"],
        cwd=project,
        env=_environment(project),
        stdin=subprocess.DEVNULL,
        stdout=follower,
        stderr=follower,
    ) as process:
        os.close(follower)
        chunks = []
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # the terminal closed: the script and pip have ended
                break
            if not chunk:
                break
            chunks.append(chunk)
        assert process.wait(timeout=300) == 0, b"".join(chunks).decode()
    os.close(leader)
    return b"".join(chunks).decode().replace("\r\n", "\n")


def test_bootstrap_says_each_step_on_one_line_and_keeps_pips_output_in_a_log(
    project: Path,
) -> None:
    # A first run on a terminal: one line a step; pip's progress rewrites one line in place
    # ("\r", then erase to the line's end), erased again before the next step's line.
    shown = on_a_terminal(project)
    assert "\r\x1b[K    fetching package 1: modelreg_stand_in_dependency" in shown
    assert "\r\x1b[K    installing 2 packages" in shown
    # (split at "\n" only: str.splitlines would split at each "\r" too)
    lines = [line.rsplit("\r\x1b[K", 1)[-1] for line in shown.removesuffix("\n").split("\n")]
    python = f"Python {sys.version_info.major}.{sys.version_info.minor}"
    assert lines[0].startswith(f"==> Creating the virtualenv .venv with {python}")
    assert lines[1:4] == [
        "==> Upgrading pip in .venv",
        "==> Installing modelreg[sklearn] and its dependencies into .venv",
        "    (a minute or two on a fresh machine; pip's log is .venv/install.log)",
    ]
    assert re.fullmatch(
        r"==> Installed modelreg\[sklearn\] in \d+ s \(2 packages installed or updated\)",
        lines[4],
    )
    assert len(lines) == 5, shown
    assert all(len(line) <= 80 for line in lines[1:])  # no step wraps on a small terminal
    log = (project / ".venv" / "install.log").read_text()
    assert "Successfully installed modelreg-0 modelreg-stand-in-dependency-0" in log
    # Installed and up to date: one line, nothing run.
    again = bootstrap(project)
    assert (again.returncode, again.stderr) == (0, "")
    assert again.stdout == "==> modelreg[sklearn] is installed in .venv and up to date\n"
    # pyproject.toml changed: installed again; not on a terminal, no progress line at all.
    change_dependencies(project, [])
    again = bootstrap(project)
    assert (again.returncode, again.stderr) == (0, "")
    said = again.stdout.splitlines()
    assert said[:2] == lines[2:4]
    assert said[2].startswith("==> Installed modelreg[sklearn] in ")
    assert len(said) == 3, again.stdout
    assert "\r" not in again.stdout
    # pip fails: the end of its output, then where the rest is; not marked installed.
    change_dependencies(project, ["modelreg-missing-dependency"])
    failed = bootstrap(project)
    assert failed.returncode == 1
    assert "No matching distribution found for modelreg-missing-dependency" in failed.stderr
    assert failed.stderr.endswith(
        "==> pip failed (exit 1); its whole output is in .venv/install.log\n"
    )
    assert failed.stdout.splitlines()[0].startswith("==> Installing modelreg[sklearn]")
    assert bootstrap(project).returncode == 1  # tried again, not taken as installed
