"""MLflow's artifact store and logged models on modelreg's server, through the real MLflow
client: the files of runs and logged models are blobs of the one store (deduplicated and
verified), named by path, each write audited; large files on S3 travel straight to and from
the bucket without the server holding bytes under a digest they do not match.

The client tests run on SQLite + a blob directory and on PostgreSQL + S3 (SeaweedFS); the
direct HTTP tests check bad input, MLflow's error shape, and that a refusal writes nothing.
"""

from __future__ import annotations

import hashlib
from typing import Any

import httpx
import pytest

from mlflow_kit import run_client
from modelreg import capture, logged_models
from modelreg.s3 import S3BlobStore
from modelreg.server.mlflow import artifacts as artifact_routes
from server_kit import Server, any_server, make_server, overwrite_blob, registry_template

__all__ = ["any_server", "make_server", "registry_template"]

ART = "/api/2.0/mlflow-artifacts/artifacts"
API = "/api/2.0/mlflow"


# -- helpers -------------------------------------------------------------------------------------


def sdk_run(server: Server) -> str:
    """A run made by modelreg's own SDK (experiment 0): MLflow clients see it too."""
    return server.registry.open_run(
        name="sdk", params={}, code={}, environment={}, facts=capture.process_facts()
    )


def files_of(server: Server, owner: str) -> dict[str, tuple[str, int]]:
    """{path: (digest, size)} of an owner's artifact files, read from the store."""
    rows = server.registry.db.read(
        lambda conn: conn.exec_driver_sql(
            "SELECT path, digest, size FROM artifact_files WHERE owner_id = ?"
            if server.registry.db.dialect == "sqlite"
            else "SELECT path, digest, size FROM artifact_files WHERE owner_id = %s",
            (owner,),
        ).all()
    )
    return {r.path: (r.digest, r.size) for r in rows}


def blobs(server: Server) -> set[str]:
    return set(server.registry.blobs)


def actions(server: Server, entity_type: str) -> list[str]:
    return [e.action for e in server.registry.audit(entity_type=entity_type, limit=1000)]


def nothing_changed(server: Server) -> dict[str, Any]:
    """What a refused request must leave as it was."""
    reg = server.registry
    return {
        "files": reg.db.read(
            lambda conn: conn.exec_driver_sql("SELECT owner_id, path FROM artifact_files").all()
        ),
        "blobs": blobs(server),
        "audit": reg.verify_audit().events,
    }


def error(response: httpx.Response) -> tuple[int, str]:
    return response.status_code, response.json()["error_code"]


# -- runs' files through the client --------------------------------------------------------------


