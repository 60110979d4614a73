"""Whole MLflow-client scenarios against ``modelreg server`` (issue 15): each role through the
real client with auth on, sklearn autolog, the client benchmark's workload, and a differential
test that runs one scenario against a real ``mlflow server`` and against modelreg and compares
what the client sees.

Each scenario is one client script (importing MLflow costs seconds), run on SQLite and a
directory and on PostgreSQL and S3 (SeaweedFS); what modelreg recorded is then read from its
own store. The differential test compares everything the client read back, after replacing
what two servers cannot share (ids, times, the script's path), except the differences listed
in ``DIFFERENCES``, each with the reason for it.
"""

from __future__ import annotations

import base64
import io
import json
import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from live import LiveServer
from mlflow_kit import ROOT, run_client
from modelreg import artifacts, runs, wire
from modelreg.local import LocalRegistry
from modelreg.s3 import S3BlobStore
from modelreg.server import create_app
from server_kit import CONTENT, DIGEST, Server, any_server, make_server, registry_template
from test_mlflow_import import MlflowServer, mlflow_server

# Fixtures. Imported, mlflow_server is this module's own: its MLflow server is not the one
# whose every model test_mlflow_import.py compares with what it imported.
__all__ = ["any_server", "make_server", "mlflow_server", "registry_template"]

API = "/api/2.0/mlflow"
WORKLOAD = ROOT / "benchmarks" / "mlflow_client_workload.py"

# Client code shared by the scripts: ``plain`` turns MLflow's entities into JSON.
PLAIN = """
import numpy as np
import mlflow.sklearn
from mlflow.entities._mlflow_object import _MlflowObject
from sklearn.linear_model import LogisticRegression

def plain(x):
    if isinstance(x, _MlflowObject):
        return {k: plain(v) for k, v in x}
    if isinstance(x, dict):
        return {str(k): plain(v) for k, v in x.items()}
    if x is None or isinstance(x, (str, int, float, bool)):
        return x
    if isinstance(x, (list, tuple)) or type(x).__name__.startswith("Repeated"):
        return [plain(v) for v in x]
    return str(x)

def refused(call, *args, **kwargs):
    '''The MLflow error code a call raises (or its HTTP status when the artifact client
    raises a plain HTTP error), or None when it succeeds.'''
    try:
        call(*args, **kwargs)
    except MlflowException as exc:
        return exc.error_code
    except Exception as exc:
        status = getattr(getattr(exc, "response", None), "status_code", None)
        return f"HTTP {status}" if status else repr(exc)
    return None

X = np.array([[0.0, 1.0], [1.0, 0.0], [2.0, 1.0], [3.0, 0.0], [4.0, 1.0], [5.0, 0.0]])
y = np.array([0, 0, 0, 1, 1, 1])
"""


def basic(user: str, password: str) -> dict[str, str]:
    pair = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {pair}"}


def error(response: Any) -> tuple[int, str]:
    body = response.json()
    assert set(body) >= {"error_code", "message"}, body
    return response.status_code, body["error_code"]


# -- auth: each role through the real client ----------------------------------------------------


@pytest.fixture(params=["sqlite_dir", "postgres_s3"])
def auth_server(
    request: pytest.FixtureRequest, make_server: Callable[..., Server], live_server: LiveServer
) -> Iterator[Server]:
    """A server with ``--auth``, on each pair of stores (as ``any_server``, with auth on)."""
    if request.param == "sqlite_dir":
        yield make_server(auth=True)
        return
    postgres = request.getfixturevalue("postgres")
    bucket, client = request.getfixturevalue("s3_bucket")
    blobs = S3BlobStore(bucket, prefix=uuid.uuid4().hex, client=client)
    registry = LocalRegistry(db_url=postgres.new_database(), blobs=blobs, actor="setup")
    registry.blobs.put(io.BytesIO(CONTENT), digest=DIGEST)
    entry = {"path": "model.bin", "digest": DIGEST, "size": len(CONTENT)}
    registry.commit_version(wire.new_version_from_json("demo", {"files": [entry]}))
    app = create_app(registry, auth=True)
    url = live_server.mount(app)
    server = Server(registry, app, url, httpx.Client(base_url=url, timeout=30))
    try:
        yield server
    finally:
        server.close()


