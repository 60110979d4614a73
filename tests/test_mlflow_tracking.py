"""MLflow's tracking API on modelreg's server, driven by the real MLflow client.

An MLflow run is a modelreg run: its params, full metric history (with the client's steps and
times), tags, datasets, status and times land in modelreg's stores, its events in the audit
log, and it shows in a version's lineage like a run of modelreg's SDK; the SDK's runs show in
experiment 0. Each scenario runs the client against SQLite and a directory and against
PostgreSQL and S3 (``any_server``), then looks at what modelreg recorded; bad input is checked
over plain HTTP, in MLflow's error shape, with nothing written.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import re
from collections.abc import Callable
from typing import Any

import pytest

from mlflow_kit import run_client
from modelreg import runs, wire
from modelreg.errors import InvalidInput
from modelreg.local import LocalRegistry
from modelreg.mlflow_filter import (
    RUNS,
    Clause,
    OrderKey,
    parse_filter,
    parse_order_by,
    stored_times,
)
from server_kit import DIGEST, Server, any_server, make_server, registry_template

__all__ = ["any_server", "make_server", "registry_template"]  # fixtures

API = "/api/2.0/mlflow"
T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z in milliseconds


def error(response: Any) -> tuple[int, str, str]:
    body = response.json()
    assert set(body) >= {"error_code", "message"}
    return response.status_code, body["error_code"], body["message"]


def run_events(reg: LocalRegistry, run_id: str) -> list[str]:
    """The audit actions of a run, oldest first."""
    found = reg.audit(entity_type="run", limit=1000)
    return [e.action for e in reversed(found) if e.entity_id == run_id]


def sdk_run(reg: LocalRegistry) -> str:
    """A run of modelreg's own SDK, as a training script records it."""
    with reg.start_run(name="sdk-run", params={"C": "0.1"}) as run:
        run.log_metric("auc", 0.7)
        run.log_metric("auc", 0.75)
    assert run.id is not None
    return run.id


# -- the training script -----------------------------------------------------------------------


TRAINING = f"""
import pandas as pd
T0 = {T0}
mlflow.set_experiment("churn-training")
experiment = mlflow.get_experiment_by_name("churn-training")
df = pd.DataFrame({{"x": [1, 2, 3], "y": [0, 1, 0]}})
dataset = mlflow.data.from_pandas(df, source="data/train.csv", name="Train Set", targets="y")
with mlflow.start_run(run_name="first", tags={{"team": "ml"}}) as run:
    mlflow.log_param("alpha", 0.5)
    mlflow.log_params({{"l1": 0.1, "solver": "saga"}})
    for step in range(5):
        mlflow.log_metric("loss", 1.0 / (step + 1), step=step, timestamp=T0 + step * 1000)
    mlflow.log_metrics({{"acc": 0.9, "f1": 0.8}}, step=4)
    mlflow.set_tag("stage", "dev")
    mlflow.log_input(dataset, context="training")
first = run.info.run_id
client = MlflowClient()
got = client.get_run(first)
out({{
    "experiment_id": experiment.experiment_id,
    "run_id": first,
    "info": {{
        "experiment_id": got.info.experiment_id,
        "run_name": got.info.run_name,
        "status": got.info.status,
        "artifact_uri": got.info.artifact_uri,
        "lifecycle_stage": got.info.lifecycle_stage,
        "user_id": got.info.user_id,
        "ended": got.info.end_time is not None and got.info.end_time >= got.info.start_time,
    }},
    "params": got.data.params,
    "metrics": got.data.metrics,
    "tags": {{k: v for k, v in got.data.tags.items() if k in ("team", "stage", "mlflow.runName")}},
    "inputs": [
        [i.dataset.name, i.dataset.digest, i.dataset.source_type, {{t.key: t.value
                                                                     for t in i.tags}}]
        for i in got.inputs.dataset_inputs
    ],
    "digest": dataset.digest,
}})
out([[m.step, m.value, m.timestamp] for m in client.get_metric_history(first, "loss")])

# more runs to search
for name, alpha, acc in (("second", "0.2", 0.95), ("third", "0.8", 0.7)):
    with mlflow.start_run(run_name=name):
        mlflow.log_param("alpha", alpha)
        mlflow.log_metric("acc", 0.1, step=0)
        mlflow.log_metric("acc", acc, step=1)
failed = client.create_run(experiment.experiment_id, run_name="broken")
client.set_terminated(failed.info.run_id, status="FAILED")

def names(found):
    return [r.info.run_name for r in found]

ids = [experiment.experiment_id]
out({{
    "acc": names(mlflow.search_runs(ids, "metrics.acc > 0.8", order_by=["metrics.acc DESC"],
                                    output_format="list")),
    "param": names(client.search_runs(ids, "params.alpha = '0.8'")),
    "tag": names(client.search_runs(ids, "tags.team = 'ml' and params.solver = 'saga'")),
    "status": names(client.search_runs(ids, "attributes.status = 'FAILED'")),
    "name": names(client.search_runs(ids, "attributes.run_name LIKE 'sec%'")),
    "dataset": names(client.search_runs(ids, "datasets.name = 'Train Set'")),
    "by_param": names(client.search_runs(ids, order_by=["params.alpha ASC"])),
    "newest": names(client.search_runs(ids)),
    "frame": sorted(mlflow.search_runs(ids)["tags.mlflow.runName"].tolist()),
}})
page = client.search_runs(ids, max_results=3, order_by=["attributes.run_name ASC"])
rest = client.search_runs(ids, max_results=3, order_by=["attributes.run_name ASC"],
                          page_token=page.token)
out([names(page), names(rest), rest.token])
out([e.name for e in mlflow.search_experiments(filter_string="name LIKE 'churn%'")])

# resuming a finished run reopens it, and ends it again
with mlflow.start_run(run_id=first):
    mlflow.log_metric("extra", 1.0)
    reopened = client.get_run(first).info.status
out([reopened, client.get_run(first).info.status])

out({{
    "duplicate": error_of(client.create_experiment, "churn-training"),
    "missing": error_of(client.get_run, "0" * 32),
    "changed": error_of(client.log_param, first, "alpha", 0.7),
    "bad_filter": error_of(client.search_runs, ids, "metrics.acc >> 1"),
}})
"""


