"""The web UI over HTTP: what each page holds, escaping, headers, sign-in and roles.

The same pages in a real browser (charts drawn, the lineage graph laid out, screenshots)
are in ``test_ui_browser.py``.
"""

from __future__ import annotations

import contextlib
import html
import re
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from modelreg import datasets
from modelreg.records import DatasetUse
from modelreg.server.auth import SESSION_COOKIE
from modelreg.ui import pages
from modelreg.ui.routes import CSP
from server_kit import CONTENT, DIGEST, Server, make_server, registry_template

__all__ = ["make_server", "registry_template"]  # fixtures

XSS = "<img src=x onerror=alert(1)>"


@pytest.fixture
def served(make_server: Callable[..., Server], tmp_path: Path) -> Server:
    """demo/1 (from the template); demo/2, child of demo/1, trained in a run on data.csv,
    with the XSS payload as its description and a tag; production on demo/2."""
    server = make_server()
    reg = server.registry
    data = tmp_path / "data.csv"
    data.write_text("x,y\n1,2\n")
    model = tmp_path / "model.bin"
    model.write_bytes(b"weights v2")
    with reg.start_run(name="train", params={"lr": 0.1}) as run:
        run.use_dataset(data, name="train-data")
        for step, loss in enumerate([0.9, 0.5, 0.3]):
            run.log_metric("loss", loss, step=step)
        run.register(
            "demo",
            model,
            parents=["demo/1"],
            metrics={"accuracy": 0.95},
            tags={"note": "<b>bold</b>"},
            description=XSS,
        )
    reg.set_alias("demo", "production", "demo/2")
    return server


def page(server: Server, path: str, **options: object) -> httpx.Response:
    response = server.http.get(path, **options)  # type: ignore[arg-type]
    assert response.status_code == 200, response.text[:500]
    assert response.headers["content-type"].startswith("text/html")
    return response


# -- what the pages hold ----------------------------------------------------------------------


def test_models_page_lists_models_with_latest_version_and_aliases(served: Server) -> None:
    text = page(served, "/").text
    assert '<a href="/models/demo">demo</a>' in text
    assert '<a href="/models/demo/versions/2">demo/2</a>' in text
    assert "@production → 2" in text


def test_search_box_uses_the_search_language(served: Server) -> None:
    text = page(served, "/", params={"q": "metrics.accuracy > 0.92"}).text
    assert "/models/demo/versions/2" in text
    assert "/models/demo/versions/1" not in text
    bad = served.http.get("/", params={"q": "metrics.accuracy >"})
    assert bad.status_code == 400
    assert "search" in bad.text.lower() or "expected" in bad.text.lower()


def test_search_box_takes_the_order_and_limit_a_search_ends_with(served: Server) -> None:
    def found(q: str) -> list[str]:
        twin = served.http.get("/api/v1/pages/models", params={"q": q}).json()
        return [v["ref"] for v in twin["results"]]

    assert found("name = 'demo'") == ["demo/2", "demo/1"]  # newest first by default
    assert found("name = 'demo' order by number asc") == ["demo/1", "demo/2"]
    assert found("name = 'demo' order by number asc limit 1") == ["demo/1"]
    assert (
        served.http.get("/api/v1/pages/models", params={"q": "limit 1", "offset": 50}).json()[
            "results"
        ]
        == []
    )


def test_the_search_box_suggests_searches_that_match_this_registry(served: Server) -> None:
    examples = pages.search_examples(served.registry)
    # demo/2 is the newest version with a metric: accuracy 0.95, tag note=<b>bold</b>
    assert examples == [
        "metrics.accuracy >= 0.95 and tags.note = '<b>bold</b>'",
        "name = 'demo' order by metrics.accuracy desc limit 5",
    ]
    for q in examples:
        assert served.registry.search(q)
    text = page(served, "/").text
    [placeholder] = re.findall(r'placeholder="([^"]*)"', text)
    assert html.unescape(placeholder) == examples[0]
    assert '<a href="/search-language" class="hint" id="search-help">' in text


