"""Reproduction: recreate a version from its record alone, and check it comes out the same.

``write_recipe`` turns a version's lineage into a directory a person can read and run:

    recipe.json        what was recorded: version, code, command, params and seeds, data, Python
    requirements.lock  every recorded package pinned ``name==version`` (modelreg itself aside)
    uncommitted.diff   the uncommitted changes recorded with the run, when there were any
    check_data.py      standard-library script: each dataset's digest, before anything runs
    reproduce.sh       clone + checkout, apply the diff, venv, install the lock, check, train

``run_recipe`` carries the recipe out in a fresh virtualenv with the training pointed at a
scratch registry (``MODELREG_URI``), then compares the version it registered with the
recorded one, file by file. The lock is installed with ``pip --no-deps``: the lock already
holds the whole environment, and skipping the resolver keeps pip to unpacking wheels (from
pip's cache, or ``find_links``). modelreg is installed from where the running modelreg came
from: its source directory when it was installed from one (built into a wheel here, without
build isolation, so no network is needed), else ``modelreg==VERSION`` from the index.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
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
    VersionLineage,
)

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
            os.path.relpath(a, root) if os.path.isabs(a) and _inside(a, root) else a for a in argv
        ]
    if argv and argv[0].endswith(".py"):
        argv = ["python", *argv]
    return argv


def _inside(path: str, root: str) -> bool:
    return os.path.realpath(path).startswith(root.rstrip(os.sep) + os.sep)


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
        "# ./scratch-registry unless MODELREG_URI says otherwise. Compare its manifest digest",
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
    python = str(venv / "bin" / "python")
    pip = [python, "-m", "pip", "install", "--no-deps", "--disable-pip-version-check", "-q"]
    pip += ["--no-index"] if no_index else []
    for link in find_links:
        pip += ["--find-links", str(Path(link).resolve())]
    if recipe["packages"]:
        steps.check("install", [*pip, "-r", str(folder / "recipe" / "requirements.lock")])
    source = recipe["modelreg"]
    if source["source"] == "directory":
        wheels = folder / "wheels"
        steps.check(
            "install",
            [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
             "--disable-pip-version-check", "-q", "-w", str(wheels), source["install"]],
        )  # fmt: skip
        steps.check("install", [*pip, *map(str, sorted(wheels.glob("modelreg-*.whl")))])
    else:
        steps.check("install", [*pip, source["install"]])

    scratch = folder / "registry"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env |= {
        "MODELREG_URI": str(scratch),
        "VIRTUAL_ENV": str(venv),
        "PATH": f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}",
    }
    argv = [python if a == "python" and i == 0 else a for i, a in enumerate(recipe["argv"])]
    steps.check("train", argv, cwd=code, env=env)

    started = time.monotonic()
    report = _compare(recipe, scratch)
    timings["compare"] = round(time.monotonic() - started, 3)
    used = ".".join(map(str, sys.version_info[:3]))
    return {
        **report,
        "workdir": str(folder),
        "recipe": str(folder / "recipe"),
        "python": {"recorded": recipe["python"], "used": used},
        "timings": timings,
    }


class _Steps:
    """Runs the recipe's commands, timing each step and logging its output."""

    def __init__(self, folder: Path, timings: dict[str, float]) -> None:
        self.folder = folder
        self.timings = timings

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


def _compare(recipe: Recipe, scratch: Path) -> _Compared:
    from modelreg.local import LocalRegistry

    registered = {f["path"]: f["digest"] for f in recipe["files"]}
    if not (scratch / "registry.db").exists():
        raise Conflict(
            f"the re-run registered nothing in {scratch}: does the training connect with"
            " modelreg.connect() (which follows MODELREG_URI)?"
        )
    with LocalRegistry(scratch) as reg:
        found = reg.versions(recipe["model"]) if recipe["model"] in _names(reg) else []
        if not found:
            raise Conflict(f"the re-run registered no version of {recipe['model']!r}")
        new = found[0]
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
