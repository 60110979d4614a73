"""Reproduction from the record: a deterministic scikit-learn training, registered through the
SDK from a script in a git repository, is recreated from its recipe in a fresh virtualenv and
comes out byte for byte the same.

To stay fast and offline, every install here takes its wheels from one wheelhouse, repacked
once from the test environment's installed files (modelreg[sklearn]'s dependencies, and
setuptools to build modelreg with): the re-runs install their lock with
``--no-index --find-links``. Two environments train:

- a small virtualenv that sees only what the training needs (linked from the test
  environment), so that the recorded environment is small;
- a plain ``python -m venv`` with ``pip install CHECKOUT[sklearn]`` and nothing else, as a
  user has (the pip and setuptools that venv ships, no test tools), from which
  ``modelreg reproduce --run`` and ``modelreg demo`` run as users run them.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import sysconfig
import time
import zipfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

import modelreg
from live import LiveServer
from modelreg import capture, reproduce
from modelreg.cli import main
from modelreg.errors import InvalidInput
from modelreg.local import LocalRegistry
from modelreg.registry import SCRATCH_REGISTRY
from modelreg.server import create_app

CHECKOUT = Path(__file__).resolve().parents[1]

TRAIN = """\
import csv

from sklearn.linear_model import LogisticRegression

import modelreg

with open("data/iris.csv") as f:
    rows = list(csv.reader(f))[1:]
X = [[float(v) for v in row[:4]] for row in rows]
y = [int(row[4]) for row in rows]

reg = modelreg.connect()  # MODELREG_URI
with reg.start_run("iris", params={"C": 0.5, "random_state": 0}) as run:
    run.use_dataset("data/iris.csv", name="iris")
    model = LogisticRegression(C=0.5, max_iter=1000, random_state=0).fit(X, y)
    run.log_metric("accuracy", model.score(X, y))
    run.register("iris", model)
"""


def _closure(roots: tuple[str, ...]) -> list[metadata.Distribution]:
    """The installed distributions ``roots`` need (``name[extra]`` takes an extra's too)."""
    found: dict[str, metadata.Distribution] = {}
    seen: set[tuple[str, str]] = set()
    todo = [Requirement(root) for root in roots]
    while todo:
        wanted = todo.pop()
        name = re.sub(r"[-_.]+", "-", wanted.name).lower()
        dist = found.setdefault(name, metadata.distribution(name))
        for extra in ("", *wanted.extras):
            if (name, extra) in seen:
                continue
            seen.add((name, extra))
            for text in dist.requires or []:
                req = Requirement(text)
                # an extra adds the requirements whose marker names it
                wanted_here = extra == "" or req.marker is not None
                if wanted_here and (req.marker is None or req.marker.evaluate({"extra": extra})):
                    todo.append(req)
    return list(found.values())


def _repack(dist: metadata.Distribution, into: Path) -> None:
    """A py3-none-any wheel of an installed distribution, from its installed files."""
    name = re.sub(r"[-_.]+", "_", dist.metadata["Name"])
    info = f"{name}-{dist.version}.dist-info"
    records, skip = [], {"RECORD", "INSTALLER", "REQUESTED", "direct_url.json", "WHEEL"}
    wheel = into / f"{name}-{dist.version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_STORED) as out:

        def add(arc: str, data: bytes) -> None:
            out.writestr(arc, data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
            records.append(f"{arc},sha256={digest.decode()},{len(data)}")

        for file in dist.files or []:
            parts = file.parts
            if parts[0] == ".." or "__pycache__" in parts:
                continue
            if parts[0].endswith(".dist-info"):
                if parts[-1] in skip:
                    continue
                parts = (info, *parts[1:])
            add("/".join(parts), Path(str(dist.locate_file(file))).read_bytes())
        tag = "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        add(f"{info}/WHEEL", tag.encode())
        out.writestr(f"{info}/RECORD", "\n".join([*records, f"{info}/RECORD,,"]) + "\n")


def _git_repo(repo: Path, files: dict[str, str]) -> Path:
    """A git repository on branch main holding ``files`` in one commit."""
    for name, text in files.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)
    for args in (
        ["init", "-q", "-b", "main"],
        ["config", "user.name", "Test User"],
        ["config", "user.email", "test@example.com"],
        ["config", "commit.gpgsign", "false"],
        ["add", "-A"],
        ["commit", "-q", "-m", "train"],
    ):
        subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)
    return repo