# One script per server: every role, with the token sent as MLFLOW_TRACKING_TOKEN (Bearer) and
# as MLFLOW_TRACKING_USERNAME/PASSWORD (Basic, the password is the token). The client reads its
# credentials from the environment on each request, so the script changes role by changing it.
AUTH = (
    PLAIN
    + """
SECRETS = json.loads(os.environ["SECRETS"])

def as_(role, form):
    for key in ("MLFLOW_TRACKING_TOKEN", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
        os.environ.pop(key, None)
    if role is None:
        return
    secret = SECRETS[role]
    if form == "bearer":
        os.environ["MLFLOW_TRACKING_TOKEN"] = secret
    else:
        os.environ["MLFLOW_TRACKING_USERNAME"] = "whoever"
        os.environ["MLFLOW_TRACKING_PASSWORD"] = secret

client = MlflowClient()
for form in ("bearer", "basic"):
    name = f"churn-{form}"
    model = LogisticRegression().fit(X, y)

    as_("writer", form)  # logs a run and a model, registers versions, cannot move aliases
    experiment = mlflow.set_experiment(f"auth-{form}").experiment_id
    with mlflow.start_run() as run:
        mlflow.log_param("C", 1.0)
        mlflow.log_metric("acc", 0.9, step=1)
        mlflow.set_tag("team", "ml")
        mlflow.log_text("hello", "notes.txt")
        info = mlflow.sklearn.log_model(model, name="model", registered_model_name=name)
    run_id = run.info.run_id
    second = client.create_model_version(name, f"runs:/{run_id}/model", run_id).version
    client.set_model_version_tag(name, "1", "checked", "yes")
    client.update_registered_model(name, description="churn model")
    writer = {
        "registered": [info.registered_model_version, second],
        "refused": {
            "alias_champion": refused(client.set_registered_model_alias, name, "champion", "1"),
            "alias_production": refused(
                client.set_registered_model_alias, name, "production", "1"),
            "stage_production": refused(
                client.transition_model_version_stage, name, "1", "Production"),
            "stage_staging": refused(client.transition_model_version_stage, name, "1", "Staging"),
            "delete_version": refused(client.delete_model_version, name, "2"),
            "delete_run": refused(client.delete_run, run_id),
        },
    }

    as_("reader", form)  # reads and loads, writes nothing
    got = client.get_run(run_id)
    folder = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="notes.txt")
    reader = {
        "run": [got.data.params, got.data.metrics, got.data.tags.get("team"),
                got.info.user_id == got.data.tags["mlflow.user"]],
        "found": [r.info.run_id for r in client.search_runs([experiment], "metrics.acc > 0.5")],
        "model": [client.get_registered_model(name).description,
                  sorted(v.version for v in client.search_model_versions(f"name='{name}'"))],
        "tags": client.get_model_version(name, "1").tags,
        "loaded": mlflow.sklearn.load_model(f"models:/{name}/1").predict(X).tolist()
                  == model.predict(X).tolist(),
        "file": open(folder).read(),
        "refused": {
            "log_metric": refused(client.log_metric, run_id, "acc", 0.5),
            "log_param": refused(client.log_param, run_id, "new", 1),
            "set_tag": refused(client.set_tag, run_id, "team", "other"),
            "log_artifact": refused(client.log_text, run_id, "no", "other.txt"),
            "create_run": refused(client.create_run, experiment),
            "create_experiment": refused(client.create_experiment, f"other-{form}"),
            "log_model": refused(mlflow.sklearn.log_model, model, name="model"),
            "create_model": refused(client.create_registered_model, f"other-{form}"),
            "create_version": refused(
                client.create_model_version, name, f"models:/{info.model_id}", run_id),
            "set_version_tag": refused(client.set_model_version_tag, name, "1", "k", "v"),
            "alias": refused(client.set_registered_model_alias, name, "champion", "1"),
        },
    }

    as_("maintainer", form)  # moves aliases and stages
    client.set_registered_model_alias(name, "champion", "1")
    client.transition_model_version_stage(name, "1", "Production")
    maintainer = [client.get_model_version_by_alias(name, "champion").version,
                  client.get_model_version_by_alias(name, "production").version]

    as_("admin", form)  # may do all of it
    client.transition_model_version_stage(name, "2", "Staging")
    client.delete_model_version_tag(name, "1", "checked")
    admin = [client.get_model_version_by_alias(name, "staging").version,
             client.get_model_version(name, "1").tags]

    as_("wrong", form)
    wrong = [refused(client.get_run, run_id), refused(mlflow.get_experiment_by_name, "x")]
    as_(None, form)
    anonymous = [
        refused(client.get_run, run_id),
        refused(client.search_runs, [experiment]),
        refused(mlflow.set_experiment, "anything"),
        refused(mlflow.pyfunc.load_model, f"models:/{name}/1"),
    ]
    out({"form": form, "run_id": run_id, "model_id": info.model_id, "writer": writer,
         "reader": reader, "maintainer": maintainer, "admin": admin, "wrong": wrong,
         "anonymous": anonymous})
"""
)


