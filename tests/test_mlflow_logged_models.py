"""MLflow's logged models on modelreg's server, over HTTP: their MLflow shape, bad fields
refused with nothing written, params kept once, searches paged by the last model shown, and
no deletion while a version made from one is live."""

from __future__ import annotations

import base64
import hashlib
import io
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import sqlite

from modelreg import logged_models, schema
from server_kit import Server, any_server, make_server, registry_template
from test_mlflow_artifacts import API, ART, error, files_of, sdk_run

__all__ = ["any_server", "make_server", "registry_template"]


def create(server: Server, **fields: Any) -> httpx.Response:
    return server.http.post(f"{API}/logged-models", json={"experiment_id": "0", **fields})


def test_a_logged_model_answers_in_mlflows_shape(make_server: Any) -> None:
    server = make_server()
    run = sdk_run(server)
    made = create(
        server,
        name="model",
        source_run_id=run,
        params=[{"key": "alpha", "value": "0.5"}],
        tags=[{"key": "mlflow.user", "value": "root"}],
    ).json()["model"]
    info = made["info"]
    model_id = info["model_id"]
    assert set(info) == {
        "model_id",
        "experiment_id",
        "name",
        "creation_timestamp_ms",
        "last_updated_timestamp_ms",
        "artifact_uri",
        "status",
        "model_type",
        "source_run_id",
        "tags",
    }
    assert info["status"] == "LOGGED_MODEL_PENDING"
    assert info["artifact_uri"] == f"mlflow-artifacts:/0/models/{model_id}/artifacts"
    assert info["tags"] == [{"key": "mlflow.user", "value": "root"}]
    assert made["data"] == {"params": [{"key": "alpha", "value": "0.5"}]}
    assert isinstance(info["creation_timestamp_ms"], int)
    server.http.put(f"{ART}/0/models/{model_id}/artifacts/model/MLmodel", content=b"flavors: {}")
    listing = server.http.get(
        f"{API}/logged-models/{model_id}/artifacts/directories",
        params={"artifact_directory_path": "model"},
    )
    assert listing.json() == {
        "root_uri": info["artifact_uri"],
        "files": [{"path": "model/MLmodel", "is_dir": False, "file_size": 11}],
    }
    finalized = server.http.patch(
        f"{API}/logged-models/{model_id}", json={"model_id": model_id, "status": 2}
    )
    assert finalized.json()["model"]["info"]["status"] == "LOGGED_MODEL_READY"
    outputs = server.http.post(
        f"{API}/runs/outputs", json={"run_id": run, "models": [{"model_id": model_id, "step": 3}]}
    )
    assert outputs.json() == {}
    assert server.registry.db.read(lambda c: logged_models.outputs_of(c, run)) == [(model_id, 3)]


@pytest.mark.parametrize(
    ("fields", "status", "code"),
    [
        ({"name": "a/b"}, 400, "INVALID_PARAMETER_VALUE"),
        ({"name": "v1.0"}, 400, "INVALID_PARAMETER_VALUE"),
        ({"experiment_id": "99"}, 404, "RESOURCE_DOES_NOT_EXIST"),
        ({"experiment_id": "zero"}, 400, "INVALID_PARAMETER_VALUE"),
        ({"source_run_id": "0123456789abcdef0123456789abcdef"}, 404, "RESOURCE_DOES_NOT_EXIST"),
        ({"params": [{"key": "bad key!", "value": "1"}]}, 400, "INVALID_PARAMETER_VALUE"),
        ({"tags": [{"key": "t", "value": "x" * 8001}]}, 400, "INVALID_PARAMETER_VALUE"),
    ],
)
def test_a_logged_model_with_bad_fields_is_refused_and_nothing_is_written(
    make_server: Any, fields: dict[str, Any], status: int, code: str
) -> None:
    server = make_server()
    before = server.registry.verify_audit().events
    assert error(create(server, **fields)) == (status, code)
    assert server.registry.verify_audit().events == before


def test_a_logged_model_keeps_its_params_and_says_what_is_wrong(make_server: Any) -> None:
    server = make_server()
    model_id = create(server, name="m", params=[{"key": "lr", "value": "0.1"}]).json()["model"][
        "info"
    ]["model_id"]
    url = f"{API}/logged-models/{model_id}"
    same = server.http.post(f"{url}/params", json={"params": [{"key": "lr", "value": "0.1"}]})
    assert same.json() == {}
    other = server.http.post(f"{url}/params", json={"params": [{"key": "lr", "value": "0.2"}]})
    assert error(other) == (400, "INVALID_STATE")
    bad_status = server.http.patch(url, json={"status": "LOGGED_MODEL_PENDING"})
    assert error(bad_status) == (400, "INVALID_PARAMETER_VALUE")
    no_tag = server.http.delete(f"{url}/tags/missing")
    assert error(no_tag) == (404, "RESOURCE_DOES_NOT_EXIST")
    bad_filter = server.http.post(
        f"{API}/logged-models/search", json={"experiment_ids": ["0"], "filter": "colour = 'red'"}
    )
    assert error(bad_filter) == (400, "INVALID_PARAMETER_VALUE")
    bad_order = server.http.post(
        f"{API}/logged-models/search",
        json={"experiment_ids": ["0"], "order_by": [{"field_name": "params.lr"}]},
    )
    assert error(bad_order) == (400, "INVALID_PARAMETER_VALUE")


