"""Input and output signatures, inferred from an example.

A signature is plain JSON that says what a model takes and returns, for a reader and for a
serving layer to check requests against:

    {"type": "ndarray", "dtype": "float64", "shape": [-1, 4]}
    {"type": "dataframe", "columns": [{"name": "age", "dtype": "int64"}, ...]}
    {"type": "list", "shape": [-1, 4], "items": ["float"]}
    {"type": "dict", "fields": {"age": "int", "city": "str"}}

The first axis of an array is the batch: it is recorded as -1, whatever the example's size.
numpy and pandas are imported only when the example's type comes from them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from modelreg.errors import InvalidInput

SCALARS = (bool, int, float, str, type(None))


def infer(example: Any) -> dict[str, Any]:
    """The signature of ``example``; InvalidInput when its type is not supported."""
    module = type(example).__module__.split(".")[0]
    if module == "pandas":
        return _pandas(example)
    if module == "numpy" and hasattr(example, "shape"):
        return _array("ndarray", example)
    if isinstance(example, SCALARS) or (module == "numpy" and hasattr(example, "dtype")):
        return {"type": "scalar", "dtype": _scalar_type(example)}
    if isinstance(example, Mapping):
        return _mapping(example)
    if isinstance(example, (list, tuple)):
        return _list(example)
    if hasattr(example, "shape") and hasattr(example, "dtype"):  # a tensor of any framework
        return _array("tensor", example)
    raise InvalidInput(
        f"cannot infer a signature from an input example of type {type(example).__qualname__}:"
        " give a numpy array, a pandas DataFrame, or a list or dict of scalars"
    )


def outputs(model: Any, example: Any) -> dict[str, Any] | None:
    """The signature of ``model.predict(example)``, or None when there is no such call or it
    fails: an output schema is a help, never a reason to refuse a registration."""
    predict = getattr(model, "predict", None)
    if not callable(predict):
        return None
    try:
        return infer(predict(example))
    except Exception:
        return None


def _array(kind: str, value: Any) -> dict[str, Any]:
    shape = [int(n) for n in value.shape]
    if shape:
        shape[0] = -1
    return {"type": kind, "dtype": str(value.dtype), "shape": shape}


def _pandas(value: Any) -> dict[str, Any]:
    import pandas as pd  # only reached when the example is a pandas object

    if isinstance(value, pd.DataFrame):
        columns = [{"name": str(c), "dtype": str(t)} for c, t in value.dtypes.items()]
        return {"type": "dataframe", "columns": columns}
    if isinstance(value, pd.Series):
        name = None if value.name is None else str(value.name)
        return {"type": "series", "name": name, "dtype": str(value.dtype)}
    raise InvalidInput(f"cannot infer a signature from a pandas {type(value).__qualname__}")


def _scalar_type(value: Any) -> str:
    if value is None:
        return "null"
    if hasattr(value, "dtype"):
        return str(value.dtype)
    return type(value).__name__


def _mapping(value: Mapping[Any, Any]) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for key, item in value.items():
        if isinstance(item, SCALARS):
            fields[str(key)] = _scalar_type(item)
        elif isinstance(item, (list, tuple)):
            fields[str(key)] = _list(item)
        else:
            fields[str(key)] = infer(item)
    return {"type": "dict", "fields": fields}


def _list(value: list[Any] | tuple[Any, ...]) -> dict[str, Any]:
    """A flat list of scalars, or a rectangular list of lists (rows of features)."""
    shape: list[int] = [-1]
    items: set[str] = set()
    level: list[Any] = list(value)
    while level and all(isinstance(x, (list, tuple)) for x in level):
        widths = {len(x) for x in level}
        if len(widths) != 1:
            raise InvalidInput("an input example given as nested lists must be rectangular")
        shape.append(widths.pop())
        level = [y for x in level for y in x]
    for item in level:
        if isinstance(item, (list, tuple)) or not isinstance(item, SCALARS):
            raise InvalidInput(
                "an input example given as a list must hold scalars or rows of scalars,"
                f" not {type(item).__qualname__}"
            )
        items.add(_scalar_type(item))
    return {"type": "list", "shape": shape, "items": sorted(items)}