def test_a_training_script_logs_through_mlflow_and_modelreg_keeps_it(any_server: Server) -> None:
    reg = any_server.registry
    sdk_id = sdk_run(reg)
    sdk_part = f"""
out(client.get_run({sdk_id!r}).to_dictionary())
out([r.info.run_id for r in client.search_runs(["0"])])
"""
    seen = run_client(any_server.url, TRAINING + sdk_part)
    run, history, searched, pages, experiment_names, resumed, errors, sdk, default = seen
    first, experiment = run["run_id"], run["experiment_id"]

    # what the client reads back
    assert run["info"] == {
        "experiment_id": experiment,
        "run_name": "first",
        "status": "FINISHED",
        "artifact_uri": f"mlflow-artifacts:/{experiment}/{first}/artifacts",
        "lifecycle_stage": "active",
        "user_id": run["info"]["user_id"],
        "ended": True,
    }
    assert run["params"] == {"alpha": "0.5", "l1": "0.1", "solver": "saga"}
    assert run["metrics"] == {"loss": 0.2, "acc": 0.9, "f1": 0.8}
    assert run["tags"] == {"team": "ml", "stage": "dev", "mlflow.runName": "first"}
    assert run["inputs"] == [
        ["Train Set", run["digest"], "local", {"mlflow.data.context": "training"}]
    ]
    assert history == [[s, 1.0 / (s + 1), T0 + s * 1000] for s in range(5)]
    assert searched == {
        "acc": ["second", "first"],
        "param": ["third"],
        "tag": ["first"],
        "status": ["broken"],
        "name": ["second"],
        "dataset": ["first"],
        "by_param": ["second", "first", "third", "broken"],  # runs without it last
        "newest": ["broken", "third", "second", "first"],
        "frame": ["broken", "first", "second", "third"],
    }
    assert pages == [["broken", "first", "second"], ["third"], None]
    assert experiment_names == ["churn-training"]
    assert resumed == ["RUNNING", "FINISHED"]
    assert errors["duplicate"]["code"] == "RESOURCE_ALREADY_EXISTS"
    assert errors["missing"]["code"] == "RESOURCE_DOES_NOT_EXIST"
    assert errors["changed"]["code"] == "INVALID_PARAMETER_VALUE"
    assert "does not change" in errors["changed"]["message"]
    assert errors["bad_filter"]["code"] == "INVALID_PARAMETER_VALUE"
    assert "column" in errors["bad_filter"]["message"]

    # the SDK's run, in experiment 0
    assert sdk["info"]["experiment_id"] == "0"
    assert sdk["data"]["params"] == {"C": "0.1"}
    assert sdk["data"]["metrics"] == {"auc": 0.75}
    assert sdk_id in default

    # what modelreg recorded: the run, its params, history and datasets, and the audit log
    record = reg.db.read(lambda c: runs.record(c, first))
    assert record["status"] == "finished"
    assert record["params"] == {"alpha": "0.5", "l1": "0.1", "solver": "saga"}
    assert record["command"].endswith("/client.py")  # the client's mlflow.source.name
    loss = record["metric_history"]["loss"]
    assert [(p["step"], p["value"]) for p in loss] == [(s, 1.0 / (s + 1)) for s in range(5)]
    assert loss[0]["timestamp"] == "2026-01-01T00:00:00.000000Z"
    assert [p["value"] for p in record["metric_history"]["extra"]] == [1.0]
    (train,) = reg.dataset("train-set")
    assert (train.digest, train.uri) == (f"mlflow:{run['digest']}", "data/train.csv")
    assert reg.dataset(f"train-set@mlflow:{run['digest']}") == [train]
    assert run_events(reg, first) == [
        "run.start",
        *["run.params"] * 2,
        *["run.metric"] * 6,
        "run.tag",
        "run.dataset",
        "run.end",
        "run.reopen",
        "run.metric",
        "run.end",
    ]
    assert reg.verify_audit().ok

    # a version made from the run shows it in its lineage, and its dataset's retirement
    # reaches the version
    base = wire.new_version_from_json(
        "churn", {"files": [{"path": "model.bin", "digest": DIGEST, "size": 307200}]}
    )
    used = reg.db.read(lambda c: runs.datasets_of(c, first))
    version = reg.commit_version(dataclasses.replace(base, run_id=first, datasets=used))
    lineage = reg.lineage(version.ref)
    assert lineage["run"] is not None
    assert lineage["run"]["id"] == first
    assert [p["value"] for p in lineage["run"]["metric_history"]["acc"]] == [0.9]
    impact = reg.retire_dataset("train-set", reason="erasure request 7", dry_run=True)
    assert version.ref in str(impact)