def test_a_run_logs_files_and_folders_and_the_client_reads_them_back(any_server: Server) -> None:
    server = any_server
    seen = run_client(
        server.url,
        """
        import pathlib, tempfile
        client = MlflowClient()
        work = pathlib.Path(tempfile.mkdtemp())
        (work / "notes.txt").write_text("hello")
        data = work / "data"
        (data / "deep").mkdir(parents=True)
        (data / "a.csv").write_text("x,y\\n1,2\\n")
        (data / "deep" / "b.bin").write_bytes(bytes(range(256)) * 10)
        mlflow.set_experiment("artifacts")
        with mlflow.start_run() as run:
            mlflow.log_artifact(str(work / "notes.txt"))
            mlflow.log_artifacts(str(data), "data")
            mlflow.log_text("same bytes", "one.txt")
        run_id = run.info.run_id
        # A finished run still takes artifacts, as MLflow's do.
        client.log_text(run_id, "same bytes", "again/two.txt")
        out(run_id, run.info.experiment_id)
        out([(f.path, f.is_dir, f.file_size) for f in client.list_artifacts(run_id)])
        out([(f.path, f.is_dir, f.file_size) for f in client.list_artifacts(run_id, "data")])
        folder = client.download_artifacts(run_id, "data", tempfile.mkdtemp())
        out(sorted(str(p.relative_to(folder)) for p in pathlib.Path(folder).rglob("*")))
        out((pathlib.Path(folder) / "deep" / "b.bin").read_bytes() == bytes(range(256)) * 10)
        single = mlflow.artifacts.download_artifacts(f"runs:/{run_id}/notes.txt")
        out(pathlib.Path(single).read_text())
        whole = mlflow.artifacts.download_artifacts(run_id=run_id, dst_path=tempfile.mkdtemp())
        files = [p for p in pathlib.Path(whole).rglob("*") if p.is_file()]
        out(sorted(str(p.relative_to(whole)) for p in files))
        out(mlflow.artifacts.load_text(f"runs:/{run_id}/again/two.txt"))
        out(error_of(client.download_artifacts, run_id, "missing.txt", tempfile.mkdtemp()))
        """,
    )
    run_id, experiment, root, data, folder, same, text, whole, loaded, missing = seen
    assert root == [
        ["again", True, None],
        ["data", True, None],
        ["notes.txt", False, 5],
        ["one.txt", False, 10],
    ]
    assert data == [["data/a.csv", False, 8], ["data/deep", True, None]]
    assert folder == ["a.csv", "deep", "deep/b.bin"]
    assert same is True
    assert text == "hello"
    assert whole == ["again/two.txt", "data/a.csv", "data/deep/b.bin", "notes.txt", "one.txt"]
    assert loaded == "same bytes"
    assert "missing.txt" in missing["message"]
    answer = server.http.get(f"{ART}/{experiment}/{run_id}/artifacts/missing.txt")
    assert error(answer) == (404, "RESOURCE_DOES_NOT_EXIST")  # what runs:/ falls back on
    # The store: one row per file, the same bytes twice are one blob, every write audited.
    stored = files_of(server, run_id)
    assert sorted(stored) == whole
    assert stored["one.txt"] == stored["again/two.txt"]
    digest = hashlib.sha256(b"same bytes").hexdigest()
    assert digest in blobs(server)
    assert actions(server, "run").count("artifact.put") == 5
    listing = server.http.get(ART, params={"path": f"{experiment}/{run_id}/artifacts/data"})
    assert listing.json() == {
        "files": [
            {"path": "a.csv", "is_dir": False, "file_size": 8},
            {"path": "deep", "is_dir": True},
        ]
    }
    tracking = server.http.get(f"{API}/artifacts/list", params={"run_id": run_id, "path": "data"})
    assert tracking.json() == {
        "root_uri": f"mlflow-artifacts:/{experiment}/{run_id}/artifacts",
        "files": [
            {"path": "data/a.csv", "is_dir": False, "file_size": 8},
            {"path": "data/deep", "is_dir": True},
        ],
    }


def test_the_same_bytes_logged_twice_are_stored_once(any_server: Server) -> None:
    server = any_server
    run = sdk_run(server)
    payload = b"shared weights " * 1000
    before = blobs(server)
    for path in ("a/weights.bin", "b/weights.bin", "a/weights.bin"):
        assert server.http.put(f"{ART}/0/{run}/artifacts/{path}", content=payload).json() == {}
    assert blobs(server) - before == {hashlib.sha256(payload).hexdigest()}
    assert actions(server, "run").count("artifact.put") == 2  # the third wrote nothing


def test_a_damaged_blob_is_never_served_as_valid(any_server: Server) -> None:
    server = any_server
    run = sdk_run(server)
    small, large = b"x" * 1000, bytes(range(256)) * 8192  # 2 MiB: streamed, cut at the end
    for name, data in (("small.bin", small), ("large.bin", large)):
        server.http.put(f"{ART}/0/{run}/artifacts/{name}", content=data)
        overwrite_blob(
            server.registry, hashlib.sha256(data).hexdigest(), data[:-1] + bytes([data[-1] ^ 1])
        )
    answer = server.http.get(f"{ART}/0/{run}/artifacts/small.bin")
    assert error(answer) == (500, "INTERNAL_ERROR")
    assert "does not match its digest" in answer.json()["message"]
    with (
        pytest.raises(httpx.RemoteProtocolError),
        server.http.stream("GET", f"{ART}/0/{run}/artifacts/large.bin") as streamed,
    ):
        streamed.read()
    seen = run_client(
        server.url,
        f"""
        import tempfile
        repo = mlflow.store.artifact.artifact_repository_registry.get_artifact_repository(
            "mlflow-artifacts:/0/{run}/artifacts")
        for name in ("small.bin", "large.bin"):
            out(error_of(repo.download_artifacts, name, tempfile.mkdtemp()) is not None)
        """,
    )
    assert seen == [True, True]