def _clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without what points Python or modelreg elsewhere."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "MODELREG_URI", SCRATCH_REGISTRY)
    }
    return env | extra


@pytest.fixture(scope="module")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Wheels of modelreg[sklearn]'s dependencies and of what pip builds modelreg with
    ([build-system]), repacked from this environment's installed files, so that every install
    here is offline (a build requirement this environment lacks is downloaded once)."""
    import tomllib

    wheels = tmp_path_factory.mktemp("wheelhouse")
    for dist in _closure(("modelreg[sklearn]",)):
        if dist.metadata["Name"] != "modelreg":
            _repack(dist, wheels)
    build = tomllib.loads((CHECKOUT / "pyproject.toml").read_text())["build-system"]["requires"]
    for text in build:
        req = Requirement(text)
        try:
            dist = metadata.distribution(req.name)
            installed = req.specifier.contains(dist.version, prereleases=True)
        except metadata.PackageNotFoundError:
            installed = False
        if installed:
            _repack(dist, wheels)
        else:  # this environment lacks it: fetched from the index once per session
            subprocess.run(
                [sys.executable, "-m", "pip", "download", "-q", "--no-deps",
                 "--only-binary", ":all:", "-d", wheels, text],
                check=True,
            )  # fmt: skip
    return wheels


def _linked_venv(root: Path, roots: tuple[str, ...]) -> Path:
    """A bare venv in ``root`` that sees only the distributions ``roots`` need, linked from
    this environment (modelreg from its source tree): its python."""
    site = Path(sysconfig.get_paths()["purelib"])
    linked = root / "linked"
    linked.mkdir()
    for dist in _closure(roots):
        tops = {f.parts[0] for f in dist.files or [] if f.parts[0] != ".."}
        for top in tops:
            if (site / top).exists() and not (linked / top).exists():
                (linked / top).symlink_to(site / top)
    venv = root / "train-venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    venv_site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    source = Path(modelreg.__file__).resolve().parents[1]
    (Path(venv_site) / "linked.pth").write_text(f"{linked}\n{source}\n")
    return python


@dataclass
class Trained:
    repo: Path
    registry: Path
    wheels: Path
    data: Path
    setup_seconds: float


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, wheelhouse: Path) -> Trained:
    started = time.monotonic()
    root = tmp_path_factory.mktemp("reproduce")
    python = _linked_venv(root, ("modelreg", "scikit-learn", "skops"))

    repo = root / "repo"
    (repo / "data").mkdir(parents=True)
    from sklearn.datasets import load_iris

    iris = load_iris()
    with open(repo / "data" / "iris.csv", "w", newline="") as f:
        out = csv.writer(f)
        out.writerow([*iris.feature_names, "species"])
        out.writerows(
            [*map(str, x.tolist()), int(t)] for x, t in zip(iris.data, iris.target, strict=True)
        )
    _git_repo(repo, {"train.py": TRAIN, "README.md": "# iris\n"})
    # An uncommitted change: recorded as a diff that the re-run must apply.
    (repo / "README.md").write_text("# iris\n\nLogistic regression on iris.\n")
    registry = root / "registry"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["MODELREG_URI"] = str(registry)
    done = subprocess.run(
        [python, "train.py"], cwd=repo, env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    return Trained(
        repo, registry, wheelhouse, repo / "data" / "iris.csv", time.monotonic() - started
    )


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_the_recipe_holds_everything_recorded(
    trained: Trained, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    to = tmp_path / "recipe"
    code, out, err = _cli(
        capsys, "--registry", str(trained.registry), "reproduce", "iris/1", "--to", str(to)
    )
    assert code == 0, err
    assert "reproduce.sh" in out
    recipe = json.loads((to / "recipe.json").read_text())
    with modelreg.connect(trained.registry) as reg:
        version = reg.get("iris/1")
    assert recipe["manifest_digest"] == version.manifest_digest
    assert recipe["repository"] == str(trained.repo)
    head = subprocess.run(
        ["git", "-C", str(trained.repo), "rev-parse", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    assert (recipe["commit"], recipe["branch"]) == (head, "main")
    assert recipe["command"] == "train.py"
    assert recipe["argv"] == ["python", "train.py"]
    assert recipe["params"] == {"C": "0.5", "random_state": "0"}
    assert recipe["seeds"] == {"random_state": "0"}
    [data] = recipe["datasets"]
    assert data["name"] == "iris"
    assert data["digest"] == hashlib.sha256(trained.data.read_bytes()).hexdigest()
    assert data["uri"] == trained.data.as_uri()
    assert recipe["python"] == ".".join(map(str, sys.version_info[:3]))
    assert recipe["modelreg"]["source"] == "directory"

    lock = (to / "requirements.lock").read_text().splitlines()
    pins = dict(line.split("==") for line in lock if not line.startswith("#"))
    assert pins["scikit-learn"] == metadata.version("scikit-learn")
    assert pins["skops"] == metadata.version("skops")
    assert "modelreg" not in pins
    assert any("modelreg is not listed" in line for line in lock)

    assert "Logistic regression on iris." in (to / "uncommitted.diff").read_text()
    script = (to / "reproduce.sh").read_text()
    for step in (
        "check_data.py",
        f"checkout --quiet {head}",
        "git -C code apply",
        "-m venv venv",
        "--no-deps -r",
        'export MODELREG_SCRATCH_REGISTRY="$MODELREG_URI"',
        "exec python train.py",
    ):
        assert step in script
    assert os.access(to / "reproduce.sh", os.X_OK)
    checked = subprocess.run(
        [sys.executable, "-I", str(to / "check_data.py")], capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stderr
    assert "ok: dataset 'iris'" in checked.stdout
    imports = set(re.findall(r"^import (\w+)|^from (\w+)", (to / "check_data.py").read_text()))
    assert {m for pair in imports for m in pair if m} <= set(sys.stdlib_module_names)


def test_check_data_digests_a_directory_as_modelreg_does(tmp_path: Path) -> None:
    from modelreg import datasets, reproduce

    folder = tmp_path / "images"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.txt").write_text("a")
    (folder / "sub" / "b.bin").write_bytes(b"\x00\x01")
    use = datasets.describe(folder, name="images")
    recipe = {"version": "x/1", "datasets": [use.to_dict()]}
    script = tmp_path / "check_data.py"
    script.write_text(reproduce._check_data_text(recipe))
    ok = subprocess.run([sys.executable, "-I", str(script)], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    (folder / "sub" / "b.bin").write_bytes(b"\x00\x02")
    bad = subprocess.run([sys.executable, "-I", str(script)], capture_output=True, text=True)
    assert bad.returncode == 1
    assert "dataset 'images' differs" in bad.stderr


@pytest.mark.slow  # builds a virtualenv and retrains: the full run only
def test_a_deterministic_training_reproduces_byte_for_byte(
    trained: Trained, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    started = time.monotonic()
    code, out, err = _cli(
        capsys,
        "--registry", str(trained.registry),
        "reproduce", "iris/1", "--run", "--workdir", str(tmp_path / "w"),
        "--no-index", "--find-links", str(trained.wheels), "--json",
    )  # fmt: skip
    assert code == 0, err
    report: dict[str, Any] = json.loads(out)
    assert report["identical"] is True
    assert report["differing_files"] == []
    assert report["reproduced"]["manifest_digest"] == report["manifest_digest"]
    assert set(report["timings"]) == {"data", "code", "venv", "install", "train", "compare"}
    # The re-run trained in the fresh venv from the checkout with the diff applied.
    assert "Logistic regression" in (tmp_path / "w" / "code" / "README.md").read_text()
    print(
        f"setup {trained.setup_seconds:.1f}s, run {time.monotonic() - started:.1f}s:",
        report["timings"],
        file=sys.stderr,
    )


def test_changed_data_stops_the_run_before_anything_is_installed(
    trained: Trained, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    original = trained.data.read_bytes()
    trained.data.write_bytes(original.replace(b"5.1", b"5.2", 1))
    try:
        code, _, err = _cli(
            capsys,
            "--registry", str(trained.registry),
            "reproduce", "iris/1", "--run", "--workdir", str(tmp_path / "w"),
        )  # fmt: skip
    finally:
        trained.data.write_bytes(original)
    assert code == 1
    assert err.startswith("error: dataset 'iris' differs from the record")
    assert "stopped before installing anything" in err
    assert not (tmp_path / "w" / "venv").exists()
    assert not (tmp_path / "w" / "code").exists()


def test_a_version_registered_outside_a_run_is_refused(
    workdir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (workdir / "model.bin").write_bytes(b"weights")
    with modelreg.connect(tmp_path / "reg") as reg:
        reg.register("plain", "model.bin")
        with pytest.raises(InvalidInput, match="plain/1 has no recorded run"):
            reg.reproduce("plain/1", to=tmp_path / "out")
    code, _, err = _cli(
        capsys, "--registry", str(tmp_path / "reg"), "reproduce", "plain/1", "--to", "out"
    )
    assert code == 1
    assert "has no recorded run" in err
    code, _, err = _cli(capsys, "--registry", str(tmp_path / "reg"), "reproduce", "plain/1")
    assert code == 2


def test_the_sklearn_flavor_saves_the_same_model_as_the_same_bytes(tmp_path: Path) -> None:
    """skops names members by object ids and stamps the time; the flavor renumbers and dates
    them, so two fits of the same pipeline save to identical files that still load."""
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from modelreg import flavors

    X, y = load_iris(return_X_y=True)
    saved = []
    for name in ("a", "b"):
        model = make_pipeline(StandardScaler(), LogisticRegression(random_state=0)).fit(X, y)
        (tmp_path / name).mkdir()
        flavors.save(model, tmp_path / name)
        saved.append((tmp_path / name / "model.skops").read_bytes())
    assert saved[0] == saved[1]
    loaded = flavors.by_name("sklearn").load(tmp_path / "a", {}, trust=False)
    assert (loaded.predict(X) == model.predict(X)).all()


# -- what users do: a plain virtualenv, the README's pattern, the demo ---------------------------

# A training as the README shows it: connect to a registry by its location, register in a run.
TRAIN_AT = """\
import hashlib
from pathlib import Path

