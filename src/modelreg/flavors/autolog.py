"""Autologging: inside a run, a ``fit()`` call records what it used and produced.

    with reg.start_run("nightly") as run:
        run.autolog()
        model = LogisticRegression(C=0.5).fit(X, y)  # params and training_score recorded
        run.register("churn")                        # the fitted model, saved with skops

Patching is the only way in (scikit-learn has no fit hooks), and a patch is process-wide, so
it lives exactly as long as the run: :meth:`Autolog.stop` undoes every patch when the run
ends, whether or not it raised, and only one run may autolog at a time. A ``fit`` that calls
other fits (a Pipeline fitting its steps, a search fitting candidates) records only the
outermost call.

Each library is one *patcher* in :data:`PATCHERS` (scikit-learn and LightGBM today): a
function that takes the session and returns the undo functions of the patches it made (none
when its library is not installed). Another library's support is a function appended there.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import math
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from modelreg.errors import InvalidInput
from modelreg.values import MAX_PARAM_VALUE

if TYPE_CHECKING:
    from modelreg.run import Run

Undo = Callable[[], None]
Patcher = Callable[["Autolog"], list[Undo]]

_lock = threading.Lock()
_active: Autolog | None = None  # a patch is process-wide: one autologging run at a time


class Autolog:
    """One run's autologging session: the patches it made and the models it saw fitted."""

    def __init__(self, run: Run) -> None:
        self.run = run
        self.model: Any = None
        self.fitted: list[str] = []  # class names, in the order first fitted
        self._undo: list[Undo] = []
        # Fits in progress, in any thread: scikit-learn fits inner estimators on worker
        # threads too, and those are still nested fits.
        self._depth = 0
        self._depth_lock = threading.Lock()

    def start(self) -> None:
        global _active
        with _lock:
            if _active is not None:
                raise InvalidInput(f"autologging is already on in run {_active.run.id}")
            _active = self
        try:
            for patcher in PATCHERS:
                self._undo.extend(patcher(self))
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Undo every patch, last first; safe to call twice."""
        global _active
        while self._undo:
            self._undo.pop()()
        with _lock:
            if _active is self:
                _active = None

    def wrap_fit(self, fit: Callable[..., Any], record: Callable[..., None]) -> Callable[..., Any]:
        """``fit`` that, when no other fit is in progress, calls
        ``record(estimator, args, kwargs)`` after it returns."""

        @functools.wraps(fit)
        def fit_and_record(estimator: Any, *args: Any, **kwargs: Any) -> Any:
            with self._depth_lock:
                outermost = self._depth == 0
                self._depth += 1
            try:
                result = fit(estimator, *args, **kwargs)
                if outermost:  # still counted as inside: fits made while recording are not
                    record(estimator, args, kwargs)
                return result
            finally:
                with self._depth_lock:
                    self._depth -= 1

        fit_and_record.__modelreg_autolog__ = True  # type: ignore[attr-defined]
        return fit_and_record

    def log_fit(self, estimator: Any, params: dict[str, Any], metrics: dict[str, float]) -> None:
        """Record one outermost fit: params and metrics (the class name prefixes them for
        every estimator class after the first), and the model for ``run.register``."""
        name = type(estimator).__name__
        if name not in self.fitted:
            self.fitted.append(name)
        prefix = "" if name == self.fitted[0] else f"{name}."
        self.run.log_params({f"{prefix}{k}": param_value(v) for k, v in params.items()})
        if metrics:
            self.run.log_metrics({f"{prefix}{k}": v for k, v in metrics.items()})
        self.model = estimator


def param_value(value: Any) -> Any:
    """A param as the run stores it: JSON values as they are, anything else by its repr."""
    if isinstance(value, (str, int, float, bool, type(None))):
        return value
    try:
        json.dumps(value, allow_nan=False)
        return value
    except (TypeError, ValueError):
        text = repr(value)
        return text if len(text) <= MAX_PARAM_VALUE else text[: MAX_PARAM_VALUE - 1] + "…"


# -- scikit-learn -------------------------------------------------------------------------------


def patch_sklearn(session: Autolog) -> list[Undo]:
    """Wrap ``fit`` on every class that defines one among scikit-learn's estimators and
    Pipeline (subclasses that inherit ``fit`` go through their parent's wrapper)."""
    if importlib.util.find_spec("sklearn") is None:
        return []
    from sklearn.pipeline import Pipeline
    from sklearn.utils import all_estimators

    owners: set[type] = set()
    for cls in [Pipeline, *(c for _, c in all_estimators())]:
        for klass in cls.__mro__:
            if "fit" in vars(klass) and callable(vars(klass)["fit"]):
                owners.add(klass)
    undo: list[Undo] = []
    for klass in sorted(owners, key=lambda k: f"{k.__module__}.{k.__qualname__}"):
        original = vars(klass)["fit"]
        if getattr(original, "__modelreg_autolog__", False):
            continue
        patched: Any = klass  # mypy: `fit` is not declared on `type`
        patched.fit = session.wrap_fit(original, functools.partial(_record_sklearn, session))
        undo.append(functools.partial(setattr, klass, "fit", original))
    return undo


def _record_sklearn(session: Autolog, estimator: Any, args: Any, kwargs: Any) -> None:
    X = args[0] if args else kwargs.get("X")
    y = args[1] if len(args) > 1 else kwargs.get("y")
    metrics: dict[str, float] = {}
    if y is not None and X is not None and callable(getattr(estimator, "score", None)):
        try:
            score = float(estimator.score(X, y))
        except Exception:  # a score that cannot be computed is left out, never fatal
            score = math.nan
        if math.isfinite(score):
            metrics["training_score"] = score
    session.log_fit(estimator, estimator.get_params(deep=False), metrics)


# -- LightGBM ---------------------------------------------------------------------------------


def patch_lightgbm(session: Autolog) -> list[Undo]:
    """Wrap ``fit`` on LightGBM's scikit-learn API classes (they are not among scikit-learn's
    own estimators, so :func:`patch_sklearn` does not see them)."""
    if importlib.util.find_spec("lightgbm") is None:
        return []
    import lightgbm

    undo: list[Undo] = []
    for name in ("LGBMModel", "LGBMClassifier", "LGBMRegressor", "LGBMRanker"):
        klass = getattr(lightgbm, name, None)
        original = vars(klass).get("fit") if klass is not None else None
        if original is None or getattr(original, "__modelreg_autolog__", False):
            continue
        patched: Any = klass
        patched.fit = session.wrap_fit(original, functools.partial(_record_lightgbm, session))
        undo.append(functools.partial(setattr, klass, "fit", original))
    return undo


def _record_lightgbm(session: Autolog, estimator: Any, args: Any, kwargs: Any) -> None:
    """Params, the training score, and the last value of every metric LightGBM evaluated
    on its eval sets (``best_score_``, e.g. ``valid_0.multi_logloss``)."""
    _record_sklearn(session, estimator, args, kwargs)
    evaluated: dict[str, float] = {}
    for data_name, values in (getattr(estimator, "best_score_", None) or {}).items():
        for metric, value in values.items():
            number = float(value)
            if math.isfinite(number):
                evaluated[f"{data_name}.{metric}"] = number
    if evaluated:
        session.run.log_metrics(evaluated)


# Each library's patcher, in order.
PATCHERS: list[Patcher] = [patch_sklearn, patch_lightgbm]
