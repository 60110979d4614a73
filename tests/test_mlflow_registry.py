"""MLflow's model registry on modelreg's server, driven by the real MLflow client.

Registered models are models, model versions are ordinary immutable versions made from files
the server holds (a logged model, or a folder of a run's artifacts), and the stages Staging,
Production and Archived are the aliases staging, production and archived, so ``production``
keeps its promotion gates. Each scenario runs the client against SQLite and a directory and
against PostgreSQL and S3 (``any_server``), then looks at what modelreg recorded; bad input is
checked over plain HTTP, in MLflow's error shape, with nothing written.
"""

from __future__ import annotations

import io
import uuid
from pathlib import Path
from typing import Any

from mlflow_kit import FILES, MLMODEL, run_client
from modelreg import artifacts, logged_models, metric_points, models, runs, wire
from modelreg.db import now
from modelreg.local import LocalRegistry
from modelreg.manifest import FileEntry
from modelreg.records import DatasetUse
from server_kit import Server, any_server, make_server, registry_template, state

__all__ = ["any_server", "make_server", "registry_template"]  # fixtures

API = "/api/2.0/mlflow"
ART = "/api/2.0/mlflow-artifacts/artifacts"
GIT_COMMIT = "0123456789abcdef0123456789abcdef01234567"
RUN_TAGS = {
    "mlflow.user": "ana",
    "mlflow.source.name": "train.py",
    "mlflow.source.type": "LOCAL",
    "mlflow.source.git.commit": GIT_COMMIT,
    "mlflow.source.git.repoURL": "https://github.com/acme/churn.git",
}
TRAIN = DatasetUse("churn-train", "a" * 64, "s3://data/churn.parquet", 1024, 1, "train")


def tracked_run(reg: LocalRegistry, *, metrics: dict[str, float] | None = None) -> str:
    """A run as an MLflow client leaves it (made in the store: the tracking routes have
    their own tests), with params, metrics over two steps and a dataset."""
    run_id = uuid.uuid4().hex

    def write(conn: Any) -> None:
        runs.create_tracked(
            conn, run_id=run_id, name="train", experiment_id=0, user="ana",
            started_at=now(), tags=RUN_TAGS, actor="ana",
        )  # fmt: skip
        runs.log_params(conn, run_id, {"alpha": "0.5", "depth": "3"}, actor="ana")
        points = [(k, v / 2, 0) for k, v in (metrics or {"acc": 0.9}).items()]
        points += [(k, v, 1) for k, v in (metrics or {"acc": 0.9}).items()]
        metric_points.add_metrics(conn, run_id, metric_points.batch_of(points, None), actor="ana")
        runs.add_dataset(conn, run_id, TRAIN, actor="ana")

    reg.db.write(write)
    return run_id


def put_files(reg: LocalRegistry, owner: str, files: dict[str, bytes], *, kind: str) -> None:
    for path, data in files.items():
        digest, size = reg.blobs.put(io.BytesIO(data))
        entry = FileEntry(path, digest, size)
        reg.db.write(lambda c, e=entry: artifacts.put(c, owner, e, actor="ana", kind=kind))


def logged_model(
    reg: LocalRegistry, run_id: str | None, files: dict[str, bytes] = FILES, *, ready: bool = True
) -> str:
    """A logged model of ``run_id`` holding ``files``, as ``log_model`` leaves it."""
    model = reg.db.write(
        lambda c: logged_models.create(
            c, experiment_id=0, name="model", model_type="", run_id=run_id,
            params={"alpha": "0.5", "depth": "3"}, tags={}, actor="ana",
        )
    )  # fmt: skip
    put_files(reg, model.id, files, kind="logged_model")
    if ready:
        reg.db.write(lambda c: logged_models.finalize(c, model.id, "ready", actor="ana"))
    return model.id


def error(response: Any) -> tuple[int, str, str]:
    body = response.json()
    return response.status_code, body["error_code"], body["message"]


# -- registered models ---------------------------------------------------------------------------


