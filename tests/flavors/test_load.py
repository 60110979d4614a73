"""modelreg.load: plain files come back as their folder, pickles only with trust, and a
library version other than the recorded one warns."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

import modelreg
from modelreg import InvalidInput, LibraryVersionWarning, UnsafeModel
from modelreg.flavors import save


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache" / "modelreg"


class Thresholds:
    """Any picklable object that no framework flavor knows."""

    def __init__(self, cut: float) -> None:
        self.cut = cut

    def predict(self, rows: list[float]) -> list[bool]:
        return [r > self.cut for r in rows]


def test_plain_files_load_as_the_pulled_folder(registry, write, cache):
    write("model/weights.bin", b"\x00\x01")
    write("model/config.json", "{}")
    v = registry.register("plain", "model")

    folder = modelreg.load(v.ref, registry=registry)

    assert folder == cache / v.manifest_digest
    assert (folder / "weights.bin").read_bytes() == b"\x00\x01"


def test_the_pickle_flavor_is_refused_without_trust_and_loads_with_it(registry):
    v = registry.register("thresholds", Thresholds(0.5), input_example=[0.2, 0.7])

    with pytest.raises(UnsafeModel, match=r"model\.pkl is a pickle stream \(protocol 5\)") as info:
        modelreg.load(v.ref, registry=registry)
    assert info.value.code == "unsafe_model"
    assert isinstance(info.value, InvalidInput)
    loaded = modelreg.load(v.ref, registry=registry, trust=True)
    assert loaded.predict([0.2, 0.7]) == [False, True]


def test_the_signature_of_the_pickle_flavor_comes_from_predict(registry, cache):
    v = registry.register("thresholds", Thresholds(0.5), input_example=[0.2, 0.7])
    modelreg.load(v.ref, registry=registry, trust=True)
    record = json.loads((cache / v.manifest_digest / "flavor.json").read_text())
    assert record["flavor"] == "pickle"
    assert record["signature"] == {
        "inputs": {"type": "list", "shape": [-1], "items": ["float"]},
        "outputs": {"type": "list", "shape": [-1], "items": ["bool"]},
    }


def _saved_with_sklearn_version(folder: Path, recorded: str) -> Path:
    X, y = load_iris(return_X_y=True)
    folder.mkdir()
    save(LogisticRegression(max_iter=500).fit(X, y), folder)
    record = json.loads((folder / "flavor.json").read_text())
    record["libraries"]["scikit-learn"] = recorded
    (folder / "flavor.json").write_text(json.dumps(record))
    return folder


def test_another_library_version_warns_naming_both(registry, tmp_path):
    from importlib.metadata import version

    installed = version("scikit-learn")
    v = registry.register("old", _saved_with_sklearn_version(tmp_path / "old", "0.24.2"))

    with pytest.warns(LibraryVersionWarning, match="scikit-learn 0.24.2") as caught:
        model = modelreg.load(v.ref, registry=registry)

    assert f"scikit-learn {installed} is installed" in str(caught[0].message)
    assert model.predict(load_iris(return_X_y=True)[0][:3]).shape == (3,)


def test_a_recorded_library_that_is_not_installed_names_the_extra(registry, tmp_path):
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "model.bin").write_bytes(b"weights")
    (folder / "flavor.json").write_text(
        json.dumps({"flavor": "files", "libraries": {"modelreg-no-such-dist": "1.0"}})
    )
    v = registry.register("m", folder)
    with pytest.raises(InvalidInput, match=r"modelreg-no-such-dist 1\.0, which is not installed"):
        modelreg.load(v.ref, registry=registry)


def test_a_changed_cache_file_is_replaced_by_the_registered_bytes(registry, write, cache):
    write("model.bin", "registered")
    v = registry.register("m", "model.bin")
    folder = modelreg.load(v.ref, registry=registry)
    (folder / "model.bin").write_text("tampered")

    assert (modelreg.load(v.ref, registry=registry) / "model.bin").read_text() == "registered"


def test_load_connects_to_the_default_registry(registry, write, monkeypatch, backend):
    write("model.bin", "registered")
    v = registry.register("m", "model.bin")
    monkeypatch.setenv("MODELREG_URI", backend.uri)
    assert (modelreg.load(v.ref) / "model.bin").read_text() == "registered"


def test_a_registry_loads_from_itself_and_names_itself_when_not_found(registry, backend):
    model = LogisticRegression(max_iter=200).fit(*load_iris(return_X_y=True))
    registry.register("iris", model)
    loaded = registry.load("iris")
    assert loaded.get_params() == model.get_params()
    # A model missing from this registry is named with the registry that was searched.
    with pytest.raises(modelreg.NotFound) as info:
        registry.load("nosuch")
    assert str(info.value) == f"model 'nosuch' not found in the registry at {backend.uri}"
