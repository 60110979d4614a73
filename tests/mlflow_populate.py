"""Fill an MLflow tracking server with registered models, for tests/test_mlflow_import.py.

Run with the Python of the MLflow virtualenv (MLflow is never a dependency of modelreg):

    .venv-mlflow/bin/python tests/mlflow_populate.py URI OUT.json [--extra]

It prints nothing; OUT.json records what was logged (every model, version, alias, tag,
description, param, metric point and artifact's bytes in hex) for the test to compare with
what modelreg imported. ``--extra`` adds one more version to "Churn Model" (the re-run test).
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from mlflow import MlflowClient


def log_version(
    client: MlflowClient,
    experiment_id: str,
    name: str,
    *,
    seed: int,
    files: dict[str, bytes],
    description: str,
    tags: dict[str, str],
) -> dict[str, Any]:
    run = client.create_run(experiment_id, run_name=f"train-{seed}")
    run_id = run.info.run_id
    params = {"lr": str(0.01 * seed), "depth": str(seed + 2), "optimizer": "adam"}
    for key, value in params.items():
        client.log_param(run_id, key, value)
    history: dict[str, list[dict[str, Any]]] = {"loss": [], "accuracy": []}
    for step in range(4):
        stamp = 1_700_000_000_000 + seed * 10_000 + step * 1000
        for key, value in (("loss", 1.0 / (step + seed)), ("accuracy", 0.5 + 0.1 * step)):
            client.log_metric(run_id, key, value, timestamp=stamp, step=step)
            history[key].append({"value": value, "step": step, "timestamp": stamp})
    with tempfile.TemporaryDirectory() as folder:
        for path, data in files.items():
            target = Path(folder, "model", path)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        client.log_artifacts(run_id, str(Path(folder, "model")), artifact_path="model")
    client.set_terminated(run_id)
    version = client.create_model_version(
        name,
        source=f"{run.info.artifact_uri}/model",
        run_id=run_id,
        tags=tags,
        description=description,
    )
    return {
        "version": int(version.version),
        "run_id": run_id,
        "source": version.source,
        "description": description,
        "tags": tags,
        "params": params,
        "metrics": history,
        "files": {path: data.hex() for path, data in files.items()},
    }


def populate(client: MlflowClient) -> dict[str, Any]:
    experiment_id = client.create_experiment("import-test")
    spec = {
        "Churn Model": {"description": "predicts churn", "tags": {"team": "growth"}},
        "fraud_detector": {"description": "", "tags": {"team": "risk", "tier": "1"}},
        "ranker": {"description": "ranks search results", "tags": {}},
    }
    models: dict[str, Any] = {}
    seed = 1
    for name, info in spec.items():
        client.create_registered_model(name, tags=info["tags"], description=info["description"])
        versions = []
        for n in range(3 if name != "ranker" else 2):
            files = {
                "MLmodel": f"flavor: test\nname: {name}\nversion: {n + 1}\n".encode(),
                "weights.bin": bytes((seed * 7 + i) % 256 for i in range(5000 + seed)),
                "sub/dir/config.json": json.dumps({"seed": seed}).encode(),
            }
            versions.append(
                log_version(
                    client,
                    experiment_id,
                    name,
                    seed=seed,
                    files=files,
                    description=f"version {n + 1} of {name}" if n != 1 else "",
                    tags={"stage": f"s{n}"} if n != 2 else {},
                )
            )
            seed += 1
        models[name] = {**info, "versions": versions}
    # An alias moved between versions: "champion" ends on 2 of "Churn Model".
    client.set_registered_model_alias("Churn Model", "champion", "1")
    client.set_registered_model_alias("Churn Model", "challenger", "3")
    client.set_registered_model_alias("Churn Model", "champion", "2")
    client.set_registered_model_alias("fraud_detector", "production", "3")
    models["Churn Model"]["aliases"] = {"champion": 2, "challenger": 3}
    models["fraud_detector"]["aliases"] = {"production": 3}
    models["ranker"]["aliases"] = {}
    return {"experiment_id": experiment_id, "models": models}


def add_extra(client: MlflowClient) -> dict[str, Any]:
    """One more version of "Churn Model", and "champion" moved onto it."""
    experiment_id = client.get_experiment_by_name("import-test").experiment_id
    files = {"MLmodel": b"flavor: test\nextra: true\n", "weights.bin": b"\x00\x01" * 3000}
    version = log_version(
        client,
        experiment_id,
        "Churn Model",
        seed=50,
        files=files,
        description="the extra one",
        tags={"stage": "extra"},
    )
    client.set_registered_model_alias("Churn Model", "champion", str(version["version"]))
    return version


def main() -> None:
    uri, out = sys.argv[1], Path(sys.argv[2])
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    result = add_extra(client) if "--extra" in sys.argv[3:] else populate(client)
    out.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