def test_each_role_through_the_client_with_a_bearer_or_basic_token(auth_server: Server) -> None:
    server = auth_server
    names = {"reader": "viewer", "writer": "trainer", "maintainer": "releaser", "admin": "boss"}
    secrets = {role: server.token(name, role) for role, name in names.items()}
    secrets["wrong"] = "mr_" + "x" * 43
    seen = run_client(server.url, AUTH, env={"SECRETS": json.dumps(secrets)})
    reg = server.registry
    assert [s["form"] for s in seen] == ["bearer", "basic"]
    for s in seen:
        name, run_id = f"churn-{s['form']}", s["run_id"]
        assert s["writer"] == {
            "registered": ["1", "2"],
            # moving an alias or a stage, and deleting, are a maintainer's (docs/server.md)
            "refused": dict.fromkeys(
                [
                    "alias_champion",
                    "alias_production",
                    "stage_production",
                    "stage_staging",
                    "delete_version",
                    "delete_run",
                ],
                "PERMISSION_DENIED",
            ),
        }
        reader = s["reader"]
        assert reader.pop("refused") == dict.fromkeys(
            [
                "log_metric",
                "log_param",
                "set_tag",
                "create_run",
                "create_experiment",
                "log_model",
                "create_model",
                "create_version",
                "set_version_tag",
                "alias",
            ],
            "PERMISSION_DENIED",
        ) | {"log_artifact": "HTTP 403"}  # MLflow's artifact client raises the bare status
        assert reader == {
            # the run's user_id is the one the client sent, as MLflow keeps it; the audit
            # log (below) names the token
            "run": [{"C": "1.0"}, {"acc": 0.9}, "ml", True],
            "found": [run_id],
            "model": ["churn model", ["1", "2"]],
            "tags": {"checked": "yes"},
            "loaded": True,
            "file": "hello",
        }
        assert s["maintainer"] == ["1", "1"]
        assert s["admin"] == ["2", {}]
        assert s["wrong"] == ["UNAUTHENTICATED"] * 2
        assert s["anonymous"] == ["UNAUTHENTICATED"] * 4

        # what modelreg recorded, and who the audit log says did it
        version = reg.get(f"{name}/1")
        assert version.run_id == run_id
        assert version.aliases == ["champion", "production"]
        assert reg.get(f"{name}@staging").ref == f"{name}/2"

        def actors(action: str, entity: str) -> set[str]:
            found = reg.audit(action=action, limit=1000)
            return {e.actor for e in found if entity == e.entity_id or entity in (e.entity or "")}

        assert actors("run.start", run_id) == {"trainer"}
        assert actors("run.metric", run_id) == {"trainer"}
        assert actors("logged_model.create", s["model_id"]) == {"trainer"}
        assert actors("model.create", name) == {"trainer"}
        assert actors("version.create", name) == {"trainer"}
        assert actors("alias.set", name) == {"releaser", "boss"}
    # what was refused wrote nothing, and no change is the reader's or a client's claim
    assert sorted(m.name for m in reg.models()) == ["churn-basic", "churn-bearer", "demo"]
    assert len(reg.audit(action="logged_model.create", limit=100)) == 2
    events = reg.audit(limit=10_000)
    assert not {"viewer", "anonymous", "whoever"} & {e.actor for e in events}
    assert reg.verify_audit().ok

    # the HTTP answers behind the client's errors
    http, query = server.http, {"run_id": seen[0]["run_id"]}
    get = f"{API}/runs/get"
    assert error(http.get(get, params=query)) == (401, "UNAUTHENTICATED")
    wrong = {"Authorization": f"Bearer {secrets['wrong']}"}
    assert error(http.get(get, params=query, headers=wrong)) == (401, "UNAUTHENTICATED")
    wrong = basic("whoever", secrets["wrong"])
    assert error(http.get(get, params=query, headers=wrong)) == (401, "UNAUTHENTICATED")
    reader = basic("whoever", secrets["reader"])
    assert http.get(get, params=query, headers=reader).status_code == 200
    param = {**query, "key": "x", "value": "1"}
    answer = http.post(f"{API}/runs/log-parameter", json=param, headers=reader)
    assert error(answer) == (403, "PERMISSION_DENIED")