# -- over plain HTTP: what the client sends, and what it must not ----------------------------


@pytest.fixture
def served(make_server: Callable[..., Server]) -> Server:
    return make_server()


def post(server: Server, path: str, body: Any) -> Any:
    return server.http.post(f"{API}/{path}", json=body)


def new_run(server: Server, experiment: str = "0", **body: Any) -> str:
    response = post(server, "runs/create", {"experiment_id": experiment, **body})
    assert response.status_code == 200, response.text
    run_id: str = response.json()["run"]["info"]["run_id"]
    return run_id


def test_runs_create_names_and_files_a_run_as_mlflow_does(served: Server) -> None:
    created = post(
        served,
        "runs/create",
        {
            "experiment_id": "0",
            "user_id": "ana",
            "start_time": T0,
            "tags": [
                {"key": "mlflow.source.name", "value": "train.py"},
                {"key": "mlflow.source.git.commit", "value": "ab" * 20},
                {"key": "mlflow.source.git.repoURL", "value": "https://u:secret@git.example/r"},
            ],
        },
    ).json()["run"]
    info = created["info"]
    assert len(info["run_id"]) == 32
    assert info["run_id"] == info["run_uuid"]
    assert info["run_name"].count("-") == 2  # adjective-noun-NNN
    assert (info["user_id"], info["status"], info["start_time"]) == ("ana", "RUNNING", T0)
    tags = {t["key"]: t["value"] for t in created["data"]["tags"]}
    assert tags["mlflow.runName"] == info["run_name"]
    assert tags["mlflow.source.git.repoURL"] == "https://git.example/r"  # no credentials kept
    record = served.registry.db.read(lambda c: runs.record(c, info["run_id"]))
    assert record["command"] == "train.py"
    assert record["code"] == {"commit": "ab" * 20, "repository": "https://git.example/r"}
    assert record["started_at"] == "2026-01-01T00:00:00.000000Z"
    assert "secret" not in str(served.registry.audit(limit=5))


def test_a_run_shows_the_logged_models_it_produced_as_its_outputs(served: Server) -> None:
    """``runs/get`` and ``runs/search`` answer a run's outputs as MLflow 3 does: ``{}`` for
    none, else ``model_outputs`` with each logged model's step; the inputs as before."""
    first, second = new_run(served), new_run(served)
    dataset = {"name": "d", "digest": "abc", "source_type": "local", "source": "{}"}
    logged = post(served, "runs/log-inputs", {"run_id": first, "datasets": [{"dataset": dataset}]})
    assert logged.json() == {}

    def made_by(run_id: str) -> str:
        body = {"experiment_id": "0", "name": "model", "source_run_id": run_id}
        model_id: str = post(served, "logged-models", body).json()["model"]["info"]["model_id"]
        return model_id

    a, b = sorted([made_by(first), made_by(first)])
    get = served.http.get(f"{API}/runs/get", params={"run_id": first}).json()["run"]
    assert get["outputs"] == {}
    outputs = [{"model_id": a, "step": 3}, {"model_id": b, "step": 0}]
    assert post(served, "runs/outputs", {"run_id": first, "models": outputs}).json() == {}
    get = served.http.get(f"{API}/runs/get", params={"run_id": first}).json()["run"]
    assert get["outputs"] == {"model_outputs": outputs}
    assert [i["dataset"]["name"] for i in get["inputs"]["dataset_inputs"]] == ["d"]
    found = post(served, "runs/search", {"experiment_ids": ["0"]}).json()["runs"]
    assert {r["info"]["run_id"]: r["outputs"] for r in found} == {
        first: {"model_outputs": outputs},
        second: {},
    }
    assert {r["info"]["run_id"]: len(r["inputs"]["dataset_inputs"]) for r in found} == {
        first: 1,
        second: 0,
    }


