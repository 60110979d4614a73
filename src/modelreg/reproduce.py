"""Reproduction: recreate a version from its record alone, and check it comes out the same.

``write_recipe`` turns a version's lineage into a directory a person can read and run:

    recipe.json        what was recorded: version, code, command, params and seeds, data, Python
    requirements.lock  every recorded package pinned ``name==version`` (modelreg itself aside)
    uncommitted.diff   the uncommitted changes recorded with the run, when there were any
    check_data.py      standard-library script: each dataset's digest, before anything runs
    reproduce.sh       clone + checkout, apply the diff, venv, install the lock, check, train

``run_recipe`` carries the recipe out in a fresh virtualenv with the training pointed at a
scratch registry: ``MODELREG_URI`` names it, and ``MODELREG_SCRATCH_REGISTRY`` makes every
``modelreg.connect(...)`` of the re-run open it whatever location the script names, so that
a re-run never writes into a real registry. It then compares the version the re-run
registered with the recorded one, file by file. The lock is installed with
``pip --no-deps``: the lock already holds the whole environment, and skipping the resolver
keeps pip to unpacking wheels (from pip's cache, or ``find_links``). modelreg itself is
installed, in the same pip call, from a wheel packed from the running modelreg's own files
(``modelreg_wheel``): no build backend runs and nothing is fetched, so reproducing does not
depend on the build tools of the environment it runs from.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

from typing_extensions import TypedDict

from modelreg import capture
from modelreg.errors import Conflict, IntegrityError, InvalidInput
from modelreg.records import (
    DifferingFile,
    ModelregSource,
    Recipe,
    Reproduced,
    Reproduction,
    Version,
    VersionLineage,
)
from modelreg.registry import SCRATCH_REGISTRY
from modelreg.values import MAX_PAGE

if TYPE_CHECKING:
    from modelreg.local import LocalRegistry
    from modelreg.remote import RemoteRegistry

    AnyRegistry: TypeAlias = LocalRegistry | RemoteRegistry

RECIPE_FILES = ("recipe.json", "requirements.lock", "check_data.py", "reproduce.sh")
DIFF_FILE = "uncommitted.diff"
_SEED = re.compile(r"(^|_)(seed|random_state|rng|random_seed)$", re.IGNORECASE)


def seeds(params: dict[str, Any]) -> dict[str, Any]:
    """The params that seed randomness: seed, random_state, numpy_seed, rng, ..."""
    return {k: v for k, v in sorted(params.items()) if _SEED.search(k)}


def modelreg_source() -> ModelregSource:
    """Where the running modelreg was installed from: a local directory, or the index."""
    from importlib import metadata
    from urllib.parse import unquote, urlparse

    dist = metadata.distribution("modelreg")
    direct = json.loads(dist.read_text("direct_url.json") or "{}")
    url = str(direct.get("url", ""))
    if url.startswith("file://") and "dir_info" in direct:
        folder = unquote(urlparse(url).path)
        return {"version": dist.version, "source": "directory", "install": folder}
    return {"version": dist.version, "source": "index", "install": f"modelreg=={dist.version}"}


# What a wheel's .dist-info holds that the installer writes, or that modelreg_wheel makes anew.
_INSTALLER_FILES = frozenset({"RECORD", "INSTALLER", "REQUESTED", "direct_url.json", "WHEEL"})
# A fixed date for every member, so that the same files pack into the same wheel.
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)


def modelreg_wheel(into: str | os.PathLike[str]) -> Path:
    """Pack the running modelreg into a wheel in the directory ``into``; return its path.

    modelreg is pure Python, so its wheel is the package's files, read from where ``modelreg``
    is imported from (an editable install's source directory included), and a .dist-info
    holding the installed distribution's metadata (METADATA, entry_points.txt, which gives
    the virtualenv its ``modelreg`` command, license files), a WHEEL file and a RECORD of
    digests. No build backend runs and nothing is fetched: the wheel does not depend on the
    build tools of the running environment, nor on a network.
    """
    from importlib import metadata

    dist = metadata.distribution("modelreg")
    name = re.sub(r"[-_.]+", "_", dist.metadata["Name"]).lower()
    version = dist.version.replace("-", "_")
    info = f"{name}-{version}.dist-info"
    folder = Path(into)
    folder.mkdir(parents=True, exist_ok=True)
    wheel = folder / f"{name}-{version}-py3-none-any.whl"
    records: list[str] = []
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as out:

        def add(member: str, data: bytes) -> None:
            entry = zipfile.ZipInfo(member, _ZIP_DATE)
            entry.compress_type = zipfile.ZIP_DEFLATED
            entry.external_attr = 0o644 << 16
            out.writestr(entry, data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
            records.append(f"{member},sha256={digest.decode()},{len(data)}")

        for member, path in _package_files(Path(__file__).resolve().parent, "modelreg"):
            add(member, path.read_bytes())
        copied = False
        for file in dist.files or []:
            parts = file.parts
            if parts[0].endswith(".dist-info") and parts[-1] not in _INSTALLER_FILES:
                data = Path(str(dist.locate_file(file))).read_bytes()
                add("/".join((info, *parts[1:])), data)
                copied = True
        if not copied:  # installed without a RECORD: the metadata that matters
            for member in ("METADATA", "entry_points.txt"):
                text = dist.read_text(member)
                if text is not None:
                    add(f"{info}/{member}", text.encode())
        add(
            f"{info}/WHEEL",
            b"Wheel-Version: 1.0\nGenerator: modelreg reproduce\nRoot-Is-Purelib: true\n"
            b"Tag: py3-none-any\n",
        )
        records.append(f"{info}/RECORD,,")
        out.writestr(zipfile.ZipInfo(f"{info}/RECORD", _ZIP_DATE), "\n".join(records) + "\n")
    return wheel


def _package_files(package: Path, prefix: str) -> Iterator[tuple[str, Path]]:
    """Every file of the package directory but compiled bytecode, as (wheel member, path)."""
    for path in sorted(package.rglob("*")):
        relative = path.relative_to(package)
        if "__pycache__" in relative.parts or path.suffix in (".pyc", ".pyo"):
            continue
        if path.is_file():
            yield f"{prefix}/{relative.as_posix()}", path


def command_argv(command: str, repository: str | None) -> list[str]:
    """The recorded command line as run from the top of the checkout.

    A run records ``sys.argv``: a script started as ``python train.py`` records ``train.py``,
    so a leading ``.py`` file is run with the virtualenv's ``python``; a path inside the
    recorded (local) repository is made relative to it.
    """
    argv = shlex.split(command)
    if repository and os.path.isabs(repository):
        root = os.path.realpath(repository)
        argv = [
            os.path.relpath(a, root) if os.path.isabs(a) and capture.inside(a, root) else a
            for a in argv
        ]
    if argv and argv[0].endswith(".py"):
        argv = ["python", *argv]
    return argv


def build_recipe(version: Any, lineage: VersionLineage) -> Recipe:
    """What recipe.json holds; refuses a version whose record cannot be re-run."""
    run, code = lineage.get("run"), lineage["code"]
    if run is None:
        raise InvalidInput(
            f"{version.ref} has no recorded run: it was registered outside"
            " `with reg.start_run(...)`, so nothing records how it was trained"
        )
    missing = [what for what in ("command", "repository", "commit") if not code.get(what)]
    if missing:
        raise InvalidInput(
            f"{version.ref} cannot be reproduced: its run recorded no {' and no '.join(missing)}"
            " (train from a script inside a git repository with at least one commit)"
        )
    params = dict(run.get("params") or {})
    env = lineage.get("environment") or {}
    # Arguments recorded as *** (secret-looking, see modelreg.capture): to be given again.
    masked = list(dict.fromkeys(capture.masked_arguments(shlex.split(code["command"])).values()))
    return {
        "version": version.ref,
        "id": version.id,
        "model": version.model,
        "manifest_digest": version.manifest_digest,
        "files": [f.to_dict() for f in version.files],
        "run": {"id": run["id"], "name": run["name"]},
        "repository": code["repository"],
        "commit": code["commit"],
        "branch": code.get("branch"),
        "diff": DIFF_FILE if code.get("diff_digest") else None,
        "diff_digest": code.get("diff_digest"),
        "untracked": code.get("untracked") or [],
        "command": code["command"],
        "argv": command_argv(code["command"], code["repository"]),
        "masked": masked,
        "params": params,
        "seeds": seeds(params),
        "datasets": [
            {
                "name": d["name"],
                "digest": d["digest"],
                "uri": d["uri"],
                "role": d["role"],
                "size": d["size"],
                "file_count": d["file_count"],
            }
            for d in lineage["datasets"]
        ],
        "python": env.get("python"),
        "platform": env.get("platform"),
        "packages": len(_locked(env)),
        "modelreg": {
            **modelreg_source(),
            "recorded": (env.get("packages") or {}).get("modelreg"),
        },
    }


def _locked(env: dict[str, Any]) -> dict[str, str]:
    return {k: v for k, v in sorted((env.get("packages") or {}).items()) if k != "modelreg"}


def recreate(
    registry: AnyRegistry,
    ref: str,
    *,
    to: str | os.PathLike[str] | None = None,
    run: bool = False,
    workdir: str | os.PathLike[str] | None = None,
    find_links: Sequence[str | os.PathLike[str]] = (),
    no_index: bool = False,
) -> Recipe | Reproduction:
    """What ``reproduce`` does on either registry: write the recipe into ``to``, or with
    ``run`` carry it out in ``workdir``."""
    if run:
        return run_recipe(registry, ref, workdir=workdir, find_links=find_links, no_index=no_index)
    if to is None:
        raise InvalidInput("give the directory to write the recipe into (to=), or run=True")
    return write_recipe(registry, ref, to)


def write_recipe(registry: AnyRegistry, ref: str, to: str | os.PathLike[str]) -> Recipe:
    """Write the recipe of ``ref`` into the directory ``to``; return recipe.json's content."""
    version = registry.get(ref)
    lineage = version.lineage or registry.lineage(ref)
    recipe = build_recipe(version, lineage)
    folder = Path(to)
    folder.mkdir(parents=True, exist_ok=True)
    clash = [n for n in (*RECIPE_FILES, DIFF_FILE) if (folder / n).exists()]
    if clash:
        raise Conflict(f"{folder} already holds {', '.join(clash)}: choose an empty directory")
    if recipe["diff_digest"]:
        with registry.blobs.open(recipe["diff_digest"]) as f:
            (folder / DIFF_FILE).write_bytes(f.read())
    (folder / "recipe.json").write_text(json.dumps(recipe, indent=2, sort_keys=True) + "\n")
    (folder / "requirements.lock").write_text(_lock_text(recipe, lineage["environment"] or {}))
    (folder / "check_data.py").write_text(_check_data_text(recipe))
    script = folder / "reproduce.sh"
    script.write_text(_shell_text(recipe))
    script.chmod(0o755)
    return recipe


