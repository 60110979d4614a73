"""Files that run code when loaded are refused unless the caller trusts them, whatever their
name: the decision reads the bytes."""

from __future__ import annotations

import io
import pickle
import zipfile

import joblib
import numpy as np
import pytest
import skops.io
from sklearn.linear_model import LogisticRegression

import modelreg
from modelreg import UnsafeModel
from modelreg.flavors.safety import unsafe_reason


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


class Payload:
    """Stands for whatever an attacker pickles; unpickling it would call its reducer."""

    def __init__(self) -> None:
        self.weights = list(range(10))


def _load_files(registry, files):
    v = registry.register("suspect", files)
    return v, lambda **kw: modelreg.load(v.ref, registry=registry, **kw)


def test_a_pickle_renamed_to_bin_is_refused_naming_the_file(registry, write):
    write("out/m.bin", pickle.dumps(Payload(), protocol=4))
    write("out/readme.txt", "a model.\n")
    _, load = _load_files(registry, {"models/m.bin": "out/m.bin", "readme.txt": "out/readme.txt"})

    with pytest.raises(UnsafeModel) as info:
        load()

    assert str(info.value) == (
        "models/m.bin is a pickle stream (protocol 4): loading it runs code;"
        " pass trust=True if you trust its author"
    )
    assert info.value.files == {"models/m.bin": "a pickle stream (protocol 4)"}
    assert (load(trust=True) / "models" / "m.bin").is_file()


@pytest.mark.parametrize("protocol", [0, 1, 2, 3, 4, 5])
def test_every_pickle_protocol_is_recognised(tmp_path, protocol):
    path = tmp_path / "weights"
    path.write_bytes(pickle.dumps(Payload(), protocol=protocol))
    assert unsafe_reason(path) == f"a pickle stream (protocol {protocol})"


def test_a_large_pickle_is_recognised_from_its_head_or_its_end(tmp_path):
    big = tmp_path / "big.bin"
    big.write_bytes(pickle.dumps(np.zeros(100_000), protocol=4))
    old = tmp_path / "old.bin"
    old.write_bytes(pickle.dumps(["x" * 10] * 20_000, protocol=0))
    assert unsafe_reason(big) == "a pickle stream (protocol 4)"
    assert unsafe_reason(old) == "a pickle stream (protocol 0)"


@pytest.mark.parametrize("compress", ["zlib", "gzip", "bz2", "lzma", "xz"])
def test_a_joblib_compressed_pickle_is_refused(registry, write, tmp_path, compress):
    joblib.dump(Payload(), tmp_path / "model.joblib", compress=(compress, 3))
    write("weights.dat", (tmp_path / "model.joblib").read_bytes())
    _, load = _load_files(registry, "weights.dat")

    with pytest.raises(UnsafeModel, match=rf"weights\.dat is a {compress}-compressed file holding"):
        load()


def test_an_uncompressed_joblib_file_of_an_array_is_refused(tmp_path):
    joblib.dump({"coef": np.ones(50_000)}, tmp_path / "m.joblib")
    assert unsafe_reason(tmp_path / "m.joblib") == "a pickle stream (protocol 4)"


def test_a_cloudpickled_function_is_refused(tmp_path):
    import cloudpickle

    (tmp_path / "fn").write_bytes(cloudpickle.dumps(lambda x: x + 1))
    assert unsafe_reason(tmp_path / "fn") is not None


def test_a_zip_holding_data_pkl_is_refused(registry, write):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:  # the layout torch.save writes
        archive.writestr("model/data.pkl", pickle.dumps({"w": 1}, protocol=2))
        archive.writestr("model/data/0", b"\x00" * 16)
        archive.writestr("model/version", "3\n")
    write("model.pt", buffer.getvalue())
    _, load = _load_files(registry, "model.pt")

    with pytest.raises(UnsafeModel, match=r"model\.pt is a zip archive holding model/data\.pkl"):
        load()


def test_a_zip_with_a_pickle_under_another_name_is_refused(tmp_path):
    with zipfile.ZipFile(tmp_path / "bundle.zip", "w") as archive:
        archive.writestr("README", "hello\n")
        archive.writestr("weights", pickle.dumps(Payload(), protocol=5))
    assert unsafe_reason(tmp_path / "bundle.zip") == (
        "a zip archive whose member weights is a pickle stream (protocol 5)"
    )


def test_a_skops_file_is_accepted(registry, write, tmp_path):
    skops.io.dump(LogisticRegression(), tmp_path / "m.skops")
    write("model.skops", (tmp_path / "m.skops").read_bytes())
    _, load = _load_files(registry, "model.skops")
    assert (load() / "model.skops").is_file()


def test_plain_text_and_binary_files_are_accepted(registry, write):
    write("files/notes.txt", "I like cats.")  # ends with "." but is no pickle
    write("files/weights.safetensors", b"\x80\x03\x00\x00\x00\x00\x00\x00{" + b" " * 20)
    np.save("files/w.npy", np.arange(10.0))
    _, load = _load_files(registry, "files")
    assert sorted(p.name for p in load().iterdir() if p.name != "modelreg.json") == [
        "notes.txt",
        "w.npy",
        "weights.safetensors",
    ]


def test_a_numpy_array_of_objects_is_refused(tmp_path):
    np.save(tmp_path / "objects.npy", np.array([Payload()], dtype=object), allow_pickle=True)
    assert unsafe_reason(tmp_path / "objects.npy") == (
        "a NumPy array of Python objects (stored as a pickle)"
    )


def test_every_unsafe_file_is_named(registry, write):
    write("m/a.bin", pickle.dumps(1, protocol=2))
    write("m/b.bin", pickle.dumps(2, protocol=3))
    _, load = _load_files(registry, "m")
    with pytest.raises(UnsafeModel, match=r"a\.bin is .*; b\.bin is .*: loading them runs code"):
        load()