import modelreg

data = Path("data/points.csv").read_bytes()
Path("out").mkdir(exist_ok=True)
Path("out/model.bin").write_bytes(hashlib.sha256(b"weights:" + data).digest() * 8)
reg = modelreg.connect(@REGISTRY@)
with reg.start_run(name="nightly", params={"seed": 0}) as run:
    run.use_dataset("data/points.csv", name="points", role="train")
    run.log_metric("loss", 0.25, step=0)
    run.register("points", "out/model.bin")
"""


def _training_repo(repo: Path, registry: str) -> Path:
    return _git_repo(
        repo,
        {
            "train.py": TRAIN_AT.replace("@REGISTRY@", repr(registry)),
            "data/points.csv": "x,y\n1,2\n3,4\n",
            ".gitignore": "out/\nregistry/\n",
        },
    )


@dataclass
class Plain:
    venv: Path
    setup_seconds: float

    def bin(self, name: str) -> str:
        return str(self.venv / "bin" / name)


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory, wheelhouse: Path) -> Plain:
    """``python -m venv`` and ``pip install CHECKOUT[sklearn]`` (scripts/bootstrap's extra, for
    the demo), nothing else: the pip and setuptools the venv ships, no test tools. pip builds
    the checkout as it does for a user, through pyproject's [build-system], its build tools
    and modelreg's dependencies taken from the wheelhouse."""
    started = time.monotonic()
    root = tmp_path_factory.mktemp("plain")
    checkout = root / "modelreg"  # the files a clone holds that the build reads
    shutil.copytree(
        CHECKOUT / "src",
        checkout / "src",
        ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"),
    )
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(CHECKOUT / name, checkout / name)
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, env=_clean_env())
    done = subprocess.run(
        [venv / "bin" / "python", "-m", "pip", "install", "-q", "--disable-pip-version-check",
         "--no-compile", "--no-index", "--find-links", wheelhouse, f"{checkout}[sklearn]"],
        capture_output=True, text=True, env=_clean_env(),
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return Plain(venv, time.monotonic() - started)


def _run(argv: list[str | Path], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in argv], cwd=cwd, env=_clean_env(**env), capture_output=True, text=True
    )