def _lock_text(recipe: Recipe, env: dict[str, Any]) -> str:
    source = recipe["modelreg"]
    lines = [
        f"# The environment recorded with {recipe['version']} (Python {recipe['python']}),",
        "# every package pinned; install with: pip install --no-deps -r requirements.lock",
        "# modelreg is not listed: reproduce.sh installs it from where the modelreg that wrote",
        f"# this recipe came from ({source['source']}: {source['install']}).",
    ]
    lines += [f"{name}=={version}" for name, version in _locked(env).items()]
    return "\n".join(lines) + "\n"


def _check_data_text(recipe: Recipe) -> str:
    data = json.dumps(recipe["datasets"], indent=4, sort_keys=True)
    return CHECK_DATA.replace("@REF@", recipe["version"]).replace("@DATASETS@", data)


CHECK_DATA = '''#!/usr/bin/env python3
"""Check the datasets of @REF@ against the digests recorded with it.

A file's digest is the sha256 of its bytes; a directory's is the sha256 of its manifest
(relative path, sha256 and size of every file), as modelreg computes it. Exits 1 naming the
first dataset that is missing or differs. Remote datasets (s3://, ...) are not checked here.
Standard library only.
"""

import hashlib
import json
import sys
from pathlib import Path
from urllib.parse import unquote, urlparse

DATASETS = json.loads(r"""@DATASETS@""")


def file_digest(path):
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
            size += len(chunk)
    return h.hexdigest(), size


def directory_digest(folder):
    entries = []
    for item in sorted(folder.rglob("*")):
        if item.is_file():
            digest, size = file_digest(item)
            entries.append({"digest": digest, "path": item.relative_to(folder).as_posix(),
                            "size": size})
    entries.sort(key=lambda e: e["path"])
    text = json.dumps(entries, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def local_path(uri):
    if uri.startswith("file://"):
        return Path(unquote(urlparse(uri).path))
    return None if "://" in uri else Path(uri)


def main():
    for d in DATASETS:
        path = local_path(d["uri"])
        if path is None:
            print(f"not checked: dataset {d['name']!r} is remote ({d['uri']})")
            continue
        if path.is_file():
            found = file_digest(path)[0]
        elif path.is_dir():
            found = directory_digest(path)
        else:
            print(f"dataset {d['name']!r} is missing: {path} does not exist", file=sys.stderr)
            return 1
        if found != d["digest"]:
            print(f"dataset {d['name']!r} differs from the record: {path} has digest"
                  f" {found}, recorded {d['digest']}", file=sys.stderr)
            return 1
        print(f"ok: dataset {d['name']!r} ({path})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
'''