def test_register_model_picks_the_model_a_run_logged_last_by_its_outputs(served: Server) -> None:
    """MLflow's client reads a run's outputs to choose among logged models of one name."""
    seen = run_client(
        served.url,
        """
        import numpy as np
        import mlflow.sklearn
        from sklearn.linear_model import LogisticRegression
        X, y = np.array([[0.0], [1.0], [2.0], [3.0]]), np.array([0, 0, 1, 1])
        with mlflow.start_run() as run:
            early = mlflow.sklearn.log_model(LogisticRegression().fit(X, y), name="model", step=1)
            late = mlflow.sklearn.log_model(LogisticRegression().fit(X, y), name="model", step=5)
        c = MlflowClient()
        got = c.get_run(run.info.run_id)
        out(sorted([o.model_id, o.step] for o in got.outputs.model_outputs))
        out([sorted([o.model_id, o.step] for o in r.outputs.model_outputs)
             for r in c.search_runs(["0"])])
        v = mlflow.register_model(f"runs:/{run.info.run_id}/model", "churn")
        out(early.model_id, late.model_id, v.version, v.source)
        """,
    )
    outputs, searched, early, late, version, source = seen
    assert outputs == sorted([[early, 1], [late, 5]])
    assert searched == [outputs]
    assert (version, source) == ("1", f"models:/{late}")  # the one at the greater step
    assert served.registry.get("churn/1").lineage is not None


def test_experiments_are_created_renamed_tagged_deleted_and_restored(served: Server) -> None:
    new = post(
        served, "experiments/create", {"name": "Exp A", "tags": [{"key": "k", "value": "v"}]}
    )
    eid = new.json()["experiment_id"]
    got = served.http.get(f"{API}/experiments/get", params={"experiment_id": eid}).json()
    assert got["experiment"]["artifact_location"] == f"mlflow-artifacts:/{eid}"
    assert got["experiment"]["tags"] == [{"key": "k", "value": "v"}]
    assert (
        post(served, "experiments/update", {"experiment_id": eid, "new_name": "Exp B"}).json() == {}
    )
    post(served, "experiments/set-experiment-tag", {"experiment_id": eid, "key": "a", "value": "1"})
    post(served, "experiments/delete-experiment-tag", {"experiment_id": eid, "key": "k"})
    by_name = served.http.get(f"{API}/experiments/get-by-name", params={"experiment_name": "Exp B"})
    assert by_name.json()["experiment"]["tags"] == [{"key": "a", "value": "1"}]
    searched = post(served, "experiments/search", {"filter": "tags.a = '1'"}).json()
    assert [e["name"] for e in searched["experiments"]] == ["Exp B"]

    run_id = new_run(served, eid)
    assert post(served, "experiments/delete", {"experiment_id": eid}).json() == {}
    active = served.http.get(f"{API}/experiments/search", params={"max_results": 10}).json()
    assert [e["name"] for e in active["experiments"]] == ["Default"]
    deleted = post(served, "experiments/search", {"view_type": "DELETED_ONLY"}).json()
    assert [e["lifecycle_stage"] for e in deleted["experiments"]] == ["deleted"]
    run = served.http.get(f"{API}/runs/get", params={"run_id": run_id}).json()["run"]
    assert run["info"]["lifecycle_stage"] == "deleted"  # its experiment's
    assert error(post(served, "runs/create", {"experiment_id": eid}))[:2] == (400, "INVALID_STATE")
    assert (
        error(post(served, "experiments/create", {"name": "Exp B"}))[1] == "RESOURCE_ALREADY_EXISTS"
    )
    assert post(served, "experiments/restore", {"experiment_id": eid}).json() == {}
    assert new_run(served, eid)
    assert post(served, "runs/search", {"experiment_ids": [eid]}).json()["runs"]
    actions = [e.action for e in served.registry.audit(entity_type="experiment")]
    assert actions == [
        "experiment.restore", "experiment.delete", "experiment.untag", "experiment.tag",
        "experiment.rename", "experiment.create",
    ]  # fmt: skip


def test_the_default_experiment_cannot_be_deleted(served: Server) -> None:
    status, code, message = error(post(served, "experiments/delete", {"experiment_id": "0"}))
    assert (status, code) == (400, "INVALID_PARAMETER_VALUE")
    assert "default experiment" in message


def test_a_deleted_run_is_hidden_from_search_and_refuses_writes(served: Server) -> None:
    run_id = new_run(served)
    assert post(served, "runs/delete", {"run_id": run_id}).json() == {}
    assert post(served, "runs/search", {"experiment_ids": ["0"]}).json() == {"runs": []}
    every = post(served, "runs/search", {"experiment_ids": ["0"], "run_view_type": "ALL"})
    assert [r["info"]["run_id"] for r in every.json()["runs"]] == [run_id]
    refused = post(served, "runs/log-parameter", {"run_id": run_id, "key": "a", "value": "1"})
    assert error(refused)[:2] == (400, "INVALID_STATE")
    post(served, "runs/restore", {"run_id": run_id})
    assert (
        post(served, "runs/log-parameter", {"run_id": run_id, "key": "a", "value": "1"}).json()
        == {}
    )
    actions = ["run.start", "run.delete", "run.restore", "run.params"]
    assert run_events(served.registry, run_id) == actions