@pytest.mark.parametrize(
    ("value", "cut"),
    [
        (0.9824, 0.98),
        (0.95, 0.95),
        (0.98, 0.98),
        (123.4, 120),
        (-0.0512, -0.052),
        (7, 7),
        (0.0, 0.0),
    ],
)
def test_an_example_search_cuts_a_metric_to_two_digits_below_it(value: float, cut: float) -> None:
    assert pages._round_down(value) == cut
    assert pages._round_down(value) <= value


def test_the_search_language_page_says_what_the_docs_say(served: Server) -> None:
    text = page(served, "/search-language").text
    links = re.findall(r'<li><a href="/\?q=([^"]+)"><code>([^<]+)</code></a></li>', text)
    shown = [(urllib.parse.unquote(html.unescape(q)), html.unescape(code)) for q, code in links]
    assert shown == [(q, q) for q in pages.search_examples(served.registry)]
    assert "<code>metrics.KEY</code>" in text
    assert "<li>Operators:" in text
    assert "order by FIELD [asc|desc], ..." in text
    # One text, two places: the page renders the packaged Markdown, which docs/concepts.md
    # repeats under its own heading.
    packaged = (Path(pages.__file__).parent / "templates" / "search_language.md").read_text()
    docs = (Path(__file__).resolve().parents[1] / "docs" / "concepts.md").read_text()
    section = docs.split("\n## The search language\n\n", 1)[1].split("\n## ", 1)[0]
    assert section == packaged, (
        "docs/concepts.md's section on the search language must repeat"
        " src/modelreg/ui/templates/search_language.md word for word"
    )


def test_a_forced_alias_move_shows_who_forced_it_and_why(served: Server) -> None:
    reg = served.registry
    reg.set_policy("demo", "production", approvals=1)
    reg.set_alias("demo", "production", "demo/1", force=True, reason="roll back <INC-9>")
    text = page(served, "/models/demo").text
    row = text.split('id="alias-history"')[1].split("</tr>")[1]
    assert "/models/demo/versions/1" in row
    forced = f'<span class="flag">forced</span> by {reg.actor}, because: <q>roll back &lt;INC-9&gt;'
    assert forced in row
    assert "<li>demo/1 has 0 approvals and the policy needs 1 (each maintainer" in row
    twin = served.http.get("/api/v1/pages/models/demo").json()
    moves = [(m["version"], (m["override"] or {}).get("reason")) for m in twin["alias_history"]]
    assert moves == [("demo/1", "roll back <INC-9>"), ("demo/2", None)]


def test_model_page_sorts_versions_and_charts_each_metric(served: Server) -> None:
    text = page(served, "/models/demo", params={"sort": "metrics.accuracy", "order": "asc"}).text
    rows = re.findall(r'<tr data-ref="(demo/\d+)">', text)
    assert rows == ["demo/1", "demo/2"]  # 0.9 before 0.95
    assert 'aria-sort="ascending"' in text
    series = served.http.get("/api/v1/pages/models/demo").json()["series"]["accuracy"]
    assert series == {
        "number": [1, 2],
        "created_at": series["created_at"],
        "value": [0.9, 0.95],
    }
    assert 'data-chart="series-1"' in text
    bad = served.http.get("/models/demo", params={"sort": "size; drop table versions"})
    assert bad.status_code == 400


def test_version_page_shows_what_made_it(served: Server) -> None:
    text = page(served, "/models/demo/versions/2").text
    twin = served.http.get("/api/v1/pages/models/demo/versions/2").json()
    assert twin["version"]["ref"] == "demo/2"
    assert twin["run"]["metric_history"]["loss"][2]["value"] == 0.3
    assert [d["name"] for d in twin["datasets"]] == ["train-data"]
    assert twin["parents"] == ["demo/1"]
    digest = twin["datasets"][0]["digest"]
    assert digest in text
    assert twin["files"][0]["digest"] in text
    assert "@production" in text
    kinds = {(n["kind"], n["label"]) for n in twin["graph"]["nodes"]}
    assert ("this", "demo/2") in kinds
    assert ("parent", "demo/1") in kinds
    assert ("run", "run train") in kinds
    # The alias URL shows the version it names.
    assert "demo/2" in page(served, "/models/demo@production").text


def test_every_user_string_is_escaped(served: Server) -> None:
    text = page(served, "/models/demo/versions/2").text
    assert XSS not in text
    assert html.escape(XSS) in text
    assert "<b>bold</b>" not in text
    audit = page(served, "/audit").text
    assert XSS not in audit