def test_logged_models_page_by_the_last_one_shown_with_a_filter_tested_in_python(
    make_server: Any,
) -> None:
    """A page token carries the last model's sort values; the filter on params (tested in
    Python, over the ordered rows) still holds across pages, and a model created meanwhile
    that sorts first shifts nothing."""
    server = make_server()
    for i in range(7):
        params = [{"key": "keep", "value": "yes" if i % 2 == 0 else "no"}]
        create(server, name=f"m-{i}", params=params)
    body = {
        "experiment_ids": ["0"],
        "filter": "params.keep = 'yes'",
        "order_by": [{"field_name": "name", "ascending": True}],
        "max_results": 2,
    }
    search = f"{API}/logged-models/search"
    first = server.http.post(search, json=body).json()
    names = [m["info"]["name"] for m in first["models"]]
    create(server, name="a-early", params=[{"key": "keep", "value": "yes"}])
    token = first["next_page_token"]
    while token:
        page = server.http.post(search, json={**body, "page_token": token}).json()
        names += [m["info"]["name"] for m in page["models"]]
        token = page.get("next_page_token")
    assert names == ["m-0", "m-2", "m-4", "m-6"]
    forged = base64.urlsafe_b64encode(b'{"offset": 0, "after": [0, 5, "x", "y"]}').decode()
    refused = server.http.post(search, json={**body, "page_token": forged})
    assert error(refused) == (400, "INVALID_PARAMETER_VALUE")


def test_a_logged_model_a_version_was_registered_from_cannot_be_deleted(
    make_server: Any,
) -> None:
    server = make_server()
    kept = create(server, name="kept").json()["model"]["info"]["model_id"]
    free = create(server, name="free").json()["model"]["info"]["model_id"]
    server.http.put(f"{ART}/0/models/{free}/artifacts/MLmodel", content=b"flavors: {}")
    # A version whose code facts name the logged model, as the registry records them.
    reg = server.registry
    digest = hashlib.sha256(b"w").hexdigest()
    reg.blobs.put(io.BytesIO(b"w"), digest=digest)
    from modelreg import wire

    draft = wire.new_version_from_json(
        "churn",
        {
            "files": [{"path": "w", "digest": digest, "size": 1}],
            "code": {"mlflow_model_id": kept, "mlflow_source": f"models:/{kept}"},
        },
    )
    reg.commit_version(draft)
    info = server.http.get(f"{API}/logged-models/{kept}").json()["model"]["info"]
    assert info["registrations"] == [{"name": "churn", "version": "1"}]
    refused = server.http.delete(f"{API}/logged-models/{kept}")
    assert error(refused) == (400, "INVALID_STATE")
    assert "churn/1" in refused.json()["message"]
    assert server.http.delete(f"{API}/logged-models/{free}").json() == {}
    assert error(server.http.get(f"{API}/logged-models/{free}")) == (404, "RESOURCE_DOES_NOT_EXIST")
    assert files_of(server, free) == {}
    assert server.registry.audit(action="logged_model.delete")[0].before["file_count"] == 1


def test_a_logged_models_registrations_are_found_by_index(make_server: Any) -> None:
    """Each version registered from a logged model is linked to it in the transaction that
    makes the version, so reading a logged model looks its versions up by index instead of
    reading every version's code facts."""
    server = make_server()
    reg = server.registry
    a, b = (create(server, name=n).json()["model"]["info"]["model_id"] for n in ("a", "b"))
    digest = hashlib.sha256(b"w").hexdigest()
    reg.blobs.put(io.BytesIO(b"w"), digest=digest)
    from modelreg import wire

    def register(name: str, code: dict[str, str]) -> str:
        files = [{"path": "w", "digest": digest, "size": 1}]
        return reg.commit_version(
            wire.new_version_from_json(name, {"files": files, "code": code})
        ).id

    made = {
        register("churn", {"mlflow_model_id": a, "mlflow_source": f"models:/{a}"}): a,
        register("churn", {"mlflow_model_id": b}): b,
        register("other", {"mlflow_model_id": a}): a,
    }
    register("churn", {"mlflow_source": f"models:/{a}", "note": a})  # names it, not made from it
    register("churn", {"mlflow_model_id": "not-a-logged-model-id"})
    reg.delete_version("other/1", reason="superseded")
    links = reg.db.read(
        lambda c: c.execute(
            sa.select(
                schema.version_logged_models.c.version_id, schema.version_logged_models.c.model_id
            )
        ).all()
    )
    assert dict(links) == made  # a deleted version keeps its record, and its link
    registrations = {
        m: server.http.get(f"{API}/logged-models/{m}").json()["model"]["info"]["registrations"]
        for m in (a, b)
    }
    assert registrations == {
        a: [{"name": "churn", "version": "1"}],
        b: [{"name": "churn", "version": "2"}],
    }
    searched = server.http.post(f"{API}/logged-models/search", json={"experiment_ids": ["0"]})
    assert {
        m["info"]["model_id"]: m["info"]["registrations"] for m in searched.json()["models"]
    } == registrations

    query = logged_models.registrations_query([a, b])
    statement = str(query.compile(dialect=sqlite.dialect(), compile_kwargs={"literal_binds": True}))
    plan = " | ".join(
        str(row[-1])
        for row in reg.db.read(lambda c: c.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}").all())
    )
    assert "ix_version_logged_models_model_id" in plan, plan
    assert "SCAN versions" not in plan, plan