def test_a_run_of_the_sdk_that_ended_is_not_reopened(served: Server) -> None:
    sdk_id = sdk_run(served.registry)
    before = served.registry.verify_audit().events
    for path, body in (
        ("runs/update", {"run_id": sdk_id, "status": "RUNNING"}),
        ("runs/log-parameter", {"run_id": sdk_id, "key": "late", "value": "1"}),
        ("runs/log-metric", {"run_id": sdk_id, "key": "late", "value": 1.0, "timestamp": T0}),
    ):
        status, code, message = error(post(served, path, body))
        assert (status, code) == (400, "INVALID_STATE"), path
        assert "has ended" in message
    assert served.registry.verify_audit().events == before
    # a tag annotates it all the same
    assert (
        post(served, "runs/set-tag", {"run_id": sdk_id, "key": "note", "value": "ok"}).json() == {}
    )


def test_bad_input_gets_mlflows_error_shape_naming_what_is_wrong(served: Server) -> None:
    run_id = new_run(served)
    before = served.registry.verify_audit().events
    r = {"run_id": run_id}
    m = {"key": "m", "timestamp": T0}  # a metric point, but for its value
    zero = {"experiment_ids": ["0"]}
    many = [{**m, "value": 1}] * 1001
    params = [{"key": f"p{i}", "value": "1"} for i in range(101)]
    tags = [{"key": f"t{i}", "value": "1"} for i in range(101)]
    twice = [{"key": "a", "value": "1"}, {"key": "a", "value": "2"}]
    cases = [
        ("experiments/create", {"name": 5}, "name"),
        ("experiments/create", {"name": ""}, "experiment name"),
        ("experiments/create", {"name": "x", "artifact_location": "s3://b/x"}, "artifact_loc"),
        ("runs/create", {"experiment_id": "abc"}, "experiment id 'abc'"),
        ("runs/create", {"experiment_id": "0", "start_time": "soon"}, "start_time"),
        ("runs/update", {**r, "status": "PAUSED"}, "status 'PAUSED'"),
        ("runs/log-parameter", {**r, "key": "bad key!", "value": "1"}, "bad key!"),
        ("runs/log-parameter", {**r, "key": "a"}, "value"),
        ("runs/log-metric", {**r, **m, "value": "NaN"}, "finite"),
        ("runs/log-metric", {**r, **m, "value": "high"}, "number"),
        ("runs/log-metric", {**r, **m, "value": 1, "step": -1}, "step"),
        ("runs/log-metric", {**r, **m, "value": 1, "timestamp": -5}, "timestamp"),
        ("runs/log-batch", {**r, "metrics": many}, "at most 1000 metrics"),
        ("runs/log-batch", {**r, "params": params}, "at most 100 params"),
        ("runs/log-batch", {**r, "tags": tags}, "at most 100 tags"),
        ("runs/log-batch", {**r, "params": twice}, "twice"),
        (
            "runs/log-batch",
            {**r, "params": twice[:1], "metrics": [{**m, "value": "inf"}]},
            "finite",
        ),
        ("runs/log-inputs", {**r, "datasets": [{"dataset": {"name": "d"}}]}, "digest"),
        ("runs/search", {**zero, "filter": "metrics.acc > 'high'"}, "column 15"),
        ("runs/search", {**zero, "filter": "params.a = '1' OR params.b = '2'"}, "AND only"),
        ("runs/search", {**zero, "filter": "colour = 'red'"}, "colour"),
        ("runs/search", {**zero, "order_by": ["metrics.acc sideways"]}, "sideways"),
        ("runs/search", {**zero, "page_token": "not-a-token"}, "page_token"),
        ("runs/search", {**zero, "max_results": 50001}, "max_results"),
        ("experiments/search", {"filter": "metrics.acc > 1"}, "metrics"),
    ]
    for path, body, named in cases:
        status, code, message = error(post(served, path, body))
        assert (status, code) == (400, "INVALID_PARAMETER_VALUE"), (path, body, message)
        assert named in message, (path, message)
    assert served.registry.verify_audit().events == before  # nothing half-written
    record = served.registry.db.read(lambda c: runs.record(c, run_id))
    assert record["params"] == {}
    assert record["metric_history"] == {}