def test_registered_models_through_the_client(any_server: Server) -> None:
    seen = run_client(
        any_server.url,
        """
        from mlflow.entities.model_registry import RegisteredModelTag
        c = MlflowClient()
        m = c.create_registered_model("churn", tags={"team": "ml"}, description="d1")
        out([m.name, m.description, m.tags, m.latest_versions])
        c.create_registered_model("churn-eu", tags={"team": "eu"})
        c.create_registered_model("fraud")
        out(error_of(c.create_registered_model, "churn"))
        out(error_of(c.create_registered_model, "Churn Model"))
        got = c.get_registered_model("churn")
        out([got.name, got.description, got.tags, got.creation_timestamp > 0])
        names = lambda ms: [m.name for m in ms]
        out(names(c.search_registered_models()))
        out(names(c.search_registered_models("name = 'churn'")))
        out(names(c.search_registered_models("name LIKE 'churn%'")))
        out(names(c.search_registered_models("name ILIKE 'CHURN-%'")))
        out(names(c.search_registered_models("tags.team = 'ml'")))
        out(names(c.search_registered_models(order_by=["name DESC"])))
        page = c.search_registered_models(max_results=2)
        rest = c.search_registered_models(max_results=2, page_token=page.token)
        out([names(page), names(rest), rest.token])
        # MLflow's fluent API asks for models that are not prompts
        out(names(mlflow.search_registered_models(filter_string="name='fraud'")))
        c.update_registered_model("churn", description="d2")
        c.set_registered_model_tag("churn", "owner", "ana")
        c.delete_registered_model_tag("churn", "team")
        got = c.get_registered_model("churn")
        out([got.description, got.tags])
        out(error_of(c.rename_registered_model, "churn", "churn2"))
        c.delete_registered_model("fraud")
        out(error_of(c.get_registered_model, "fraud"))
        out(error_of(c.get_registered_model, "Fraud"))
        """,
    )
    assert seen[0] == ["churn", "d1", {"team": "ml"}, []]
    assert seen[1]["code"] == "RESOURCE_ALREADY_EXISTS"
    assert seen[2]["code"] == "INVALID_PARAMETER_VALUE"
    assert "lowercase" in seen[2]["message"]
    assert "'churn-model'" in seen[2]["message"]
    assert seen[3] == ["churn", "d1", {"team": "ml"}, True]
    assert seen[4] == ["churn", "churn-eu", "demo", "fraud"]
    assert seen[5] == ["churn"]
    assert seen[6] == ["churn", "churn-eu"]
    assert seen[7] == ["churn-eu"]
    assert seen[8] == ["churn"]
    assert seen[9] == ["fraud", "demo", "churn-eu", "churn"]
    assert seen[10] == [["churn", "churn-eu"], ["demo", "fraud"], ""]
    assert seen[11] == ["fraud"]
    assert seen[12] == ["d2", {"owner": "ana"}]
    assert seen[13]["code"] == "INVALID_STATE"
    assert "names are stable" in seen[13]["message"]
    assert seen[14]["code"] == "RESOURCE_DOES_NOT_EXIST"
    assert seen[15]["code"] == "RESOURCE_DOES_NOT_EXIST"
    assert "'fraud'" in seen[15]["message"]
    reg = any_server.registry
    assert [m.name for m in reg.models()] == ["churn", "churn-eu", "demo"]
    actions = [(e.action, e.entity) for e in reversed(reg.audit(entity_type="model"))]
    assert actions == [
        ("model.create", "demo"),
        ("model.create", "churn"),
        ("model.create", "churn-eu"),
        ("model.create", "fraud"),
        ("model.describe", "churn"),
        ("model.tag.set", "churn"),
        ("model.tag.delete", "churn"),
        ("model.delete", "fraud"),
    ]


# -- model versions ------------------------------------------------------------------------------


