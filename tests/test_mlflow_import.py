"""Import from MLflow, against a real MLflow tracking server.

MLflow lives in its own virtualenv, ``.venv-mlflow`` (``scripts/bootstrap-mlflow``; never a
dependency of modelreg). One server per session is started on a free loopback port with a
temporary store and ``--serve-artifacts``, and filled by ``tests/mlflow_populate.py`` with the
MLflow client; ``EXPECTED`` is what that script logged, and every import is compared with it.
A test that adds to the server updates the expectation, so the tests hold in any order.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

import modelreg
from modelreg.cli import main
from modelreg.errors import Conflict, InvalidInput, NotFound
from modelreg.mlflow_import import canonical_name, import_mlflow, metric_batches

ROOT = Path(__file__).resolve().parents[1]
MLFLOW_PYTHON = ROOT / ".venv-mlflow" / "bin" / "python"
POPULATE = Path(__file__).with_name("mlflow_populate.py")
START_TIMEOUT = 60.0


@dataclass
class MlflowServer:
    uri: str
    expected: dict[str, Any]  # what the populate script logged, kept current by the tests

    def populate(self, out: Path, *extra: str) -> dict[str, Any]:
        done = subprocess.run(
            [str(MLFLOW_PYTHON), str(POPULATE), self.uri, str(out), *extra],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if done.returncode != 0:
            pytest.fail(f"populating MLflow failed:\n{done.stdout}\n{done.stderr}")
        result: dict[str, Any] = json.loads(out.read_text())
        return result


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    """A real MLflow tracking server with three models; fails (never skips) without MLflow."""
    if not MLFLOW_PYTHON.exists():
        pytest.fail(f"{MLFLOW_PYTHON} is missing: run scripts/bootstrap-mlflow (scripts/test does)")
    folder = tmp_path_factory.mktemp("mlflow")
    port = _free_port()
    uri = f"http://127.0.0.1:{port}"
    log = folder / "server.log"
    command = [
        str(MLFLOW_PYTHON.with_name("mlflow")), "server", "--host", "127.0.0.1",
        "--port", str(port), "--backend-store-uri", f"sqlite:///{folder / 'mlflow.db'}",
        "--artifacts-destination", str(folder / "artifacts"), "--serve-artifacts",
        "--workers", "1",
    ]  # fmt: skip
    started = time.monotonic()
    with open(log, "wb") as out:
        process = subprocess.Popen(
            command, cwd=folder, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        while True:
            try:
                if httpx.get(f"{uri}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() - started > START_TIMEOUT:
                state = "exited" if process.poll() is not None else f"not up in {START_TIMEOUT} s"
                pytest.fail(f"MLflow server {state}; its log:\n{log.read_text()[-5000:]}")
            time.sleep(0.25)
        print(f"\nMLflow server answered /health after {time.monotonic() - started:.1f} s")
        server = MlflowServer(uri, {})
        server.expected = server.populate(folder / "logged.json")
        yield server
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.fixture
def reg(workdir: Path) -> Iterator[Any]:
    registry = modelreg.connect(workdir.parent / "reg", actor="importer")
    yield registry
    registry.close()


def assert_matches_mlflow(reg: Any, server: MlflowServer, tmp: Path) -> None:
    """Every model, version, alias, tag, description, param, metric point and artifact byte."""
    models = server.expected["models"]
    assert sorted(m.name for m in reg.models()) == sorted(canonical_name(n) for n in models)
    for original, logged in models.items():
        name = canonical_name(original)
        found = sorted(reg.versions(name), key=lambda v: v.number)
        assert [int(v.tags["mlflow.model_version"]) for v in found] == [
            v["version"] for v in logged["versions"]
        ]
        for version, want in zip(found, logged["versions"], strict=True):
            model_tags = {f"mlflow.model_tag.{k}": v for k, v in logged["tags"].items()}
            if logged["description"]:
                model_tags["mlflow.model_description"] = logged["description"]
            assert version.tags == {
                **want["tags"],
                **model_tags,
                "mlflow.model_name": original,
                "mlflow.model_version": str(want["version"]),
                "mlflow.run_id": want["run_id"],
                "mlflow.tracking_uri": server.uri,
                "mlflow.source": want["source"],
            }
            assert version.description == want["description"]
            assert version.params == want["params"]
            assert version.metrics == {
                k: points[-1]["value"] for k, points in want["metrics"].items()
            }
            run = reg.lineage(version.ref)["run"]
            assert run["id"] == version.run_id
            assert run["params"] == want["params"]
            history = {
                key: [(p["step"], p["value"]) for p in points]
                for key, points in run["metric_history"].items()
            }
            assert history == {
                key: [(p["step"], p["value"]) for p in points]
                for key, points in want["metrics"].items()
            }
            dest = version.pull(tmp / version.ref.replace("/", "-"))
            pulled = {
                str(p.relative_to(dest)): p.read_bytes()
                for p in dest.rglob("*")
                if p.is_file() and p.name != "modelreg.json"
            }
            assert pulled == {path: bytes.fromhex(data) for path, data in want["files"].items()}
        aliases = {m.name: m.aliases for m in reg.models()}[name]
        numbers = {int(v.tags["mlflow.model_version"]): v.number for v in found}
        assert aliases == {alias: numbers[n] for alias, n in logged["aliases"].items()}


def test_the_import_copies_every_model_version_alias_run_and_artifact(
    reg: Any, mlflow_server: MlflowServer, tmp_path: Path
) -> None:
    started = time.monotonic()
    report = import_mlflow(reg, mlflow_server.uri)
    print(f"\nimported {len(report['imported'])} versions in {time.monotonic() - started:.1f} s")
    assert report["skipped"] == []
    assert report["warnings"] == []
    assert report["models"]["Churn Model"] == "churn-model"
    assert_matches_mlflow(reg, mlflow_server, tmp_path)
    # production is protected by default: moved with force (its gates passed here).
    production = [a for a in report["aliases"] if a["alias"] == "fraud_detector@production"]
    assert production[0]["protected"] is True


def test_a_second_import_copies_nothing(reg: Any, mlflow_server: MlflowServer) -> None:
    first = import_mlflow(reg, mlflow_server.uri)
    again = import_mlflow(reg, mlflow_server.uri)
    assert again["imported"] == []
    assert again["aliases"] == []
    assert sorted(s["version"] for s in again["skipped"]) == sorted(
        i["version"] for i in first["imported"]
    )


def test_a_version_deleted_here_is_not_imported_again_nor_an_alias_pointed_at_it(
    reg: Any, mlflow_server: MlflowServer
) -> None:
    first = import_mlflow(reg, mlflow_server.uri)
    aliased = {(m.name, n): a for m in reg.models() for a, n in m.aliases.items()}
    (name, number), alias = next(iter(sorted(aliased.items())))
    plain = next(i["version"] for i in first["imported"] if not reg.get(i["version"]).aliases)
    reg.delete_alias(name, alias)
    reg.delete_version(f"{name}/{number}", reason="erasure request")
    reg.delete_version(plain, reason="erasure request")

    again = import_mlflow(reg, mlflow_server.uri)

    assert again["imported"] == []
    assert again["aliases"] == []
    deleted = sorted(s["version"] for s in again["skipped"] if s.get("deleted"))
    assert deleted == sorted([f"{name}/{number}", plain])
    assert any(w.endswith(f"imported as {name}/{number}, since deleted") for w in again["warnings"])
    assert alias not in {m.name: m.aliases for m in reg.models()}[name]


def test_a_new_mlflow_version_is_the_only_one_imported_on_the_next_run(
    reg: Any, mlflow_server: MlflowServer, tmp_path: Path
) -> None:
    import_mlflow(reg, mlflow_server.uri)
    reg.set_policy("churn-model", "champion", approvals=1)  # MLflow's move overrides it
    extra = mlflow_server.populate(tmp_path / "extra.json", "--extra")
    churn = mlflow_server.expected["models"]["Churn Model"]
    churn["versions"].append(extra)
    churn["aliases"]["champion"] = extra["version"]

    report = import_mlflow(reg, mlflow_server.uri)

    assert [(i["model"], i["mlflow_version"]) for i in report["imported"]] == [
        ("Churn Model", extra["version"])
    ]
    new_ref = report["imported"][0]["version"]
    assert report["aliases"] == [
        {"alias": "churn-model@champion", "from": "churn-model/2", "to": new_ref, "protected": True}
    ]
    override = reg.audit(action="alias.override")
    assert [(e.entity, e.after["reason"]) for e in override] == [
        ("churn-model@champion", "imported from MLflow")
    ]
    assert_matches_mlflow(reg, mlflow_server, tmp_path)


def test_model_selection_on_the_command_line(
    reg: Any, mlflow_server: MlflowServer, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["--registry", reg.uri, "import", "mlflow", "--tracking-uri", mlflow_server.uri]
    assert main([*base, "--model", "ranker", "--model", "fraud_detector"]) == 0
    out = capsys.readouterr().out
    assert "imported ranker version 1 as ranker/1" in out
    assert "fraud_detector@production -> fraud_detector/3 (protected: moved with --force)" in out
    assert sorted(m.name for m in reg.models()) == ["fraud_detector", "ranker"]

    assert main([*base, "--model", "Churn Model", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert {i["version"] for i in report["imported"]} >= {"churn-model/1", "churn-model/2"}
    assert report["skipped"] == []


def test_mlflow_names_become_modelreg_names_and_collisions_are_refused(
    reg: Any, mlflow_server: MlflowServer, workdir: Path
) -> None:
    assert canonical_name("Churn Model") == "churn-model"
    assert canonical_name("  My_Model v2!! ") == "my_model-v2"
    assert canonical_name("ranker") == "ranker"
    with pytest.raises(InvalidInput, match="no characters"):
        canonical_name("???")

    (workdir / "model.bin").write_bytes(b"native")
    reg.register("churn-model", workdir / "model.bin")
    with pytest.raises(Conflict, match="'churn-model' already exists and was not imported"):
        import_mlflow(reg, mlflow_server.uri, models=["Churn Model"])
    assert len(reg.versions("churn-model")) == 1


def test_metric_points_are_logged_in_timestamp_order_with_their_steps() -> None:
    points = [
        {"key": "loss", "value": 0.5, "step": 1, "timestamp": 20},
        {"key": "acc", "value": 0.1, "step": 0, "timestamp": 10},
        {"key": "loss", "value": 0.9, "step": 0, "timestamp": 10},
        {"key": "loss", "value": 0.8, "step": 0, "timestamp": 11},
    ]
    assert metric_batches(points) == [
        (0, {"acc": 0.1, "loss": 0.9}),
        (0, {"loss": 0.8}),
        (1, {"loss": 0.5}),
    ]


def test_an_unreachable_server_is_one_clear_error(
    reg: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    uri = f"http://127.0.0.1:{_free_port()}"
    with pytest.raises(InvalidInput, match=f"cannot reach the MLflow tracking server at {uri}"):
        import_mlflow(reg, uri)
    assert main(["--registry", reg.uri, "import", "mlflow", "--tracking-uri", uri]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: cannot reach the MLflow tracking server at {uri}")
    assert "Traceback" not in err
    assert main(["--registry", reg.uri, "import", "mlflow", "--tracking-uri", "ftp://x"]) == 2


def test_an_unknown_model_names_the_server(reg: Any, mlflow_server: MlflowServer) -> None:
    with pytest.raises(NotFound, match=f"404 for {mlflow_server.uri}/api/2.0/mlflow/"):
        import_mlflow(reg, mlflow_server.uri, models=["no such model"])