def test_what_does_not_exist_is_a_404_in_mlflows_shape(served: Server) -> None:
    missing = "f" * 32
    for response in (
        served.http.get(f"{API}/experiments/get", params={"experiment_id": "99"}),
        served.http.get(f"{API}/experiments/get-by-name", params={"experiment_name": "nope"}),
        post(served, "runs/create", {"experiment_id": "99"}),
        served.http.get(f"{API}/runs/get", params={"run_id": missing}),
        post(
            served, "runs/log-metric", {"run_id": missing, "key": "m", "value": 1, "timestamp": T0}
        ),
        served.http.get(
            f"{API}/metrics/get-history", params={"run_id": missing, "metric_key": "m"}
        ),
        post(served, "runs/delete-tag", {"run_id": new_run(served), "key": "nope"}),
    ):
        assert error(response)[:2] == (404, "RESOURCE_DOES_NOT_EXIST"), response.text


def test_a_text_that_is_no_run_id_names_no_run_on_either_backend(any_server: Server) -> None:
    # Found by fuzzing: a NUL byte reached PostgreSQL, which refuses it in a text parameter.
    for bad in ("a\u0000b", "x" * 37, "a_b"):
        response = any_server.http.post(f"{API}/runs/outputs", json={"run_id": bad, "models": []})
        assert error(response)[:2] == (404, "RESOURCE_DOES_NOT_EXIST"), response.text
        assert "not a run id" in error(response)[2]


def test_text_postgresql_refuses_gets_a_4xx_on_either_backend(any_server: Server) -> None:
    # Found in review: NUL bytes and a LIKE pattern ending in a lone backslash reached the
    # database (PostgreSQL refuses both) and answered 500.
    http = any_server.http
    run_id = new_run(any_server)
    post(any_server, "registered-models/create", {"name": "tagged"})
    answers = [
        http.get(f"{API}/artifacts/list", params={"run_id": "a\u0000b"}),
        post(
            any_server,
            "model-versions/create",
            {"name": "tagged", "source": f"runs:/{run_id}/model", "run_id": "a\u0000"},
        ),
        http.request(
            "DELETE",
            f"{API}/registered-models/delete-tag",
            json={"name": "tagged", "key": "\u0000"},
        ),
        http.request(
            "DELETE",
            f"{API}/model-versions/delete-tag",
            json={"name": "demo", "version": "1", "key": "\u0000"},
        ),
        http.get(f"{API}/registered-models/search", params={"filter": "name LIKE 'a\\'"}),
        post(any_server, "runs/search", {"experiment_ids": ["0"], "filter": "tags.t LIKE 'a\\'"}),
    ]
    for response in answers:
        status, code, _ = error(response)
        assert 400 <= status < 500, response.text
        assert code != "INTERNAL_ERROR", response.text
    use = {
        "dataset": {
            "name": "d",
            "digest": "abc",
            "source_type": "local",
            "source": '{"uri": "s3://x\\u0000"}',
        }
    }
    logged = post(any_server, "runs/log-inputs", {"run_id": run_id, "datasets": [use]})
    assert logged.status_code < 500, logged.text


def test_metric_history_pages_in_mlflows_order(served: Server) -> None:
    run_id = new_run(served)
    metrics = [
        {"key": "loss", "value": 1 / (s + 1), "timestamp": T0 + s, "step": s} for s in range(7)
    ]
    assert post(served, "runs/log-batch", {"run_id": run_id, "metrics": metrics}).json() == {}
    seen: list[int] = []
    token = None
    while True:
        params = {"run_id": run_id, "metric_key": "loss", "max_results": 3}
        if token:
            params["page_token"] = token
        page = served.http.get(f"{API}/metrics/get-history", params=params).json()
        seen += [m["step"] for m in page["metrics"]]
        token = page.get("next_page_token")
        if token is None:
            break
    assert seen == list(range(7))
    assert run_events(served.registry, run_id)[-1] == "run.metric"  # one event for the batch


def test_runs_and_experiments_page_by_the_last_row_shown(served: Server) -> None:
    """A page token carries the sort values of the page's last run: the next page starts
    there (no OFFSET to read through), and a run that sorts before it, logged meanwhile,
    moves nothing. Runs without the metric come last, ties by start then id."""
    ids = []
    for i in range(7):
        run_id = new_run(served, start_time=T0 + i)
        if i != 3:  # one run without the metric
            metric = {"key": "acc", "value": float(i % 3), "timestamp": T0, "step": 0}
            post(served, "runs/log-batch", {"run_id": run_id, "metrics": [metric]})
        ids.append(run_id)
    body = {"experiment_ids": ["0"], "order_by": ["metrics.acc DESC"], "max_results": 3}
    first = post(served, "runs/search", body).json()
    token = first["next_page_token"]
    after = json.loads(base64.urlsafe_b64decode(token))["after"]
    assert after[-1] == first["runs"][-1]["info"]["run_id"]  # the last run's id, and its values
    late = new_run(served, start_time=T0 + 100)
    late_metric = {"key": "acc", "value": 9.0, "timestamp": T0, "step": 0}
    post(served, "runs/log-batch", {"run_id": late, "metrics": [late_metric]})
    seen = [r["info"]["run_id"] for r in first["runs"]]
    while token:
        page = post(served, "runs/search", {**body, "page_token": token}).json()
        seen += [r["info"]["run_id"] for r in page["runs"]]
        token = page.get("next_page_token")
    by_value = sorted(range(7), key=lambda i: (i == 3, -(i % 3), -i))
    assert seen == [ids[i] for i in by_value]  # each once, in order, the late run not among them
    for name in ("exp-b", "exp-a", "exp-c"):
        assert post(served, "experiments/create", {"name": name}).status_code == 200
    names, token = [], None
    while True:
        asked = {"filter": "name LIKE 'exp-%'", "order_by": ["name ASC"], "max_results": 2}
        more = {"page_token": token} if token else {}
        page = post(served, "experiments/search", {**asked, **more})
        names += [e["name"] for e in page.json()["experiments"]]
        token = page.json().get("next_page_token")
        if token is None:
            break
    assert names == ["exp-a", "exp-b", "exp-c"]


