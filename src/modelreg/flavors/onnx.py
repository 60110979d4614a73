"""The ``onnx`` flavor: an ``onnx.ModelProto`` saved as ``model.onnx``.

Loading returns an ``onnxruntime.InferenceSession`` on the CPU provider, ready to ``run``.
The load metadata also lists the graph's inputs and outputs (name, element type, shape; a
dimension is an int, a symbolic name, or null), which is the model's own signature.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from modelreg.flavors.classes import installed

MODEL_FILE = "model.onnx"


def _tensors(values: Any) -> list[dict[str, Any]]:
    import onnx

    described = []
    for value in values:
        tensor = value.type.tensor_type
        shape: list[int | str | None] | None = None
        if tensor.HasField("shape"):
            shape = []
            for dim in tensor.shape.dim:
                if dim.HasField("dim_value"):
                    shape.append(int(dim.dim_value))
                elif dim.HasField("dim_param"):
                    shape.append(str(dim.dim_param))
                else:
                    shape.append(None)
        dtype = onnx.TensorProto.DataType.Name(tensor.elem_type) if tensor.elem_type else None
        described.append({"name": value.name, "type": dtype and dtype.lower(), "shape": shape})
    return described


def signature(model: Any) -> dict[str, list[dict[str, Any]]]:
    """Inputs and outputs as the graph declares them (initializers are not inputs)."""
    initializers = {i.name for i in model.graph.initializer}
    inputs = [v for v in model.graph.input if v.name not in initializers]
    return {"inputs": _tensors(inputs), "outputs": _tensors(model.graph.output)}


class OnnxFlavor:
    name = "onnx"

    def detect(self, obj: Any) -> bool:
        cls = type(obj)
        return cls.__qualname__ == "ModelProto" and cls.__module__.split(".")[0] == "onnx"

    def save(self, obj: Any, directory: Path, *, input_example: Any = None) -> dict[str, Any]:
        import onnx

        onnx.save_model(obj, str(directory / MODEL_FILE))
        return {"file": MODEL_FILE, **signature(obj)}

    def libraries(self, obj: Any) -> dict[str, str]:
        return installed("onnx", "onnxruntime")

    def load(self, directory: Path, metadata: dict[str, Any], *, trust: bool) -> Any:
        import onnxruntime

        path = directory / metadata.get("file", MODEL_FILE)
        return onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