def test_versions_are_made_from_files_the_server_holds(any_server: Server, tmp_path: Path) -> None:
    reg = any_server.registry
    run_id = tracked_run(reg, metrics={"acc": 0.9, "loss": 0.2})
    model_id = logged_model(reg, run_id)
    put_files(reg, run_id, {f"model/{k}": v for k, v in FILES.items()}, kind="run")
    put_files(reg, run_id, {"notes.txt": b"not part of the model"}, kind="run")
    seen = run_client(
        any_server.url,
        f"""
        c = MlflowClient()
        c.create_registered_model("churn")
        v1 = c.create_model_version("churn", "models:/{model_id}", model_id="{model_id}",
                                    tags={{"stage": "candidate"}}, description="first")
        v2 = c.create_model_version("churn", "runs:/{run_id}/model", run_id="{run_id}")
        v3 = c.create_model_version("churn", "mlflow-artifacts:/0/{run_id}/artifacts/model")
        for v in (v1, v2, v3):
            out([v.version, v.status, v.source, v.run_id, v.current_stage, v.tags,
                 v.description])
        got = c.get_model_version("churn", "1")
        out([got.version, got.source, got.user_id, got.creation_timestamp > 0])
        out(c.get_model_version_download_uri("churn", "1"))
        out(c.get_model_version_download_uri("churn", "2"))
        c.update_model_version("churn", "2", description="second")
        c.set_model_version_tag("churn", "2", "reviewed", "yes")
        c.delete_model_version_tag("churn", "1", "stage")
        versions = lambda vs: [v.name + "/" + v.version for v in vs]
        out(versions(c.search_model_versions("name = 'churn'")))
        out(versions(c.search_model_versions(f"run_id = '{run_id}' AND version_number >= 2")))
        out(versions(c.search_model_versions("tags.reviewed = 'yes'")))
        out(versions(c.search_model_versions("name='churn'", order_by=["version_number ASC"])))
        page = c.search_model_versions("name='churn'", max_results=2)
        rest = c.search_model_versions("name='churn'", max_results=2, page_token=page.token)
        out([versions(page), versions(rest)])
        got = c.get_model_version("churn", "2")
        out([got.description, got.tags])
        """,
    )
    source_1 = f"models:/{model_id}"
    assert seen[0] == ["1", "READY", source_1, run_id, "None", {"stage": "candidate"}, "first"]
    assert seen[1] == ["2", "READY", f"runs:/{run_id}/model", run_id, "None", {}, ""]
    assert seen[2][:4] == ["3", "READY", f"mlflow-artifacts:/0/{run_id}/artifacts/model", run_id]
    assert seen[3][:3] == ["1", source_1, "anonymous"]
    assert seen[3][3]
    # loaded from the version's own files, not from the folder they came from
    assert seen[4] == f"mlflow-artifacts:/versions/{reg.get('churn/1').id}"
    assert seen[5] == f"mlflow-artifacts:/versions/{reg.get('churn/2').id}"
    assert seen[6] == ["churn/3", "churn/2", "churn/1"]
    assert seen[7] == ["churn/3", "churn/2"]
    assert seen[8] == ["churn/2"]
    assert seen[9] == ["churn/1", "churn/2", "churn/3"]
    assert seen[10] == [["churn/3", "churn/2"], ["churn/1"]]
    assert seen[11] == ["second", {"reviewed": "yes"}]

    shown = any_server.http.get(f"{API}/model-versions/get", params={"name": "churn", "version": 1})
    assert shown.json()["model_version"]["model_id"] == model_id  # the client reads it not

    # On modelreg's side: ordinary versions, their files verified, their lineage the run's.
    v1, v2, v3 = (reg.get(f"churn/{n}") for n in (1, 2, 3))
    assert {f.path for f in v1.files} == set(FILES)
    assert v1.manifest_digest == v2.manifest_digest == v3.manifest_digest
    assert v1.params == {"alpha": "0.5", "depth": "3"}
    assert v1.metrics == {"acc": 0.9, "loss": 0.2}  # the run's latest values
    assert v1.run_id == v2.run_id == run_id
    assert v1.datasets == [TRAIN]  # the run's, so that retiring the data flags the version
    lineage = v1.lineage
    assert lineage is not None
    assert lineage["run"] is not None
    assert lineage["run"]["id"] == run_id
    assert lineage["code"]["commit"] == GIT_COMMIT
    assert lineage["code"]["repository"] == "https://github.com/acme/churn.git"
    assert lineage["code"]["mlflow_source"] == source_1
    environment = lineage["environment"]
    assert environment["python"] == "3.11.7"
    assert environment["packages"] == {"mlflow": "3.17.2", "scikit-learn": "1.9.1"}
    assert environment["requirements"] == ["mlflow==3.17.2", "scikit-learn==1.9.1", "cloudpickle"]
    assert environment["flavors"] == ["python_function", "sklearn"]
    pulled = reg.pull("churn/2", tmp_path / "pulled")  # each file verified against its digest
    assert {p.name: p.read_bytes() for p in pulled.iterdir() if p.name in FILES} == FILES
    events = [(e.action, e.entity) for e in reversed(reg.audit(limit=1000))]
    for expected in [
        ("model.create", "churn"),
        ("version.create", "churn/1"),
        ("version.create", "churn/2"),
        ("version.describe", "churn/2"),
        ("tag.set", "churn/2"),
        ("tag.delete", "churn/1"),
    ]:
        assert expected in events


# -- aliases and stages --------------------------------------------------------------------------


def test_stages_are_the_aliases_staging_production_and_archived(any_server: Server) -> None:
    reg = any_server.registry
    run_id = tracked_run(reg)
    model_id = logged_model(reg, run_id)
    seen = run_client(
        any_server.url,
        f"""
        c = MlflowClient()
        c.create_registered_model("churn")
        for _ in range(4):
            c.create_model_version("churn", "models:/{model_id}", model_id="{model_id}")
        stage = lambda vs: sorted((v.version, v.current_stage) for v in vs)
        c.set_registered_model_alias("churn", "champion", "2")
        got = c.get_model_version_by_alias("churn", "champion")
        out([got.version, list(got.aliases)])
        out(error_of(c.set_registered_model_alias, "churn", "Champion", "2"))
        c.transition_model_version_stage("churn", "1", "Staging")
        c.transition_model_version_stage("churn", "2", "production")
        out(stage(c.get_latest_versions("churn")))
        out(stage(c.get_latest_versions("churn", stages=["Production"])))
        # v3 takes Production; archive_existing_versions archives v2, which held it
        v = c.transition_model_version_stage("churn", "3", "Production",
                                             archive_existing_versions=True)
        out([v.version, v.current_stage, sorted(v.aliases)])
        out(stage(c.search_model_versions("name='churn'")))
        m = c.get_registered_model("churn")
        out([stage(m.latest_versions), m.aliases])
        c.transition_model_version_stage("churn", "1", "None")
        out(c.get_model_version("churn", "1").current_stage)
        c.delete_registered_model_alias("churn", "champion")
        out(error_of(c.get_model_version_by_alias, "churn", "champion"))
        # a version deleted takes its aliases along, but not a protected one
        out(error_of(c.delete_model_version, "churn", "3"))
        c.delete_model_version("churn", "2")
        out(error_of(c.get_model_version, "churn", "2"))
        out(c.get_model_version_by_alias("churn", "production").version)
        out(stage(c.get_latest_versions("churn")))
        """,
    )
    assert seen[0] == ["2", ["champion"]]
    assert seen[1]["code"] == "INVALID_PARAMETER_VALUE"
    assert "'champion'" in seen[1]["message"]
    assert seen[2] == [["1", "Staging"], ["2", "Production"], ["4", "None"]]
    assert seen[3] == [["2", "Production"]]
    assert seen[4] == ["3", "Production", ["production"]]
    assert seen[5] == [["1", "Staging"], ["2", "Archived"], ["3", "Production"], ["4", "None"]]
    assert seen[6] == [
        [["1", "Staging"], ["2", "Archived"], ["3", "Production"], ["4", "None"]],
        {"archived": "2", "champion": "2", "production": "3", "staging": "1"},
    ]
    assert seen[7] == "None"
    assert seen[8]["code"] == "INVALID_PARAMETER_VALUE"  # as MLflow answers an alias not set
    assert seen[9]["code"] == "INVALID_STATE"
    assert "churn@production" in seen[9]["message"]
    assert seen[10]["code"] == "RESOURCE_DOES_NOT_EXIST"
    assert seen[11] == "3"
    assert seen[12] == [["3", "Production"], ["4", "None"]]
    model = next(m for m in reg.models() if m.name == "churn")
    assert model.aliases == {"production": 3}
    assert [v.ref for v in reg.versions("churn")] == ["churn/4", "churn/3", "churn/1"]
    moves = [(m["version"]) for m in reg.alias_history("churn", "production")]
    assert moves == ["churn/2", "churn/3"]
    deleted = reg.audit(action="version.delete")[0]
    assert deleted.entity == "churn/2"
    assert "MLflow" in deleted.after["reason"]