def test_a_page_token_whose_values_do_not_fit_the_order_is_refused(served: Server) -> None:
    for i in range(3):
        new_run(served, start_time=T0 + i)
    body = {"experiment_ids": ["0"], "max_results": 1}
    token = post(served, "runs/search", body).json()["next_page_token"]
    forged = [
        {"offset": 1, "after": ["not a time", 5]},  # a number where an id goes
        {"offset": 1, "after": ["x"]},  # too few
        {"offset": 1, "after": {"a": 1}},
        {"offset": 1, "after": [True, "x"]},
    ]
    for data in forged:
        bad = base64.urlsafe_b64encode(json.dumps(data).encode()).decode()
        status, code, message = error(post(served, "runs/search", {**body, "page_token": bad}))
        assert (status, code) == (400, "INVALID_PARAMETER_VALUE"), data
        assert "page_token" in message
    ordered = {**body, "order_by": ["metrics.acc DESC"], "page_token": token}
    status, code, _ = error(post(served, "runs/search", ordered))  # another order's token
    assert (status, code) == (400, "INVALID_PARAMETER_VALUE")
    beyond_sql = [
        [1 << 70, 0.5, "2026", "x"],  # past 64 bits
        [1 << 40, 0.5, "2026", "x"],  # past the 32 bits of the key (PostgreSQL casts to them)
        [0, 1 << 70, "2026", "x"],  # a metric's value as a whole number past 64 bits
        [0, 0.5, "2026", "x\u0000y"],  # a NUL, which PostgreSQL's text cannot hold
        [0, 0.5, "2026", "x\ud800"],  # a lone surrogate, which is not UTF-8
    ]
    for after in beyond_sql:
        bad = base64.urlsafe_b64encode(json.dumps({"offset": 1, "after": after}).encode())
        asked = {**ordered, "page_token": bad.decode()}
        assert error(post(served, "runs/search", asked))[:2] == (400, "INVALID_PARAMETER_VALUE")
    deep = '{"offset": 0, "after": ' + "[" * 5000 + "]" * 5000 + "}"
    asked = {**ordered, "page_token": base64.urlsafe_b64encode(deep.encode()).decode()}
    assert error(post(served, "runs/search", asked))[:2] == (400, "INVALID_PARAMETER_VALUE")


def test_a_point_sent_again_is_stored_once_as_mlflow_does(served: Server) -> None:
    # MLflow's client sends a run's latest points again when it logs a model.
    run_id = new_run(served)
    point = {"key": "loss", "value": 0.25, "timestamp": T0, "step": 3}
    batch = {"run_id": run_id, "metrics": [point, point]}
    assert post(served, "runs/log-batch", batch).json() == {}
    assert post(served, "runs/log-batch", batch).json() == {}
    other = {**point, "value": 0.5}  # another value at the same step and time is a new point
    assert post(served, "runs/log-batch", {"run_id": run_id, "metrics": [other]}).json() == {}
    params = {"run_id": run_id, "metric_key": "loss"}
    history = served.http.get(f"{API}/metrics/get-history", params=params).json()["metrics"]
    assert sorted(m["value"] for m in history) == [0.25, 0.5]
    assert run_events(served.registry, run_id).count("run.metric") == 2  # nothing new: no event


def test_search_filters_by_time_to_the_millisecond(served: Server) -> None:
    early = new_run(served, start_time=T0)
    late = new_run(served, start_time=T0 + 1)

    def found(filter: str) -> list[str]:
        body = {"experiment_ids": ["0"], "filter": filter}
        return [r["info"]["run_id"] for r in post(served, "runs/search", body).json()["runs"]]

    assert found(f"attributes.start_time = {T0}") == [early]
    assert found(f"attributes.start_time > {T0}") == [late]
    assert found(f"attributes.start_time <= {T0}") == [early]
    assert found(f"attributes.start_time != {T0}") == [late]
    assert found(f"attributes.start_time >= {T0 + 0.5}") == [late]
    assert found("attributes.end_time > 0") == []  # runs still running have no end