# -- sklearn autolog ------------------------------------------------------------------------------


AUTOLOG = (
    PLAIN
    + """
mlflow.sklearn.autolog()
experiment = mlflow.set_experiment("autolog").experiment_id
with mlflow.start_run() as run:
    model = LogisticRegression(C=0.5, max_iter=300).fit(X, y)
run_id = run.info.run_id
client = MlflowClient()
got = client.get_run(run_id)
[logged] = mlflow.search_logged_models(experiment_ids=[experiment], output_format="list")
out({
    "run_id": run_id,
    "params": got.data.params,
    "expected_params": {k: str(v) for k, v in model.get_params().items()},
    "metrics": got.data.metrics,
    "score": model.score(X, y),
    "tags": {k: v for k, v in got.data.tags.items() if k.startswith("estimator")},
    "run_files": sorted(f.path for f in client.list_artifacts(run_id)),
    "model_id": logged.model_id,
    "model": [logged.name, logged.source_run_id, str(logged.status)],
    "model_files": sorted(f.path for f in client.list_logged_model_artifacts(logged.model_id)),
    "outputs": [o.model_id for o in got.outputs.model_outputs],
})
version = mlflow.register_model(f"models:/{logged.model_id}", "autologged")
loaded = mlflow.sklearn.load_model("models:/autologged/1")
by_run = mlflow.pyfunc.load_model(f"runs:/{run_id}/model")
out([version.version, version.run_id,
     loaded.predict(X).tolist() == model.predict(X).tolist(),
     by_run.predict(X).tolist() == model.predict(X).tolist()])
"""
)


