"""What made a model, captured without user code: the code, the command and the environment.

The command line is recorded so that it runs again from a checkout of the repository in a
virtualenv holding the same packages (see :func:`runnable`). Every reader of a registry sees
what is captured. A command line argument that looks like it holds a secret
(``--password X``, ``token=X``, a URL's password, a GitHub or OpenAI key) is recorded masked
as ``***`` and named in a :class:`SecretInCommandWarning`; with
``MODELREG_COMMAND_REDACTION=keep`` it is recorded as is (still with the warning). The
uncommitted diff is stored as it is.
"""

from __future__ import annotations

import contextlib
import functools
import getpass
import hashlib
import itertools
import json
import os
import platform
import re
import shlex
import socket
import subprocess
import sys
import sysconfig
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelreg.errors import InvalidInput, SecretInCommandWarning

MAX_UNTRACKED = 200


# -- secrets on the command line ---------------------------------------------------------------

REDACTION = "MODELREG_COMMAND_REDACTION"
REDACTIONS = ("mask", "keep")
MASK = "***"

# Whole words of an option or key name (split on - _ . and camel case), so that --tokenizer,
# --max-tokens and --author are not secrets while --hf-token, apiKey and db.password are.
_SECRET_WORDS = frozenset(
    {"password", "passwd", "pwd", "passphrase", "secret", "token", "credential"}
    | {"credentials", "auth", "apikey"}
)
_SECRET_PAIRS = frozenset({("api", "key"), ("access", "key"), ("private", "key")})
_SECRET_ENDINGS = ("token", "password", "passwd", "secret", "apikey", "accesskey", "privatekey")
# A name ending in one of these says where a secret is or how it is used, not what it is
# (--token-file, --password-env, --auth-type); one with a count word is a number (--max-token);
# one starting with a switch word is a flag (--no-auth, --use-auth-token).
_POINTER_WORDS = frozenset(
    {"file", "path", "dir", "env", "var", "name", "id", "type", "kind", "mode", "method"}
    | {"url", "uri", "endpoint", "host", "server"}
)
_COUNT_WORDS = frozenset({"max", "min", "num", "n", "count", "limit", "length", "len", "size"})
_SWITCH_WORDS = frozenset({"no", "use", "enable", "disable", "with", "without", "skip"})
_NOT_A_SECRET = frozenset({"true", "false", "yes", "no", "none", "null", "0", "1"})

_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")
_OPTION = re.compile(r"--?[A-Za-z][A-Za-z0-9_.-]*")
_ASSIGNMENT = re.compile(
    r"(?P<prefix>--?|\+{0,2})(?P<key>[A-Za-z_][A-Za-z0-9_.-]*)=(?P<value>.*)", re.DOTALL
)
_URL_PASSWORD = re.compile(
    r"(?<![A-Za-z0-9+.-])(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^/@:\s]*:)[^/@\s]+(?=@)"
)
_TOKEN_SHAPES = re.compile(
    r"(?<![A-Za-z0-9_])(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,}"
    r"|xox[abposr]-[A-Za-z0-9-]{10,}|AKIA[0-9A-Z]{16}(?![0-9A-Za-z])|hf_[A-Za-z]{30,}"
    r"|sk-[A-Za-z0-9_-]{32,})"
)
_BEARER = re.compile(r"(?<![A-Za-z])(?P<head>[Bb]earer\s+)[A-Za-z0-9._~+/-]{8,}=*")


def is_secret_name(name: str) -> bool:
    """Whether an option or key named ``name`` (``--hf-token``, ``db.password``) takes a
    secret."""
    words = [w.lower() for part in re.split(r"[-_.+]+", name) for w in _WORD.findall(part)]
    if not words or words[-1] in _POINTER_WORDS or words[0] in _SWITCH_WORDS:
        return False
    if _COUNT_WORDS.intersection(words):
        return False
    return (
        bool(_SECRET_WORDS.intersection(words))
        or any(pair in _SECRET_PAIRS for pair in itertools.pairwise(words))
        or any(w.endswith(_SECRET_ENDINGS) for w in words)
    )


def _is_token(text: str) -> bool:
    """Whether a token-shaped match is one: an ``sk-`` key is random, mixed case and digits
    (a path such as sk-learn-experiments-2024 is not)."""
    if not text.startswith("sk-"):
        return True
    return (
        any(c.isupper() for c in text)
        and any(c.islower() for c in text)
        and any(c.isdigit() for c in text)
    )