def test_graph_data_cannot_close_its_script_block(served: Server) -> None:
    name = "</script><script>alert(1)</script>"
    with served.registry.start_run(name=name) as run:
        v = run.register("demo", _file(served, b"v3"))
    text = page(served, f"/models/demo/versions/{v.number}").text
    assert "<script>alert(1)" not in text
    twin = served.http.get(f"/api/v1/pages/models/demo/versions/{v.number}").json()
    assert any(n["label"] == f"run {name}" for n in twin["graph"]["nodes"])


def test_compare_marks_what_changed(served: Server) -> None:
    text = page(served, "/compare", params={"v": ["demo/1", "demo/2"]}).text
    twin = served.http.get("/api/v1/pages/compare", params={"v": ["demo/1", "demo/2"]}).json()
    accuracy = next(row for row in twin["metrics"] if row["key"] == "accuracy")
    assert accuracy["changed"]
    assert accuracy["deltas"][1] == pytest.approx(0.05)
    assert '<tr class="changed" data-key="accuracy">' in text
    assert "+0.05" in text
    files = next(row for row in twin["files"] if row["key"] == "model.bin")
    assert files["changed"]
    one = served.http.get("/compare", params={"v": ["demo/1"]})
    assert one.status_code == 400
    assert "2 to" in one.text


def test_datasets_pages_list_data_and_the_versions_that_used_it(served: Server) -> None:
    assert "train-data" in page(served, "/datasets").text
    listed = served.http.get("/api/v1/pages/datasets").json()["datasets"]
    assert [(d["name"], d["used_by"]) for d in listed] == [("train-data", 1)]
    text = page(served, "/datasets/train-data").text
    assert "/models/demo/versions/2" in text
    twin = served.http.get("/api/v1/pages/datasets/train-data").json()
    assert [(d["version"], d["relation"]) for d in twin["dependents"]] == [("demo/2", "direct")]
    assert served.http.get("/datasets/nothing-here").status_code == 404


def test_the_datasets_list_pages_by_cursor(served: Server) -> None:
    """Datasets page by name from the last one shown; the count is of them all."""
    reg = served.registry
    uses = [
        DatasetUse(f"data-{i:02d}", f"{i:064x}", f"s3://b/{i}", 1, 1, "train") for i in range(55)
    ]
    reg.db.write(lambda conn: [datasets.ensure(conn, use) for use in uses])
    first = served.http.get("/api/v1/pages/datasets").json()
    assert first["page"]["total"] == 56  # and train-data
    rest = served.http.get(
        "/api/v1/pages/datasets", params={"offset": 50, "after": first["page"]["after"]}
    ).json()
    names = [d["name"] for d in first["datasets"] + rest["datasets"]]
    assert names == sorted(names)
    assert len(set(names)) == 56
    assert rest["page"]["after"] is None
    assert 'rel="next"' in page(served, "/datasets").text
    bad = served.http.get("/api/v1/pages/datasets", params={"after": "x"})
    assert bad.status_code == 400


def test_dataset_pages_name_every_name_of_the_bytes_and_count_what_retiring_flags(
    served: Server,
) -> None:
    reg = served.registry
    data = _file(served, b"id,churned\n1,0\n", "train.csv")
    model = _file(served, b"weights")
    reg.register("churn", model, datasets=[{"path": data, "name": "churn-train"}])
    base = reg.register("base", model, datasets=[data])  # recorded as train.csv
    reg.register("tuned", model, parents=[base.ref])
    listed = {d["name"]: d for d in served.http.get("/api/v1/pages/datasets").json()["datasets"]}
    assert listed["churn-train"]["also_known_as"] == ["train.csv"]
    assert listed["churn-train"]["used_by"] == listed["train.csv"]["used_by"] == 2  # either name
    text = page(served, "/datasets").text
    assert 'also known as <a href="/datasets/train.csv">train.csv</a>' in text

    twin = served.http.get("/api/v1/pages/datasets/churn-train").json()
    assert twin["also_known_as"] == ["train.csv"]
    impact = reg.dataset_impact("churn-train")
    assert twin["dependents"] == impact["versions"]  # the page lists what retiring flags
    assert (twin["direct"], twin["descendants"]) == (2, 1)
    text = page(served, "/datasets/churn-train").text
    assert re.search(r'id="also-known-as">Also known as <a href="/datasets/train.csv">', text)
    assert "train:train.csv@" in text  # base/1 used the bytes under the other name

    reg.retire_dataset("churn-train", reason="erasure <request> 17")
    for name in ("churn-train", "train.csv"):
        [shown] = served.http.get(f"/api/v1/pages/datasets/{name}").json()["versions"]
        assert shown["retired_reason"] == "erasure <request> 17"
        text = page(served, f"/datasets/{name}").text
        assert re.search(r'<td class="retired">.*: erasure &lt;request&gt; 17</td>', text)
    assert 'title="retired' in page(served, "/datasets").text