def test_sklearn_autolog_lands_whole_and_registers_with_lineage(any_server: Server) -> None:
    seen, registered = run_client(any_server.url, AUTOLOG)
    run_id = seen["run_id"]
    assert seen["params"] == seen["expected_params"]  # every param of the estimator
    assert seen["metrics"]["training_score"] == pytest.approx(seen["score"])
    assert {"training_accuracy_score", "training_f1_score", "training_log_loss"} <= set(
        seen["metrics"]
    )
    assert seen["tags"] == {
        "estimator_name": "LogisticRegression",
        "estimator_class": "sklearn.linear_model._logistic.LogisticRegression",
    }
    assert seen["model"] == ["model", run_id, "READY"]
    # autolog pickles (log_model's default is skops)
    assert {"MLmodel", "model.pkl", "requirements.txt", "python_env.yaml"} <= set(
        seen["model_files"]
    )
    assert seen["outputs"] == [seen["model_id"]]
    assert seen["run_files"] == [
        "estimator.html",
        "metric_info.json",
        "training_confusion_matrix.png",
        "training_precision_recall_curve.png",
        "training_roc_curve.png",
    ]
    assert registered == ["1", run_id, True, True]

    # modelreg's side: the run, and a version whose lineage leads to it
    reg = any_server.registry
    record = reg.db.read(lambda c: runs.record(c, run_id))
    assert record["params"] == seen["params"]
    assert record["metric_history"]["training_score"][0]["value"] == pytest.approx(seen["score"])
    held = reg.db.read(lambda c: artifacts.files(c, run_id))
    assert [f.path for f in held] == seen["run_files"]
    assert {f.digest for f in held} <= set(reg.blobs)  # each file a blob of the one store
    version = reg.get("autologged/1")
    assert version.run_id == run_id
    assert {"MLmodel", "model.pkl"} <= {f.path for f in version.files}
    assert version.metrics["training_score"] == pytest.approx(seen["score"])
    lineage = reg.lineage("autologged/1")
    assert lineage["run"] is not None
    assert lineage["run"]["id"] == run_id
    assert lineage["code"]["mlflow_model_id"] == seen["model_id"]
    assert lineage["environment"]["packages"]["scikit-learn"]


# -- the client benchmark's workload, as a test -------------------------------------------------


WORKLOAD_CHECK = f"""
import contextlib, io, runpy
sys.argv = ["mlflow_client_workload.py", "bench"]
printed = io.StringIO()
with contextlib.redirect_stdout(printed):  # exits non-zero if the loaded model predicts otherwise
    runpy.run_path({str(WORKLOAD)!r}, run_name="__main__")
phases = json.loads(printed.getvalue().splitlines()[-1].removeprefix("PHASES "))
client = MlflowClient()
run_id = phases.pop("run_id")
got = client.get_run(run_id)
out({{
    "phases": sorted(phases),
    "run_id": run_id,
    "params": got.data.params,
    "metrics": len(got.data.metrics),
    "latest": got.data.metrics["m49"],
    "history": [[m.step, m.value] for m in client.get_metric_history(run_id, "m7")],
    "champion": client.get_model_version_by_alias("bench", "champion").version,
}})
"""


def test_the_benchmark_workload_logs_registers_and_loads(any_server: Server) -> None:
    [seen] = run_client(any_server.url, WORKLOAD_CHECK, timeout=600)
    run_id = seen["run_id"]
    assert seen["phases"] == ["alias", "load", "log_model", "log_run", "total"]
    assert seen["params"] == {"C": "1.0", "solver": "lbfgs", "features": "8"}
    assert seen["metrics"] == 50
    assert seen["latest"] == pytest.approx((49 + 99) / 1000)
    assert seen["history"] == [[step, (7 + step) / 1000] for step in range(100)]
    assert seen["champion"] == "1"

    reg = any_server.registry
    record = reg.db.read(lambda c: runs.record(c, run_id))
    history = record["metric_history"]
    assert len(history) == 50
    assert all(len(points) == 100 for points in history.values())
    assert [p["value"] for p in history["m0"]] == [step / 1000 for step in range(100)]
    version = reg.get("bench@champion")
    assert version.ref == "bench/1"
    assert version.run_id == run_id
    assert {"MLmodel", "model.skops", "input_example.json"} <= {f.path for f in version.files}


# -- the differential test: one scenario against mlflow server and against modelreg ------------


