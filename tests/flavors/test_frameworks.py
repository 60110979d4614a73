"""The framework flavors (PyTorch, ONNX, XGBoost, LightGBM, transformers): each saves a model
into a folder without pickle and loads back one that gives the same outputs.

Every model here is tiny and built in the test; nothing is downloaded (HF_HUB_OFFLINE=1).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from modelreg.errors import InvalidInput
from modelreg.flavors import safety
from modelreg.flavors.lightgbm import LightGBMFlavor
from modelreg.flavors.onnx import OnnxFlavor
from modelreg.flavors.pytorch import PytorchFlavor
from modelreg.flavors.transformers import TransformersFlavor
from modelreg.flavors.xgboost import XGBoostFlavor

from .torch_models import SizedNet, TiedNet, TinyNet

FRAMEWORKS = ["torch", "safetensors", "onnx", "onnxruntime", "xgboost", "lightgbm", "transformers"]


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")


def round_trip(flavor: Any, obj: Any, tmp_path: Path) -> tuple[Any, dict[str, Any], Path]:
    """Save through the flavor into a fresh folder, JSON-round-trip its metadata, load back."""
    folder = tmp_path / "saved"
    folder.mkdir(parents=True)
    metadata = json.loads(json.dumps(flavor.save(obj, folder)))
    assert_no_pickle(folder)
    return flavor.load(folder, metadata, trust=False), metadata, folder


def assert_no_pickle(folder: Path) -> None:
    for path in (p for p in folder.rglob("*") if p.is_file()):
        data = path.read_bytes()
        assert safety.unsafe_reason(path) is None, path
        assert not data.startswith((b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05")), path
        assert b"data.pkl" not in data, path


@pytest.fixture(scope="module")
def iris() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_iris

    x, y = load_iris(return_X_y=True)
    return x.astype(np.float32), y


# --- pytorch ----------------------------------------------------------------------------------


def test_a_torch_module_round_trips_to_the_same_outputs(tmp_path: Path) -> None:
    torch.manual_seed(0)
    net = TinyNet()
    with torch.no_grad():
        net.scale.fill_(3.0)  # a buffer, not a parameter: it must travel too
    x = torch.randn(5, 4)

    loaded, metadata, folder = round_trip(PytorchFlavor(), net, tmp_path)

    assert isinstance(loaded, TinyNet)
    assert not loaded.training
    assert metadata["class"] == f"{TinyNet.__module__}:TinyNet"
    assert sorted(p.name for p in folder.iterdir()) == ["model.safetensors"]
    with torch.no_grad():
        assert torch.equal(loaded(x), net.eval()(x))


def test_constructor_arguments_come_from_modelreg_init_args(tmp_path: Path) -> None:
    net = SizedNet(3, 7)
    net.modelreg_init_args = {"n_in": 3, "hidden": 7}
    x = torch.randn(2, 3)

    loaded, metadata, _ = round_trip(PytorchFlavor(), net, tmp_path)

    assert metadata["init_args"] == {"n_in": 3, "hidden": 7}
    with torch.no_grad():
        assert torch.equal(loaded(x), net(x))


def test_tied_weights_stay_tied(tmp_path: Path) -> None:
    net = TiedNet()
    loaded, _, _ = round_trip(PytorchFlavor(), net, tmp_path)
    assert loaded.decode.weight is loaded.encode.weight
    x = torch.randn(2, 3)
    with torch.no_grad():
        assert torch.equal(loaded(x), net(x))


def test_a_module_that_needs_arguments_and_has_none_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match=r"SizedNet.*modelreg_init_args"):
        PytorchFlavor().save(SizedNet(3, 7), tmp_path)


def test_init_args_must_be_json(tmp_path: Path) -> None:
    net = SizedNet(3, 7)
    net.modelreg_init_args = {"n_in": 3, "hidden": torch.tensor(7)}
    with pytest.raises(InvalidInput, match=r"SizedNet.*JSON"):
        PytorchFlavor().save(net, tmp_path)


def test_a_module_class_that_cannot_be_imported_back_is_refused(tmp_path: Path) -> None:
    class Local(torch.nn.Module):
        pass

    with pytest.raises(InvalidInput, match=r"Local.*importable"):
        PytorchFlavor().save(Local(), tmp_path)


def test_loading_calls_only_a_module_class(tmp_path: Path) -> None:
    """The record names what to call; a doctored one must not run something else."""
    folder = tmp_path / "saved"
    folder.mkdir()
    metadata = PytorchFlavor().save(TinyNet(), folder)
    doctored = {**metadata, "class": "subprocess:Popen", "init_args": {"args": ["true"]}}
    with pytest.raises(InvalidInput, match=r"not a torch\.nn\.Module"):
        PytorchFlavor().load(folder, doctored, trust=False)


# --- onnx -------------------------------------------------------------------------------------


def tiny_onnx_model() -> Any:
    """y = relu(x @ W + b), with a symbolic batch dimension."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    weight = numpy_helper.from_array(rng.normal(size=(4, 3)).astype(np.float32), "W")
    bias = numpy_helper.from_array(rng.normal(size=(3,)).astype(np.float32), "b")
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "W"], ["xw"]),
            helper.make_node("Add", ["xw", "b"], ["z"]),
            helper.make_node("Relu", ["z"], ["y"]),
        ],
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3])],
        initializer=[weight, bias],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8  # readable by every onnxruntime the extra allows
    onnx.checker.check_model(model)
    return model, weight, bias