def _shell_text(recipe: Recipe) -> str:
    q = shlex.quote
    source = recipe["modelreg"]
    lines = [
        "#!/bin/sh",
        f"# Recreate {recipe['version']} (manifest {recipe['manifest_digest'][:12]}) from its",
        "# record. Run it from an empty directory; the new version is registered in",
        "# ./scratch-registry unless MODELREG_URI names another. Compare its manifest digest",
        "# with the one in recipe.json (or let `modelreg reproduce REF --run` do all of this).",
        "set -eu",
        'RECIPE="$(cd "$(dirname "$0")" && pwd)"',
        f'PYTHON="${{PYTHON:-python3}}"  # the record used Python {recipe["python"]}',
        '"$PYTHON" "$RECIPE/check_data.py"',
        f"git clone --quiet -- {q(recipe['repository'])} code",
        f"git -C code -c advice.detachedHead=false checkout --quiet {q(recipe['commit'])}",
    ]
    if recipe["diff"]:
        lines.append(f'git -C code apply "$RECIPE/{DIFF_FILE}"')
    modelreg = source["install"]
    lines += [
        '"$PYTHON" -m venv venv',
        'venv/bin/python -m pip install --no-deps -r "$RECIPE/requirements.lock"',
        f"# modelreg from the same {source['source']} as the modelreg that wrote this recipe",
        f"venv/bin/python -m pip install --no-deps {q(modelreg)}",
        'export MODELREG_URI="${MODELREG_URI:-$PWD/scratch-registry}"',
        "# every modelreg.connect(...) of the training opens it, whatever location it names",
        f'export {SCRATCH_REGISTRY}="$MODELREG_URI"',
        'export PATH="$PWD/venv/bin:$PATH"',
        "cd code",
    ]
    if recipe["masked"]:
        lines.append(
            f"# Recorded with {', '.join(recipe['masked'])} masked as {capture.MASK}: give the"
            " secret again before running (better: have the training read it from the"
            " environment)"
        )
    lines.append(f"exec {shlex.join(recipe['argv'])}")
    return "\n".join(lines) + "\n"


