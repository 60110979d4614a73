"""Demo content: scikit-learn models really trained on datasets bundled with scikit-learn.

``fill(reg)`` splits breast_cancer, wine and diabetes (no download) into train, validation and
test CSV files, trains estimators on them inside runs (metric history per epoch or stage, the
splits recorded as datasets) and registers the fitted objects through the sklearn flavor
(skops files, flavor.json with the signature). In an empty registry it makes:

- ``cancer-classifier/1`` and ``/2``: logistic regression with C=0.01 and C=1.0;
- ``cancer-classifier/3``: SGD logistic regression trained epoch by epoch on the first half of
  the training split; ``/4`` is /3 loaded back from the registry and trained on the whole
  split; ``/5`` is /4 trained further at a lower learning rate (parents /3 <- /4 <- /5);
- ``wine-classifier/1`` and ``/2``: a random forest grown ten trees at a time, gradient boosting;
- ``diabetes-regressor/1`` and ``/2``: ridge regression and gradient boosting (rmse, lower is
  better).

Every version is evaluated on its dataset's held-out test split. ``cancer-classifier@production``
points at /1, then moves to /2; staging points at /5. Seeds are fixed, so every fill trains the
same models.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple

from modelreg.errors import InvalidInput

MAIN_MODEL = "cancer-classifier"
MODELS = (MAIN_MODEL, "wine-classifier", "diabetes-regressor")
# What an empty registry holds after fill(): the fine-tune chain (parent first), the aliases
# (production of the main model pointed at PRODUCTION_MOVE[0] first) and the test datasets.
CHAIN = ("cancer-classifier/3", "cancer-classifier/4", "cancer-classifier/5")
PRODUCTION_MOVE = ("cancer-classifier/1", "cancer-classifier/2")
ALIASES = {
    MAIN_MODEL: {"production": "cancer-classifier/2", "staging": "cancer-classifier/5"},
    "wine-classifier": {"production": "wine-classifier/1"},
    "diabetes-regressor": {"production": "diabetes-regressor/1"},
}
TEST_DATASETS = {
    MAIN_MODEL: "breast-cancer-test",
    "wine-classifier": "wine-test",
    "diabetes-regressor": "diabetes-test",
}
TAGS = {
    MAIN_MODEL: {"team": "diagnostics", "dataset": "breast_cancer"},
    "wine-classifier": {"team": "food-quality", "dataset": "wine"},
    "diabetes-regressor": {"team": "diagnostics", "dataset": "diabetes"},
}
MISSING = "modelreg demo needs scikit-learn and skops: pip install 'modelreg[sklearn]'"
SEED = 0


class Part(NamedTuple):
    """One split of a dataset: its registry name, its CSV file and the rows read back from it."""

    name: str
    role: str
    path: Path
    X: Any
    y: Any


def fill(reg: Any, *, workdir: str | Path | None = None) -> list[str]:
    """Fill ``reg`` with the demo models; return the refs registered, in order."""
    try:
        import sklearn  # noqa: F401
        import skops.io  # noqa: F401  (the sklearn flavor saves with it)
    except ImportError:
        raise InvalidInput(MISSING) from None
    root = getattr(reg, "root", None)
    base = Path(workdir) if workdir else (root / "demo-data" if root else None)
    if base is None:
        base = Path(tempfile.mkdtemp(prefix="modelreg-demo-"))
    base.mkdir(parents=True, exist_ok=True)
    return _cancer(reg, base) + _wine(reg, base) + _diabetes(reg, base)


def _splits(base: Path, prefix: str, bunch: Any, *, classes: bool) -> list[Part]:
    """Train (60%), validation and test (20% each) CSV files; stratified for a classifier."""
    from sklearn.model_selection import train_test_split

    X, y = bunch.data, bunch.target
    X_rest, X_test, y_rest, y_test = train_test_split(
        X, y, test_size=0.2, random_state=SEED, stratify=y if classes else None
    )
    X_train, X_val, y_train, y_val = train_test_split(
        X_rest, y_rest, test_size=0.25, random_state=SEED, stratify=y_rest if classes else None
    )
    columns = [*bunch.feature_names, "target"]
    return [
        _write(base / f"{prefix}-{role}.csv", role, columns, X_, y_, classes=classes)
        for role, X_, y_ in (
            ("train", X_train, y_train),
            ("validation", X_val, y_val),
            ("test", X_test, y_test),
        )
    ]


def _write(path: Path, role: str, columns: list[str], X: Any, y: Any, *, classes: bool) -> Part:
    import numpy as np

    table = np.column_stack([X, y])
    np.savetxt(path, table, fmt="%.10g", delimiter=",", header=",".join(columns), comments="")
    # Train on the rows as written, so the digest recorded is that of the data used.
    rows = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)
    target = rows[:, -1].astype(int) if classes else rows[:, -1]
    return Part(path.stem, role, path, rows[:, :-1], target)


def _classified(model: Any, part: Part) -> dict[str, float]:
    from sklearn.metrics import accuracy_score, f1_score

    predicted = model.predict(part.X)
    average = "binary" if len(set(part.y.tolist())) == 2 else "macro"
    return {
        "accuracy": float(accuracy_score(part.y, predicted)),
        "f1": float(f1_score(part.y, predicted, average=average)),
    }


def _regressed(model: Any, part: Part) -> dict[str, float]:
    from sklearn.metrics import mean_squared_error, r2_score

    predicted = model.predict(part.X)
    return {
        "rmse": float(mean_squared_error(part.y, predicted) ** 0.5),
        "r2": float(r2_score(part.y, predicted)),
    }


def _version(
    reg: Any,
    name: str,
    parts: Sequence[Part],
    fit: Callable[[Any], Any],
    run_name: str,
    params: dict[str, Any],
    description: str,
    *,
    parents: Sequence[str] = (),
) -> str:
    """Run ``fit(run)``, register the model it returns with its train and validation scores,
    and evaluate it on the test split."""
    from sklearn.base import is_regressor

    train, val, test = parts
    with reg.start_run(name=run_name, params=params) as run:
        for part in (train, val):
            run.use_dataset(part.path, name=part.name, role=part.role)
        model = fit(run)
        score = _regressed if is_regressor(model) else _classified
        metrics = {f"train_{k}": v for k, v in score(model, train).items()}
        metrics |= {f"val_{k}": v for k, v in score(model, val).items()}
        version = run.register(
            name,
            model,
            metrics=metrics,
            tags={**TAGS[name], "framework": "scikit-learn"},
            description=description,
            input_example=test.X[:5],
            parents=list(parents),
        )
    reg.evaluate(
        version.ref, {"path": str(test.path), "name": test.name}, metrics=score(model, test)
    )
    return str(version.ref)


def _fitted(run: Any, model: Any, data: Part) -> Any:
    return model.fit(data.X, data.y)


def _sgd(run: Any, model: Any, data: Part, val: Part, *, epochs: int, eta0: float) -> Any:
    """Train the pipeline's classifier ``epochs`` passes over ``data``, keeping its scaler."""
    from sklearn.metrics import log_loss

    scaler, classifier = model.steps[0][1], model.steps[-1][1]
    classifier.set_params(eta0=eta0)
    features, held_out = scaler.transform(data.X), scaler.transform(val.X)
    for epoch in range(epochs):
        classifier.partial_fit(features, data.y, classes=[0, 1])
        loss = float(log_loss(data.y, classifier.predict_proba(features)))
        accuracy = float((classifier.predict(held_out) == val.y).mean())
        run.log_metrics({"train_loss": loss, "val_accuracy": accuracy}, step=epoch)
    return model