def _mask_inside(text: str) -> str:
    """``text`` with a URL's password and well-known token shapes masked."""
    text = _URL_PASSWORD.sub(rf"\g<head>{MASK}", text)
    text = _TOKEN_SHAPES.sub(lambda m: MASK if _is_token(m[0]) else m[0], text)
    return _BEARER.sub(rf"\g<head>{MASK}", text)


def _flag_before(argv: Sequence[str], index: int) -> str | None:
    """The option ``argv[index]`` is the value of (``--password`` in ``--password X``)."""
    if index == 0 or argv[index].startswith("-") or not _OPTION.fullmatch(argv[index - 1]):
        return None
    return argv[index - 1]


def _label(argv: Sequence[str], index: int) -> str:
    """How to name ``argv[index]`` without showing it: its option or key, else its place."""
    flag = _flag_before(argv, index)
    if flag is not None and is_secret_name(flag):  # --password A=B: the option names it
        return flag
    assignment = _ASSIGNMENT.fullmatch(argv[index])
    if assignment is not None:
        prefix, key = assignment["prefix"], assignment["key"]
        return prefix + key if prefix.startswith("-") else f"{key}="
    return flag or f"argument {index}"


def _masked(argv: Sequence[str], index: int) -> str:
    """``argv[index]`` as recorded when masking."""
    arg = argv[index]
    flag = _flag_before(argv, index)
    if flag is not None and is_secret_name(flag) and _is_value(arg):
        return MASK
    head = ""
    for _ in range(3):  # key=value, and a key=value given as an option's value
        assignment = _ASSIGNMENT.fullmatch(arg)
        if assignment is None:
            break
        head, arg = head + arg[: assignment.start("value")], assignment["value"]
        if is_secret_name(assignment["key"]) and _is_value(arg):
            return head + MASK
    return head + _mask_inside(arg)


def _is_value(text: str) -> bool:
    return bool(text) and text.lower() not in _NOT_A_SECRET


def secret_arguments(argv: Sequence[str]) -> dict[int, str]:
    """The arguments of ``argv`` that look like they hold a secret: index -> how to name it
    without its value (its option ``--password``, its key ``token=``, or ``argument 3``).

    >>> secret_arguments(["train.py", "--password", "hunter2", "--tokenizer", "gpt2"])
    {2: '--password'}
    """
    return {i: _label(argv, i) for i in range(len(argv)) if _masked(argv, i) != argv[i]}


def redact(argv: Sequence[str]) -> list[str]:
    """``argv`` with each secret-looking value replaced by ``***``, its option or key kept.

    >>> redact(["train.py", "--password=hunter2", "db=postgresql://me:pw@db/x"])
    ['train.py', '--password=***', 'db=postgresql://me:***@db/x']
    """
    return [_masked(argv, i) for i in range(len(argv))]


def masked_arguments(argv: Sequence[str]) -> dict[int, str]:
    """The arguments of a recorded command that hold a ``***`` mask: index -> name."""
    return {i: _label(argv, i) for i, arg in enumerate(argv) if MASK in arg}


def redaction() -> str:
    """What ``MODELREG_COMMAND_REDACTION`` asks for: ``mask`` (the default) or ``keep``."""
    value = os.environ.get(REDACTION, "").strip().lower() or "mask"
    if value not in REDACTIONS:
        raise InvalidInput(
            f"{REDACTION}={os.environ[REDACTION]!r} is not a valid setting: use mask (the"
            " default: record secret-looking arguments as ***) or keep (record them as is)"
        )
    return value


# -- the command line, as it runs again ------------------------------------------------------


def runnable(argv: Sequence[str]) -> list[str]:
    """``argv`` (this process's ``sys.argv``) as a command that runs again from a checkout of
    the repository, in a virtualenv holding the same packages:

    - a program of the running environment, a file in its ``bin`` directory or a console
      script of an installed distribution, is recorded by its name: ``.venv/bin/modelreg
      demo`` is ``modelreg demo``, found on the PATH of the virtualenv that runs it again;
    - a module run as ``python -m pkg.train`` (whose ``sys.argv[0]`` is the module's file) is
      recorded as ``python -m pkg.train``;
    - a relative path that leads out of the repository (``../data/train.csv``) is made
      absolute: the checkout that runs it again is elsewhere.

    A script started as ``python train.py`` stays ``train.py``, relative to where it ran.
    """
    if not argv or not argv[0]:
        return list(argv)
    repository = find_repository()
    root = os.path.realpath(repository) if repository is not None else None
    head, rest = argv[0], [_resolved(arg, root) for arg in argv[1:]]
    module = _main_module(head)
    if module is not None:
        return ["python", "-m", module, *rest]
    if _installed_program(head, root):
        return [os.path.basename(head), *rest]
    return [_resolved(head, root), *rest]


