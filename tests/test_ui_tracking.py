"""The web UI's pages of tracked runs over HTTP: experiments, an experiment's runs table
(sorted and filtered on the server, with MLflow's filter grammar), a run's page, runs side by
side, their JSON twins, escaping and errors.

The runs are made as MLflow's routes make them (the store's ``experiments`` and ``runs``), by
modelreg's SDK (experiment 0, "Default"), and in one test by the real MLflow client. The same
pages in Chromium are in ``test_ui_browser.py``.
"""

from __future__ import annotations

import contextlib
import html
import io
import re
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from mlflow_kit import run_client
from modelreg import artifacts, experiments, runs
from modelreg.manifest import FileEntry
from modelreg.server.auth import SESSION_COOKIE
from modelreg.ui import tracking
from modelreg.ui.routes import CSP
from server_kit import Server, any_server, make_server, registry_template
from tracking_kit import new_experiment, track

__all__ = ["any_server", "make_server", "registry_template"]  # fixtures

XSS = "<img src=x onerror=alert(1)>"
CLOSER = "</script><script>alert(1)</script>"


@dataclass
class Tracked:
    server: Server
    experiment: int
    runs: dict[str, str]  # name: id

    def get(self, path: str, **options: object) -> httpx.Response:
        response = self.server.http.get(path, **options)  # type: ignore[arg-type]
        assert response.status_code == 200, response.text[:500]
        return response

    def twin(self, path: str, **options: object) -> dict[str, object]:
        found: dict[str, object] = self.get(f"/api/v1/pages{path}", **options).json()
        return found


@pytest.fixture
def tracked(make_server: Callable[..., Server]) -> Tracked:
    """Experiment "churn" with three finished runs (loss histories, alpha, a team tag), and
    an empty deleted experiment."""
    server = make_server()
    reg = server.registry
    eid = new_experiment(reg, "churn")
    made = {}
    for name, alpha, losses, acc, team in [
        ("first", "0.1", [0.9, 0.5, 0.4], 0.70, "growth"),
        ("second", "0.2", [0.8, 0.3, 0.2], 0.90, "core"),
        ("third", "0.3", [0.7, 0.6, 0.5], 0.80, "growth"),
    ]:
        made[name] = track(
            reg,
            eid,
            name,
            params={"alpha": alpha},
            metrics={"loss": losses, "acc": [acc]},
            tags={"team": team, "mlflow.source.name": "train.py"},
        )
    gone = new_experiment(reg, "abandoned")
    reg.db.write(lambda conn: experiments.set_stage(conn, gone, "deleted", actor="tester"))
    return Tracked(server, eid, made)


def order_of(page: dict[str, object]) -> list[str]:
    return [r["name"] for r in page["runs"]]  # type: ignore[attr-defined]


# -- the pages --------------------------------------------------------------------------------


def test_experiments_page_lists_every_experiment_with_its_runs(tracked: Tracked) -> None:
    reg = tracked.server.registry
    with reg.start_run(name="sdk") as run:
        run.log_metric("loss", 0.5)
    listed = tracked.twin("/experiments")["experiments"]
    by_name = {e["name"]: e for e in listed}  # type: ignore[attr-defined]
    assert by_name["churn"]["runs"] == 3
    assert by_name["churn"]["last_run_at"] is not None
    assert by_name["Default"]["id"] == 0
    assert by_name["Default"]["runs"] == 1  # the SDK's run
    assert (by_name["abandoned"]["runs"], by_name["abandoned"]["last_run_at"]) == (0, None)
    assert by_name["abandoned"]["lifecycle_stage"] == "deleted"
    text = tracked.get("/experiments").text
    assert f'<a href="/experiments/{tracked.experiment}">churn</a>' in text
    assert '<a href="/experiments/0">Default</a>' in text
    assert '<a href="/experiments" aria-current="page">Experiments</a>' in text
    # the SDK's run is in experiment 0
    default = tracked.twin("/experiments/0")
    assert order_of(default) == ["sdk"]
    assert default["runs"][0]["metrics"] == {"loss": 0.5}  # type: ignore[index]