# -- logged models through the client -------------------------------------------------------------


def test_log_model_makes_a_ready_logged_model_that_loads_back(any_server: Server) -> None:
    server = any_server
    seen = run_client(
        server.url,
        """
        import numpy as np
        from sklearn.linear_model import LogisticRegression
        X = np.array([[0.0], [1.0], [2.0], [3.0]]); y = np.array([0, 0, 1, 1])
        model = LogisticRegression().fit(X, y)
        mlflow.set_experiment("logged")
        with mlflow.start_run() as run:
            mlflow.log_param("C", "1.0")
            info = mlflow.sklearn.log_model(model, name="model", input_example=X[:2])
        got = mlflow.get_logged_model(info.model_id)
        out(info.model_id, run.info.run_id, run.info.experiment_id, str(got.status))
        out([got.name, got.source_run_id, got.params, got.artifact_location])
        out(sorted(f.path for f in MlflowClient().list_logged_model_artifacts(info.model_id)))
        found = mlflow.search_logged_models(
            filter_string="name = 'model' AND params.C = '1.0'", output_format="list")
        out([m.model_id for m in found])
        by_id = mlflow.sklearn.load_model(f"models:/{info.model_id}")
        by_run = mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/model")
        out([by_id.predict(X).tolist(), by_run.predict(X).tolist()])
        """,
    )
    model_id, run_id, experiment, status, described, files, found, (by_id, by_run) = seen
    name, source, params, location = described
    assert model_id.startswith("m-")
    assert status == "READY"
    assert (name, source) == ("model", run_id)
    assert params["C"] == "1.0"
    assert location == f"mlflow-artifacts:/{experiment}/models/{model_id}/artifacts"
    assert {"MLmodel", "requirements.txt", "python_env.yaml"} <= set(files)
    assert found == [model_id]
    assert by_id == by_run == [0, 0, 1, 1]
    model = server.registry.db.read(lambda conn: logged_models.get(conn, model_id))
    assert model.status == "ready"
    assert {"MLmodel", "requirements.txt"} <= set(files_of(server, model_id))
    assert {"logged_model.create", "logged_model.finalize", "artifact.put"} <= set(
        actions(server, "logged_model")
    )
    assert server.registry.db.read(lambda c: logged_models.outputs_of(c, run_id)) == [(model_id, 0)]


def test_logged_models_are_initialized_finalized_tagged_and_searched(any_server: Server) -> None:
    seen = run_client(
        any_server.url,
        """
        from mlflow.entities import LoggedModelStatus
        client = MlflowClient()
        first = mlflow.initialize_logged_model(
            name="alpha", params={"lr": "0.1"}, tags={"team": "ml"}, model_type="agent")
        second = mlflow.initialize_logged_model(name="beta", params={"lr": "0.2"})
        out(str(first.status), first.experiment_id, first.model_type)
        done = mlflow.finalize_logged_model(first.model_id, LoggedModelStatus.READY)
        out(str(done.status))
        mlflow.set_logged_model_tags(first.model_id, {"stage": "candidate", "team": "ai"})
        mlflow.delete_logged_model_tag(first.model_id, "stage")
        out(mlflow.get_logged_model(first.model_id).tags)
        def names(**kwargs):
            return [m.name for m in mlflow.search_logged_models(output_format="list", **kwargs)]
        out(names())
        out(names(filter_string="params.lr = '0.2'"))
        out(names(filter_string="tags.team LIKE 'a%'"))
        out(names(filter_string="status = 'READY'"))
        out(names(filter_string="name IN ('alpha', 'gamma')"))
        out(names(filter_string=f"creation_timestamp >= {first.creation_timestamp}"))
        out(names(order_by=[{"field_name": "name", "ascending": True}]))
        page = client.search_logged_models(experiment_ids=["0"], max_results=1)
        rest = client.search_logged_models(
            experiment_ids=["0"], max_results=1, page_token=page.token)
        out([m.name for m in page], [m.name for m in rest], rest.token)
        out(error_of(mlflow.search_logged_models, filter_string="name = 'a' OR name = 'b'"))
        out(error_of(mlflow.get_logged_model, "m-" + "0" * 32))
        out(error_of(mlflow.finalize_logged_model, second.model_id, LoggedModelStatus.PENDING))
        """,
    )
    status, experiment, model_type = seen[0:3]
    assert (status, experiment, model_type) == ("PENDING", "0", "agent")
    assert seen[3] == "READY"
    assert {k: v for k, v in seen[4].items() if not k.startswith("mlflow.")} == {"team": "ai"}
    assert seen[5] == ["beta", "alpha"]  # newest first
    assert seen[6:10] == [["beta"], ["alpha"], ["alpha"], ["alpha"]]
    assert seen[10] == ["beta", "alpha"]
    assert seen[11] == ["alpha", "beta"]
    assert seen[12:15] == [["beta"], ["alpha"], None]
    assert seen[15]["code"] == "INVALID_PARAMETER_VALUE"
    assert "AND only" in seen[15]["message"]
    assert seen[16]["code"] == "RESOURCE_DOES_NOT_EXIST"
    assert seen[17]["code"] == "INVALID_PARAMETER_VALUE"