SCENARIO = (
    PLAIN
    + """
import pathlib
import pandas as pd

T0 = 1_767_225_600_000
client = MlflowClient()
experiment = mlflow.set_experiment("diff-exp").experiment_id
out(["experiment", plain(client.get_experiment(experiment))])
out(["experiment_by_name", plain(mlflow.get_experiment_by_name("diff-exp"))])
frame = pd.DataFrame({"a": X[:, 0], "b": X[:, 1], "y": y})
dataset = mlflow.data.from_pandas(frame, source="data/train.csv", name="train", targets="y")
files = pathlib.Path("files")
(files / "sub").mkdir(parents=True)
(files / "notes.txt").write_text("hello")
(files / "sub" / "inner.csv").write_text("a,b\\n1,2\\n")
pathlib.Path("report.txt").write_text("report")

ids = {}
for name, alpha, acc in [("low", 0.1, 0.6), ("high", 0.9, 0.95)]:
    with mlflow.start_run(run_name=name, tags={"team": "ml"}) as run:
        mlflow.log_param("alpha", alpha)
        mlflow.log_metric("acc", acc, step=1, timestamp=T0)
    ids[name] = run.info.run_id
with mlflow.start_run(run_name="main", tags={"team": "ml"}) as run:
    mlflow.log_param("alpha", 0.5)
    mlflow.log_params({"solver": "lbfgs", "C": 1.0})
    for step in range(3):
        mlflow.log_metric("loss", 1 / (step + 1), step=step, timestamp=T0 + step * 1000)
    mlflow.log_metrics({"acc": 0.8, "f1": 0.7}, step=2, timestamp=T0 + 5000)
    mlflow.set_tag("stage", "dev")
    mlflow.set_tags({"owner": "team-a", "note": "x"})
    mlflow.log_artifact("report.txt")
    mlflow.log_artifacts("files", artifact_path="data")
    mlflow.log_input(dataset, context="training", tags={"split": "train"})
    model = LogisticRegression().fit(X, y)
    info = mlflow.sklearn.log_model(model, name="model", registered_model_name="diff-model",
                                    input_example=X[:2])
main = run.info.run_id
ids["main"] = main
out(["ids", {"runs": ids, "model": info.model_id, "experiment": experiment,
             "script": os.path.abspath(sys.argv[0])}])
out(["model_info", {"version": info.registered_model_version, "uri": info.model_uri,
                    "flavors": sorted(info.flavors), "signature": str(info.signature)}])
out(["run", plain(client.get_run(main))])
out(["history", plain(client.get_metric_history(main, "loss"))])
out(["artifacts", plain(client.list_artifacts(main))])
out(["artifacts_data", plain(client.list_artifacts(main, "data"))])
out(["artifacts_sub", plain(client.list_artifacts(main, "data/sub"))])
out(["artifacts_missing", plain(client.list_artifacts(main, "nothing-here"))])
where = pathlib.Path(mlflow.artifacts.download_artifacts(run_id=main, artifact_path="data"))
out(["download", {str(p.relative_to(where)): p.read_text()
                  for p in sorted(where.rglob("*")) if p.is_file()}])
out(["logged_model", plain(client.get_logged_model(info.model_id))])
out(["registered", plain(client.get_registered_model("diff-model"))])
client.set_registered_model_alias("diff-model", "champion", "1")
client.set_model_version_tag("diff-model", "1", "checked", "yes")
client.set_registered_model_tag("diff-model", "domain", "churn")
client.update_registered_model("diff-model", description="a model")
client.update_model_version("diff-model", "1", description="first")
out(["by_alias", plain(client.get_model_version_by_alias("diff-model", "champion"))])
out(["registered_after", plain(client.get_registered_model("diff-model"))])
out(["versions", plain(client.search_model_versions("name='diff-model'"))])
out(["versions_by_run", [v.version for v in client.search_model_versions(f"run_id='{main}'")]])
out(["models_search", [m.name for m in client.search_registered_models("name ILIKE 'DIFF%'")]])
out(["latest", plain(client.get_latest_versions("diff-model"))])
out(["latest_alias", plain(client.get_model_version_by_alias("diff-model", "latest"))])
out(["download_uri", client.get_model_version_download_uri("diff-model", "1")])

def names(found):
    return [r.info.run_name for r in found]

out(["search", {
    "acc": names(client.search_runs([experiment], "metrics.acc > 0.7 and tags.team = 'ml'",
                                    order_by=["metrics.acc DESC"])),
    "alpha": names(client.search_runs([experiment], order_by=["params.alpha ASC"])),
    "name": names(client.search_runs([experiment], "attributes.run_name LIKE 'h%'")),
    "dataset": names(client.search_runs([experiment], "datasets.name = 'train'")),
    "page": names(client.search_runs([experiment], max_results=2,
                                     order_by=["attributes.run_name ASC"])),
    "frame": sorted(mlflow.search_runs([experiment]).columns.tolist()),
}])
expected = model.predict(X).tolist()
out(["predict", {
    "alias": mlflow.pyfunc.load_model("models:/diff-model@champion").predict(X).tolist()
             == expected,
    "number": mlflow.sklearn.load_model("models:/diff-model/1").predict(X).tolist() == expected,
    "latest": mlflow.sklearn.load_model("models:/diff-model@latest").predict(X).tolist()
              == expected,
}])

def code(call, *args, **kwargs):
    found = error_of(call, *args, **kwargs)
    return found and found["code"]  # the messages are each server's own wording

out(["errors", {
    "missing_experiment": code(client.get_experiment, "987654"),
    "missing_experiment_name": plain(client.get_experiment_by_name("no-such-exp")),
    "missing_run": code(client.get_run, "0" * 32),
    "missing_run_log": code(client.log_metric, "0" * 32, "acc", 1.0),
    "duplicate_model": code(client.create_registered_model, "diff-model"),
    "duplicate_experiment": code(client.create_experiment, "diff-exp"),
    "missing_model": code(client.get_registered_model, "no-such-model"),
    "missing_version": code(client.get_model_version, "diff-model", "7"),
    "missing_alias": code(client.get_model_version_by_alias, "diff-model", "nope"),
    "missing_alias_load": code(mlflow.pyfunc.load_model, "models:/diff-model@nope"),
    "missing_model_load": code(mlflow.pyfunc.load_model, "models:/no-such-model/1"),
    "missing_logged_model": code(client.get_logged_model, "m-" + "0" * 32),
    "missing_download": code(mlflow.artifacts.download_artifacts, run_id=main,
                             artifact_path="nothing.txt"),
    "bad_filter": code(client.search_runs, [experiment], "metrics.acc >> 1"),
    "changed_param": code(client.log_param, main, "alpha", 0.7),
    "missing_history": plain(client.get_metric_history(main, "nothing")),
    "colon_key": code(client.log_param, main, "bad:key", 1),
}])
"""
)

