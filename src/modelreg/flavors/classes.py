"""Finding a model's class by name and back, shared by the flavors that record one."""

from __future__ import annotations

import contextlib
import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from modelreg.errors import InvalidInput


def class_names(obj: Any) -> set[str]:
    """Every class in the object's MRO as ``module.qualname``, without importing anything."""
    return {f"{c.__module__}.{c.__qualname__}" for c in type(obj).__mro__}


def installed(*distributions: str) -> dict[str, str]:
    """{distribution: version} of those installed."""
    found = {}
    for dist in distributions:
        with contextlib.suppress(PackageNotFoundError):
            found[dist] = version(dist)
    return found


def class_path(cls: type) -> str:
    """``module:qualname`` for a class, refusing ones that cannot be imported back."""
    path = f"{cls.__module__}:{cls.__qualname__}"
    if cls.__module__ == "__main__" or "<locals>" in cls.__qualname__:
        raise InvalidInput(
            f"cannot save {path}: the class must be importable at load time, so define it in a "
            "module rather than in __main__ or inside a function"
        )
    try:
        found = import_class(path)
    except (ImportError, AttributeError) as exc:
        raise InvalidInput(f"cannot save {path}: the class cannot be imported ({exc})") from exc
    if found is not cls:
        raise InvalidInput(f"cannot save {path}: importing that path gives another object")
    return path


def import_class(path: Any, *, within: tuple[str, ...] = (), trust: bool = True) -> Any:
    """The object at ``module:qualname``. With ``within`` and without ``trust``, only modules
    of those packages are imported: importing a module runs its code, and a tampered
    flavor.json must not choose which code runs."""
    if not isinstance(path, str) or ":" not in path:
        raise InvalidInput(f"flavor.json names no class to load ({path!r})")
    module_name, _, qualname = path.partition(":")
    if (
        within
        and not trust
        and not any(module_name == p or module_name.startswith(p + ".") for p in within)
    ):
        raise InvalidInput(
            f"flavor.json names {path}, outside {', '.join(within)}: importing it would run its"
            " code; pass trust=True if you trust the version's author"
        )
    found: Any = importlib.import_module(module_name)
    for part in qualname.split("."):
        found = getattr(found, part)
    return found