def test_an_onnx_model_loads_as_an_inference_session_with_the_same_outputs(
    tmp_path: Path,
) -> None:
    from onnx import numpy_helper

    model, weight, bias = tiny_onnx_model()
    x = np.random.default_rng(1).normal(size=(5, 4)).astype(np.float32)
    expected = np.maximum(x @ numpy_helper.to_array(weight) + numpy_helper.to_array(bias), 0)

    session, metadata, _ = round_trip(OnnxFlavor(), model, tmp_path)

    assert type(session).__name__ == "InferenceSession"
    assert session.get_providers() == ["CPUExecutionProvider"]
    (out,) = session.run(None, {"x": x})
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)
    assert metadata["inputs"] == [{"name": "x", "type": "float", "shape": ["batch", 4]}]
    assert metadata["outputs"] == [{"name": "y", "type": "float", "shape": ["batch", 3]}]


# --- xgboost ----------------------------------------------------------------------------------


def test_an_xgboost_classifier_round_trips_to_the_same_predictions(
    tmp_path: Path, iris: tuple[np.ndarray, np.ndarray]
) -> None:
    import xgboost

    x, y = iris
    model = xgboost.XGBClassifier(n_estimators=5, max_depth=2, n_jobs=1).fit(x, y)

    loaded, metadata, folder = round_trip(XGBoostFlavor(), model, tmp_path)

    assert type(loaded) is xgboost.XGBClassifier
    assert metadata["class"] == "xgboost.sklearn:XGBClassifier"
    assert json.loads((folder / "model.json").read_text())  # native JSON
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    np.testing.assert_array_equal(loaded.predict_proba(x), model.predict_proba(x))


def test_an_xgboost_booster_round_trips_to_the_same_predictions(
    tmp_path: Path, iris: tuple[np.ndarray, np.ndarray]
) -> None:
    import xgboost

    x, y = iris
    data = xgboost.DMatrix(x, label=y)
    booster = xgboost.train({"max_depth": 2, "nthread": 1}, data, num_boost_round=3)

    loaded, _, _ = round_trip(XGBoostFlavor(), booster, tmp_path)

    assert type(loaded) is xgboost.Booster
    np.testing.assert_array_equal(loaded.predict(data), booster.predict(data))


# --- lightgbm ---------------------------------------------------------------------------------


def test_a_lightgbm_classifier_is_rebuilt_around_its_booster(
    tmp_path: Path, iris: tuple[np.ndarray, np.ndarray]
) -> None:
    import lightgbm

    x, y = iris
    labels = np.array(["setosa", "versicolor", "virginica"])[y]
    model = lightgbm.LGBMClassifier(n_estimators=5, num_leaves=4, verbose=-1, n_jobs=1)
    model.fit(x, labels)

    loaded, metadata, folder = round_trip(LightGBMFlavor(), model, tmp_path)

    assert type(loaded) is lightgbm.LGBMClassifier
    assert metadata["classes"] == ["setosa", "versicolor", "virginica"]
    assert loaded.get_params() == model.get_params()
    assert (folder / "model.txt").read_text().startswith("tree")  # native text format
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    np.testing.assert_array_equal(loaded.predict_proba(x), model.predict_proba(x))


def test_a_lightgbm_regressor_and_booster_round_trip(
    tmp_path: Path, iris: tuple[np.ndarray, np.ndarray]
) -> None:
    import lightgbm

    x, _ = iris
    target = x[:, 0] * 2 - x[:, 3]
    model = lightgbm.LGBMRegressor(n_estimators=5, num_leaves=4, verbose=-1, n_jobs=1)
    model.fit(x[:, 1:], target)

    regressor, _, _ = round_trip(LightGBMFlavor(), model, tmp_path / "r")
    booster, _, _ = round_trip(LightGBMFlavor(), model.booster_, tmp_path / "b")

    assert type(booster) is lightgbm.Booster
    np.testing.assert_array_equal(regressor.predict(x[:, 1:]), model.predict(x[:, 1:]))
    np.testing.assert_array_equal(booster.predict(x[:, 1:]), model.predict(x[:, 1:]))