def _main_module(head: str) -> str | None:
    """The module ``python -m`` ran, when ``head`` is its file."""
    main = sys.modules.get("__main__")
    spec, file = getattr(main, "__spec__", None), getattr(main, "__file__", None)
    if spec is None or not spec.name or not file:
        return None
    if os.path.abspath(head) != os.path.abspath(file):
        return None
    return str(spec.name).removesuffix(".__main__")


def _installed_program(head: str, root: str | None) -> bool:
    """Whether ``head`` is the path of a program the environment installed: a file in its
    scripts directory (a link to one included), or a console script of an installed
    distribution kept outside the repository (pipx, ~/.local/bin)."""
    if os.sep not in head or not os.path.isfile(head):
        return False
    path = os.path.abspath(head)
    scripts = os.path.realpath(sysconfig.get_path("scripts"))
    if scripts in (
        os.path.realpath(os.path.dirname(path)),
        os.path.dirname(os.path.realpath(path)),
    ):
        return True
    if root is not None and inside(path, root):
        return False
    return os.path.basename(path) in _console_scripts()


def _console_scripts() -> set[str]:
    from importlib import metadata

    return {
        ep.name
        for group in ("console_scripts", "gui_scripts")
        for ep in metadata.entry_points(group=group)
    }


def _resolved(arg: str, root: str | None) -> str:
    """``arg`` made absolute when it is a relative path (or an option's ``--x=PATH``) that
    exists and leads out of the repository."""
    if root is None:
        return arg
    option, value = "", arg
    if arg.startswith("-") and "=" in arg:
        option, value = arg.split("=", 1)
        option += "="
    if os.sep not in value or os.path.isabs(value) or not os.path.exists(value):
        return arg
    path = os.path.abspath(value)
    return arg if inside(path, root) else option + path


def inside(path: str, root: str) -> bool:
    """Whether ``path`` is ``root`` or under it, links resolved."""
    real = os.path.realpath(path)
    return real == root or real.startswith(root.rstrip(os.sep) + os.sep)


def recorded_command(*, warn: bool = True) -> str:
    """The command line as the registry records it: runnable again (see :func:`runnable`),
    secret-looking arguments masked unless ``MODELREG_COMMAND_REDACTION=keep``; with
    ``warn``, a SecretInCommandWarning names them."""
    keep = redaction() == "keep"
    argv = runnable(sys.argv) if sys.argv and sys.argv[0] else []
    found = secret_arguments(argv)
    if found and warn:
        names = ", ".join(dict.fromkeys(found.values()))
        if keep:
            message = (
                f"secret-looking arguments on the command line ({names}) are recorded as typed"
                f" ({REDACTION}=keep): every reader of the registry can see them"
            )
        else:
            message = (
                f"secret-looking arguments on the command line ({names}) are recorded masked"
                f" as {MASK}: re-running the command needs them given again. Pass secrets in"
                f" the environment or a file instead, or set {REDACTION}=keep to record them"
                " as typed"
            )
        warnings.warn(SecretInCommandWarning(message), stacklevel=_outside_stacklevel())
    return shlex.join(argv if keep or not found else redact(argv))


def _outside_stacklevel() -> int:
    """The ``stacklevel`` that points a warning of this function's caller at the first frame
    outside modelreg (and contextlib): the user's line that registered or started the run."""
    inside = (os.path.dirname(os.path.abspath(__file__)) + os.sep, contextlib.__file__)
    level, frame = 2, sys._getframe(2)
    while frame.f_back is not None and frame.f_code.co_filename.startswith(inside):
        frame, level = frame.f_back, level + 1
    return level


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
    """The facts of this process, its command line as recorded (see recorded_command)."""
    return ProcessFacts(hostname(), user(), recorded_command())


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
