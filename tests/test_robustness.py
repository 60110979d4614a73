"""Failure paths that must leave nothing half-done, and inputs from an older or newer world."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

import modelreg
from modelreg import Conflict, IntegrityError, InvalidInput


@pytest.fixture
def reg(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with modelreg.connect(tmp_path / "reg") as registry:
        yield registry


def test_a_registry_from_a_newer_modelreg_is_refused_clearly(tmp_path):
    modelreg.connect(tmp_path / "reg").close()
    with sqlite3.connect(tmp_path / "reg" / "registry.db") as db:
        db.execute("UPDATE alembic_version SET version_num = '0099'")
    with pytest.raises(Conflict, match="0099, newer than this modelreg"):
        modelreg.connect(tmp_path / "reg")


@pytest.mark.parametrize("typo", ["ftp://host/reg", "htp://host:8080", "s3://bucket/reg"])
def test_a_url_of_an_unknown_scheme_is_refused_and_creates_nothing(tmp_path, monkeypatch, typo):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InvalidInput, match="unknown scheme"):
        modelreg.connect(typo)
    assert list(tmp_path.iterdir()) == []


def test_a_file_is_not_a_registry_location(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(InvalidInput, match="not a directory"):
        modelreg.connect(tmp_path / "file")


def test_a_pull_that_fails_on_one_file_writes_none_of_them(reg, tmp_path):
    Path("model").mkdir()
    Path("model/a.bin").write_bytes(b"a" * 100)
    Path("model/b.bin").write_bytes(b"b" * 100)
    v = reg.register("churn", "model")
    corrupt = next(f for f in v.files if f.path == "b.bin")
    reg.blobs.inner.path(corrupt.digest).write_bytes(b"x" * 100)
    with pytest.raises(IntegrityError, match=r"b\.bin"):
        reg.pull(v.ref, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_file_in_the_way_of_a_folder_is_refused_before_anything_is_written(reg, tmp_path):
    Path("model/sub").mkdir(parents=True)
    Path("model/sub/w.bin").write_bytes(b"w")
    Path("model/top.bin").write_bytes(b"t")
    v = reg.register("churn", "model")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "sub").write_text("a file where a folder goes")
    with pytest.raises(Conflict, match="in the way"):
        reg.pull(v.ref, tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["sub"]


def test_bad_files_arguments_are_invalid_input(reg):
    for files in (5, None, b"model.bin", 3.5):
        with pytest.raises(InvalidInput, match="files must be"):
            reg.register("churn", files)


def test_lineage_code_has_every_field_outside_git(reg):
    Path("m.bin").write_bytes(b"m")
    code = reg.lineage(reg.register("churn", "m.bin").ref)["code"]
    assert {"repository", "commit", "branch", "dirty", "command"} <= set(code)
    assert code["commit"] is None


def test_the_uncommitted_diff_is_stored_byte_for_byte(reg, git_repo):
    latin = git_repo / "notes.txt"
    latin.write_bytes("caf\xe9\n".encode("latin-1"))
    subprocess.run(["git", "-C", str(git_repo), "add", "notes.txt"], check=True)
    subprocess.run(["git", "-C", str(git_repo), "commit", "-qm", "latin-1"], check=True)
    latin.write_bytes("caf\xe9 cr\xe8me\n".encode("latin-1"))
    expected = subprocess.run(
        ["git", "-C", str(git_repo), "diff", "HEAD", "--binary"], capture_output=True, check=True
    ).stdout
    Path("out").mkdir(exist_ok=True)
    Path("out/m.bin").write_bytes(b"m")
    v = reg.register("churn", "out/m.bin")
    digest = reg.lineage(v.ref)["code"]["diff_digest"]
    with reg.blobs.open(digest) as f:
        assert f.read() == expected


@pytest.mark.parametrize("name", ["..", ".", ""])
def test_an_mlflow_server_cannot_name_an_artifact_outside_the_folder(name):
    """Fault injection: a hostile server's listing (a real server never sends these)."""
    import httpx

    from modelreg.mlflow_import import MlflowServer

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"files": [{"path": f"m/{name}", "is_dir": True}]})

    server = MlflowServer(
        "http://mlflow.test", client=httpx.Client(transport=httpx.MockTransport(handler))
    )
    with pytest.raises(InvalidInput, match="refusing it"):
        server.list_files("m")


def test_a_tampered_flavor_record_cannot_import_another_package(tmp_path):
    from modelreg.flavors.xgboost import XGBoostFlavor

    with pytest.raises(InvalidInput, match="outside xgboost"):
        XGBoostFlavor().load(tmp_path, {"class": "antigravity:Anything"}, trust=False)
    assert "antigravity" not in sys.modules


def stray_files(reg) -> list[str]:
    """Temporary files left in the blob store."""
    return [p.name for p in reg.blobs.inner.root.rglob(".tmp-*")]


def test_a_blob_that_cannot_be_flushed_leaves_no_version_and_no_file(reg, monkeypatch):
    Path("model.bin").write_bytes(b"weights")
    reg.register("churn", "model.bin")  # the model exists; its second version fails

    def full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    Path("model.bin").write_bytes(b"new weights")
    with monkeypatch.context() as patch:
        patch.setattr("os.fdatasync", full)
        with pytest.raises(OSError, match="No space left"):
            reg.register("churn", "model.bin")
    assert [v.number for v in reg.versions("churn")] == [1]
    assert stray_files(reg) == []
    assert reg.fsck()["ok"]
    assert len(reg.audit(action="version.create")) == 1


def test_a_version_refused_in_its_transaction_leaves_its_blob_whole(reg, monkeypatch):
    Path("model.bin").write_bytes(b"weights")

    def refuse(*args: object, **kwargs: object) -> None:
        raise Conflict("refused while the rows were written")

    with monkeypatch.context() as patch:
        patch.setattr("modelreg.versions.insert", refuse)
        with pytest.raises(Conflict, match="refused while"):
            reg.register("churn", "model.bin")
    assert reg.models() == []
    assert stray_files(reg) == []
    # The flushed blob is whole (gc collects it if nothing names it); registering reuses it.
    v = reg.register("churn", "model.bin")
    assert reg.fsck()["ok"]
    assert v.number == 1