# -- running the recipe ------------------------------------------------------------------------


def run_recipe(
    registry: AnyRegistry,
    ref: str,
    *,
    workdir: str | os.PathLike[str] | None = None,
    find_links: Sequence[str | os.PathLike[str]] = (),
    no_index: bool = False,
) -> Reproduction:
    """Write the recipe into ``workdir`` (a new temporary directory by default, kept for
    inspection) and carry it out; report whether the re-trained version is identical.

    The data are checked first: a dataset whose digest differs raises IntegrityError naming
    it, before anything is cloned or installed. A step that fails raises Conflict naming the
    step and its log.
    """
    folder = Path(workdir) if workdir is not None else Path(tempfile.mkdtemp(prefix="modelreg-"))
    folder = folder.resolve()
    if folder.exists() and any(folder.iterdir()):
        raise Conflict(f"workdir {folder} is not empty: choose a new or empty directory")
    recipe = write_recipe(registry, ref, folder / "recipe")
    if recipe["masked"]:
        raise InvalidInput(
            f"{recipe['version']} cannot be re-run as recorded: its command line was recorded"
            f" with {', '.join(recipe['masked'])} masked as {capture.MASK} (secret-looking);"
            f" the recipe is in {folder / 'recipe'}: give the secret in reproduce.sh and run"
            " it, or have the training read it from the environment instead of the command line"
        )
    timings: dict[str, float] = {}
    steps = _Steps(folder, timings)

    check = steps.run("data", [sys.executable, str(folder / "recipe" / "check_data.py")])
    if check.returncode != 0:
        reason = check.stderr.strip().splitlines()[-1] if check.stderr.strip() else "failed"
        raise IntegrityError(f"{reason}; stopped before installing anything")

    code = folder / "code"
    steps.check("code", ["git", "clone", "--quiet", "--", recipe["repository"], str(code)])
    steps.check(
        "code",
        ["git", "-C", str(code), "-c", "advice.detachedHead=false", "checkout", "--quiet",
         recipe["commit"]],
    )  # fmt: skip
    if recipe["diff"]:
        steps.check("code", ["git", "-C", str(code), "apply", str(folder / "recipe" / DIFF_FILE)])

    venv = folder / "venv"
    steps.check("venv", [sys.executable, "-m", "venv", str(venv)])
    # --no-compile: the virtualenv serves one run, whose imports compile what they use.
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--no-deps", "--no-compile"]
    pip += ["--disable-pip-version-check", "-q"]
    pip += ["--no-index"] if no_index else []
    for link in find_links:
        pip += ["--find-links", str(Path(link).resolve())]
    # modelreg, packed from the running modelreg's own files, in the same pip call as the lock
    started = time.monotonic()
    wheel = modelreg_wheel(folder / "wheels")
    here = Path(__file__).resolve().parent
    steps.note("install", f"packed the running modelreg from {here} into {wheel}", started)
    lock = ["-r", str(folder / "recipe" / "requirements.lock")] if recipe["packages"] else []
    steps.check("install", [*pip, *lock, str(wheel)])

    scratch = folder / "registry"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env |= {
        "MODELREG_URI": str(scratch),
        SCRATCH_REGISTRY: str(scratch),
        "VIRTUAL_ENV": str(venv),
        "PATH": f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}",
    }
    steps.check("train", _program(recipe["argv"], venv), cwd=code, env=env)

    started = time.monotonic()
    report = _compare(recipe, scratch, _ordinal(registry, recipe))
    timings["compare"] = round(time.monotonic() - started, 3)
    used = ".".join(map(str, sys.version_info[:3]))
    return {
        **report,
        "workdir": str(folder),
        "recipe": str(folder / "recipe"),
        "python": {"recorded": recipe["python"], "used": used},
        "timings": timings,
    }