def test_promotion_gates_hold_production_against_mlflow_clients(any_server: Server) -> None:
    reg = any_server.registry
    model_id = logged_model(reg, tracked_run(reg))
    http = any_server.http
    http.post(f"{API}/registered-models/create", json={"name": "churn"})
    for _ in range(2):
        made = http.post(
            f"{API}/model-versions/create", json={"name": "churn", "source": f"models:/{model_id}"}
        )
        assert made.status_code == 200
    promoted = http.post(
        f"{API}/model-versions/transition-stage",
        json={"name": "churn", "version": "1", "stage": "Production"},
    )
    assert promoted.json()["model_version"]["current_stage"] == "Production"
    reg.set_policy("churn", "production", approvals=1, overrides="forbidden")
    seen = run_client(
        any_server.url,
        """
        c = MlflowClient()
        out(error_of(c.transition_model_version_stage, "churn", "2", "Production",
                     archive_existing_versions=True))
        out(error_of(c.set_registered_model_alias, "churn", "production", "2"))
        out(c.get_model_version("churn", "2").current_stage)
        out(c.get_model_version("churn", "1").current_stage)
        """,
    )
    for refused in seen[:2]:
        assert refused["code"] == "INVALID_STATE"
        assert "churn@production is protected" in refused["message"]
        assert "churn/2 has 0 approvals and the policy needs 1" in refused["message"]
    assert seen[2:] == ["None", "Production"]
    refused = any_server.http.post(
        f"{API}/model-versions/transition-stage",
        json={"name": "churn", "version": "2", "stage": "Production"},
    )
    assert error(refused)[:2] == (400, "INVALID_STATE")
    checks = {c["name"]: c["ok"] for c in refused.json()["checks"]}  # as `alias set` lists them
    assert checks == {"not-data-retired": True, "approvals": False}
    assert reg.get("churn@production").ref == "churn/1"
    assert reg.audit(action="alias.set")[0].after == {"version": "churn/1"}


# -- refusals, over plain HTTP ------------------------------------------------------------------


def test_names_modelreg_cannot_keep_are_refused_with_its_rule(make_server: Any) -> None:
    server = make_server()
    before = state(server)
    for name, hint in [
        ("Churn Model", "use 'churn-model'"),
        ("Churn", "use 'churn'"),
        ("a" * 129, "use 'aaaa"),
        ("0e0d8e5a-5a43-4c1c-9a2e-9a3b2f1d7c11", "form of a UUID"),
    ]:
        status, code, message = error(
            server.http.post(f"{API}/registered-models/create", json={"name": name})
        )
        assert (status, code) == (400, "INVALID_PARAMETER_VALUE"), name
        assert hint in message
    status, code, message = error(server.http.post(f"{API}/registered-models/create", json={}))
    assert (status, code) == (400, "INVALID_PARAMETER_VALUE")
    assert "name" in message
    status, code, message = error(
        server.http.get(f"{API}/registered-models/get", params={"name": "Demo"})
    )
    assert (status, code) == (404, "RESOURCE_DOES_NOT_EXIST")
    assert "did you mean 'demo'" in message
    assert state(server) == before


