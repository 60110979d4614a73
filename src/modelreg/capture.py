"""What made a model, captured without user code: the code, the command and the environment."""

from __future__ import annotations

import functools
import getpass
import hashlib
import json
import os
import platform
import re
import shlex
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MAX_UNTRACKED = 200


def command_line() -> str:
    return shlex.join(sys.argv) if sys.argv and sys.argv[0] else ""


def hostname() -> str:
    return socket.gethostname()


def user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid:{os.getuid()}"


@dataclass(frozen=True)
class ProcessFacts:
    """Who ran what where: recorded on runs, from the process that trains."""

    hostname: str
    user: str
    command: str

    def to_dict(self) -> dict[str, str]:
        return {"hostname": self.hostname, "user": self.user, "command": self.command}


def process_facts() -> ProcessFacts:
    return ProcessFacts(hostname(), user(), command_line())


def _git(root: Path, *args: str) -> str | None:
    out = _git_bytes(root, *args)
    return None if out is None else out.decode("utf-8", "replace")


def _git_bytes(root: Path, *args: str) -> bytes | None:
    try:
        done = subprocess.run(
            ["git", "-C", str(root), *args],
            capture_output=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0:
        return None
    return done.stdout


def find_repository(cwd: str | os.PathLike[str] | None = None) -> Path | None:
    folder = os.path.abspath(cwd or os.getcwd())
    while True:
        if os.path.exists(os.path.join(folder, ".git")):
            return Path(folder)
        parent = os.path.dirname(folder)
        if parent == folder:
            return None
        folder = parent


_CREDENTIALS = re.compile(r"^(?P<scheme>[a-z][a-z0-9+.-]*://)[^/@]*@", re.IGNORECASE)


def clean_url(url: str) -> str:
    """Drop any user name or password from a remote URL before it is stored."""
    return _CREDENTIALS.sub(r"\g<scheme>", url.strip())


def capture_code(cwd: str | os.PathLike[str] | None = None) -> tuple[dict[str, Any], bytes | None]:
    """Return (code facts, uncommitted diff) for the git repository holding ``cwd``.

    Outside a repository, or without git, the facts are ``{}`` and the diff is None.
    """
    root = find_repository(cwd)
    if root is None:
        return {}, None
    status = _git(root, "status", "--porcelain=v2", "--branch", "--untracked-files=normal")
    if status is None:
        return {}, None
    commit: str | None = None
    branch: str | None = None
    changed = False
    untracked: list[str] = []
    for line in status.splitlines():
        if line.startswith("# branch.oid "):
            oid = line.split(" ", 2)[2]
            commit = None if oid == "(initial)" else oid
        elif line.startswith("# branch.head "):
            head = line.split(" ", 2)[2]
            branch = None if head == "(detached)" else head
        elif line.startswith("? "):
            untracked.append(line[2:])
        elif line and not line.startswith("#"):
            changed = True
    remote = _git(root, "config", "--get", "remote.origin.url")
    diff: bytes | None = None
    if changed and commit is not None:
        # Bytes as git wrote them: a diff of non-UTF-8 files must still apply.
        diff = _git_bytes(root, "diff", "HEAD", "--binary") or None
    code: dict[str, Any] = {
        "repository": clean_url(remote) if remote else str(root),
        "commit": commit,
        "branch": branch,
        "dirty": changed or bool(untracked),
        "untracked": untracked[:MAX_UNTRACKED],
    }
    return code, diff


def _packages() -> tuple[tuple[str, str], ...]:
    from importlib import metadata

    found: dict[str, str] = {}
    for dist in metadata.distributions():
        name = dist.name
        if name:
            found.setdefault(_normalise(name), dist.version)
    return tuple(sorted(found.items()))


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class Environment:
    """The environment facts, their canonical JSON text and its digest."""

    data: dict[str, Any]
    text: str
    digest: str


def environment(data: dict[str, Any]) -> Environment:
    """An environment from its facts, with the canonical text and digest they hash to."""
    text = json.dumps(data, sort_keys=True)
    return Environment(data, text, hashlib.sha256(text.encode()).hexdigest())


@functools.lru_cache(maxsize=1)
def capture_environment() -> Environment:
    """Python, platform and installed packages of this process (read once per process)."""
    data = {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "executable": sys.executable,
        "platform": platform.platform(),
        "system": platform.system(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "packages": dict(_packages()),
    }
    return environment(data)
