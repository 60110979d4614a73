"""Reproduction from the record: a deterministic scikit-learn training, registered through the
SDK from a script in a git repository, is recreated from its recipe in a fresh virtualenv and
comes out byte for byte the same.

To stay fast and offline, the training runs in a small virtualenv that sees only what it
needs (modelreg, scikit-learn, skops and their dependencies, linked from the test
environment), so the recorded environment is small; and the re-run installs that lock with
``--no-index --find-links`` from wheels repacked from the installed files.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import json
import os
import re
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

import modelreg
from modelreg.cli import main
from modelreg.errors import InvalidInput

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
    """The installed distributions ``roots`` need, without extras."""
    found: dict[str, metadata.Distribution] = {}
    todo = list(roots)
    while todo:
        name = re.sub(r"[-_.]+", "-", todo.pop()).lower()
        if name in found:
            continue
        dist = found[name] = metadata.distribution(name)
        for text in dist.requires or []:
            req = Requirement(text)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(req.name)
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


@dataclass
class Trained:
    repo: Path
    registry: Path
    wheels: Path
    data: Path
    setup_seconds: float


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    started = time.monotonic()
    root = tmp_path_factory.mktemp("reproduce")
    site = Path(sysconfig.get_paths()["purelib"])
    # The training environment: a bare venv that sees only the linked distributions.
    linked, wheels = root / "linked", root / "wheels"
    linked.mkdir()
    wheels.mkdir()
    for dist in _closure(("modelreg", "scikit-learn", "skops")):
        tops = {f.parts[0] for f in dist.files or [] if f.parts[0] != ".."}
        for top in tops:
            if (site / top).exists() and not (linked / top).exists():
                (linked / top).symlink_to(site / top)
        if dist.metadata["Name"] != "modelreg":
            _repack(dist, wheels)
    venv = root / "train-venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    venv_site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    source = Path(modelreg.__file__).resolve().parents[1]
    (Path(venv_site) / "linked.pth").write_text(f"{linked}\n{source}\n")

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
    (repo / "train.py").write_text(TRAIN)
    (repo / "README.md").write_text("# iris\n")
    for args in (
        ["init", "-q", "-b", "main"],
        ["config", "user.name", "Test User"],
        ["config", "user.email", "test@example.com"],
        ["config", "commit.gpgsign", "false"],
        ["add", "-A"],
        ["commit", "-q", "-m", "train iris"],
    ):
        subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)
    # An uncommitted change: recorded as a diff that the re-run must apply.
    (repo / "README.md").write_text("# iris\n\nLogistic regression on iris.\n")
    registry = root / "registry"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["MODELREG_URI"] = str(registry)
    done = subprocess.run(
        [python, "train.py"], cwd=repo, env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    return Trained(repo, registry, wheels, repo / "data" / "iris.csv", time.monotonic() - started)


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
