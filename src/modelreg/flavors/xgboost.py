"""The ``xgboost`` flavor: a ``Booster`` or a scikit-learn style model in XGBoost's own JSON.

``model.json`` is XGBoost's native format (the scikit-learn wrappers keep their attributes in
it too). Loading builds the recorded class (``xgboost.core:Booster``,
``xgboost.sklearn:XGBClassifier``, or a subclass that is importable) and calls ``load_model``.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from modelreg.errors import InvalidInput
from modelreg.flavors.classes import class_names, class_path, import_class

MODEL_FILE = "model.json"
_BASES = {"xgboost.core.Booster", "xgboost.sklearn.XGBModel"}


class XGBoostFlavor:
    name = "xgboost"

    def detect(self, obj: Any) -> bool:
        return bool(class_names(obj) & _BASES)

    def save(self, obj: Any, directory: Path, *, input_example: Any = None) -> dict[str, Any]:
        path = class_path(type(obj))
        if "xgboost.sklearn.XGBModel" in class_names(obj) and not obj.__sklearn_is_fitted__():
            raise InvalidInput(f"cannot save {path}: it is not fitted")
        obj.save_model(str(directory / MODEL_FILE))
        return {"class": path, "file": MODEL_FILE}

    def libraries(self, obj: Any) -> dict[str, str]:
        # The CPU-only wheel is a different distribution with the same module.
        for dist in ("xgboost", "xgboost-cpu"):
            try:
                return {dist: version(dist)}
            except PackageNotFoundError:
                continue
        import xgboost

        return {"xgboost": str(xgboost.__version__)}

    def load(self, directory: Path, metadata: dict[str, Any], *, trust: bool) -> Any:
        import xgboost

        path = metadata.get("class")
        cls = import_class(path, within=("xgboost",), trust=trust)
        if not (isinstance(cls, type) and issubclass(cls, (xgboost.Booster, xgboost.XGBModel))):
            raise InvalidInput(f"{path} is not an XGBoost model class; refusing to call it")
        model = cls()
        model.load_model(str(directory / metadata.get("file", MODEL_FILE)))
        return model