# What differs between what MLflow's server and modelreg's answer the same client, and why.
# A path names a value in the scenario's output; ``*`` stands for each item of a list. The
# test checks that each still differs, so that the list stays the list of differences.
DIFFERENCES: dict[str, str] = {
    # Without auth, a change's actor is the client's X-Modelreg-Actor or "anonymous" (MLflow's
    # client sends neither, and MLflow's server keeps an empty user); with auth, it is the
    # token's name. A version's user_id is that actor.
    "registered/latest_versions/*/user_id": "actor",
    "registered_after/latest_versions/*/user_id": "actor",
    "by_alias/user_id": "actor",
    "versions/*/user_id": "actor",
    "latest/*/user_id": "actor",
    "latest_alias/user_id": "actor",
    # MLflow's server leaves a version's aliases out of a registered model's latest_versions
    # and out of search_model_versions; modelreg lists them wherever it shows the version.
    "registered_after/latest_versions/*/aliases": "aliases shown",
    "versions/*/aliases": "aliases shown",
    # A version loads from its own files (mlflow-artifacts:/versions/<id>), which never
    # change, not from the logged model or run folder it was registered from (docs/mlflow.md).
    "download_uri": "the version's own files",
    # Logged models keep no metrics of their own: their runs do (docs/mlflow.md).
    "logged_model/metrics": "no logged-model metrics",
    # MLflow's server appends a registration to this tag beside the one its client wrote
    # (the same version twice, once as a number); modelreg writes each registration once.
    "logged_model/tags/mlflow.modelVersions": "registrations listed once",
    # Keys follow modelreg's key rule, which has no ":" (docs/mlflow.md).
    "errors/colon_key": "key rule",
}
TIME_KEYS = {
    "creation_time",
    "last_update_time",
    "start_time",
    "end_time",
    "creation_timestamp",
    "last_updated_timestamp",
}


