"""The pickle flavor: the fallback for any other picklable object.

Loading a pickle runs code chosen by whoever wrote it, so a pickle-flavored model is loaded
only with ``trust=True``. Prefer a flavor with a data-only format where one exists.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

from modelreg.errors import InvalidInput, UnsafeModel

MODEL_FILE = "model.pkl"
# Built-in values are registered as files or refused, never pickled as a "model".
NOT_MODELS = (type(None), bool, int, float, complex, str, bytes, bytearray)


class PickleFlavor:
    name = "pickle"

    def detect(self, obj: Any) -> bool:
        return not isinstance(obj, NOT_MODELS)  # whether it pickles, save finds out

    def save(self, obj: Any, directory: Path, *, input_example: Any = None) -> dict[str, Any]:
        try:
            with open(directory / MODEL_FILE, "wb") as f:
                pickle.dump(obj, f, protocol=pickle.HIGHEST_PROTOCOL)
        except (pickle.PicklingError, TypeError, AttributeError) as exc:
            raise InvalidInput(
                f"no flavor can save an object of type {_type_name(obj)}, and it does not"
                f" pickle: {exc}"
            ) from None
        return {"file": MODEL_FILE, "type": _type_name(obj)}

    def libraries(self, obj: Any) -> dict[str, str]:
        return {}  # the object's own library is recorded in the version's environment

    def load(self, directory: Path, metadata: dict[str, Any], *, trust: bool) -> Any:
        name = str(metadata.get("file", MODEL_FILE))
        if not trust:
            raise UnsafeModel(
                f"{name} is a pickle: loading it runs code; pass trust=True if you trust"
                " its author",
                files={name: "a pickle"},
            )
        with open(directory / name, "rb") as f:
            return pickle.load(f)  # noqa: S301 - the caller passed trust=True


def _type_name(obj: Any) -> str:
    return f"{type(obj).__module__}.{type(obj).__qualname__}"