# -- large files on S3 -----------------------------------------------------------------------------


def test_server_info_offers_multipart_transfers_only_on_s3(any_server: Server) -> None:
    info = any_server.http.get("/api/3.0/mlflow/server-info").json()
    on_s3 = isinstance(any_server.registry.blobs.inner, S3BlobStore)
    assert info["multipart_uploads_enabled"] is on_s3
    assert info["multipart_downloads_enabled"] is on_s3


# Small thresholds so that a 12 MiB file takes the multipart paths in a few seconds.
MULTIPART_ENV = {
    "MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE": str(1 << 20),
    "MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE": str(5 << 20),
    "MLFLOW_MULTIPART_DOWNLOAD_CHUNK_SIZE": str(4 << 20),
}


def test_a_large_file_goes_straight_to_and_from_the_bucket(
    any_server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On S3 the client uploads the parts to the bucket and downloads from a presigned URL;
    the server hashes what arrived before storing it under its digest. On a directory it
    sends the file whole, as to MLflow's own server without multipart."""
    server = any_server
    monkeypatch.setattr(artifact_routes, "PRESIGN_AT", 1 << 20)
    run = sdk_run(server)
    seen = run_client(
        server.url,
        f"""
        import hashlib, os, pathlib, tempfile
        repo = mlflow.store.artifact.artifact_repository_registry.get_artifact_repository(
            "mlflow-artifacts:/0/{run}/artifacts")
        work = pathlib.Path(tempfile.mkdtemp())
        data = os.urandom(12 << 20) + b"end"
        (work / "big.bin").write_bytes(data)
        repo.log_artifact(str(work / "big.bin"), "weights")
        got = repo.download_artifacts("weights/big.bin", tempfile.mkdtemp())
        back = pathlib.Path(got).read_bytes()
        out(hashlib.sha256(data).hexdigest(), hashlib.sha256(back).hexdigest())
        """,
        env=MULTIPART_ENV,
    )
    sent, received = seen
    assert received == sent
    assert files_of(server, run) == {"weights/big.bin": (sent, (12 << 20) + 3)}
    on_s3 = isinstance(server.registry.blobs.inner, S3BlobStore)
    direct = server.http.get(f"{ART}/0/{run}/artifacts/weights/big.bin")
    if not on_s3:
        assert direct.status_code == 200
        return
    store = server.registry.blobs.inner
    assert isinstance(store, S3BlobStore)
    staged = store.client.list_objects_v2(Bucket=store.bucket, Prefix=store._staging)
    assert staged.get("KeyCount", 0) == 0  # the staged upload was removed
    assert direct.status_code == 302
    assert store.key(sent) in direct.headers["location"]
    presigned = server.http.get(
        f"/api/2.0/mlflow-artifacts/presigned/0/{run}/artifacts/weights/big.bin"
    )
    assert presigned.json()["file_size"] == (12 << 20) + 3


@pytest.mark.parametrize("any_server", ["postgres_s3"], indirect=True)  # only S3 redirects
def test_a_large_file_the_server_found_damaged_is_not_redirected(
    any_server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = any_server
    assert isinstance(server.registry.blobs.inner, S3BlobStore)
    monkeypatch.setattr(artifact_routes, "PRESIGN_AT", 1 << 20)
    run = sdk_run(server)
    data = bytes(range(256)) * 8192
    digest = hashlib.sha256(data).hexdigest()
    server.http.put(f"{ART}/0/{run}/artifacts/w.bin", content=data)
    overwrite_blob(server.registry, digest, data[:-1] + b"\x00")
    server.app.state.modelreg.corrupt_blobs.add(digest)  # as a verified download finds it
    answer = server.http.get(f"{ART}/0/{run}/artifacts/w.bin")
    assert error(answer) == (500, "INTERNAL_ERROR")
    presigned = server.http.get(f"/api/2.0/mlflow-artifacts/presigned/0/{run}/artifacts/w.bin")
    assert "file_size" not in presigned.json()  # the client then uses the verified download


@pytest.mark.parametrize("any_server", ["postgres_s3"], indirect=True)
def test_a_multipart_upload_is_refused_unless_its_parts_make_it(any_server: Server) -> None:
    server = any_server
    run = sdk_run(server)
    mpu = f"/api/2.0/mlflow-artifacts/mpu/{{}}/0/{run}/artifacts"
    made = server.http.post(mpu.format("create"), json={"path": "/tmp/w.bin", "num_parts": 2})
    upload_id = made.json()["upload_id"]
    assert [c["part_number"] for c in made.json()["credentials"]] == [1, 2]
    part = httpx.put(made.json()["credentials"][0]["url"], content=b"x" * 100)
    before = nothing_changed(server)
    wrong = [{"part_number": 1, "etag": '"0123"'}]
    answer = server.http.post(
        mpu.format("complete"), json={"path": "w.bin", "upload_id": upload_id, "parts": wrong}
    )
    assert error(answer) == (400, "INVALID_PARAMETER_VALUE")
    assert "s3://" not in answer.json()["message"]  # the bucket stays the server's business
    unknown = server.http.post(
        mpu.format("complete"),
        json={"path": "w.bin", "upload_id": "0" * 32 + ".nope", "parts": wrong},
    )
    assert error(unknown) == (404, "RESOURCE_DOES_NOT_EXIST")
    assert nothing_changed(server) == before
    parts = [{"part_number": 1, "etag": part.headers["etag"]}]
    done = server.http.post(
        mpu.format("complete"), json={"path": "w.bin", "upload_id": upload_id, "parts": parts}
    )
    assert done.json() == {}
    assert files_of(server, run) == {"w.bin": (hashlib.sha256(b"x" * 100).hexdigest(), 100)}
    other = server.http.post(mpu.format("create"), json={"path": "v.bin"}).json()["upload_id"]
    abort = {"path": "v.bin", "upload_id": other}
    assert server.http.post(mpu.format("abort"), json=abort).json() == {}
    late = server.http.post(mpu.format("complete"), json={**abort, "parts": parts})
    assert error(late) == (404, "RESOURCE_DOES_NOT_EXIST")


@pytest.mark.parametrize("any_server", ["postgres_s3"], indirect=True)
def test_gc_removes_staged_uploads_a_client_left(any_server: Server) -> None:
    store = any_server.registry.blobs.inner
    assert isinstance(store, S3BlobStore)
    store.start_staged_upload(2)  # never completed nor aborted
    store.client.put_object(Bucket=store.bucket, Key=store._staging + "f" * 32, Body=b"x")
    assert store.remove_stale_temporaries(0) == 2
    staged = store.client.list_objects_v2(Bucket=store.bucket, Prefix=store._staging)
    assert staged.get("KeyCount", 0) == 0
    uploads = store.client.list_multipart_uploads(Bucket=store.bucket, Prefix=store._staging)
    assert uploads.get("Uploads", []) == []


@pytest.mark.slow
@pytest.mark.parametrize("any_server", ["postgres_s3"], indirect=True)
def test_a_600_mib_artifact_through_multipart_upload_and_presigned_download(
    any_server: Server,
) -> None:
    """MLflow's own thresholds (500 MiB): 60 parts of 10 MiB up, 100 MiB ranges down."""
    server = any_server
    seen = run_client(
        server.url,
        """
        import hashlib, os, pathlib, tempfile
        work = pathlib.Path(tempfile.mkdtemp())
        digest = hashlib.sha256()
        with open(work / "huge.bin", "wb") as f:
            for _ in range(600):
                block = os.urandom(1 << 20)
                digest.update(block)
                f.write(block)
        with mlflow.start_run() as run:
            mlflow.log_artifact(str(work / "huge.bin"))
        repo = mlflow.store.artifact.artifact_repository_registry.get_artifact_repository(
            run.info.artifact_uri)
        multipart = repo._should_multipart_upload(str(work / "huge.bin"))
        (work / "huge.bin").unlink()
        got = mlflow.artifacts.download_artifacts(f"runs:/{run.info.run_id}/huge.bin")
        check = hashlib.sha256()
        with open(got, "rb") as f:
            while block := f.read(1 << 20):
                check.update(block)
        presigned = repo._get_presigned_download_url("huge.bin")
        out(run.info.run_id, digest.hexdigest(), check.hexdigest(), multipart)
        out(presigned.file_size, presigned.url.startswith(mlflow.get_tracking_uri()))
        """,
        timeout=900,
    )
    run_id, sent, received, multipart, size, through_server = seen
    assert multipart is True  # the client sent it in parts, straight to the bucket
    assert (size, through_server) == (600 << 20, False)  # and fetched it from there
    assert received == sent
    assert files_of(server, run_id) == {"huge.bin": (sent, 600 << 20)}
    assert server.registry.blobs.size(sent) == 600 << 20


# -- bad input, over HTTP --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        ("0/{run}/artifacts/%2E%2E/escape.txt", 400, "INVALID_PARAMETER_VALUE"),
        ("0/{run}/artifacts/a/%2E%2E/%2E%2E/escape.txt", 400, "INVALID_PARAMETER_VALUE"),
        ("0/{run}/artifacts//etc/passwd", 400, "INVALID_PARAMETER_VALUE"),
        ("0/{run}/artifacts/a//b.txt", 400, "INVALID_PARAMETER_VALUE"),
        ("0/{run}/artifacts/", 400, "INVALID_PARAMETER_VALUE"),
        ("0/{run}/elsewhere/a.txt", 400, "INVALID_PARAMETER_VALUE"),
        ("x/{run}/artifacts/a.txt", 400, "INVALID_PARAMETER_VALUE"),
        ("0/{run}/artifacts/a\\b.txt", 400, "INVALID_PARAMETER_VALUE"),
        ("0/0123456789abcdef0123456789abcdef/artifacts/a.txt", 404, "RESOURCE_DOES_NOT_EXIST"),
        ("7/{run}/artifacts/a.txt", 404, "RESOURCE_DOES_NOT_EXIST"),
        ("0/models/m-0123456789abcdef0123456789abcdef/artifacts/a", 404, "RESOURCE_DOES_NOT_EXIST"),
        ("0/models/not-a-model/artifacts/a", 400, "INVALID_PARAMETER_VALUE"),
    ],
)
def test_an_upload_to_a_bad_place_is_refused_and_writes_nothing(
    make_server: Any, path: str, status: int, code: str
) -> None:
    server = make_server()
    run = sdk_run(server)
    before = nothing_changed(server)
    answer = server.http.put(f"{ART}/{path.format(run=run)}", content=b"payload")
    assert error(answer) == (status, code)
    assert answer.json()["message"]
    assert nothing_changed(server) == before