def test_audit_page_filters_and_verifies_the_chain(served: Server) -> None:
    text = page(served, "/audit", params={"entity": "demo/2"}).text
    assert 'data-verify="/api/v1/audit/verify"' in text  # checked once the page has loaded
    twin = served.http.get("/api/v1/pages/audit", params={"entity": "demo/2"}).json()
    assert twin["verify"]["ok"] is True
    assert twin["events"]
    assert {e["entity"] for e in twin["events"]} <= {"demo/2"}
    by_setup = served.http.get("/api/v1/pages/audit", params={"actor": "setup"}).json()
    assert by_setup["events"]
    assert {e["actor"] for e in by_setup["events"]} == {"setup"}


def test_pages_paginate(served: Server) -> None:
    for _ in range(60):
        served.registry.register("many", _file(served, b"same bytes"))
    first = served.http.get("/api/v1/pages/models/many").json()
    assert len(first["versions"]) == 50
    assert first["page"]["next"] == 50
    rest = served.http.get("/api/v1/pages/models/many", params={"offset": 50}).json()
    assert [v["number"] for v in rest["versions"]] == list(range(10, 0, -1))
    assert rest["page"]["next"] is None
    assert 'rel="next"' in page(served, "/models/many").text


def test_the_models_list_pages_by_the_last_name_shown(served: Server) -> None:
    for i in range(52):
        served.registry.register(f"m-{i:02d}", _file(served, b"same bytes"))
    first = served.http.get("/api/v1/pages/models").json()
    names = [m["name"] for m in first["models"]]
    assert first["page"]["after"] == names[-1]
    served.registry.register("a-first", _file(served, b"same bytes"))  # sorts before them all
    params = {"offset": 50, "after": first["page"]["after"]}
    rest = served.http.get("/api/v1/pages/models", params=params).json()
    every = names + [m["name"] for m in rest["models"]]
    assert len(every) == len(set(every))
    assert rest["page"]["after"] is None
    assert set(every) >= {f"m-{i:02d}" for i in range(52)}


def test_the_next_page_of_versions_starts_after_the_last_one_shown(served: Server) -> None:
    """Versions and search results page by cursor: the "Next" link carries the last
    version's id, and versions registered meanwhile shift nothing."""
    for i in range(60):
        served.registry.register("keyed", _file(served, b"v%d" % i), metrics={"auc": i % 7})
    first = served.http.get("/api/v1/pages/models/keyed", params={"sort": "metrics.auc"}).json()
    last = first["versions"][-1]
    assert first["page"]["after"] == last["id"]
    text = page(served, "/models/keyed", params={"sort": "metrics.auc"}).text
    link = re.search(r'<a rel="next" href="([^"]+)"', text)
    assert link is not None
    assert f"after={last['id']}" in html.unescape(link[1])
    served.registry.register("keyed", _file(served, b"newest"), metrics={"auc": 9})
    params = {"sort": "metrics.auc", "offset": 50, "after": last["id"]}
    rest = served.http.get("/api/v1/pages/models/keyed", params=params).json()
    by_offset = served.http.get("/api/v1/pages/models/keyed", params={**params, "after": ""})
    assert len(rest["versions"]) == 10
    assert rest["page"]["next"] is None  # the version registered since sorts first
    assert [v["number"] for v in rest["versions"]] == [
        v["number"] for v in by_offset.json()["versions"]
    ][1:]  # by offset, the page before's last version comes again
    every = [v["number"] for v in first["versions"] + rest["versions"]]
    assert sorted(every) == list(range(1, 61))  # none shown twice, none left out
    search = {"q": "metrics.auc >= 0 order by metrics.auc desc"}
    found = served.http.get("/api/v1/pages/models", params=search).json()
    after = found["page"]["after"]
    more = served.http.get("/api/v1/pages/models", params={**search, "after": after}).json()
    seen = [r["id"] for r in found["results"] + more["results"]]
    assert len(seen) == len(set(seen)) == 61