def test_an_unfitted_lightgbm_model_is_refused(tmp_path: Path) -> None:
    import lightgbm

    with pytest.raises(InvalidInput, match="not fitted"):
        LightGBMFlavor().save(lightgbm.LGBMClassifier(), tmp_path)


# --- transformers -----------------------------------------------------------------------------


def tiny_bert() -> Any:
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=100,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
    )
    return BertModel(config).eval()


def tiny_tokenizer(tmp_path: Path) -> Any:
    from transformers import BertTokenizer

    vocab = tmp_path / "vocab.txt"
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "model", "registry", "loads"]
    vocab.write_text("\n".join(words) + "\n")
    return BertTokenizer(str(vocab))


def test_a_transformers_model_round_trips_to_the_same_hidden_states(tmp_path: Path) -> None:
    model = tiny_bert()
    ids = torch.tensor([[2, 5, 6, 7, 3]])

    loaded, metadata, folder = round_trip(TransformersFlavor(), model, tmp_path)

    assert type(loaded) is type(model)
    assert metadata["auto_class"] == "AutoModel"
    assert (folder / "model.safetensors").is_file()
    assert not list(folder.glob("*.bin"))
    with torch.no_grad():
        assert torch.equal(loaded(ids).last_hidden_state, model(ids).last_hidden_state)


def test_a_transformers_model_travels_with_its_tokenizer(tmp_path: Path) -> None:
    model, tokenizer = tiny_bert(), tiny_tokenizer(tmp_path)
    text = "a model registry loads a model"

    loaded, _, _ = round_trip(
        TransformersFlavor(), {"model": model, "tokenizer": tokenizer}, tmp_path
    )

    assert set(loaded) == {"model", "tokenizer"}
    encoded = loaded["tokenizer"](text, return_tensors="pt")
    assert (
        encoded["input_ids"].tolist() == tokenizer(text, return_tensors="pt")["input_ids"].tolist()
    )
    assert 1 not in encoded["input_ids"].tolist()[0]  # [UNK]: the vocabulary came along
    with torch.no_grad():
        out = loaded["model"](**encoded).last_hidden_state
        assert torch.equal(out, model(**encoded).last_hidden_state)


def test_a_transformers_folder_with_pickled_weights_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "saved"
    folder.mkdir()
    metadata = TransformersFlavor().save(tiny_bert(), folder)
    # a pickle under an innocent name: the content decides, not the extension
    torch.save({"w": torch.zeros(1)}, folder / "pytorch_model.bin")
    with pytest.raises(InvalidInput, match=r"pytorch_model\.bin"):
        TransformersFlavor().load(folder, metadata, trust=False)


# --- detection and imports --------------------------------------------------------------------


def test_each_flavor_claims_only_its_own_objects(
    tmp_path: Path, iris: tuple[np.ndarray, np.ndarray]
) -> None:
    import lightgbm
    import xgboost

    x, y = iris
    objects = {
        "pytorch": TinyNet(),
        "onnx": tiny_onnx_model()[0],
        "xgboost": xgboost.XGBRegressor(n_estimators=2).fit(x, y),
        "lightgbm": lightgbm.LGBMRegressor(n_estimators=2, verbose=-1).fit(x, y),
        "transformers": tiny_bert(),
    }
    flavors = [PytorchFlavor(), OnnxFlavor(), XGBoostFlavor(), LightGBMFlavor()]
    flavors.append(TransformersFlavor())
    for flavor in flavors:
        claimed = {name for name, obj in objects.items() if flavor.detect(obj)}
        assert claimed == {flavor.name}, flavor.name
        assert not flavor.detect(object())
        assert not flavor.detect({"model": 1})
        assert not flavor.detect(np.zeros(3))
    assert TransformersFlavor().detect({"model": tiny_bert(), "tokenizer": None})


def test_libraries_name_the_installed_versions(iris: tuple[np.ndarray, np.ndarray]) -> None:
    from importlib.metadata import version

    assert PytorchFlavor().libraries(TinyNet()) == {
        "torch": version("torch"),
        "safetensors": version("safetensors"),
    }
    assert set(OnnxFlavor().libraries(None)) == {"onnx", "onnxruntime"}
    assert set(XGBoostFlavor().libraries(None)) <= {"xgboost", "xgboost-cpu"}
    assert set(LightGBMFlavor().libraries(None)) == {"lightgbm"}
    assert {"transformers", "safetensors", "torch"} <= set(TransformersFlavor().libraries(None))