def test_runs_table_has_params_metrics_and_tags_as_columns(tracked: Tracked) -> None:
    page = tracked.twin(f"/experiments/{tracked.experiment}")
    assert page["metric_keys"] == ["acc", "loss"]
    assert page["param_keys"] == ["alpha"]
    assert page["tag_keys"] == ["team"]  # MLflow's own tags (mlflow.*) are on the run's page
    assert order_of(page) == ["third", "second", "first"]  # newest first
    second = next(r for r in page["runs"] if r["name"] == "second")  # type: ignore[attr-defined]
    assert second["metrics"] == {"acc": 0.9, "loss": 0.2}  # each metric's latest value
    assert second["params"] == {"alpha": "0.2"}
    assert second["status"] == "finished"
    text = tracked.get(f"/experiments/{tracked.experiment}").text
    assert '<th scope="colgroup" colspan="2" class="group">Metrics</th>' in text
    assert 'data-sort="metrics.loss"' in text
    assert 'data-sort="tags.team"' in text
    assert f'<input type="checkbox" name="r" value="{tracked.runs["first"]}"' in text
    assert f'<a href="/runs/{tracked.runs["first"]}">first</a>' in text
    assert (
        tracked.server.http.get(f"/experiments/{tracked.experiment}").headers[
            "content-security-policy"
        ]
        == CSP
    )


@pytest.mark.parametrize(
    ("sort", "order", "expected"),
    [
        ("metrics.loss", "asc", ["second", "first", "third"]),  # latest: 0.2, 0.4, 0.5
        ("metrics.acc", "desc", ["second", "third", "first"]),
        ("params.alpha", "desc", ["third", "second", "first"]),
        ("tags.team", "asc", ["second", "third", "first"]),  # core, then growth newest first
        ("run_name", "asc", ["first", "second", "third"]),
        ("start_time", "asc", ["first", "second", "third"]),
    ],
)
def test_runs_table_sorts_on_the_server_by_any_column(
    tracked: Tracked, sort: str, order: str, expected: list[str]
) -> None:
    path = f"/experiments/{tracked.experiment}"
    assert order_of(tracked.twin(path, params={"sort": sort, "order": order})) == expected
    text = tracked.get(path, params={"sort": sort, "order": order}).text
    ids = re.findall(r'<tr data-run="([0-9a-f]+)">', text)
    assert ids == [tracked.runs[name] for name in expected]
    assert 'aria-sort="ascending"' in text if order == "asc" else 'aria-sort="descending"' in text


def test_the_search_box_takes_mlflows_filter_grammar(tracked: Tracked) -> None:
    path = f"/experiments/{tracked.experiment}"
    found = tracked.twin(path, params={"q": "metrics.acc >= 0.8 and tags.team = 'growth'"})
    assert order_of(found) == ["third"]
    found = tracked.twin(path, params={"q": "params.alpha != '0.3'", "sort": "run_name",
                                       "order": "asc"})  # fmt: skip
    assert order_of(found) == ["first", "second"]
    text = tracked.get(path, params={"q": "attributes.run_name LIKE 'sec%'"}).text
    assert re.findall(r'<tr data-run="([0-9a-f]+)">', text) == [tracked.runs["second"]]
    none = tracked.get(path, params={"q": "metrics.loss < 0"}).text
    assert "No run matches." in none
    # times are MLflow's milliseconds since the epoch
    since = tracked.twin(path, params={"q": "attributes.start_time > 1767225600000"})
    assert sorted(order_of(since)) == ["first", "second", "third"]
    assert order_of(tracked.twin(path, params={"q": "start_time < 1767225600000"})) == []


def test_a_deleted_experiment_still_shows_its_runs(tracked: Tracked) -> None:
    reg = tracked.server.registry
    eid = new_experiment(reg, "retired")
    track(reg, eid, "kept", metrics={"loss": [0.1]})
    reg.db.write(lambda conn: experiments.set_stage(conn, eid, "deleted", actor="tester"))
    page = tracked.twin(f"/experiments/{eid}")
    assert page["experiment"]["lifecycle_stage"] == "deleted"  # type: ignore[index]
    assert order_of(page) == ["kept"]
    assert page["runs"][0]["lifecycle_stage"] == "deleted"  # type: ignore[index]
    assert '<span class="flag">deleted</span>' in tracked.get(f"/experiments/{eid}").text


