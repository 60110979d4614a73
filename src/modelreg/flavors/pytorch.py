"""The ``pytorch`` flavor: a ``torch.nn.Module`` as safetensors weights plus how to rebuild it.

Only tensors are written (``model.safetensors``); the module itself is rebuilt at load time by
importing its class and calling it with recorded keyword arguments, so nothing is unpickled.
That asks two things of the module class:

- it is importable by its ``module:qualname`` (not defined in ``__main__`` or inside a
  function), and
- it can be constructed with no arguments, or the instance carries ``modelreg_init_args``, a
  JSON-serialisable dict of the keyword arguments to pass::

      net = Net(hidden=32)
      net.modelreg_init_args = {"hidden": 32}
      reg.register("net", net)

Anything else is refused at save time with :class:`~modelreg.errors.InvalidInput`.
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Any

from modelreg.errors import InvalidInput
from modelreg.flavors.classes import class_names, class_path, import_class, installed

WEIGHTS_FILE = "model.safetensors"
INIT_ARGS_ATTRIBUTE = "modelreg_init_args"


def _init_args(module: Any) -> dict[str, Any]:
    cls = type(module)
    name = f"{cls.__module__}.{cls.__qualname__}"
    args = getattr(module, INIT_ARGS_ATTRIBUTE, None)
    if args is None:
        try:
            inspect.signature(cls).bind()
        except TypeError as exc:
            raise InvalidInput(
                f"cannot save {name}: its constructor needs arguments ({exc}); set "
                f"model.{INIT_ARGS_ATTRIBUTE} to a dict of the keyword arguments to rebuild it"
            ) from exc
        return {}
    if not isinstance(args, dict) or not all(isinstance(k, str) for k in args):
        raise InvalidInput(f"cannot save {name}: {INIT_ARGS_ATTRIBUTE} must be a dict of str keys")
    try:
        json.dumps(args, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(
            f"cannot save {name}: {INIT_ARGS_ATTRIBUTE} is not JSON-serialisable ({exc})"
        ) from exc
    return dict(args)


class PytorchFlavor:
    name = "pytorch"

    def detect(self, obj: Any) -> bool:
        names = class_names(obj)
        # A transformers model is a Module too; its own flavor saves the config with it.
        if any(n.startswith("transformers.") for n in names):
            return False
        return "torch.nn.modules.module.Module" in names

    def save(self, obj: Any, directory: Path, *, input_example: Any = None) -> dict[str, Any]:
        from safetensors.torch import save_model

        path = class_path(type(obj))
        init_args = _init_args(obj)
        try:
            # save_model rather than save_file(state_dict): it drops the duplicates of tied
            # (shared) tensors, which save_file refuses.
            save_model(obj, str(directory / WEIGHTS_FILE))
        except (ValueError, TypeError, RuntimeError) as exc:
            raise InvalidInput(
                f"cannot save the state_dict of {path} as safetensors: {exc}"
            ) from exc
        return {"class": path, "init_args": init_args, "weights": WEIGHTS_FILE}

    def libraries(self, obj: Any) -> dict[str, str]:
        return installed("torch", "safetensors")

    def load(self, directory: Path, metadata: dict[str, Any], *, trust: bool) -> Any:
        import torch
        from safetensors.torch import load_model

        path = metadata.get("class")
        cls = import_class(path)  # the user's own module: importing it is the design
        # The record names what to call: never call anything but a Module class with it.
        if not (isinstance(cls, type) and issubclass(cls, torch.nn.Module)):
            raise InvalidInput(f"{path} is not a torch.nn.Module class; refusing to call it")
        module = cls(**metadata.get("init_args", {}))
        load_model(module, str(directory / metadata.get("weights", WEIGHTS_FILE)), strict=True)
        return module.eval()
