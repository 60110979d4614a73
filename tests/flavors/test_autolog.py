"""run.autolog(): inside a run, fit() records params, a training score and the model; outside
a run, and after it, scikit-learn is exactly as it was."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

import modelreg
from modelreg import InvalidInput

ORIGINAL_FITS = {cls: cls.__dict__["fit"] for cls in (LogisticRegression, Pipeline, StandardScaler)}


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def iris():
    return load_iris(return_X_y=True)


def unpatched() -> bool:
    return all(cls.__dict__["fit"] is fit for cls, fit in ORIGINAL_FITS.items())


def test_a_fit_records_params_and_training_score_and_registers_the_model(registry, iris):
    X, y = iris
    with registry.start_run("train") as run:
        run.autolog()
        model = LogisticRegression(C=0.5, max_iter=500).fit(X, y)
        v = run.register("iris")

    assert v.params["C"] == "0.5"
    assert v.params["max_iter"] == "500"
    assert v.metrics["training_score"] == pytest.approx(model.score(X, y))
    loaded = modelreg.load(v.ref, registry=registry)
    assert np.array_equal(loaded.predict(X), model.predict(X))
    assert unpatched()


def test_a_pipeline_records_only_its_own_fit(registry, iris):
    X, y = iris
    with registry.start_run("train") as run:
        run.autolog()
        pipe = Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression(max_iter=500))])
        pipe.fit(X, y)
        v = run.register("iris")

    assert set(v.params) == {"memory", "steps", "transform_input", "verbose"}
    assert "LogisticRegression" in v.params["steps"]
    history = registry.lineage(v.ref)["run"]["metric_history"]
    assert [p["value"] for p in history["training_score"]] == [pytest.approx(pipe.score(X, y))]
    assert modelreg.load(v.ref, registry=registry).steps[0][0] == "scale"


def test_other_estimators_params_carry_their_class_name(registry, iris):
    X, y = iris
    with registry.start_run("train") as run:
        run.autolog()
        scaled = StandardScaler(with_mean=False).fit_transform(X)
        model = LogisticRegression(C=2.0, max_iter=500).fit(scaled, y)
        v = run.register("iris")

    assert v.params["with_mean"] == "false"
    assert v.params["LogisticRegression.C"] == "2.0"
    assert "LogisticRegression.training_score" in v.metrics
    assert "training_score" not in v.metrics  # the scaler had no y to score against
    assert type(modelreg.load(v.ref, registry=registry)) is type(model)


def test_the_patch_is_undone_after_a_failing_run(registry, iris):
    X, y = iris
    run = registry.start_run("bad")

    def train() -> None:
        with run:
            run.autolog()
            assert not unpatched()
            LogisticRegression(max_iter=500).fit(X, y)
            raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        train()

    assert unpatched()
    assert run.status == "failed"


def test_nothing_is_patched_outside_a_run(registry, iris):
    X, y = iris
    assert unpatched()
    run = registry.start_run("later")
    with pytest.raises(InvalidInput, match="not active"):
        run.autolog()
    assert unpatched()
    LogisticRegression(max_iter=500).fit(X, y)  # no run to record into: nothing happens


def test_a_run_without_autolog_records_no_fit(registry, iris):
    X, y = iris
    with registry.start_run("plain") as run:
        LogisticRegression(max_iter=500).fit(X, y)
        with pytest.raises(InvalidInput, match=r"no model was fitted under run\.autolog"):
            run.register("iris")
    assert run.params == {}


def test_only_one_run_autologs_at_a_time(registry):
    with registry.start_run("a") as first:
        first.autolog()
        with registry.start_run("b") as second, pytest.raises(InvalidInput, match="already on"):
            second.autolog()
    assert unpatched()


def test_lightgbm_fits_are_recorded_and_the_model_registers(registry, iris):
    import lightgbm

    X, y = iris
    original = lightgbm.LGBMClassifier.__dict__["fit"]
    with registry.start_run("boost") as run:
        run.autolog()
        model = lightgbm.LGBMClassifier(n_estimators=15, learning_rate=0.2, verbose=-1)
        model.fit(X, y, eval_X=X, eval_y=y)
        v = run.register("iris-boost")

    assert v.params["n_estimators"] == "15"
    assert v.params["learning_rate"] == "0.2"
    assert "training_score" in v.metrics
    assert "valid_0.multi_logloss" in v.metrics
    loaded = modelreg.load(v.ref, registry=registry)
    assert (loaded.predict(X) == model.predict(X)).all()
    assert lightgbm.LGBMClassifier.__dict__["fit"] is original