def test_a_run_of_modelregs_sdk_takes_files_only_while_it_runs(make_server: Any) -> None:
    server = make_server()
    run = sdk_run(server)
    assert server.http.put(f"{ART}/0/{run}/artifacts/a.txt", content=b"1").status_code == 200
    server.registry.close_run(run, status="finished")
    before = nothing_changed(server)
    answer = server.http.put(f"{ART}/0/{run}/artifacts/b.txt", content=b"2")
    assert error(answer) == (400, "INVALID_STATE")
    assert "has ended" in answer.json()["message"]
    assert nothing_changed(server) == before
    assert server.http.get(f"{ART}/0/{run}/artifacts/a.txt").content == b"1"


def test_a_file_cannot_take_the_place_of_a_folder_nor_a_folder_of_a_file(make_server: Any) -> None:
    server = make_server()
    run = sdk_run(server)
    assert server.http.put(f"{ART}/0/{run}/artifacts/a/b.txt", content=b"1").status_code == 200
    before = nothing_changed(server)
    for path in ("a", "a/b.txt/c.txt"):
        answer = server.http.put(f"{ART}/0/{run}/artifacts/{path}", content=b"2")
        assert error(answer) == (400, "INVALID_PARAMETER_VALUE")
    assert nothing_changed(server)["files"] == before["files"]