def normalise(seen: list[Any]) -> tuple[dict[str, Any], dict[str, list[Any]]]:
    """The scenario's output with ids, times and the script's folder replaced by what they
    are, lists of tags in key order, and each listed difference replaced by its name; and,
    apart, the values each difference took."""
    found: dict[str, Any] = dict(seen)
    ids = found.pop("ids")
    names = {run_id: f"<run {name}>" for name, run_id in ids["runs"].items()}
    names[ids["model"]] = "<logged model>"
    names[str(Path(ids["script"]).parent)] = "<script folder>"
    pattern = re.compile("|".join(re.escape(k) for k in names))
    experiment = ids["experiment"]
    location = re.compile(rf"^mlflow-artifacts:/{experiment}(?=/|$)")

    def walk(value: Any, key: str = "") -> Any:
        if isinstance(value, dict):
            return {k: walk(v, k) for k, v in value.items()}
        if isinstance(value, list):
            items = [walk(v) for v in value]
            if items and all(isinstance(i, dict) and "key" in i for i in items):
                items.sort(key=lambda i: str(i["key"]))  # tags: a list, in no set order
            return items
        if key in TIME_KEYS and isinstance(value, int):
            return "<time>"
        if isinstance(value, str):
            if key == "experiment_id" and value == experiment:
                return "<experiment>"
            value = pattern.sub(lambda m: names[m.group(0)], value)
            return location.sub("mlflow-artifacts:/<experiment>", value)
        return value

    normal: dict[str, Any] = walk(found)
    differing = {
        path: _take(normal, path.split("/"), f"<differs: {reason}>")
        for path, reason in DIFFERENCES.items()
    }
    return normal, differing


def _take(tree: Any, parts: list[str], marker: str) -> list[Any]:
    """The values at a path (``*``: each item of a list), each replaced by ``marker``."""
    head, rest = parts[0], parts[1:]
    if head == "*" and isinstance(tree, list):
        children: list[Any] = list(range(len(tree)))
    elif isinstance(tree, dict) and head in tree:
        children = [head]
    else:
        return []
    taken = []
    for child in children:
        if rest:
            taken += _take(tree[child], rest, marker)
        else:
            taken.append(tree[child])
            tree[child] = marker
    return taken


@pytest.fixture(scope="session")
def mlflow_answers(
    mlflow_server: MlflowServer,
) -> tuple[dict[str, Any], dict[str, list[Any]]]:
    """What the client saw of the scenario on MLflow's own server (run once per session)."""
    return normalise(run_client(mlflow_server.uri, SCENARIO))


def test_the_client_sees_the_same_from_mlflow_server_and_modelreg(
    mlflow_answers: tuple[dict[str, Any], dict[str, list[Any]]], any_server: Server
) -> None:
    theirs, their_differences = mlflow_answers
    ours, our_differences = normalise(run_client(any_server.url, SCENARIO))
    assert ours.keys() == theirs.keys()
    for key in theirs:
        assert (key, ours[key]) == (key, theirs[key])
    for path, values in our_differences.items():
        assert values, f"{path} names nothing the scenario showed"
        assert values != their_differences[path], f"{path} no longer differs: unlist it"
    # the scenario did what it says, on both
    assert ours["predict"] == {"alias": True, "number": True, "latest": True}
    assert ours["errors"]["missing_run"] == "RESOURCE_DOES_NOT_EXIST"
    assert ours["errors"]["duplicate_model"] == "RESOURCE_ALREADY_EXISTS"
    assert ours["download"] == {"notes.txt": "hello", "sub/inner.csv": "a,b\n1,2\n"}
    assert ours["run"]["outputs"]["model_outputs"] == [{"model_id": "<logged model>", "step": 0}]
