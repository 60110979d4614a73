"""The scikit-learn flavor: a trained estimator goes in, the same estimator comes back out."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

import modelreg
from modelreg import InvalidInput, UnsafeModel


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    """modelreg.load caches pulls under $XDG_CACHE_HOME: keep them in the test's folder."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache" / "modelreg"


@pytest.fixture(scope="module")
def iris():
    return load_iris(return_X_y=True)


MODELS = {
    "logistic regression": lambda: LogisticRegression(max_iter=500),
    "pipeline": lambda: Pipeline(
        [("scale", StandardScaler()), ("clf", LogisticRegression(max_iter=500))]
    ),
}


@pytest.mark.parametrize("make", MODELS.values(), ids=MODELS.keys())
def test_a_fitted_estimator_round_trips_with_its_signature(registry, iris, make, cache):
    X, y = iris
    model = make().fit(X, y)

    v = registry.register("iris", model, input_example=X[:5], params={"source": "test"})
    loaded = modelreg.load(v.ref, registry=registry)

    assert type(loaded) is type(model)
    assert np.array_equal(loaded.predict(X), model.predict(X))
    assert np.allclose(loaded.predict_proba(X), model.predict_proba(X))
    assert {f.path for f in v.files} == {"flavor.json", "model.skops"}
    assert v.params == {"source": "test"}
    record = json.loads((cache / v.manifest_digest / "flavor.json").read_text())
    assert record["flavor"] == "sklearn"
    assert set(record["libraries"]) == {"scikit-learn", "skops"}
    assert record["signature"] == {
        "inputs": {"type": "ndarray", "dtype": "float64", "shape": [-1, 4]},
        "outputs": {"type": "ndarray", "dtype": "int64", "shape": [-1]},
    }


def test_load_into_dest_and_by_alias(registry, iris, tmp_path):
    X, y = iris
    v = registry.register("iris", LogisticRegression(max_iter=500).fit(X, y))
    registry.set_alias("iris", "staging", v.ref)

    loaded = modelreg.load("iris@staging", registry=registry, dest=tmp_path / "deploy")

    assert (tmp_path / "deploy" / "model.skops").is_file()
    assert loaded.score(X, y) > 0.9


def test_without_an_input_example_the_signature_is_null(registry, iris, cache):
    X, y = iris
    v = registry.register("iris", LogisticRegression(max_iter=500).fit(X, y))
    modelreg.load(v.ref, registry=registry)
    assert json.loads((cache / v.manifest_digest / "flavor.json").read_text())["signature"] is None


def test_a_list_example_and_a_failing_predict_leave_outputs_null(registry, iris, cache):
    X, y = iris
    model = LogisticRegression(max_iter=500).fit(X, y)
    v = registry.register("iris", model, input_example=[[1.0, 2.0]])  # two features, not four
    modelreg.load(v.ref, registry=registry)
    record = json.loads((cache / v.manifest_digest / "flavor.json").read_text())
    assert record["signature"] == {
        "inputs": {"type": "list", "shape": [-1, 2], "items": ["float"]},
        "outputs": None,
    }


def test_an_untrusted_type_inside_a_skops_file_needs_trust(registry):
    from sklearn.preprocessing import FunctionTransformer

    model = Pipeline([("f", FunctionTransformer(json.dumps)), ("clf", LogisticRegression())])
    v = registry.register("odd", model)  # unfitted: skops saves it all the same

    with pytest.raises(UnsafeModel, match=r"model\.skops names types skops does not trust"):
        modelreg.load(v.ref, registry=registry)
    assert modelreg.load(v.ref, registry=registry, trust=True).steps[0][1].func is json.dumps


def test_a_named_flavor_that_cannot_save_the_object_is_invalid_input(registry):
    with pytest.raises(InvalidInput, match="sklearn flavor cannot save"):
        registry.register("m", {"not": "an estimator"}.keys(), flavor="sklearn")
    with pytest.raises(InvalidInput, match="unknown flavor 'nosuch'"):
        registry.register("m", object(), flavor="nosuch")
    assert registry.models() == []


def test_input_example_with_plain_files_is_invalid_input(registry, write):
    write("m.bin", "weights")
    with pytest.raises(InvalidInput, match="input_example= and flavor= describe a model"):
        registry.register("m", "m.bin", input_example=[1.0])
    assert registry.models() == []