def test_bad_references_are_pages_naming_the_problem(served: Server) -> None:
    for path, status in [
        ("/models/demo/versions/9", 404),
        ("/models/demo/versions/x", 400),
        ("/models/Not%20A%20Name", 400),
        ("/models/demo@nope", 404),
        ("/nowhere", 404),
    ]:
        response = served.http.get(path)
        assert response.status_code == status, path
        assert response.headers["content-type"].startswith("text/html")
        assert 'role="alert"' in response.text


# -- headers and downloads ----------------------------------------------------------------------


def test_every_page_carries_a_content_security_policy(served: Server) -> None:
    for path in ["/", "/models/demo", "/models/demo/versions/2", "/datasets", "/audit", "/login"]:
        headers = served.http.get(path).headers
        assert headers["content-security-policy"] == CSP
        assert "'unsafe-inline'" not in CSP
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["x-frame-options"] == "DENY"


def test_files_download_as_attachments_never_rendered(served: Server) -> None:
    svg = b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>'
    v = served.registry.register("demo", {"picture.svg": _file(served, svg, "p.svg")})
    response = served.http.get(f"/models/demo/versions/{v.number}/files/picture.svg")
    assert response.status_code == 200
    assert response.content == svg
    assert response.headers["content-type"] == "application/octet-stream"
    assert response.headers["content-disposition"].startswith('attachment; filename="picture.svg"')
    assert response.headers["x-content-type-options"] == "nosniff"
    first = served.http.get("/models/demo/versions/1/files/model.bin")
    assert first.content == CONTENT
    assert first.headers["etag"] == f'"{DIGEST}"'
    missing = served.http.get("/models/demo/versions/1/files/../../etc/passwd")
    assert missing.status_code in (400, 404)


def test_static_files_are_the_packaged_ones_only(served: Server) -> None:
    text = page(served, "/models/demo").text
    script = re.search(r'src="(/static/app\.js\?v=[0-9a-f]+)"', text)
    assert script is not None
    response = served.http.get(script.group(1))
    assert response.status_code == 200
    assert "immutable" in response.headers["cache-control"]
    escapes = ["/static/../pages.py", "/static/%2e%2e/pages.py", "/static/vendor/../../routes.py"]
    for path in escapes:
        assert served.http.get(path).status_code == 404, path


# -- sign-in and roles --------------------------------------------------------------------------


@contextlib.contextmanager
def sign_in(server: Server, secret: str) -> Iterator[httpx.Client]:
    """A client that signed in through the form, as a browser does, and keeps the cookie."""
    with httpx.Client(base_url=server.url, timeout=30) as client:
        response = client.post("/login", data={"token": secret, "next": "/models/demo"})
        assert response.status_code == 303
        assert response.headers["location"] == "/models/demo"
        cookie = response.headers["set-cookie"]
        assert cookie.startswith(f"{SESSION_COOKIE}=")
        assert "HttpOnly" in cookie
        assert "samesite=strict" in cookie.lower()
        yield client


def test_with_auth_a_page_asks_for_a_token_once(make_server: Callable[..., Server]) -> None:
    server = make_server(auth=True)
    response = server.http.get("/models/demo?sort=number")
    assert response.status_code == 303
    target = "/login?" + urllib.parse.urlencode({"next": "/models/demo?sort=number"})
    assert response.headers["location"] == target
    wrong = server.http.post("/login", data={"token": "mr_wrong", "next": "/"})
    assert wrong.status_code == 401
    assert "not valid" in wrong.text
    with sign_in(server, server.token("alice", "reader")) as browser:
        assert browser.get("/models/demo").status_code == 200
        assert browser.get("/audit").status_code == 200
        assert browser.get("/api/v1/pages/models").status_code == 200
        browser.post("/logout")
        assert browser.get("/models/demo").status_code == 303