def test_a_source_this_server_does_not_hold_is_refused(make_server: Any) -> None:
    server = make_server()
    reg = server.registry
    run_id = tracked_run(reg)
    model_id = logged_model(reg, run_id)
    pending = logged_model(reg, run_id, ready=False)
    put_files(reg, run_id, {"model/MLmodel": MLMODEL.encode()}, kind="run")
    other_id = logged_model(reg, tracked_run(reg))
    another_run = tracked_run(reg)
    reg.db.write(lambda c: models.create(c, "churn", description="", tags={}, actor="setup"))
    before = state(server)
    create = lambda **body: server.http.post(f"{API}/model-versions/create", json=body)  # noqa: E731
    for source in [
        "s3://bucket/churn/model",
        "file:///tmp/model",
        "/tmp/model",
        "http://mlflow.example.com/api/2.0/mlflow-artifacts/artifacts/1/abc/artifacts/model",
        "runs:/0123456789abcdef0123456789abcdef/model",  # another server's run
        f"runs:/{run_id}/no-such-folder",
        f"mlflow-artifacts://mlflow.example.com/0/{run_id}/artifacts/model",
        f"mlflow-artifacts:/7/{run_id}/artifacts/model",  # not its experiment
        "models:/m-0123456789abcdef0123456789abcdef",
        "models:/demo/1",
        "dbfs:/databricks/mlflow/model",
    ]:
        status, code, message = error(create(name="churn", source=source))
        assert (status, code) == (400, "INVALID_PARAMETER_VALUE"), source
        assert "holds" in message, source
        assert "modelreg import" in message, source
    refusals = [
        (create(name="churn"), "source is required"),
        (create(name="churn", source=f"runs:/{run_id}/../x"), "'..'"),
        (create(name="churn", source=f"models:/{model_id}", model_id=other_id), "model_id"),
        (create(name="churn", source=f"runs:/{run_id}/model", run_id=another_run), "run_id"),
        (create(name="Churn", source=f"models:/{model_id}"), "use 'churn'"),
    ]
    for response, words in refusals:
        status, code, message = error(response)
        assert (status, code) == (400, "INVALID_PARAMETER_VALUE"), message
        assert words in message
    assert error(create(name="nope", source=f"models:/{model_id}"))[:2] == (
        404,
        "RESOURCE_DOES_NOT_EXIST",
    )
    status, code, message = error(create(name="churn", source=f"models:/{pending}"))
    assert (status, code) == (400, "INVALID_STATE")
    assert "pending" in message
    assert state(server) == before


def test_unknown_versions_bad_searches_and_stages_answer_in_mlflow_shape(
    make_server: Any,
) -> None:
    server = make_server()
    before = state(server)
    get = server.http.get
    cases = [
        (get(f"{API}/model-versions/get", params={"name": "demo", "version": "9"}), 404,
         "RESOURCE_DOES_NOT_EXIST", "demo/9 not found"),
        (get(f"{API}/model-versions/get", params={"name": "nope", "version": "1"}), 404,
         "RESOURCE_DOES_NOT_EXIST", "'nope' not found"),
        (get(f"{API}/model-versions/get", params={"name": "demo", "version": "one"}), 400,
         "INVALID_PARAMETER_VALUE", "version number"),
        (get(f"{API}/model-versions/get-download-uri", params={"name": "demo", "version": "2"}),
         404, "RESOURCE_DOES_NOT_EXIST", "demo/2 not found"),
        (get(f"{API}/registered-models/alias", params={"name": "demo", "alias": "gone"}), 400,
         "INVALID_PARAMETER_VALUE", "demo@gone"),  # MLflow's answer to an alias not set
        (get(f"{API}/model-versions/search", params={"filter": "name='a' OR name='b'"}), 400,
         "INVALID_PARAMETER_VALUE", "AND only"),
        (get(f"{API}/model-versions/search", params={"filter": "source = 'x'"}), 400,
         "INVALID_PARAMETER_VALUE", "searched by name, run_id, version_number"),
        (get(f"{API}/registered-models/search", params={"filter": "name = "}), 400,
         "INVALID_PARAMETER_VALUE", "quoted value"),
        (get(f"{API}/registered-models/search", params={"page_token": "nonsense"}), 400,
         "INVALID_PARAMETER_VALUE", "page_token"),
        (get(f"{API}/registered-models/search", params={"max_results": 5000}), 400,
         "INVALID_PARAMETER_VALUE", "max_results"),
        (get(f"{API}/registered-models/search", params={"order_by": "size"}), 400,
         "INVALID_PARAMETER_VALUE", "order_by"),
        (server.http.post(f"{API}/model-versions/transition-stage",
                          json={"name": "demo", "version": "1", "stage": "Live"}), 400,
         "INVALID_PARAMETER_VALUE", "None, Staging, Production, Archived"),
        (server.http.post(f"{API}/model-versions/transition-stage",
                          json={"name": "demo", "version": "1", "stage": "Archived",
                                "archive_existing_versions": True}), 400,
         "INVALID_PARAMETER_VALUE", "archive_existing_versions"),
        (server.http.request("DELETE", f"{API}/registered-models/delete", json={"name": "demo"}),
         400, "INVALID_STATE", "versions 1 that are not deleted"),
        (server.http.request("DELETE", f"{API}/registered-models/delete-tag",
                             json={"name": "demo", "key": "none"}), 404,
         "RESOURCE_DOES_NOT_EXIST", "no tag 'none'"),
    ]  # fmt: skip
    for response, status, code, words in cases:
        assert response.headers["content-type"] == "application/json"
        assert set(response.json()) == {"error_code", "message"}
        got_status, got_code, message = error(response)
        assert (got_status, got_code) == (status, code), message
        assert words in message
    assert state(server) == before