def test_a_bad_filter_shows_its_message_on_the_page(tracked: Tracked) -> None:
    path = f"/experiments/{tracked.experiment}"
    for q, words in [
        ("metrics.loss <", "compare it with a number"),
        ("metrics.loss < 1 or params.alpha = '0.1'", "AND only"),
        ("colour = 'red'", "colour"),
    ]:
        response = tracked.server.http.get(path, params={"q": q})
        assert response.status_code == 400, q
        assert response.headers["content-type"].startswith("text/html")
        alert = re.search(
            r'<p class="error" role="alert" id="filter-error">(.*?)</p>', response.text
        )
        assert alert is not None, q
        assert words in html.unescape(alert.group(1)), (q, alert.group(1))
        assert "<h1>churn" in response.text  # the experiment's page, its filter kept to edit
        kept = re.search(r'<input id="q" name="q" type="search" value="([^"]*)"', response.text)
        assert kept is not None
        assert html.unescape(kept.group(1)) == q
        twin = tracked.server.http.get(f"/api/v1/pages{path}", params={"q": q})
        assert twin.status_code == 400
        assert words in twin.json()["detail"]
    for params, words in [
        ({"sort": "size; drop table runs"}, "runs sort by"),
        ({"sort": "metrics."}, "names no metric key"),
        ({"order": "sideways"}, "order must be"),
    ]:
        response = tracked.server.http.get(path, params=params)
        assert response.status_code == 400, params
        assert words in response.text


def test_runs_table_pages_by_fifty(tracked: Tracked) -> None:
    reg = tracked.server.registry
    eid = new_experiment(reg, "sweep")
    for i in range(55):
        track(reg, eid, f"trial-{i:02d}", metrics={"score": [i / 100]})
    first = tracked.twin(f"/experiments/{eid}", params={"sort": "metrics.score", "order": "asc"})
    assert len(first["runs"]) == 50  # type: ignore[arg-type]
    assert first["page"]["next"] == 50  # type: ignore[index]
    rest = tracked.twin(
        f"/experiments/{eid}", params={"sort": "metrics.score", "order": "asc", "offset": 50}
    )
    assert order_of(rest) == [f"trial-{i}" for i in range(50, 55)]
    assert rest["page"]["next"] is None  # type: ignore[index]
    text = tracked.get(f"/experiments/{eid}", params={"sort": "metrics.score"}).text
    assert 'rel="next"' in text
    assert "sort=metrics.score" in re.search(r'<a rel="next" href="([^"]+)"', text).group(1)  # type: ignore[union-attr]


def test_the_next_page_of_runs_and_experiments_starts_after_the_last_one_shown(
    tracked: Tracked,
) -> None:
    """The runs table and the experiments list page by cursor: "Next" carries the sort
    values of the last row shown, and a run logged meanwhile that sorts first shifts
    nothing (by offset, the page before's last run would come again)."""
    reg = tracked.server.registry
    eid = new_experiment(reg, "cursor")
    for i in range(55):
        track(reg, eid, f"trial-{i:02d}", metrics={"score": [i / 100]})
    params = {"sort": "metrics.score", "order": "asc"}
    first = tracked.twin(f"/experiments/{eid}", params=params)
    after = first["page"]["after"]  # type: ignore[index]
    assert isinstance(after, str)
    text = tracked.get(f"/experiments/{eid}", params=params).text
    link = re.search(r'<a rel="next" href="([^"]+)"', text)
    assert link is not None
    assert f"after={after}" in urllib.parse.unquote(html.unescape(link[1]))
    track(reg, eid, "early", metrics={"score": [-1.0]})
    rest = tracked.twin(f"/experiments/{eid}", params={**params, "offset": 50, "after": after})
    assert order_of(rest) == [f"trial-{i}" for i in range(50, 55)]
    assert rest["page"]["after"] is None  # type: ignore[index]
    by_offset = tracked.twin(f"/experiments/{eid}", params={**params, "offset": 50})
    assert order_of(by_offset)[0] == "trial-49"
    bad = tracked.server.http.get(f"/experiments/{eid}", params={**params, "after": "x"})
    assert bad.status_code == 400
    for i in range(50):
        new_experiment(reg, f"more-{i:02d}")
    listed: Any = tracked.twin("/experiments")
    following: Any = tracked.twin(
        "/experiments", params={"offset": 50, "after": listed["page"]["after"]}
    )
    names = [e["name"] for e in listed["experiments"] + following["experiments"]]
    assert len(names) == len(set(names)) == 54  # 50, "cursor", "churn", "abandoned", Default