def _program(argv: Sequence[str], venv: Path) -> list[str]:
    """The recipe's command with its program taken from the recipe's virtualenv: ``python``
    is its interpreter, and a program named without a path (``modelreg``, recorded so from a
    console script) its own script when it has one."""
    head = argv[0]
    if os.sep not in head and (venv / "bin" / head).is_file():
        return [str(venv / "bin" / head), *argv[1:]]
    return list(argv)


class _Steps:
    """Runs the recipe's commands, timing each step and logging its output."""

    def __init__(self, folder: Path, timings: dict[str, float]) -> None:
        self.folder = folder
        self.timings = timings

    def note(self, step: str, text: str, started: float) -> None:
        """Log what the step did in this process (since ``started``) and count its time."""
        self.timings[step] = round(self.timings.get(step, 0) + time.monotonic() - started, 3)
        with open(self.folder / f"{step}.log", "a") as log:
            log.write(f"# {text}\n")

    def run(
        self,
        step: str,
        argv: list[str],
        *,
        cwd: Path | None = None,
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        started = time.monotonic()
        done = subprocess.run(
            argv, cwd=cwd, env=env, capture_output=True, text=True, check=False, stdin=None
        )
        self.timings[step] = round(self.timings.get(step, 0) + time.monotonic() - started, 3)
        with open(self.folder / f"{step}.log", "a") as log:
            log.write(f"$ {shlex.join(argv)}\n{done.stdout}{done.stderr}")
        return done

    def check(self, step: str, argv: list[str], **options: Any) -> None:
        done = self.run(step, argv, **options)
        if done.returncode != 0:
            tail = (done.stderr.strip() or done.stdout.strip()).splitlines()[-1:] or [""]
            raise Conflict(
                f"reproduction failed at step {step!r}: {shlex.join(argv[:4])}... exited"
                f" {done.returncode}: {tail[0]} (log: {self.folder / f'{step}.log'})"
            )


class _Compared(TypedDict):
    """The part of a Reproduction that comparing the two versions finds."""

    version: str
    manifest_digest: str
    identical: bool
    reproduced: Reproduced
    differing_files: list[DifferingFile]


def _ordinal(registry: AnyRegistry, recipe: Recipe) -> int:
    """Which of its run's versions of the model the recorded version is (0 for the first):
    one run may register several (checkpoints, say)."""
    number = int(recipe["version"].rsplit("/", 1)[1])
    up_to = registry.versions(recipe["model"], before=number + 1, limit=MAX_PAGE)
    return max(sum(v.run_id == recipe["run"]["id"] for v in up_to) - 1, 0)


def _counterpart(reg: LocalRegistry, recipe: Recipe, ordinal: int) -> Version:
    """The version the re-run made in place of the recorded one: of the same model, made in
    a run of the same name, the ``ordinal``-th such as the recorded one was in its run (a
    command may register several versions: the demo registers five of one model, in runs of
    different names); the latest version of the model when no run has that name."""
    found = reg.versions(recipe["model"]) if recipe["model"] in _names(reg) else []
    if not found:
        raise Conflict(f"the re-run registered no version of {recipe['model']!r}")
    runs: dict[str, str] = {}
    same: list[Version] = []
    for version in reversed(found):  # oldest first
        if version.run_id is None:
            continue
        if version.run_id not in runs:
            run = reg.lineage(version.ref)["run"]
            runs[version.run_id] = run["name"] if run else ""
        if runs[version.run_id] == recipe["run"]["name"]:
            same.append(version)
    if not same:
        return found[0]
    return same[min(ordinal, len(same) - 1)]


def _compare(recipe: Recipe, scratch: Path, ordinal: int) -> _Compared:
    from modelreg.local import LocalRegistry

    registered = {f["path"]: f["digest"] for f in recipe["files"]}
    if not (scratch / "registry.db").exists():
        raise Conflict(
            f"the re-run registered nothing in {scratch}: does the training register through"
            " modelreg.connect() (which opens the scratch registry during a re-run)?"
        )
    with LocalRegistry(scratch) as reg:
        new = _counterpart(reg, recipe, ordinal)
        made = {f.path: f.digest for f in new.files}
        differing: list[DifferingFile] = [
            {"path": p, "registered": registered.get(p), "reproduced": made.get(p)}
            for p in sorted(set(registered) | set(made))
            if registered.get(p) != made.get(p)
        ]
        return {
            "version": recipe["version"],
            "manifest_digest": recipe["manifest_digest"],
            "identical": new.manifest_digest == recipe["manifest_digest"],
            "reproduced": {
                "version": new.ref,
                "manifest_digest": new.manifest_digest,
                "registry": str(scratch),
            },
            "differing_files": differing,
        }


def _names(reg: LocalRegistry) -> set[str]:
    return {m.name for m in reg.models()}