def test_version_searches_page_by_the_last_version_shown(make_server: Any, tmp_path: Path) -> None:
    """Searches of versions page by the token's sort values: one model's (by name, read in
    its index's order) and all models'; a version registered between pages, which sorts
    first, shifts nothing."""
    server = make_server()
    weights = tmp_path / "m.bin"
    for i in range(5):
        for name in ("paged", "other"):
            weights.write_bytes(f"{name} {i}".encode())
            server.registry.register(name, weights)
    search = f"{API}/model-versions/search"
    # Each time, a version that sorts before the page's last is registered between pages.
    for query, late, expected in [
        ({"filter": "name = 'paged'"}, "paged", [("paged", n) for n in range(5, 0, -1)]),
        (
            {},
            "aaa",
            [("demo", 1)]  # the template's
            + [("other", n) for n in range(5, 0, -1)]
            + [("paged", n) for n in range(6, 0, -1)],
        ),
    ]:
        asked = {**query, "max_results": 2}
        first = server.http.get(search, params=asked).json()
        seen = [(v["name"], int(v["version"])) for v in first["model_versions"]]
        weights.write_bytes(f"late {late}".encode())
        server.registry.register(late, weights)
        token = first["next_page_token"]
        while token:
            page = server.http.get(search, params={**asked, "page_token": token}).json()
            seen += [(v["name"], int(v["version"])) for v in page["model_versions"]]
            token = page.get("next_page_token")
        assert seen == expected  # by offset, the page before's last would come again


def test_a_version_hands_over_its_own_files_whatever_its_folder_holds_later(
    make_server: Any,
) -> None:
    server = make_server()
    reg = server.registry
    run_id = tracked_run(reg)
    put_files(reg, run_id, {f"model/{k}": v for k, v in FILES.items()}, kind="run")
    http = server.http
    http.post(f"{API}/registered-models/create", json={"name": "churn"})
    made = http.post(
        f"{API}/model-versions/create", json={"name": "churn", "source": f"runs:/{run_id}/model"}
    )
    assert made.json()["model_version"]["version"] == "1"
    vid = reg.get("churn/1").id
    uri = http.get(f"{API}/model-versions/get-download-uri", params={"name": "churn", "version": 1})
    assert uri.json() == {"artifact_uri": f"mlflow-artifacts:/versions/{vid}"}
    # the run's folder changes after the version was made: the version's files do not
    put_files(reg, run_id, {"model/extra.txt": b"added later", "model/MLmodel": b"x"}, kind="run")
    listed = http.get(ART, params={"path": f"versions/{vid}"}).json()["files"]
    assert listed == [
        {"path": name, "is_dir": False, "file_size": len(FILES[name])} for name in sorted(FILES)
    ]
    got = http.get(f"{ART}/versions/{vid}/MLmodel")
    assert got.content == FILES["MLmodel"]  # verified against its digest as it is sent
    assert "filename*=UTF-8''MLmodel" in got.headers["content-disposition"]
    presigned = http.get(f"/api/2.0/mlflow-artifacts/presigned/versions/{vid}/MLmodel").json()
    assert presigned["url"].endswith(f"{ART}/versions/{vid}/MLmodel")
    audited = reg.verify_audit().events

    # read-only: a write there is refused, and writes nothing
    for response in (
        http.put(f"{ART}/versions/{vid}/MLmodel", content=b"replaced"),
        http.put(f"{ART}/versions/{vid}/new.txt", content=b"added"),
        http.delete(f"{ART}/versions/{vid}/MLmodel"),
        http.delete(f"{ART}/versions/{vid}/model.skops"),
    ):
        status, code, message = error(response)
        assert (status, code) == (400, "INVALID_STATE"), message
        assert "files of version churn/1 cannot change" in message
    assert reg.verify_audit().events == audited
    assert http.get(f"{ART}/versions/{vid}/MLmodel").content == FILES["MLmodel"]
    for response, status, words in [
        (http.get(f"{ART}/versions/{vid}/missing.txt"), 404, "no artifact file 'missing.txt'"),
        (http.get(ART, params={"path": f"versions/{uuid.uuid4()}"}), 404, "not found"),
        (http.get(f"{ART}/versions/not-a-uuid/MLmodel"), 400, "versions/<version UUID>"),
        (http.get(ART, params={"path": f"versions/{vid}/../x"}), 400, "'..'"),
    ]:
        assert error(response)[0] == status, response.text
        assert words in error(response)[2]

    # a version registered by modelreg's SDK is read the same way
    demo = reg.get("demo/1")
    uri = http.get(f"{API}/model-versions/get-download-uri", params={"name": "demo", "version": 1})
    assert uri.json() == {"artifact_uri": f"mlflow-artifacts:/versions/{demo.id}"}
    (only,) = demo.files
    listed = http.get(ART, params={"path": f"versions/{demo.id}"}).json()["files"]
    assert listed == [{"path": only.path, "is_dir": False, "file_size": only.size}]
    # and a version's files can make another version (as a copy: the same manifest)
    copied = http.post(
        f"{API}/model-versions/create",
        json={"name": "churn", "source": f"mlflow-artifacts:/versions/{demo.id}"},
    ).json()["model_version"]
    assert copied["version"] == "2"
    assert reg.get("churn/2").manifest_digest == demo.manifest_digest

    # a deleted version's files are no longer handed out
    http.request("DELETE", f"{API}/model-versions/delete", json={"name": "churn", "version": "1"})
    status, code, message = error(http.get(ART, params={"path": f"versions/{vid}"}))
    assert (status, code) == (404, "RESOURCE_DOES_NOT_EXIST")
    assert "deleted" in message
    http.request("DELETE", f"{API}/model-versions/delete", json={"name": "churn", "version": "2"})
    status, code, message = error(
        http.request("DELETE", f"{API}/registered-models/delete", json={"name": "churn"})
    )
    assert (status, code) == (400, "INVALID_STATE")
    assert "deleted versions 1" in message
    assert "churn" in [m.name for m in reg.models()]