def test_a_revoked_token_ends_the_session(make_server: Callable[..., Server]) -> None:
    server = make_server(auth=True)
    with sign_in(server, server.token("bob", "reader")) as browser:
        server.registry.revoke_token("bob")
        assert browser.get("/models/demo").status_code == 303


def test_the_cookie_holds_a_session_not_the_token_and_opens_only_the_pages(
    make_server: Callable[..., Server],
) -> None:
    server = make_server(auth=True)
    secret = server.token("dana", "maintainer")
    with sign_in(server, secret) as browser:
        session = browser.cookies[SESSION_COOKIE]
        assert session.startswith("mrs_")
        assert secret not in session
        assert (
            "Max-Age=43200" in browser.post("/login", data={"token": secret}).headers["set-cookie"]
        )
    as_token = {"Authorization": f"Bearer {session}"}
    refused = server.http.get("/api/v1/versions/demo/1", headers=as_token)
    assert refused.status_code == 401
    assert server.http.get("/api/v1/tokens", headers=as_token).status_code == 401


def test_a_wrong_token_is_refused_without_waiting_for_a_writer(
    make_server: Callable[..., Server],
) -> None:
    """Checking a token is a read: a sign-in attempt never queues behind a long write."""
    import sqlite3

    server = make_server(auth=True)
    writer = sqlite3.connect(server.root / "registry.db", isolation_level=None, timeout=1)
    writer.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    try:
        # A sign-in that queued behind the writer would wait out SQLite's 60 s busy timeout;
        # 30 s leaves room for a loaded machine without letting such a wait pass.
        wrong = server.http.post("/login", data={"token": "mr_guess"}, timeout=30)
        assert wrong.status_code == 401
        ended = server.http.post("/logout", headers={"Cookie": f"{SESSION_COOKIE}=mrs_guess"})
        assert ended.status_code == 303
    finally:
        writer.execute("ROLLBACK")
        writer.close()


def test_signing_out_ends_the_session_on_the_server(make_server: Callable[..., Server]) -> None:
    server = make_server(auth=True)
    with sign_in(server, server.token("erin", "reader")) as browser:
        session = browser.cookies[SESSION_COOKIE]
        browser.post("/logout")
    replayed = server.http.get("/models/demo", headers={"Cookie": f"{SESSION_COOKIE}={session}"})
    assert replayed.status_code == 303  # to the sign-in page: the stolen cookie is dead


def test_an_expired_session_is_refused(make_server: Callable[..., Server]) -> None:
    import sqlalchemy as sa

    from modelreg import schema

    server = make_server(auth=True)
    with sign_in(server, server.token("fay", "reader")) as browser:
        assert browser.get("/models/demo").status_code == 200
        with server.registry.db.engine.begin() as conn:
            conn.execute(sa.update(schema.ui_sessions).values(expires_at="2026-01-01T00:00:00Z"))
        assert browser.get("/models/demo").status_code == 303
        assert browser.get("/api/v1/pages/models").status_code == 401


def test_sign_in_never_sends_the_browser_to_another_site(
    make_server: Callable[..., Server],
) -> None:
    server = make_server(auth=True)
    secret = server.token("carol", "reader")
    for target in ["https://evil.example/", "//evil.example/", "/\\evil.example"]:
        response = server.http.post("/login", data={"token": secret, "next": target})
        assert response.headers["location"] == "/", target


def test_a_reader_sees_no_write_controls_and_cannot_post_them(
    make_server: Callable[..., Server],
) -> None:
    server = make_server(auth=True)
    with sign_in(server, server.token("reader", "reader")) as browser:
        text = browser.get("/models/demo/versions/1").text
        assert "write-controls" not in text
        assert '<form method="post" action="/models/demo/versions/1/tags"' not in text
        refused = browser.post("/models/demo/versions/1/tags", data={"key": "k", "value": "v"})
        assert refused.status_code == 403
    assert server.registry.get("demo/1").tags == {"team": "core"}


