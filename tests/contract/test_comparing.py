"""Compare: what changed from one version to another, field by field."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest


@pytest.fixture
def pair(registry, write):
    """churn/1 and churn/2, differing in params, metrics, tags, files and training data."""
    write("a/model.bin", "weights 1")
    write("a/config.json", "{}")
    write("a/same.txt", "unchanged")
    write("data/train.csv", "train v1")
    registry.register(
        "churn",
        "a",
        params={"C": 0.1, "penalty": "l2"},
        metrics={"accuracy": 0.90, "loss": 0.30},
        tags={"team": "growth"},
        datasets=["data/train.csv", {"path": "data/train.csv", "role": "test", "name": "holdout"}],
    )
    write("b/model.bin", "weights 2")
    write("b/extra.txt", "new file")
    write("b/same.txt", "unchanged")
    write("data/train.csv", "train v2")
    registry.register(
        "churn",
        "b",
        params={"C": 0.2, "solver": "lbfgs"},
        metrics={"accuracy": 0.95, "f1": 0.80},
        tags={"team": "core"},
        datasets=["data/train.csv"],
    )
    return registry.compare("churn/1", "churn/2")


def test_names_the_two_versions_and_whether_the_content_is_the_same(pair):
    assert (pair["a"], pair["b"], pair["same_content"]) == ("churn/1", "churn/2", False)


def test_params_changed_added_and_removed(pair):
    assert pair["params"] == {
        "changed": {"C": ["0.1", "0.2"]},
        "added": {"solver": "lbfgs"},
        "removed": {"penalty": "l2"},
    }


def test_metrics_with_deltas(pair):
    metrics = pair["metrics"]
    assert metrics["accuracy"]["a"] == 0.90
    assert metrics["accuracy"]["b"] == 0.95
    assert metrics["accuracy"]["delta"] == pytest.approx(0.05)
    assert metrics["loss"] == {"a": 0.30, "b": None, "delta": None}
    assert metrics["f1"] == {"a": None, "b": 0.80, "delta": None}


def test_tags_changed(pair):
    assert pair["tags"] == {"changed": {"team": ["growth", "core"]}, "added": {}, "removed": {}}


def test_datasets_whose_digests_differ(pair):
    import hashlib

    v1 = hashlib.sha256(b"train v1").hexdigest()
    v2 = hashlib.sha256(b"train v2").hexdigest()
    assert pair["datasets"] == [
        {"role": "test", "name": "holdout", "a": v1, "b": None},
        {"role": "train", "name": "train.csv", "a": v1, "b": v2},
    ]


def test_files_added_removed_and_changed(pair):
    assert pair["files"] == {
        "added": ["extra.txt"],
        "removed": ["config.json"],
        "changed": ["model.bin"],
    }


def test_a_version_compared_with_itself_shows_no_difference(registry, pair):
    same = registry.compare("churn/2", "churn/2")
    assert same["same_content"] is True
    assert same["params"] == same["tags"] == {"changed": {}, "added": {}, "removed": {}}
    assert all(m["delta"] == 0 for m in same["metrics"].values())
    assert same["datasets"] == []
    assert same["files"] == {"added": [], "removed": [], "changed": []}
    assert same["code"]["changed"] is False


def test_versions_registered_in_one_environment_show_no_package_changes(registry, pair):
    assert pair["environment"] == {
        "python": None,
        "platform": None,
        "packages": {"changed": {}, "added": {}, "removed": {}},
    }


def test_compare_takes_any_reference(registry, pair):
    registry.set_alias("churn", "production", "churn/1")
    v2 = registry.get("churn/2")
    assert registry.compare("churn@production", v2.id) == pair


REGISTER = textwrap.dedent(
    """
    import sys
    import modelreg

    reg = modelreg.connect(sys.argv[1])
    reg.register(sys.argv[2], sys.argv[3])
    """
)


def fake_packages(root, packages):
    """A folder that makes ``packages`` ({name: version}) look installed when on sys.path."""
    root.mkdir()
    for name, version in packages.items():
        info = root / f"{name}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    return root


def test_package_changes_between_environments(registry, backend, write, tmp_path):
    """Two versions registered by processes with different installed packages."""
    envs = {
        "a": fake_packages(tmp_path / "env-a", {"fakepkg": "1.0", "oldpkg": "0.1"}),
        "b": fake_packages(tmp_path / "env-b", {"fakepkg": "2.0", "newpkg": "3.0"}),
    }
    write("m.bin", "m")
    registry.register("churn", "m.bin")  # make the model exist before the two writers start
    procs = []
    for label in ("a", "b"):
        env = {**os.environ, "PYTHONPATH": str(envs[label])}
        procs.append(
            subprocess.Popen(
                [sys.executable, "-c", REGISTER, backend.uri, f"env-{label}", "m.bin"],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
        )
    for proc in procs:
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err.decode()

    diff = registry.compare("env-a", "env-b")

    assert diff["environment"]["packages"] == {
        "changed": {"fakepkg": ["1.0", "2.0"]},
        "added": {"newpkg": "3.0"},
        "removed": {"oldpkg": "0.1"},
    }
    assert diff["environment"]["python"] is None
    assert diff["same_content"] is True