def test_the_roles_apply_to_the_registry_routes(make_server: Any) -> None:
    server = make_server(auth=True)
    reg = server.registry
    model_id = logged_model(reg, tracked_run(reg))
    tokens = {role: server.token(role, role) for role in ("reader", "writer", "maintainer")}

    def call(role: str, method: str, path: str, body: dict[str, Any]) -> int:
        headers = {"Authorization": f"Bearer {tokens[role]}"}
        if method == "GET":
            return server.http.get(f"{API}/{path}", params=body, headers=headers).status_code
        return server.http.request(method, f"{API}/{path}", json=body, headers=headers).status_code

    version = {"name": "churn", "version": "1"}
    assert call("reader", "POST", "registered-models/create", {"name": "churn"}) == 403
    assert call("writer", "POST", "registered-models/create", {"name": "churn"}) == 200
    source = {"name": "churn", "source": f"models:/{model_id}"}
    assert call("writer", "POST", "model-versions/create", source) == 200
    assert call("reader", "GET", "model-versions/get", version) == 200
    stage = {**version, "stage": "Production"}
    assert call("writer", "POST", "model-versions/transition-stage", stage) == 403
    alias = {"name": "churn", "alias": "production", "version": "1"}
    assert call("writer", "POST", "registered-models/alias", alias) == 403
    assert call("writer", "DELETE", "model-versions/delete", version) == 403
    assert call("maintainer", "POST", "model-versions/transition-stage", stage) == 200
    assert reg.get("churn@production").ref == "churn/1"
    assert reg.audit(action="alias.set")[0].actor == "maintainer"


# -- the whole loop: log, register, promote, load -----------------------------------------------


def test_log_model_registers_a_version_that_loads_by_every_model_uri(
    any_server: Server, tmp_path: Path
) -> None:
    seen = run_client(
        any_server.url,
        """
        import numpy as np
        import mlflow.sklearn
        from sklearn.linear_model import LogisticRegression
        X, y = np.array([[0.0], [1.0], [2.0], [3.0]]), np.array([0, 0, 1, 1])
        mlflow.set_experiment("churn-training")
        with mlflow.start_run() as run:
            mlflow.log_params({"C": 1.0, "solver": "lbfgs"})
            mlflow.log_input(mlflow.data.from_numpy(X, name="churn-train"), context="training")
            model = LogisticRegression().fit(X, y)
            mlflow.log_metric("acc", model.score(X, y))
            info = mlflow.sklearn.log_model(model, name="model", registered_model_name="churn",
                                            input_example=X[:1])
        out(run.info.run_id, info.model_id, info.registered_model_version)
        c = MlflowClient()
        c.set_registered_model_alias("churn", "champion", "1")
        c.transition_model_version_stage("churn", "1", "Production")
        expected = model.predict(X).tolist()
        for uri in ["models:/churn@champion", "models:/churn/1", "models:/churn/latest",
                    "models:/churn/Production", f"models:/{info.model_id}",
                    f"runs:/{run.info.run_id}/model"]:
            out([uri, mlflow.pyfunc.load_model(uri).predict(X).tolist() == expected])
        loaded = mlflow.sklearn.load_model("models:/churn@champion")
        out(loaded.predict(X).tolist() == expected)
        # runs:/RUN/model names the model the run logged (MLflow 3 keeps it apart from the
        # run's own files): resolved by the client, and by the server when sent as a source
        v2 = mlflow.register_model(f"runs:/{run.info.run_id}/model", "churn")
        v3 = c.create_model_version("churn", f"runs:/{run.info.run_id}/model", run.info.run_id)
        out([v2.version, v2.source, v3.version, v3.source])
        out(c.get_model_version_download_uri("churn", "3"))
        """,
    )
    run_id, model_id, number = seen[:3]
    assert str(number) == "1"
    assert seen[3:9] == [[uri, True] for uri in [
        "models:/churn@champion", "models:/churn/1", "models:/churn/latest",
        "models:/churn/Production", f"models:/{model_id}", f"runs:/{run_id}/model",
    ]]  # fmt: skip
    assert seen[9] is True
    assert seen[10] == ["2", f"models:/{model_id}", "3", f"runs:/{run_id}/model"]
    reg = any_server.registry
    assert seen[11] == f"mlflow-artifacts:/versions/{reg.get('churn/3').id}"
    version = reg.get("churn/1")
    assert version.run_id == run_id
    assert version.params == {"C": "1.0", "solver": "lbfgs"}
    assert "MLmodel" in {f.path for f in version.files}
    assert version.aliases == ["champion", "production"]
    lineage = version.lineage
    assert lineage is not None
    assert lineage["run"] is not None
    assert lineage["run"]["id"] == run_id
    assert lineage["environment"]["packages"]["mlflow"].startswith("3.")
    assert [(d["name"], d["role"]) for d in lineage["datasets"]] == [("churn-train", "train")]
    assert lineage["code"]["mlflow_model_id"] == model_id
    assert (version.pull(tmp_path / "pulled") / "MLmodel").is_file()