def test_a_writer_tags_but_only_a_maintainer_moves_aliases(
    make_server: Callable[..., Server],
) -> None:
    server = make_server(auth=True)
    with sign_in(server, server.token("writer", "writer")) as browser:
        text = browser.get("/models/demo/versions/1").text
        assert 'id="write-controls"' in text
        assert "/alias" not in text
        done = browser.post("/models/demo/versions/1/tags", data={"key": "stage", "value": "qa"})
        assert done.status_code == 303
        moved = browser.post("/models/demo/versions/1/alias", data={"alias": "prod"})
        assert moved.status_code == 403
    assert server.registry.get("demo/1").tags["stage"] == "qa"
    event = server.registry.audit(entity="demo/1", action="tag.set")[0]
    assert event.actor == "writer"
    with sign_in(server, server.token("maint", "maintainer")) as browser:
        assert "/alias" in browser.get("/models/demo/versions/1").text
        moved = browser.post("/models/demo/versions/1/alias", data={"alias": "prod"})
        assert moved.status_code == 303
    assert server.registry.get("demo@prod").ref == "demo/1"


def test_a_maintainer_deletes_a_version_from_its_page_and_the_page_then_says_why(
    make_server: Callable[..., Server],
) -> None:
    server = make_server(auth=True)
    with sign_in(server, server.token("writer", "writer")) as browser:
        assert 'id="delete-form"' not in browser.get("/models/demo/versions/1").text
        refused = browser.post("/models/demo/versions/1/delete", data={"reason": "erasure"})
        assert refused.status_code == 403
    with sign_in(server, server.token("maint", "maintainer")) as browser:
        assert 'id="delete-form"' in browser.get("/models/demo/versions/1").text
        blank = browser.post("/models/demo/versions/1/delete", data={"reason": " "})
        assert blank.status_code == 400
        assert "deleting a version needs a reason" in blank.text
        done = browser.post("/models/demo/versions/1/delete", data={"reason": "erasure 77"})
        assert (done.status_code, done.headers["location"]) == (303, "/models/demo")
        page = browser.get("/models/demo/versions/1")
        assert page.status_code == 410
        assert "<title>Deleted" in page.text
        assert "was deleted at" in page.text
        assert "by maint: erasure 77" in page.text
    event = server.registry.audit(entity="demo/1", action="version.delete")[0]
    assert (event.actor, event.after["reason"]) == ("maint", "erasure 77")


def test_a_form_posted_from_another_site_is_refused(make_server: Callable[..., Server]) -> None:
    server = make_server()
    response = server.http.post(
        "/models/demo/versions/1/description",
        data={"description": "changed"},
        headers={"Origin": "https://evil.example"},
    )
    assert response.status_code == 403
    assert server.registry.get("demo/1").description == ""


def _file(server: Server, content: bytes, name: str = "m.bin") -> Path:
    path = server.root.parent / name
    path.write_bytes(content)
    return path


def test_a_long_history_is_charted_in_buckets_that_keep_extremes(
    served: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pages, "CHART_POINTS", 4)
    values = [0.5, 0.6, 0.7, 0.8, 0.1, 0.8, 0.9, 0.9, 0.95, 0.97]  # version 5 regressed
    for value in values:
        served.registry.register("long", _file(served, b"same"), metrics={"auc": value})
    series = served.http.get("/api/v1/pages/models/long").json()["series"]["auc"]
    assert series["bucket"] == 3
    assert series["number"] == [1, 4, 7, 10]
    assert series["min"] == [0.5, 0.1, 0.9, 0.97]
    assert series["max"] == [0.7, 0.8, 0.95, 0.97]
    assert series["value"] == pytest.approx(
        [0.6, (0.8 + 0.1 + 0.8) / 3, (0.9 + 0.9 + 0.95) / 3, 0.97]
    )
    assert "auc (mean of 3 versions)" in page(served, "/models/long").text