@pytest.mark.slow  # a virtualenv per re-run; CI runs it
def test_reproduce_runs_from_a_plain_virtualenv_with_the_readmes_connect(
    plain: Plain, wheelhouse: Path, tmp_path: Path
) -> None:
    """From the plain virtualenv, with its own (old) setuptools, `reproduce --run` re-trains a
    script that connects to "./registry" as the README does; the re-run registers into the
    scratch registry, never into ./registry."""
    listed = _run([plain.bin("python"), "-m", "pip", "list", "--format=json"], tmp_path)
    tools = {p["name"]: p["version"] for p in json.loads(listed.stdout)}
    assert "pytest" not in tools
    # What python -m venv ships (none from Python 3.12 on): too old to build modelreg.
    assert Version(tools.get("setuptools", "0")) < Version("77")
    repo = _training_repo(tmp_path / "project", "./registry")
    trained = _run([plain.bin("python"), "train.py"], repo)
    assert trained.returncode == 0, trained.stderr
    assert trained.stderr == ""

    started = time.monotonic()
    work = tmp_path / "w"
    done = _run(
        [plain.bin("modelreg"), "--registry", "./registry", "reproduce", "points/1", "--run",
         "--workdir", work, "--no-index", "--find-links", wheelhouse, "--json"],
        repo,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["identical"] is True
    assert report["reproduced"]["registry"] == str(work / "registry")
    log = (work / "train.log").read_text()
    assert (
        f"modelreg: reproducing: connect('./registry') opens the scratch registry"
        f" {work / 'registry'} instead" in log
    )
    assert not (work / "code" / "registry").exists()
    with modelreg.connect(repo / "registry") as reg:
        assert [v.ref for v in reg.versions("points")] == ["points/1"]
    print(
        f"plain venv {plain.setup_seconds:.1f}s, run {time.monotonic() - started:.1f}s:",
        report["timings"],
        file=sys.stderr,
    )


@pytest.mark.slow
def test_a_rerun_of_a_training_that_connects_to_a_server_writes_to_the_scratch_registry(
    wheelhouse: Path, live_server: LiveServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A training environment of modelreg alone: a small lock, a quick re-run.
    python = _linked_venv(tmp_path, ("modelreg",))
    store = LocalRegistry(tmp_path / "server-registry")
    try:
        url = live_server.mount(create_app(store))
        repo = _training_repo(tmp_path / "project", url)
        trained = _run([python, "train.py"], repo)
        assert trained.returncode == 0, trained.stderr
        work = tmp_path / "w"
        # This process's modelreg (an editable install) runs the recipe: its wheel is packed
        # from the source tree.
        code, out, err = _cli(
            capsys,
            "--registry", url, "reproduce", "points/1", "--run", "--workdir", str(work),
            "--no-index", "--find-links", str(wheelhouse), "--json",
        )  # fmt: skip
        assert code == 0, err
        assert json.loads(out)["identical"] is True
        log = (work / "train.log").read_text()
        assert f"connect({url!r}) opens the scratch registry {work / 'registry'}" in log
        assert [v.ref for v in store.versions("points")] == ["points/1"]
    finally:
        store.close()


@pytest.mark.slow
def test_the_demo_reproduces_from_the_virtualenv_it_ran_in(
    plain: Plain, wheelhouse: Path, tmp_path: Path
) -> None:
    """As scripts/run does: `.venv/bin/modelreg demo` from a checkout holding .venv; then
    `reproduce cancer-classifier/2 --run` re-runs the demo and finds /2 identical."""
    repo = _git_repo(tmp_path / "project", {"README.md": "# a project\n"})
    (repo / ".venv").symlink_to(plain.venv)
    with open(repo / ".git" / "info" / "exclude", "a") as f:
        f.write(".venv\n")
    registry = str(tmp_path / "registry")
    demo = _run([".venv/bin/modelreg", "demo"], repo, MODELREG_URI=registry)
    assert demo.returncode == 0, demo.stderr
    with modelreg.connect(registry) as reg:
        assert reg.lineage("cancer-classifier/2")["code"]["command"] == "modelreg demo"

    work = tmp_path / "w"
    done = _run(
        [".venv/bin/modelreg", "reproduce", "cancer-classifier/2", "--run", "--workdir", work,
         "--no-index", "--find-links", wheelhouse],
        repo,
        MODELREG_URI=registry,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "cancer-classifier/2: re-trained as cancer-classifier/2" in done.stdout
    assert "identical: true" in done.stdout
    # The re-run made every demo version in the scratch registry, none in the real one.
    with LocalRegistry(work / "registry") as scratch:
        assert len(scratch.versions("cancer-classifier")) == 5
    with modelreg.connect(registry) as reg:
        assert len(reg.versions("cancer-classifier")) == 5


# -- the pieces --------------------------------------------------------------------------------


def test_the_build_system_asks_for_a_setuptools_that_reads_the_license() -> None:
    """`license = "Apache-2.0"` (a PEP 639 expression) is read by setuptools 77 and newer: a
    build with an older one fails, so [build-system] must not allow it."""
    import tomllib

    project = tomllib.loads((CHECKOUT / "pyproject.toml").read_text())
    assert isinstance(project["project"]["license"], str)
    [setuptools] = [
        Requirement(r)
        for r in project["build-system"]["requires"]
        if Requirement(r).name == "setuptools"
    ]
    assert not setuptools.specifier.contains("76.1")
    assert setuptools.specifier.contains("77.0")


def test_the_modelreg_wheel_holds_the_running_package_and_its_metadata(tmp_path: Path) -> None:
    wheel = reproduce.modelreg_wheel(tmp_path / "a")
    assert wheel.name == f"modelreg-{metadata.version('modelreg')}-py3-none-any.whl"
    package = Path(modelreg.__file__).parent
    expected = {
        f"modelreg/{p.relative_to(package).as_posix()}"
        for p in package.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }
    info = f"modelreg-{metadata.version('modelreg')}.dist-info"
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        assert {n for n in names if n.startswith("modelreg/")} == expected
        assert "modelreg = modelreg.cli:main" in z.read(f"{info}/entry_points.txt").decode()
        assert (
            z.read(f"{info}/METADATA")
            == metadata.distribution("modelreg").read_text("METADATA").encode()
        )
        assert "Root-Is-Purelib: true" in z.read(f"{info}/WHEEL").decode()
        assert not names & {f"{info}/{n}" for n in ("direct_url.json", "INSTALLER")}
        records = dict(
            (line.split(",")[0], line.split(",")[1:])
            for line in z.read(f"{info}/RECORD").decode().splitlines()
        )
        assert set(records) == names
        for name in names - {f"{info}/RECORD"}:
            data = z.read(name)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
            assert records[name] == [f"sha256={digest.decode()}", str(len(data))]
    # The same files pack into the same bytes.
    assert reproduce.modelreg_wheel(tmp_path / "b").read_bytes() == wheel.read_bytes()


def test_a_program_of_the_environment_is_recorded_by_its_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = _git_repo(tmp_path / "repo", {"train.py": "", "sub/x.txt": ""})
    outside = tmp_path / "elsewhere"
    (outside / "bin").mkdir(parents=True)
    (outside / "bin" / "modelreg").write_text("#!/bin/sh\n")  # an entry point's name (pipx)
    (outside / "bin" / "train-tool").write_text("#!/bin/sh\n")
    (outside / "data.csv").write_text("x\n")
    (repo / "bin").mkdir()
    (repo / "bin" / "modelreg").write_text("#!/bin/sh\n")  # the repository's own script
    monkeypatch.chdir(repo)
    scripts = Path(sysconfig.get_path("scripts"))
    in_env = os.path.relpath(scripts / "modelreg", repo)  # .venv/bin/modelreg, say
    assert capture.runnable([in_env, "demo"]) == ["modelreg", "demo"]
    assert capture.runnable([str(scripts / "modelreg"), "demo"]) == ["modelreg", "demo"]
    assert capture.runnable(["../elsewhere/bin/modelreg", "ls"]) == ["modelreg", "ls"]
    # Not a console script: its path, made absolute since it lies outside the repository.
    assert capture.runnable(["../elsewhere/bin/train-tool"]) == [
        str(outside / "bin" / "train-tool")
    ]
    assert capture.runnable(["bin/modelreg", "x"]) == ["bin/modelreg", "x"]
    assert capture.runnable(["train.py", "--data", "../elsewhere/data.csv"]) == (
        ["train.py", "--data", str(outside / "data.csv")]
    )
    assert capture.runnable(["train.py", "--data=../elsewhere/data.csv", "sub/x.txt"]) == (
        ["train.py", f"--data={outside / 'data.csv'}", "sub/x.txt"]
    )
    assert capture.runnable(["train.py", "../missing.csv", "-c"]) == (
        ["train.py", "../missing.csv", "-c"]
    )


def test_a_module_run_with_dash_m_is_recorded_so(tmp_path: Path) -> None:
    repo = _git_repo(
        tmp_path / "repo",
        {
            "pkg/__init__.py": "",
            "pkg/train.py": "from modelreg import capture\nprint(capture.recorded_command())\n",
        },
    )
    done = _run([sys.executable, "-m", "pkg.train", "--epochs", "3"], repo)
    assert done.returncode == 0, done.stderr
    assert shlex.split(done.stdout) == ["python", "-m", "pkg.train", "--epochs", "3"]
    script = _run([sys.executable, "pkg/train.py"], repo)
    assert shlex.split(script.stdout) == ["pkg/train.py"]


def test_during_a_rerun_every_connect_opens_the_scratch_registry(
    tmp_path: Path,
    workdir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    scratch = tmp_path / "scratch"
    monkeypatch.setenv(SCRATCH_REGISTRY, str(scratch))
    monkeypatch.setenv("MODELREG_URI", str(scratch))
    locations = {
        "./registry": "./registry",
        "http://127.0.0.1:9": "http://127.0.0.1:9",
        str(tmp_path / "real"): str(tmp_path / "real"),
        "postgresql://ml:s3cret@db.internal/reg": "postgresql://ml:***@db.internal/reg",
    }
    for location, shown in locations.items():
        with modelreg.connect(location) as reg:
            assert isinstance(reg, LocalRegistry)
            assert reg.root == scratch
        err = capsys.readouterr().err
        assert err == (
            f"modelreg: reproducing: connect({shown!r}) opens the scratch registry"
            f" {scratch} instead, so that the re-run writes into no real registry\n"
        )
    with modelreg.connect() as reg:  # MODELREG_URI already names it: nothing to say
        assert reg.root == scratch
    assert capsys.readouterr().err == ""
    assert not (workdir / "registry").exists()
    assert not (tmp_path / "real").exists()
