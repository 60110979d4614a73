"""The ``lightgbm`` flavor: a ``Booster`` or a scikit-learn style model in LightGBM's text format.

``model.txt`` is the booster's native text dump. A scikit-learn model (``LGBMClassifier``,
``LGBMRegressor``, ``LGBMRanker`` or an importable subclass) is rebuilt around the loaded
booster from its recorded class, ``get_params()`` (which must be JSON-serialisable) and, for a
classifier, its classes.
"""

from __future__ import annotations

import json
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from modelreg.errors import InvalidInput
from modelreg.flavors.classes import class_names, class_path, import_class

MODEL_FILE = "model.txt"
_BOOSTER = "lightgbm.basic.Booster"
_SKLEARN = "lightgbm.sklearn.LGBMModel"


def _plain(value: Any) -> Any:
    """numpy scalars to Python ones, so classes and params go into JSON."""
    return value.item() if hasattr(value, "item") and not isinstance(value, str) else value


def _sklearn_metadata(obj: Any, path: str) -> dict[str, Any]:
    if not obj.__sklearn_is_fitted__():
        raise InvalidInput(f"cannot save {path}: it is not fitted")
    params = {k: _plain(v) for k, v in obj.get_params().items()}
    try:
        json.dumps(params, allow_nan=False)
    except (TypeError, ValueError) as exc:
        bad = [k for k, v in params.items() if not _json_ok(v)]
        raise InvalidInput(
            f"cannot save {path}: params {', '.join(bad)} are not JSON-serialisable ({exc})"
        ) from exc
    meta: dict[str, Any] = {"params": params, "objective": obj._objective}
    if hasattr(obj, "classes_"):
        meta["classes"] = [_plain(c) for c in obj.classes_]
    return meta


def _json_ok(value: Any) -> bool:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return False
    return True


class LightGBMFlavor:
    name = "lightgbm"

    def detect(self, obj: Any) -> bool:
        return bool(class_names(obj) & {_BOOSTER, _SKLEARN})

    def save(self, obj: Any, directory: Path, *, input_example: Any = None) -> dict[str, Any]:
        path = class_path(type(obj))
        meta: dict[str, Any] = {"class": path, "file": MODEL_FILE}
        booster = obj
        if _SKLEARN in class_names(obj):
            meta.update(_sklearn_metadata(obj, path))
            booster = obj.booster_
        booster.save_model(str(directory / MODEL_FILE))
        return meta

    def libraries(self, obj: Any) -> dict[str, str]:
        try:
            return {"lightgbm": version("lightgbm")}
        except PackageNotFoundError:
            import lightgbm

            return {"lightgbm": str(lightgbm.__version__)}

    def load(self, directory: Path, metadata: dict[str, Any], *, trust: bool) -> Any:
        import lightgbm

        path = metadata.get("class")
        cls = import_class(path, within=("lightgbm",), trust=trust)
        if not (isinstance(cls, type) and issubclass(cls, (lightgbm.Booster, lightgbm.LGBMModel))):
            raise InvalidInput(f"{path} is not a LightGBM model class; refusing to call it")
        model_file = str(directory / metadata.get("file", MODEL_FILE))
        if issubclass(cls, lightgbm.Booster):
            return cls(model_file=model_file)
        return _rebuild(cls, lightgbm.Booster(model_file=model_file), metadata)


def _rebuild(cls: Any, booster: Any, metadata: dict[str, Any]) -> Any:
    # LightGBM has no public "estimator from booster"; these are the attributes fit() sets
    # that predict() reads (checked against lightgbm 4.x).
    from lightgbm.sklearn import _LGBMLabelEncoder

    model = cls(**metadata.get("params", {}))
    model._Booster = booster
    model._n_features = model._n_features_in = booster.num_feature()
    model._objective = metadata.get("objective")
    model._best_iteration = booster.best_iteration
    model._best_score = booster.best_score
    model._evals_result = {}
    model._fitted_with_feature_names = False
    if "classes" in metadata:
        model._le = _LGBMLabelEncoder().fit(metadata["classes"])
        model._classes = model._le.classes_
        model._n_classes = len(model._classes)
        model._class_map = dict(
            zip(model._le.classes_, model._le.transform(model._le.classes_), strict=True)
        )
    model.fitted_ = True
    return model