def test_reads_of_missing_places_answer_404_in_mlflows_shape(make_server: Any) -> None:
    server = make_server()
    run = sdk_run(server)
    server.http.put(f"{ART}/0/{run}/artifacts/dir/f.txt", content=b"1")
    for answer in (
        server.http.get(f"{ART}/0/{run}/artifacts/nothing.txt"),
        server.http.get(f"{ART}/0/{run}/artifacts/dir"),  # a folder is listed, not fetched
        server.http.get(ART, params={"path": "0/0123456789abcdef0123456789abcdef/artifacts"}),
        server.http.get(f"{API}/artifacts/list", params={"run_id": "nope"}),
        server.http.get(f"{API}/logged-models/m-0123456789abcdef0123456789abcdef"),
        server.http.get(f"/api/2.0/mlflow-artifacts/presigned/0/{run}/artifacts/nothing.txt"),
    ):
        assert error(answer) == (404, "RESOURCE_DOES_NOT_EXIST")
    listing = server.http.get(ART, params={"path": f"0/{run}/artifacts/nothing"})
    assert listing.json() == {"files": []}  # as MLflow: an empty folder, or a file, lists empty
    assert error(server.http.get(ART)) == (400, "INVALID_PARAMETER_VALUE")


def test_deleting_files_and_folders_is_audited_and_keeps_the_blobs(make_server: Any) -> None:
    server = make_server()
    run = sdk_run(server)
    for path in ("keep.txt", "dir/a.txt", "dir/sub/b.txt"):
        server.http.put(f"{ART}/0/{run}/artifacts/{path}", content=path.encode())
    held = blobs(server)
    assert server.http.delete(f"{ART}/0/{run}/artifacts/dir").json() == {}
    assert sorted(files_of(server, run)) == ["keep.txt"]
    assert blobs(server) == held  # gc decides, once nothing names them
    event = server.registry.audit(action="artifact.delete")[0]
    assert event.before["count"] == 2
    answer = server.http.delete(f"{ART}/0/{run}/artifacts/dir")
    assert error(answer) == (404, "RESOURCE_DOES_NOT_EXIST")