def test_a_reader_reads_and_searches_but_cannot_log(make_server: Callable[..., Server]) -> None:
    server = make_server(auth=True)
    reader = {"Authorization": f"Bearer {server.token('viewer', 'reader')}"}
    writer = {"Authorization": f"Bearer {server.token('trainer', 'writer')}"}
    made = server.http.post(f"{API}/runs/create", json={"experiment_id": "0"}, headers=writer)
    run_id = made.json()["run"]["info"]["run_id"]
    search = {"experiment_ids": ["0"]}
    found = server.http.post(f"{API}/runs/search", json=search, headers=reader).json()
    assert [r["info"]["run_id"] for r in found["runs"]] == [run_id]
    param = {"run_id": run_id, "key": "a", "value": "1"}
    refused = server.http.post(f"{API}/runs/log-parameter", json=param, headers=reader)
    assert error(refused)[:2] == (403, "PERMISSION_DENIED")
    deleting = server.http.post(f"{API}/runs/delete", json={"run_id": run_id}, headers=writer)
    assert error(deleting)[:2] == (403, "PERMISSION_DENIED")  # deletions are a maintainer's
    run = server.http.get(f"{API}/runs/get", params={"run_id": run_id}, headers=reader).json()
    assert run["run"]["info"]["user_id"] == "trainer"  # no user_id given: the token's name


# -- MLflow's search grammar, without a server -------------------------------------------------


def test_the_grammar_reads_mlflows_forms_of_fields_and_operators() -> None:
    text = (
        "metrics.acc >= 0.9 AND params.`learning rate` = '0.1' AND tags.\"mlflow.user\" LIKE 'a%'"
        " and attributes.status != 'FAILED' and run_id IN ('a', 'b') and created > 5"
        " and datasets.context = 'training' and tag.team IS NOT NULL"
    )
    assert parse_filter(text, RUNS) == (
        Clause("metric", "acc", ">=", 0.9),
        Clause("param", "learning rate", "=", "0.1"),
        Clause("tag", "mlflow.user", "LIKE", "a%"),
        Clause("attribute", "status", "!=", "FAILED"),
        Clause("attribute", "run_id", "IN", ("a", "b")),
        Clause("attribute", "start_time", ">", 5),
        Clause("dataset", "context", "=", "training"),
        Clause("tag", "team", "IS NOT NULL", None),
    )
    assert parse_order_by(["metrics.acc DESC", "attributes.`Run name`"], RUNS) == (
        OrderKey("metric", "acc", ascending=False),
        OrderKey("attribute", "run_name"),
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("metrics.acc > '0.9'", "metrics.acc is a number"),
        ("params.alpha = 0.5", "quote the value ('0.5')"),
        ("metrics.a = 1 OR metrics.b = 2", "AND only"),
        ("status IN ('FAILED')", "attributes.status takes =, !=, LIKE, ILIKE, not IN"),
        ("models.x = '1'", "unknown entity 'models'"),
        ("metrics.acc", "expected an operator"),
        ("`Run name` = 'x'", "a backquoted key follows its entity"),
    ],
)
def test_a_filter_that_does_not_parse_says_what_and_where(text: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=re.escape(message)) as caught:
        parse_filter(text, RUNS)
    assert "at column" in str(caught.value)


def test_times_compare_to_the_millisecond_as_stored_text() -> None:
    def stamp(ms: int) -> str:
        if ms < 0:
            raise InvalidInput("before 1970")
        return f"t{ms}"

    clauses = parse_filter(
        "start_time > 10 and start_time <= 10.5 and end_time = 7 and end_time != 7.5"
        " and start_time >= -3",
        RUNS,
    )
    assert stored_times(clauses, RUNS, stamp) == (
        Clause("attribute", "start_time", ">=", "t11"),
        Clause("attribute", "start_time", "<", "t11"),
        Clause("attribute", "end_time", "RANGE", ("t7", "t8")),
        Clause("attribute", "end_time", ">=", ""),  # every time differs from 7.5 ms
        Clause("attribute", "start_time", ">=", ""),  # before 1970: every time is after
    )


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        ("logged-models", {"experiment_id": "\u00b2", "name": "m"}, "is not an experiment id"),
        ("logged-models", {"experiment_id": "\u0663", "name": "m"}, "is not an experiment id"),
        ("runs/update", {"run_id": "0" * 32, "status": "\u00b2"}, "status '\u00b2' is invalid"),
    ],
)
def test_digits_outside_ascii_are_refused_as_bad_input(
    served: Server, path: str, body: Any, message: str
) -> None:
    """Python calls "²" and "٣" digits, and int() refuses the first: each is a 400, never a
    500, wherever a number is expected."""
    answer = post(served, path, body)
    assert answer.status_code == 400, answer.text
    assert message in answer.json()["message"]


def test_a_version_number_outside_ascii_is_a_bad_request_page(served: Server) -> None:
    assert served.http.get("/models/demo/versions/\u00b2").status_code == 400
    assert served.http.get("/api/v1/pages/models/demo/versions/\u00b2").status_code == 400