def test_models_uris_load_the_versions_own_bytes_after_the_logged_model_changes(
    any_server: Server,
) -> None:
    """A logged model's folder stays writable, as in MLflow; a version made from it holds
    its own files, and ``models:/NAME/N`` (by number, alias, latest or stage) loads those."""
    seen = run_client(
        any_server.url,
        """
        import os, tempfile
        import numpy as np
        import mlflow.sklearn
        from sklearn.linear_model import LogisticRegression
        X, y = np.array([[0.0], [1.0], [2.0], [3.0]]), np.array([0, 0, 1, 1])
        mlflow.set_experiment("churn-training")
        with mlflow.start_run():
            original = LogisticRegression().fit(X, y)
            info = mlflow.sklearn.log_model(original, name="model", registered_model_name="churn")
        c = MlflowClient()
        c.set_registered_model_alias("churn", "champion", "1")
        c.transition_model_version_stage("churn", "1", "Production")
        # another model's files written over the logged model's (PUTs to the artifact route)
        flipped = LogisticRegression().fit(X, 1 - y)
        other = os.path.join(tempfile.mkdtemp(), "model")
        mlflow.sklearn.save_model(flipped, other)
        c.log_model_artifacts(info.model_id, other)
        expected = original.predict(X).tolist()
        out(info.model_id, expected, flipped.predict(X).tolist())
        out(mlflow.pyfunc.load_model(f"models:/{info.model_id}").predict(X).tolist())
        for uri in ["models:/churn/1", "models:/churn@champion", "models:/churn/latest",
                    "models:/churn/Production"]:
            out([uri, mlflow.pyfunc.load_model(uri).predict(X).tolist()])
        out(mlflow.sklearn.load_model("models:/churn/1").predict(X).tolist())
        out(c.get_model_version_download_uri("churn", "1"))
        out(sorted(os.listdir(mlflow.artifacts.download_artifacts("models:/churn/1"))))
        """,
    )
    model_id, expected, overwritten, logged, *by_uri = seen[:9]
    assert overwritten != expected  # the two models disagree on every row
    assert logged == overwritten  # the logged model is what was written last, as in MLflow
    assert by_uri[:4] == [
        [uri, expected]
        for uri in ("models:/churn/1", "models:/churn@champion", "models:/churn/latest",
                    "models:/churn/Production")
    ]  # fmt: skip
    assert by_uri[4] == expected
    reg = any_server.registry
    version = reg.get("churn/1")
    assert seen[9] == f"mlflow-artifacts:/versions/{version.id}"
    own = {f.path for f in version.files}
    assert "MLmodel" in own
    assert seen[10] == sorted(own | {"registered_model_meta"})  # the client adds that one
    now_held = reg.db.read(lambda c: artifacts.files(c, model_id))
    assert {(f.path, f.digest) for f in now_held} != {(f.path, f.digest) for f in version.files}

    # A version modelreg's SDK registered loads the same way when it holds an MLflow model
    # (an MLmodel); one without is listed and downloaded, and MLflow says it has no MLmodel.
    reg.commit_version(
        wire.new_version_from_json("churn-sdk", {"files": [f.to_dict() for f in version.files]})
    )
    demo = reg.get("demo/1")
    loaded = run_client(
        any_server.url,
        """
        import os
        import numpy as np
        X = np.array([[0.0], [1.0], [2.0], [3.0]])
        out(mlflow.pyfunc.load_model("models:/churn-sdk/1").predict(X).tolist())
        out(sorted(os.listdir(mlflow.artifacts.download_artifacts("models:/demo/1"))))
        out(error_of(mlflow.pyfunc.load_model, "models:/demo/1"))
        """,
    )
    assert loaded[0] == expected
    assert loaded[1] == [f.path for f in demo.files]
    assert loaded[2]["code"] == "RESOURCE_DOES_NOT_EXIST"
    assert 'Could not find an "MLmodel" configuration file' in loaded[2]["message"]