def test_multipart_routes_say_so_where_the_blobs_are_not_in_s3(make_server: Any) -> None:
    server = make_server()
    run = sdk_run(server)
    answer = server.http.post(
        f"/api/2.0/mlflow-artifacts/mpu/create/0/{run}/artifacts",
        json={"path": "/tmp/big.bin", "num_parts": 3},
    )
    assert error(answer) == (400, "INVALID_PARAMETER_VALUE")
    # The client falls back to a plain upload on exactly these words.
    assert answer.json()["message"].startswith(artifact_routes.NO_MULTIPART)


def test_the_role_table_applies_to_files_and_logged_models(make_server: Any) -> None:
    server = make_server(auth=True)
    run = sdk_run(server)

    def as_(role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {server.token(role, role)}"}

    reader, writer, maintainer = as_("reader"), as_("writer"), as_("maintainer")
    url = f"{ART}/0/{run}/artifacts/a.txt"
    assert error(server.http.put(url, content=b"1", headers=reader)) == (403, "PERMISSION_DENIED")
    assert error(server.http.put(url, content=b"1")) == (401, "UNAUTHENTICATED")
    assert server.http.put(url, content=b"1", headers=writer).status_code == 200
    assert server.http.get(url, headers=reader).content == b"1"
    made = server.http.post(
        f"{API}/logged-models", json={"experiment_id": "0", "name": "m"}, headers=writer
    )
    model_id = made.json()["model"]["info"]["model_id"]
    gone = f"{API}/logged-models/{model_id}"
    assert error(server.http.delete(gone, headers=writer)) == (403, "PERMISSION_DENIED")
    assert server.http.delete(gone, headers=maintainer).json() == {}
    [event] = server.registry.audit(action="logged_model.delete")
    assert event.actor == "maintainer"  # the token's name, not what the client claims