def _cancer(reg: Any, base: Path) -> list[str]:
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression, SGDClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from modelreg.flavors.loading import load

    bunch = load_breast_cancer()
    parts = train, val, test = _splits(base, "breast-cancer", bunch, classes=True)
    refs = []
    for c in (0.01, 1.0):
        model = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=1000))
        params = {"estimator": "LogisticRegression", "C": c, "scaler": "StandardScaler"}
        what = f"Standardised features, logistic regression with C={c}."
        fit = partial(_fitted, model=model, data=train)
        refs.append(_version(reg, MAIN_MODEL, parts, fit, f"cancer logistic C={c}", params, what))

    # The fine-tune chain: each model after the first is its parent loaded back from the
    # registry (with its scaler, fitted on the first half) and trained further.
    half = len(train.y) // 2
    columns = [*bunch.feature_names, "target"]
    first = _write(base / "breast-cancer-train-first-half.csv", "train", columns,
                   train.X[:half], train.y[:half], classes=True)  # fmt: skip
    sgd = SGDClassifier(loss="log_loss", alpha=0.001, learning_rate="constant", random_state=SEED)
    chain = [
        (first, 15, 0.01, "cancer sgd", "trained 15 epochs on the first half of the train split"),
        (train, 10, 0.01, "cancer sgd fine-tune", "fine-tuned 10 epochs on the whole train split"),
        (train, 10, 0.002, "cancer sgd fine-tune 2", "fine-tuned 10 more epochs at a lower rate"),
    ]
    for step, (data, epochs, eta0, run_name, what) in enumerate(chain):
        parents = refs[-1:] if step else []
        if parents:
            with tempfile.TemporaryDirectory() as pulled:
                model = load(parents[0], registry=reg, dest=pulled)
        else:
            model = make_pipeline(StandardScaler().fit(data.X), sgd)
        params = {"estimator": "SGDClassifier", "loss": "log_loss", "alpha": 0.001}
        params |= {"learning_rate": "constant", "eta0": eta0, "epochs": epochs}
        params |= {"warm_start_from": parents[0]} if parents else {}
        what = f"Standardised features, SGD logistic regression {what}."
        what += f" Warm-started from {parents[0]}." if parents else ""
        fit = partial(_sgd, model=model, data=data, val=val, epochs=epochs, eta0=eta0)
        split = (data, val, test)
        refs.append(_version(reg, MAIN_MODEL, split, fit, run_name, params, what, parents=parents))
    # Production first takes the cautious model, then moves to the more accurate one; from
    # then on a version must be at least as accurate on the same test data to take it.
    reg.set_alias(MAIN_MODEL, "production", refs[0])
    reg.set_alias(MAIN_MODEL, "staging", refs[-1])
    reg.set_alias(MAIN_MODEL, "production", refs[1])
    reg.set_policy(MAIN_MODEL, "production", metric="accuracy", dataset=test.name)
    return refs