def test_run_page_shows_what_the_sdk_recorded_and_the_versions_made_from_it(
    tracked: Tracked, tmp_path: Path
) -> None:
    reg = tracked.server.registry
    data = tmp_path / "train.csv"
    data.write_text("x,y\n1,0\n")
    model = tmp_path / "model.bin"
    model.write_bytes(b"weights")
    with reg.start_run(name="fit", params={"lr": 0.1}) as run:
        run.use_dataset(data, name="train-data")
        for step, loss in enumerate([0.9, 0.6, 0.3]):
            run.log_metric("loss", loss, step=step)
        version = run.register("uimodel", model, metrics={"accuracy": 0.9})
    assert run.id is not None
    page = tracked.twin(f"/runs/{run.id}")
    assert page["run"]["name"] == "fit"  # type: ignore[index]
    assert page["run"]["status"] == "finished"  # type: ignore[index]
    assert page["run"]["origin"] == "modelreg"  # type: ignore[index]
    assert page["experiment"] == {"id": 0, "name": "Default", "lifecycle_stage": "active"}
    assert page["run"]["params"] == {"lr": "0.1"}  # type: ignore[index]
    assert page["source"]["name"]  # type: ignore[index]  # the command line
    assert page["series"] == {"loss": {"points": 3, "step": [0, 1, 2], "value": [0.9, 0.6, 0.3]}}
    [used] = page["datasets"]  # type: ignore[misc]
    assert (used["name"], used["role"], used["dataset"]) == ("train-data", "train", "train-data")
    assert [v["ref"] for v in page["versions"]] == [version.ref]  # type: ignore[attr-defined]
    text = tracked.get(f"/runs/{run.id}").text
    assert f'<a href="/models/uimodel/versions/{version.number}">{version.ref}</a>' in text
    assert '<a href="/datasets/train-data">train-data</a>' in text
    assert 'data-chart="history-1"' in text
    # The version's page links its training run here, in its text and its lineage graph.
    version_page = tracked.get(f"/models/uimodel/versions/{version.number}").text
    assert f'<a href="/runs/{run.id}">fit</a>' in version_page
    graph = tracked.twin(f"/models/uimodel/versions/{version.number}")["graph"]
    assert {"kind": "run", "href": f"/runs/{run.id}"}.items() <= next(
        n
        for n in graph["nodes"]
        if n["kind"] == "run"  # type: ignore[index]
    ).items()