def test_importing_the_flavors_imports_no_framework() -> None:
    code = f"""
import sys
import modelreg, modelreg.flavors
flavors = modelreg.flavors.available()
for flavor in flavors:
    flavor.detect(object())
    flavor.detect({{"model": 1}})
loaded = sorted(m for m in {FRAMEWORKS!r} if m in sys.modules)
print(len(flavors), loaded)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    count, loaded = done.stdout.strip().split(" ", 1)
    assert loaded == "[]"
    assert int(count) >= 5


# --- through the registry ---------------------------------------------------------------------


@pytest.fixture
def reg(tmp_path: Path, workdir: Path) -> Any:
    import modelreg

    registry = modelreg.connect(tmp_path / "reg", actor="flavor-tester")
    yield registry
    registry.close()


# Each case: the model, its input example (or None) and how to get outputs from the model
# and from what loads back (the same call, except for ONNX, which loads as a session).
def _torch_case(iris: Any) -> tuple[Any, Any, Any, Any]:
    x = torch.from_numpy(iris[0][:5])
    run = lambda m: m(x)  # noqa: E731
    return TinyNet().eval(), x, run, run


def _onnx_case(iris: Any) -> tuple[Any, Any, Any, Any]:
    from onnx.reference import ReferenceEvaluator

    x = iris[0][:5]
    run = lambda m: m.run(None, {"x": x})[0]  # noqa: E731
    return tiny_onnx_model()[0], x, lambda m: run(ReferenceEvaluator(m)), run


def _xgboost_case(iris: Any) -> tuple[Any, Any, Any, Any]:
    import xgboost

    x, y = iris
    model = xgboost.XGBClassifier(n_estimators=3, max_depth=2, n_jobs=1).fit(x, y)
    run = lambda m: m.predict_proba(x)  # noqa: E731
    return model, x[:5], run, run


def _lightgbm_case(iris: Any) -> tuple[Any, Any, Any, Any]:
    import lightgbm

    x, y = iris
    model = lightgbm.LGBMClassifier(n_estimators=3, num_leaves=4, verbose=-1, n_jobs=1)
    run = lambda m: m.predict_proba(x)  # noqa: E731
    return model.fit(x, y), x[:5], run, run


def _transformers_case(iris: Any) -> tuple[Any, Any, Any, Any]:
    ids = torch.tensor([[2, 5, 6, 7, 3]])
    run = lambda m: m(ids).last_hidden_state  # noqa: E731
    return tiny_bert(), None, run, run


CASES = {
    "pytorch": _torch_case,
    "onnx": _onnx_case,
    "xgboost": _xgboost_case,
    "lightgbm": _lightgbm_case,
    "transformers": _transformers_case,
}


@pytest.mark.parametrize("flavor", list(CASES))
def test_register_then_load_gives_the_same_outputs(
    flavor: str, reg: Any, tmp_path: Path, iris: tuple[np.ndarray, np.ndarray]
) -> None:
    import modelreg

    model, example, run_original, run_loaded = CASES[flavor](iris)
    version = reg.register(f"m-{flavor}", model, input_example=example)

    loaded = modelreg.load(f"m-{flavor}", registry=reg, dest=tmp_path / "pulled")

    record = json.loads((tmp_path / "pulled" / "flavor.json").read_text())
    assert record["flavor"] == flavor
    assert record["libraries"]
    assert (record["signature"] is None) == (example is None)
    assert_no_pickle(tmp_path / "pulled")
    assert version.id
    with torch.no_grad():
        expected, got = run_original(model), run_loaded(loaded)
    if isinstance(expected, torch.Tensor):
        assert torch.equal(got, expected)
    else:
        np.testing.assert_allclose(got, expected, rtol=1e-6)


def test_a_model_and_its_tokenizer_register_together(reg: Any, tmp_path: Path) -> None:
    import modelreg

    model, tokenizer = tiny_bert(), tiny_tokenizer(tmp_path)
    reg.register("bert", {"model": model, "tokenizer": tokenizer})
    loaded = modelreg.load("bert", registry=reg, dest=tmp_path / "pulled")
    text = "a model registry loads a model"
    encoded = loaded["tokenizer"](text, return_tensors="pt")
    with torch.no_grad():
        assert torch.equal(
            loaded["model"](**encoded).last_hidden_state, model(**encoded).last_hidden_state
        )