def test_a_longer_history_is_charted_from_stored_buckets_that_forget_deleted_versions(
    served: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past RAW_BUCKETS points per bucket, the chart merges the buckets of ten numbers that
    registering keeps; deleting a version counts its bucket again without it."""
    monkeypatch.setattr(pages, "CHART_POINTS", 2)
    values = [0.5 + n / 100 for n in range(30)]
    values[12] = 0.05  # version 13 regressed
    for n, value in enumerate(values):
        metrics = {"auc": value} if n != 25 else {}  # version 26 has no auc
        served.registry.register("longer", _file(served, b"same"), metrics=metrics)
    series = served.http.get("/api/v1/pages/models/longer").json()["series"]["auc"]
    first, second = values[:20], values[20:25] + values[26:]
    assert series["bucket"] == 20  # 30 versions in 2 points: 15 wide, rounded up to tens
    assert series["number"] == [1, 21]
    assert series["min"] == [0.05, 0.7]
    assert series["max"] == [0.69, 0.79]
    assert series["value"] == pytest.approx([sum(first) / 20, sum(second) / 9])
    assert "auc (mean of 20 versions)" in page(served, "/models/longer").text

    served.registry.delete_version("longer/13", reason="trained on the wrong data")
    series = served.http.get("/api/v1/pages/models/longer").json()["series"]["auc"]
    rest = values[:12] + values[13:20]
    assert series["min"] == [0.5, 0.7]
    assert series["value"] == pytest.approx([sum(rest) / 19, sum(second) / 9])


# -- odd input and the session's reach ----------------------------------------------------------


def test_odd_input_is_a_4xx_page_naming_it(served: Server) -> None:
    for path, params, words in [
        ("/audit", {"entity": "a\x00b"}, "NUL"),
        ("/audit", {"before": str(2**31)}, "before"),
        ("/models/demo", {"offset": str(2**31)}, "offset"),
        ("/models/demo", {"sort": "params."}, "param key"),
        ("/compare", {"v": ["demo/1", "demo@production", "demo/1"]}, "same version"),
    ]:
        response = served.http.get(path, params=params)
        assert response.status_code in (400, 422), (path, params, response.status_code)
        assert words in response.text, (path, params)
    form = served.http.post(
        "/models/demo/versions/1/tags",
        content=b"key=k&value=%FF%FE",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert form.status_code == 400
    assert "UTF-8" in form.text
    nul = served.http.post("/models/demo/versions/1/tags", data={"key": "k", "value": "a\x00"})
    assert nul.status_code == 400
    assert served.registry.get("demo/1").tags == {"team": "core"}


def test_a_key_with_spaces_sorts_the_table(served: Server) -> None:
    for value in (0.3, 0.1, 0.2):
        served.registry.register("keys", _file(served, b"k"), metrics={"val loss": value})
    response = page(served, "/models/keys", params={"sort": "metrics.val loss", "order": "asc"})
    assert re.findall(r'<tr data-ref="keys/(\d+)">', response.text) == ["2", "3", "1"]


def test_compare_lists_only_the_files_that_differ(served: Server) -> None:
    same = _file(served, b"s", "same.bin")
    a = served.registry.register("files", {"same.bin": same, "x": _file(served, b"1", "x1")})
    b = served.registry.register("files", {"same.bin": same, "x": _file(served, b"2", "x2")})
    twin = served.http.get("/api/v1/pages/compare", params={"v": [a.ref, b.ref]}).json()
    assert [row["key"] for row in twin["files"]] == ["x"]
    assert twin["files_changed"] == 1


def test_the_session_cookie_does_not_reach_the_api_write_routes(
    make_server: Callable[..., Server],
) -> None:
    server = make_server(auth=True)
    with sign_in(server, server.token("root", "admin")) as browser:
        assert browser.get("/api/v1/pages/models").status_code == 200
        assert browser.get("/api/v1/audit/verify").status_code == 200
        made = browser.post("/api/v1/tokens", json={"name": "sneaky", "role": "admin"})
        assert made.status_code == 401
        assert browser.get("/api/v1/tokens").status_code == 401
    assert [t["name"] for t in server.registry.tokens()] == ["root"]


def test_refusals_before_the_routes_are_pages_too(served: Server) -> None:
    refused = served.http.post(
        "/models/demo/versions/1/tags", data={"key": "k"}, headers={"Origin": "http://evil.example"}
    )
    assert refused.status_code == 403
    assert refused.headers["content-type"].startswith("text/html")
    assert refused.headers["content-security-policy"] == CSP


def test_caching_headers(served: Server) -> None:
    assert served.http.get("/").headers["cache-control"] == "private, no-cache"
    assert served.http.get("/static/app.js").headers["cache-control"] == "no-cache"
    bare = served.http.get("/models", follow_redirects=True)
    assert bare.status_code == 200
    assert str(bare.url).endswith("/")