def test_a_run_with_many_steps_is_charted_in_buckets_that_keep_extremes(
    any_server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Downsampled in SQL, on SQLite and on PostgreSQL alike."""
    monkeypatch.setattr(tracking, "CHART_POINTS", 4)
    reg = any_server.registry
    values = [0.5, 0.6, 0.7, 0.8, 0.1, 0.8, 0.9, 0.9, 0.95, 0.97]  # step 4 dipped
    run_id = track(reg, 0, "long", metrics={"auc": values, "short": [1.0, 2.0]})
    series = any_server.http.get(f"/api/v1/pages/runs/{run_id}").json()["series"]
    auc = series["auc"]
    assert (auc["points"], auc["bucket"]) == (10, 3)
    assert auc["step"] == [0, 3, 6, 9]
    assert auc["min"] == [0.5, 0.1, 0.9, 0.97]
    assert auc["max"] == [0.7, 0.8, 0.95, 0.97]
    assert auc["value"] == pytest.approx([0.6, (0.8 + 0.1 + 0.8) / 3, (0.9 + 0.9 + 0.95) / 3, 0.97])
    assert series["short"] == {"points": 2, "step": [0, 1], "value": [1.0, 2.0]}
    text = any_server.http.get(f"/runs/{run_id}").text
    assert "auc (mean of 3 points)" in text
    other = track(reg, 0, "other", metrics={"auc": [0.1] * 10})
    compared = any_server.http.get("/api/v1/pages/runs/compare", params={"r": [run_id, other]})
    overlay = compared.json()["histories"]["auc"]
    assert [len(points) for points in overlay.values()] == [4, 4]


def test_compare_puts_runs_side_by_side_and_overlays_their_histories(tracked: Tracked) -> None:
    ids = [tracked.runs["first"], tracked.runs["second"]]
    page = tracked.twin("/runs/compare", params={"r": ids})
    assert [r["name"] for r in page["runs"]] == ["first", "second"]  # type: ignore[attr-defined]
    alpha = next(row for row in page["params"] if row["key"] == "alpha")  # type: ignore[attr-defined]
    assert (alpha["values"], alpha["changed"]) == (["0.1", "0.2"], True)
    loss = next(row for row in page["metrics"] if row["key"] == "loss")  # type: ignore[attr-defined]
    assert loss["values"] == [0.4, 0.2]
    assert loss["deltas"][1] == pytest.approx(-0.2)
    status = next(row for row in page["attributes"] if row["key"] == "status")  # type: ignore[attr-defined]
    assert status["changed"] is False
    labels = [r["label"] for r in page["runs"]]  # type: ignore[attr-defined]
    assert page["histories"]["loss"] == {  # type: ignore[index]
        labels[0]: [
            {"step": 0, "value": 0.9},
            {"step": 1, "value": 0.5},
            {"step": 2, "value": 0.4},
        ],
        labels[1]: [
            {"step": 0, "value": 0.8},
            {"step": 1, "value": 0.3},
            {"step": 2, "value": 0.2},
        ],
    }
    text = tracked.get("/runs/compare", params={"r": ids}).text
    assert '<tr class="changed" data-key="alpha">' in text
    assert '<tr class="same" data-key="status">' in text
    assert "-0.2" in text
    assert 'data-chart="overlay-' in text
    for params, status_code, words in [
        ({"r": ids[:1]}, 400, "2 to 8 runs, not 1"),
        ({"r": [ids[0]] * 2}, 400, "given twice"),
        ({"r": [ids[0]] + ["a"] * 8}, 400, "not 9"),
        ({"r": [ids[0], "f" * 32]}, 404, "not found"),
        ({"r": [ids[0], "../etc"]}, 400, "run id"),
    ]:
        response = tracked.server.http.get("/runs/compare", params=params)
        assert response.status_code == status_code, params
        assert words in html.unescape(response.text), params
        assert 'role="alert"' in response.text


def test_user_strings_are_escaped_on_every_page(tracked: Tracked) -> None:
    reg = tracked.server.registry
    eid = new_experiment(reg, XSS)
    one = track(reg, eid, XSS, params={"p": XSS}, tags={"t": XSS, XSS: "v"}, metrics={"m": [1]})
    two = track(reg, eid, CLOSER, params={"p": CLOSER}, metrics={"m": [2]})
    pages = [
        "/experiments",
        f"/experiments/{eid}",
        f"/experiments/{eid}?sort=tags.t",
        f"/runs/{one}",
        f"/runs/{two}",
        f"/runs/compare?r={one}&r={two}",
    ]
    for path in pages:
        text = tracked.get(path).text
        assert XSS not in text, path
        assert "<script>alert(1)" not in text, path
        assert html.escape(XSS) in text or path == f"/runs/{two}", path
    assert html.escape(CLOSER) in tracked.get(f"/runs/compare?r={one}&r={two}").text
    compared = tracked.twin("/runs/compare", params={"r": [one, two]})
    assert any(CLOSER in label for label in compared["histories"]["m"])  # type: ignore[index]


def test_missing_runs_and_experiments_are_error_pages(tracked: Tracked) -> None:
    for path, status in [
        ("/runs/" + "0" * 32, 404),
        ("/runs/no-such-run", 404),
        ("/runs/bad%20id", 400),
        ("/experiments/999", 404),
        ("/experiments/churn", 400),
        ("/experiments/-1", 400),
    ]:
        response = tracked.server.http.get(path)
        assert response.status_code == status, path
        assert response.headers["content-type"].startswith("text/html")
        assert 'role="alert"' in response.text
        twin = tracked.server.http.get(f"/api/v1/pages{path}")
        assert twin.status_code == status, path
        assert twin.headers["content-type"].startswith("application/problem+json")


def test_run_artifacts_download_through_mlflows_route(tracked: Tracked) -> None:
    reg = tracked.server.registry
    run_id = tracked.runs["first"]
    for path, content in [("model/MLmodel", b"flavors: {}\n"), ("plots/loss <1>.svg", b"<svg/>")]:
        digest, size = reg.blobs.put(io.BytesIO(content))
        entry = FileEntry(path, digest, size)
        reg.db.write(lambda c, e=entry: artifacts.put(c, run_id, e, actor="tester", kind="run"))
    page = tracked.twin(f"/runs/{run_id}")
    listed = {f["path"]: f for f in page["artifacts"]}  # type: ignore[attr-defined]
    assert page["artifact_count"] == 2
    svg = listed["plots/loss <1>.svg"]
    prefix = f"/api/2.0/mlflow-artifacts/artifacts/{tracked.experiment}/{run_id}/artifacts/"
    assert svg["href"] == prefix + "plots/loss%20%3C1%3E.svg"
    text = tracked.get(f"/runs/{run_id}").text
    assert f'<a href="{svg["href"]}" download' in text
    got = tracked.server.http.get(svg["href"])
    assert got.status_code == 200
    assert got.content == b"<svg/>"
    assert got.headers["content-disposition"].startswith("attachment")
    assert got.headers["x-content-type-options"] == "nosniff"


@contextlib.contextmanager
def signed_in(server: Server, secret: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        assert client.post("/login", data={"token": secret}).status_code == 303
        assert SESSION_COOKIE in client.cookies
        yield client


def test_with_auth_a_reader_sees_the_pages_and_downloads_a_runs_files(
    make_server: Callable[..., Server],
) -> None:
    server = make_server(auth=True)
    reg = server.registry
    eid = new_experiment(reg, "secured")
    run_id = track(reg, eid, "r", metrics={"loss": [1.0]})
    digest, size = reg.blobs.put(io.BytesIO(b"bytes"))
    entry = FileEntry("out.txt", digest, size)
    reg.db.write(lambda c: artifacts.put(c, run_id, entry, actor="tester", kind="run"))
    href = f"/api/2.0/mlflow-artifacts/artifacts/{eid}/{run_id}/artifacts/out.txt"
    assert server.http.get(f"/experiments/{eid}").status_code == 303  # to the sign-in page
    assert server.http.get(href).status_code == 401
    with signed_in(server, server.token("viewer", "reader")) as browser:
        for path in ["/experiments", f"/experiments/{eid}", f"/runs/{run_id}"]:
            assert browser.get(path).status_code == 200, path
            assert browser.get(f"/api/v1/pages{path}").status_code == 200, path
        got = browser.get(href)  # the run page's link, with the session's cookie
        assert (got.status_code, got.content) == (200, b"bytes")
        # The cookie reaches only the downloads: not the listing, nor any write.
        assert (
            browser.get(
                f"/api/2.0/mlflow-artifacts/artifacts?path={eid}/{run_id}/artifacts"
            ).status_code
            == 401
        )
        refused = browser.put(href, content=b"changed")
        assert refused.status_code in (401, 403)
        assert browser.post(
            "/api/2.0/mlflow/runs/update", json={"run_id": run_id, "status": "FAILED"}
        ).status_code in (401, 403)
    assert reg.db.read(lambda c: runs.load_tracked(c, run_id)).status == "finished"


# -- what the real MLflow client logs ----------------------------------------------------------


def test_what_the_mlflow_client_logs_shows_on_the_pages(make_server: Callable[..., Server]) -> None:
    server = make_server()
    seen = run_client(
        server.url,
        """
        import numpy as np, pandas as pd, tempfile, pathlib
        import mlflow.sklearn
        from mlflow.entities import Metric
        from sklearn.linear_model import LogisticRegression
        X, y = np.array([[0.0], [1.0], [2.0], [3.0]]), np.array([0, 0, 1, 1])
        experiment_id = mlflow.set_experiment("ui-churn").experiment_id
        df = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0], "y": [0, 0, 1, 1]})
        dataset = mlflow.data.from_pandas(df, source="data/train.csv", name="Train Set",
                                          targets="y")
        notes = pathlib.Path(tempfile.mkdtemp()) / "notes.txt"
        notes.write_text("fitted on four points")
        with mlflow.start_run(run_name="fit-lr", tags={"team": "growth"}) as run:
            mlflow.log_params({"C": 1.0, "solver": "lbfgs"})
            mlflow.log_input(dataset, context="training")
            losses = [Metric("loss", 1.0 / (s + 1), 1767225600000 + s, s) for s in range(1500)]
            for start in range(0, 1500, 1000):
                MlflowClient().log_batch(run.info.run_id, metrics=losses[start : start + 1000])
            model = LogisticRegression().fit(X, y)
            mlflow.log_metric("acc", model.score(X, y))
            mlflow.log_artifact(str(notes), artifact_path="docs")
            info = mlflow.sklearn.log_model(model, name="model", registered_model_name="ui-churn")
        with mlflow.start_run(run_name="fit-lr-2") as second:
            mlflow.log_params({"C": 0.5, "solver": "lbfgs"})
            mlflow.log_metric("acc", 0.5)
        out(experiment_id, run.info.run_id, info.model_id, second.info.run_id)
        """,
    )
    experiment_id, run_id, model_id, second = seen
    listed = server.http.get("/api/v1/pages/experiments").json()["experiments"]
    assert {(e["name"], e["runs"]) for e in listed} >= {("ui-churn", 2)}
    table = server.http.get(
        f"/api/v1/pages/experiments/{experiment_id}", params={"sort": "metrics.acc"}
    ).json()
    assert [r["name"] for r in table["runs"]] == ["fit-lr", "fit-lr-2"]
    assert table["runs"][0]["params"] == {"C": "1.0", "solver": "lbfgs"}
    assert table["runs"][0]["tags"]["team"] == "growth"
    assert table["tag_keys"] == ["team"]
    page = server.http.get(f"/api/v1/pages/runs/{run_id}").json()
    assert page["run"]["origin"] == "mlflow"
    assert page["run"]["status"] == "finished"
    assert page["source"]["type"] == "LOCAL"
    history = server.http.get(
        "/api/2.0/mlflow/metrics/get-history", params={"run_id": run_id, "metric_key": "loss"}
    ).json()["metrics"]
    assert len(history) >= 1500  # (log_model sends the run's latest points again)
    loss = page["series"]["loss"]
    assert loss["points"] == len(history)
    assert loss["bucket"] == 2
    assert len(loss["step"]) == len(loss["min"]) == -(-len(history) // 2)
    assert loss["max"][0] == 1.0
    [used] = page["datasets"]
    assert (used["name"], used["role"], used["source"]) == (
        "Train Set",
        "training",
        "data/train.csv",
    )
    assert used["digest"]
    notes = next(f for f in page["artifacts"] if f["path"] == "docs/notes.txt")
    assert server.http.get(notes["href"]).content == b"fitted on four points"
    [logged] = page["logged_models"]
    assert (logged["id"], logged["name"], logged["versions"]) == (model_id, "model", ["ui-churn/1"])
    assert [v["ref"] for v in page["versions"]] == ["ui-churn/1"]
    text = server.http.get(f"/runs/{run_id}").text
    assert '<a href="/models/ui-churn/versions/1">ui-churn/1</a>' in text
    assert "loss (mean of 2 points)" in text
    version = server.http.get("/models/ui-churn/versions/1").text
    assert f'<a href="/runs/{run_id}">fit-lr</a>' in version
    compared = server.http.get("/api/v1/pages/runs/compare", params={"r": [run_id, second]})
    c_row = next(row for row in compared.json()["params"] if row["key"] == "C")
    assert (c_row["values"], c_row["changed"]) == (["1.0", "0.5"], True)