def _wine(reg: Any, base: Path) -> list[str]:
    from sklearn.datasets import load_wine
    from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier

    parts = train, val, _ = _splits(base, "wine", load_wine(), classes=True)

    def forest(run: Any) -> Any:
        model = RandomForestClassifier(max_depth=4, warm_start=True, random_state=SEED)
        for step, trees in enumerate((10, 20, 30)):
            model.set_params(n_estimators=trees).fit(train.X, train.y)
            run.log_metric("val_accuracy", _classified(model, val)["accuracy"], step=step)
        return model

    def boosting(run: Any) -> Any:
        model = GradientBoostingClassifier(n_estimators=20, max_depth=2, random_state=SEED)
        model.fit(train.X, train.y)
        for stage, predicted in enumerate(model.staged_predict(val.X)):
            accuracy = float((predicted == val.y).mean())
            loss = float(model.train_score_[stage])
            run.log_metrics({"train_loss": loss, "val_accuracy": accuracy}, step=stage)
        return model

    forest_params = {"estimator": "RandomForestClassifier", "n_estimators": 30, "max_depth": 4}
    boost_params = {"estimator": "GradientBoostingClassifier", "n_estimators": 20, "max_depth": 2}
    refs = [
        _version(reg, "wine-classifier", parts, forest, "wine forest", forest_params,
                 "Random forest of 30 trees of depth at most 4, grown ten at a time."),
        _version(reg, "wine-classifier", parts, boosting, "wine boosting", boost_params,
                 "Gradient boosting: 20 stages of trees of depth 2, learning rate 0.1."),
    ]  # fmt: skip
    reg.set_alias("wine-classifier", "production", refs[0])  # the forest scores higher on test
    return refs


def _diabetes(reg: Any, base: Path) -> list[str]:
    from sklearn.datasets import load_diabetes
    from sklearn.ensemble import GradientBoostingRegressor
    from sklearn.linear_model import Ridge

    parts = train, val, test = _splits(base, "diabetes", load_diabetes(), classes=False)

    def boosting(run: Any) -> Any:
        model = GradientBoostingRegressor(
            n_estimators=40, max_depth=2, learning_rate=0.05, random_state=SEED
        ).fit(train.X, train.y)
        for stage, predicted in enumerate(model.staged_predict(val.X)):
            rmse = float(((predicted - val.y) ** 2).mean() ** 0.5)
            run.log_metric("val_rmse", rmse, step=stage)
        return model

    ridge = partial(_fitted, model=Ridge(alpha=0.1), data=train)
    boost_params = {"estimator": "GradientBoostingRegressor", "n_estimators": 40, "max_depth": 2}
    refs = [
        _version(reg, "diabetes-regressor", parts, ridge, "diabetes ridge",
                 {"estimator": "Ridge", "alpha": 0.1}, "Ridge regression with alpha=0.1."),
        _version(reg, "diabetes-regressor", parts, boosting, "diabetes boosting", boost_params,
                 "Gradient boosting: 40 stages of trees of depth 2, learning rate 0.05."),
    ]  # fmt: skip
    # The ridge has the lower test rmse; the gate keeps it there until a version does better.
    reg.set_alias("diabetes-regressor", "production", refs[0])
    reg.set_policy(
        "diabetes-regressor", "production", metric="rmse", dataset=test.name, higher_is_better=False
    )
    return refs
