"""The web UI in a real browser (Debian's Chromium) over the demo registry.

Each test opens pages as a user does and checks what they show: the demo's real numbers,
digests and aliases, charts that drew their points, the lineage graph's nodes and edges, the
changes compare marks, escaped user strings, and what a reader may do. Every page must load
without a console error (a Content-Security-Policy violation is one). A screenshot of each
page goes to ``test-output/screenshots/``.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from browser import PageErrors, screenshot
from live import LiveServer
from modelreg import demo
from modelreg.local import LocalRegistry
from modelreg.server import create_app
from modelreg.ui.routes import CSP
from tracking_kit import new_experiment, track

if TYPE_CHECKING:
    from playwright.sync_api import Page

MAIN = demo.MAIN_MODEL
PARENT, MIDDLE, CHILD = demo.CHAIN


@pytest.fixture(scope="module")
def demo_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo registry, filled once for this module (it trains real models)."""
    root = tmp_path_factory.mktemp("demo") / "reg"
    with LocalRegistry(root, actor="demo") as reg:
        demo.fill(reg)
    return root


@dataclass
class Site:
    registry: LocalRegistry
    url: str
    page: Page
    errors: PageErrors

    def open(self, path: str) -> Page:
        response = self.page.goto(self.url + path)
        assert response is not None
        assert response.status == 200, f"{path}: {response.status}"
        return self.page

    def charts(self) -> list[dict[str, Any]]:
        """Every chart the page drew: its figure's id, series labels, point count, and how
        many pixels of its plot are painted."""
        found: list[dict[str, Any]] = self.page.evaluate(
            """() => Object.entries(window.modelreg.charts).map(([id, chart]) => {
                const canvas = chart.root.querySelector("canvas");
                const pixels = canvas.getContext("2d")
                    .getImageData(0, 0, canvas.width, canvas.height).data;
                let painted = 0;
                for (let i = 3; i < pixels.length; i += 4) if (pixels[i] > 0) painted++;
                return {
                    id: id,
                    title: chart.root.parentElement.dataset.title,
                    labels: chart.series.slice(1).map(s => s.label),
                    points: chart.data[0].length,
                    values: chart.data.slice(1).map(ys => ys.filter(y => y !== null).length),
                    time: chart.scales.x.time,
                    // every x is a number and the x scale spans them: the points have a place
                    placed: chart.data[0].every(Number.isFinite)
                        && Number.isFinite(chart.scales.x.min)
                        && Number.isFinite(chart.scales.x.max),
                    painted: painted,
                };
            })"""
        )
        return found


def graph_layout(page: Page) -> dict[str, Any]:
    """Where the lineage graph drew each node (its box, label included) and each edge's
    label, in pixels of the graph's box, and the box's size."""
    page.wait_for_function("() => window.modelreg.graph !== null")
    found: dict[str, Any] = page.evaluate(
        """() => {
            const cy = window.modelreg.graph;
            const box = (b) => ({x1: b.x1, y1: b.y1, x2: b.x2, y2: b.y2});
            return {
                nodes: cy.nodes().map(n => ({id: n.id(), label: n.data("label"), box: box(
                    n.renderedBoundingBox({includeLabels: true, includeOverlays: false}))})),
                edge_labels: cy.edges().filter(e => e.data("label")).map(e => ({id: e.id(),
                    box: box(e.renderedBoundingBox({includeNodes: false, includeEdges: false,
                                                    includeLabels: true}))})),
                width: cy.width(),
                height: cy.height(),
                zoom: cy.zoom(),
            };
        }"""
    )
    return found


def _apart(a: dict[str, float], b: dict[str, float]) -> bool:
    return a["x2"] <= b["x1"] or b["x2"] <= a["x1"] or a["y2"] <= b["y1"] or b["y2"] <= a["y1"]


def assert_labels_apart(layout: dict[str, Any]) -> None:
    """No two nodes (their labels included) overlap, no edge label overlaps a node or another
    edge label, and everything lies inside the graph's box."""
    shapes = [(n["id"], n["box"]) for n in layout["nodes"]]
    shapes += [(f"label of {e['id']}", e["box"]) for e in layout["edge_labels"]]
    for i, (one, a) in enumerate(shapes):
        for other, b in shapes[i + 1 :]:
            assert _apart(a, b), f"{one} {a} overlaps {other} {b}"
        inside = a["x1"] >= 0 and a["y1"] >= 0
        inside = inside and a["x2"] <= layout["width"] and a["y2"] <= layout["height"]
        assert inside, f"{one} {a} is outside the graph's {layout['width']}x{layout['height']}"


def one_line_rows(page: Page, table: str) -> list[float]:
    """How many lines tall each body row of ``table`` is: its height over one line of its
    cells' text, padding and border left out."""
    ratios: list[float] = page.locator(f"{table} tbody tr").evaluate_all(
        """rows => rows.map(row => {
            const cell = getComputedStyle(row.cells[0]);
            const chrome = parseFloat(cell.paddingTop) + parseFloat(cell.paddingBottom)
                + parseFloat(cell.borderBottomWidth);
            return (row.getBoundingClientRect().height - chrome) / parseFloat(cell.lineHeight);
        })"""
    )
    return ratios


def _serve(root: Path, live_server: LiveServer, *, auth: bool = False) -> tuple[LocalRegistry, str]:
    registry = LocalRegistry(root, actor="tester")
    return registry, live_server.mount(create_app(registry, auth=auth))


@pytest.fixture
def site(
    demo_root: Path,
    tmp_path: Path,
    live_server: LiveServer,
    page: Page,
    page_errors: PageErrors,
) -> Iterator[Site]:
    """The demo registry (a copy of its own) served without auth, and a browser page."""
    root = tmp_path / "reg"
    shutil.copytree(demo_root, root)
    registry, url = _serve(root, live_server)
    yield Site(registry, url, page, page_errors)
    registry.close()
    assert page_errors == [], page_errors  # no console error, exception or CSP violation


def test_models_page_lists_the_demo_models_and_searches(site: Site) -> None:
    page = site.open("/")
    rows = page.locator("#models tbody tr")
    assert rows.count() == len(demo.MODELS)
    main = page.locator("#models tbody tr", has_text=MAIN)
    assert "@production → 2" in main.inner_text()
    assert "@staging → 5" in main.inner_text()
    assert main.locator("td").nth(1).inner_text() == "5"  # versions
    screenshot(page, "models")
    # The search box takes the registry's search language.
    page.get_by_label("Search versions").fill("tags.team = 'food-quality'")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"\?q="))
    found = page.locator("#results tbody tr td:first-child a").all_inner_texts()
    assert sorted(found) == ["wine-classifier/1", "wine-classifier/2"]
    screenshot(page, "search")


def test_model_page_charts_every_metric_across_versions(site: Site) -> None:
    page = site.open(f"/models/{MAIN}")
    versions = site.registry.versions(MAIN)
    charts = {c["title"]: c for c in site.charts()}
    keys = sorted({k for v in versions for k in v.metrics})
    assert sorted(charts) == keys
    for key, chart in charts.items():
        having = sum(1 for v in versions if key in v.metrics)
        assert chart["points"] == having, key
        assert chart["labels"] == [key]
        assert chart["placed"], key
        assert chart["painted"] > 500, f"the {key} chart drew nothing"
    # x = time registered instead of version number
    page.get_by_label("X axis").select_option("time")
    redrawn = site.charts()
    assert all(c["time"] for c in redrawn)
    assert all(c["placed"] for c in redrawn)  # every time parsed into a point on the axis
    assert all(c["painted"] > 500 for c in redrawn)
    screenshot(page, "model")


def test_model_page_table_sorts_and_shows_alias_history(site: Site) -> None:
    page = site.open(f"/models/{MAIN}")
    numbers = page.locator("#versions tbody tr td:first-child").all_inner_texts()
    assert numbers == ["5", "4", "3", "2", "1"]
    page.locator("#versions thead a", has_text="val_accuracy").click()
    page.wait_for_url(re.compile(r"sort=metrics.val_accuracy"))
    shown = [r.split("/")[1] for r in page.locator("#versions tbody tr").evaluate_all(
        "rows => rows.map(r => r.dataset.ref)")]  # fmt: skip
    by_value = sorted(
        site.registry.versions(MAIN), key=lambda v: v.metrics["val_accuracy"], reverse=True
    )
    assert [v.metrics["val_accuracy"] for v in by_value] == [
        site.registry.get(f"{MAIN}/{n}").metrics["val_accuracy"] for n in shown
    ]
    history = page.locator("#alias-history tbody tr").all_inner_texts()
    production = [row for row in history if "@production" in row]
    assert [row.split("\t")[2] for row in production] == list(reversed(demo.PRODUCTION_MOVE))


def test_version_page_shows_what_made_it(site: Site) -> None:
    v = site.registry.get(MIDDLE)
    lineage = v.lineage or {}
    page = site.open(f"/models/{MAIN}/versions/{v.number}")
    assert page.get_by_role("heading", level=1).inner_text().startswith(MIDDLE)
    files = page.locator("#files").inner_text()
    for f in v.files:
        assert f.path in files
        assert f.digest in files
    datasets = page.locator("#datasets").inner_text()
    for d in lineage["datasets"]:
        assert d["digest"] in datasets
        assert d["role"] in datasets
    params = page.locator("#params").inner_text()
    assert f"warm_start_from\t{PARENT}" in params
    assert lineage["environment"]["python"] in page.locator("#environment").inner_text()
    assert lineage["run"]["name"] in page.locator("#run").inner_text()
    evaluations = page.locator("#evaluations").inner_text()
    assert demo.TEST_DATASETS[MAIN] in evaluations
    # One chart per key of the run's metric history, with every step.
    history = lineage["run"]["metric_history"]
    charts = {c["title"]: c for c in site.charts()}
    assert sorted(charts) == sorted(history)
    for key, points in history.items():
        assert charts[key]["points"] == len(points)
        assert charts[key]["painted"] > 500
    # A download link for each file, served as an attachment.
    with page.expect_download() as download:
        page.locator("#files a", has_text="Download").first.click()
    assert download.value.suggested_filename == v.files[0].path
    screenshot(page, "version")


def test_lineage_graph_has_the_expected_nodes_and_edges(site: Site) -> None:
    v = site.registry.get(MIDDLE)
    lineage = v.lineage or {}
    page = site.open(f"/models/{MAIN}/versions/{v.number}")
    page.wait_for_function("() => window.modelreg.graph !== null")
    graph = page.evaluate(
        """() => ({
            nodes: window.modelreg.graph.nodes().map(n => [n.id(), n.data("kind")]),
            edges: window.modelreg.graph.edges().map(e => [e.source().id(), e.target().id()]),
            placed: window.modelreg.graph.nodes().map(n => n.renderedPosition()),
        })"""
    )
    run = f"run:{lineage['run']['id']}"
    me, parent, child = f"version:{MIDDLE}", f"version:{PARENT}", f"version:{CHILD}"
    train = {
        f"dataset:{d['name']}@{d['digest']}" for d in lineage["datasets"]
    }  # train and validation
    tested = {
        f"dataset:{e['dataset']['name']}@{e['dataset']['digest']}"
        for e in site.registry.evaluations(MIDDLE)
    }
    assert dict(graph["nodes"]) == {
        me: "this",
        run: "run",
        parent: "parent",
        child: "child",
        **dict.fromkeys(train | tested, "dataset"),
    }
    assert sorted(map(tuple, graph["edges"])) == sorted(
        [(d, run) for d in train]
        + [(d, me) for d in tested]
        + [(run, me), (parent, me), (me, child)]
    )
    # Laid out top to bottom: datasets above the run, the run above the version, and so on.
    y = {node: p["y"] for (node, _), p in zip(graph["nodes"], graph["placed"], strict=True)}
    assert max(y[d] for d in train) < y[run] < y[me] < y[child]
    assert y[parent] < y[me]
    assert_labels_apart(graph_layout(page))
    screenshot(page, "lineage")
    # Each version node links to its page.
    page.evaluate(f"() => window.modelreg.graph.$id('{child}').emit('tap')")
    page.wait_for_url(re.compile(rf"/models/{MAIN}/versions/{CHILD.split('/')[1]}$"))


def test_a_crowded_lineage_graph_keeps_every_label_apart(
    tmp_path: Path, live_server: LiveServer, page: Page, page_errors: PageErrors
) -> None:
    """Six datasets with long names side by side, two parents and three children: every box
    and label stays clear of the others, a label too long for its box is cut with an
    ellipsis, and the node's tooltip gives it whole."""
    long = "customer-churn-features-2026-q3-with-extra-long-suffix"
    names = [f"{long}-{i}" for i in range(6)]
    for name in names:
        (tmp_path / f"{name}.csv").write_text(f"x\n{name}\n")
    (tmp_path / "m.bin").write_text("m")
    registry = LocalRegistry(tmp_path / "reg", actor="tester")
    try:
        for parent in ("base-model-one", "base-model-two"):
            registry.register(parent, tmp_path / "m.bin")
        with registry.start_run(name="a run with a fairly long name too") as run:
            datasets = [{"path": str(tmp_path / f"{n}.csv"), "name": n} for n in names]
            me = run.register("churn", tmp_path / "m.bin", datasets=datasets,
                              parents=["base-model-one/1", "base-model-two/1"])  # fmt: skip
        for _ in range(3):
            registry.register("churn", tmp_path / "m.bin", parents=[me.ref])
        url = live_server.mount(create_app(registry))
        page.goto(f"{url}/models/churn/versions/1")
        layout = graph_layout(page)
        assert len(layout["nodes"]) == 1 + 1 + 6 + 2 + 3
        assert_labels_apart(layout)
        labels = {n["id"]: n["label"] for n in layout["nodes"]}
        node = next(i for i in labels if i.startswith(f"dataset:{names[0]}@"))
        assert labels[node].startswith(names[0][:25] + "\u2026\n")  # cut, with its digest below
        screenshot(page, "lineage-crowded")
        # The whole label is the node's tooltip.
        where = page.evaluate(f"() => window.modelreg.graph.$id({node!r}).renderedPosition()")
        graph = page.locator("#lineage-graph")
        graph.hover(position={"x": where["x"], "y": where["y"]})
        digest = node.rpartition("@")[2]
        assert graph.get_attribute("title") == f"dataset: {names[0]} {digest[:12]}"
        assert page_errors == []
    finally:
        registry.close()


def test_the_versions_table_has_one_line_rows_and_scrolls_to_its_last_column(site: Site) -> None:
    page = site.open(f"/models/{MAIN}")
    ratios = one_line_rows(page, "#versions")
    assert len(ratios) == 5
    assert all(ratio < 1.5 for ratio in ratios), ratios  # one line each, alias badges too
    box = page.locator("#versions").locator("xpath=..")
    last = page.locator("#versions thead th").last
    assert last.inner_text() == "Status"

    def seen() -> float:
        """How much of the last column's header shows inside the table's box (0 to 1)."""
        shown: float = page.evaluate(
            """([box, cell]) => {
                const b = box.getBoundingClientRect(), c = cell.getBoundingClientRect();
                const width = Math.min(b.right, c.right) - Math.max(b.left, c.left);
                return Math.max(0, width) / c.width;
            }""",
            [box.element_handle(), last.element_handle()],
        )
        return shown

    # The demo's columns are wider than the page: the last ones are hidden, and the box says so.
    assert seen() == 0
    assert box.get_attribute("data-more") is not None
    # A sideways scroll over the table brings them into view, whole.
    box.hover()
    for _ in range(20):
        page.mouse.wheel(400, 0)
        if box.get_attribute("data-more") is None:
            break
    page.wait_for_function("(box) => !box.hasAttribute('data-more')", arg=box.element_handle())
    assert seen() == 1
    right = page.evaluate("(cell) => cell.getBoundingClientRect().right", last.element_handle())
    assert right <= page.viewport_size["width"]  # type: ignore[index]
    screenshot(page, "versions-scrolled")
    # From the keyboard too: the box takes the focus, and the arrow keys scroll it.
    page.evaluate("(box) => { box.scrollLeft = 0; }", box.element_handle())
    page.wait_for_function("(box) => box.hasAttribute('data-more')", arg=box.element_handle())
    box.focus()
    for _ in range(40):
        page.keyboard.press("ArrowRight")
    # (the browser scrolls smoothly: wait for the scroll to reach the end)
    page.wait_for_function("(box) => !box.hasAttribute('data-more')", arg=box.element_handle())
    assert seen() == 1


def test_the_search_box_suggests_a_search_that_matches_and_explains_the_language(
    site: Site,
) -> None:
    page = site.open("/")
    suggested = page.get_by_label("Search versions").get_attribute("placeholder")
    assert suggested
    assert site.registry.search(suggested)  # the suggestion matches the demo's versions
    page.get_by_label("Search versions").fill(suggested)
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"\?q="))
    found = page.locator("#results tbody tr td:first-child a").all_inner_texts()
    assert found == [v.ref for v in site.registry.search(suggested, order_by="created_at desc")]
    assert all(ratio < 1.5 for ratio in one_line_rows(page, "#results"))
    # The link beside the box explains the language, with examples that match.
    page = site.open("/")
    page.get_by_role("link", name="the search language").click()
    page.wait_for_url(re.compile("/search-language$"))
    language = page.locator("#language").inner_text()
    for part in ("metrics.KEY", "order by", "limit N", "and", "or", "not", "parentheses"):
        assert part in language
    examples = page.locator("#examples a")
    assert examples.count() == 2
    assert examples.first.inner_text() == suggested
    examples.nth(1).click()
    page.wait_for_url(re.compile(r"\?q=name"))
    assert page.locator("#results tbody tr").count() >= 1
    screenshot(page, "search-example")


def test_an_alias_url_shows_the_version_it_names(site: Site) -> None:
    page = site.open(f"/models/{MAIN}@production")
    heading = page.get_by_role("heading", level=1).inner_text()
    assert heading.startswith(demo.ALIASES[MAIN]["production"])


def test_compare_marks_changed_params_and_overlays_histories(site: Site) -> None:
    first, second = demo.PRODUCTION_MOVE
    page = site.open(f"/compare?v={first}&v={second}")
    changed = page.locator("#compare-params tr.changed").evaluate_all(
        "rows => rows.map(r => r.dataset.key)"
    )
    a, b = site.registry.get(first), site.registry.get(second)
    assert changed == sorted(k for k in a.params if a.params[k] != b.params.get(k))
    assert "C" in changed
    assert "changed" in page.locator('#compare-params tr[data-key="C"] th').inner_text()
    delta = b.metrics["val_accuracy"] - a.metrics["val_accuracy"]
    row = page.locator('#compare-metrics tr[data-key="val_accuracy"]').inner_text()
    assert f"{delta:+.4g}" in row
    screenshot(page, "compare")
    # The fine-tune chain: one chart per history key, one series per version.
    page = site.open(f"/compare?v={PARENT}&v={MIDDLE}&v={CHILD}")
    charts = {c["title"]: c for c in site.charts()}
    assert charts["train_loss"]["labels"] == [PARENT, MIDDLE, CHILD]
    for ref, count in zip(demo.CHAIN, charts["train_loss"]["values"], strict=True):
        history = (site.registry.get(ref).lineage or {})["run"]["metric_history"]["train_loss"]
        assert count == len(history)
    assert charts["train_loss"]["painted"] > 500
    screenshot(page, "compare-chain")


def test_datasets_pages_show_users_and_descendants(site: Site) -> None:
    page = site.open("/datasets")
    listed = page.locator("#datasets").inner_text()
    for d in site.registry.datasets():
        assert d.digest in listed
    screenshot(page, "datasets")
    first_half = (site.registry.get(PARENT).lineage or {})["datasets"]
    name = next(d["name"] for d in first_half if d["role"] == "train")
    page.locator("#datasets a", has_text=re.compile(f"^{name}$")).first.click()
    page.wait_for_url(re.compile(f"/datasets/{name}$"))
    rows = page.locator("#dependents tbody tr").evaluate_all(
        "rows => rows.map(r => [r.cells[0].innerText, r.dataset.relation])"
    )
    assert [PARENT, "direct"] in rows
    assert [CHILD, "descendant"] in rows  # through MIDDLE, a fine-tune of PARENT
    screenshot(page, "dataset")


def test_audit_page_verifies_and_filters(site: Site) -> None:
    page = site.open("/audit")
    page.wait_for_selector("#verify[data-done]")
    verdict = page.locator("#verify").inner_text()
    count = site.registry.verify_audit().events
    assert f"The chain of {count} events verifies" in verdict
    page.get_by_label("Entity").fill(MIDDLE)
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url(re.compile("entity="))
    entities = page.locator("#events tbody tr td:nth-child(5) a").all_inner_texts()
    assert entities
    assert set(entities) == {MIDDLE}
    screenshot(page, "audit")
    # An edited event is reported by the check of every event the page links to.
    site.registry.db.write(
        lambda conn: conn.exec_driver_sql("UPDATE audit_events SET actor = 'mallory' WHERE seq = 3")
    )
    page = site.open("/audit")
    page.wait_for_selector("#verify[data-done]")
    assert f"since event {count}, found sound before" in page.locator("#verify").inner_text()
    page.get_by_role("link", name="Re-hash every event").click()
    page.wait_for_url(re.compile("full=true"))
    page.wait_for_selector("#verify[data-done]")
    assert "does NOT verify at event 3" in page.locator("#verify").inner_text()
    screenshot(page, "audit-tampered")


def test_a_description_with_markup_shows_as_text(site: Site) -> None:
    payload = "<img src=x onerror=alert(1)>"
    site.registry.set_description(MIDDLE, payload)
    dialogs: list[str] = []
    site.page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page = site.open(f"/models/{MAIN}/versions/{MIDDLE.split('/')[1]}")
    assert page.locator("#description").inner_text() == payload
    assert page.locator("#description img").count() == 0
    assert dialogs == []
    screenshot(page, "escaped")


def test_pages_fit_a_phone_and_work_from_the_keyboard(site: Site) -> None:
    site.page.set_viewport_size({"width": 390, "height": 844})
    run_id = (site.registry.get(MIDDLE).lineage or {})["run"]["id"]
    for path in ["/", f"/models/{MAIN}", f"/models/{MIDDLE.replace('/', '/versions/')}",
                 "/experiments", "/experiments/0", f"/runs/{run_id}"]:  # fmt: skip
        page = site.open(path)
        overflow = page.evaluate(
            "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"{path} is {overflow}px wider than a phone"
    screenshot(site.page, "version-phone")
    page = site.open("/")
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.textContent") == "Skip to content"
    page.keyboard.press("Enter")  # past the navigation, into the page's content
    page.keyboard.press("Tab")
    focused = page.evaluate("() => document.activeElement.id")
    assert focused == "q"  # the search field, the first control of the page


# -- with auth on ---------------------------------------------------------------------------------


@pytest.fixture
def secured(
    demo_root: Path, tmp_path: Path, live_server: LiveServer, page: Page, page_errors: PageErrors
) -> Iterator[Site]:
    root = tmp_path / "reg"
    shutil.copytree(demo_root, root)
    registry, url = _serve(root, live_server, auth=True)
    yield Site(registry, url, page, page_errors)
    registry.close()
    assert [e for e in page_errors if "401" not in e] == [], page_errors


def sign_in(site: Site, secret: str, path: str) -> Page:
    page = site.page
    page.goto(site.url + path)
    page.wait_for_url(re.compile("/login"))
    page.get_by_label("Token").fill(secret)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(re.escape(path) + "$"))
    return page


def test_a_reader_signs_in_once_and_sees_no_write_controls(secured: Site) -> None:
    secret = secured.registry.create_token("auditor", role="reader")["token"]
    page = sign_in(secured, secret, f"/models/{MAIN}/versions/4")
    assert "auditor · reader" in page.locator("header").inner_text()
    assert page.locator("#write-controls").count() == 0
    assert page.locator("form[method=post]").count() == 1  # sign out, nothing else
    cookie = next(c for c in page.context.cookies() if c["name"] == "modelreg_session")
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Strict"
    assert page.evaluate("() => document.cookie") == ""  # scripts cannot read the session
    # The session carries on to every other page.
    assert secured.open(f"/models/{MAIN}").locator("#versions").count() == 1
    screenshot(page, "reader")


def test_a_writer_tags_a_version_from_the_page(secured: Site) -> None:
    secret = secured.registry.create_token("ci", role="writer")["token"]
    page = sign_in(secured, secret, f"/models/{MAIN}/versions/4")
    page.locator("#write-controls summary").click()
    page.get_by_label("Tag", exact=True).fill("reviewed")
    page.get_by_label("Value", exact=True).fill("yes")
    page.get_by_role("button", name="Set tag").click()
    page.wait_for_load_state()
    assert "reviewed\tyes" in page.locator("#tags").inner_text()
    assert secured.registry.get(f"{MAIN}/4").tags["reviewed"] == "yes"
    assert secured.registry.audit(entity=f"{MAIN}/4", action="tag.set")[0].actor == "ci"
    screenshot(page, "writer")


def test_the_sign_in_page_refuses_a_wrong_token(secured: Site) -> None:
    page = secured.page
    page.goto(secured.url + "/")
    page.get_by_label("Token").fill("mr_not-a-token")
    page.get_by_role("button", name="Sign in").click()
    assert "not valid" in page.get_by_role("alert").inner_text()
    screenshot(page, "login")


def test_the_api_documentation_loads_without_a_cdn_or_an_inline_script(site: Site) -> None:
    requested: list[str] = []
    site.page.on("request", lambda request: requested.append(request.url))
    response = site.page.goto(site.url + "/docs")
    assert response is not None
    assert response.headers["content-security-policy"] == CSP  # no 'unsafe-inline'
    page = site.page
    page.wait_for_selector(".opblock-tag")  # Swagger UI rendered the schema's sections
    # It renders only the operations near the viewport: scroll down to each one checked.
    for found in (
        page.locator("#operations-versions-delete_version_api_v1_versions__ref__delete"),
        page.locator(".opblock-tag", has_text="pages"),
    ):
        for _ in range(60):
            if found.count():
                break
            page.mouse.wheel(0, 1000)
            page.wait_for_timeout(100)
        assert found.count() == 1
    assert all(url.startswith((site.url, "data:")) for url in requested), requested
    assert site.errors == []  # nothing refused by the policy, no script error
    screenshot(page, "api-docs")


# -- on a team server's backends ------------------------------------------------------------------


def test_the_ui_over_postgresql_and_s3(
    postgres: Any,
    seaweedfs: Any,
    tmp_path: Path,
    live_server: LiveServer,
    page: Page,
    page_errors: PageErrors,
) -> None:
    """The same pages from a registry on PostgreSQL and SeaweedFS: charts, the lineage graph,
    and a file downloaded from the bucket through the page's link."""
    from modelreg.s3 import S3BlobStore

    blobs = S3BlobStore(str(seaweedfs.new_bucket()), client=seaweedfs.client())
    registry = LocalRegistry(db_url=str(postgres.new_database()), blobs=blobs, actor="tester")
    data = tmp_path / "train.csv"
    data.write_text("x,y\n1,0\n2,1\n")
    weights = tmp_path / "weights.bin"
    for number, lr in enumerate([0.1, 0.05], start=1):
        weights.write_bytes(b"weights %d " % number * 1000)
        with registry.start_run(name=f"train {number}", params={"lr": lr}) as run:
            run.use_dataset(data, name="train")
            for step in range(5):
                run.log_metric("loss", 1 / (step + 1 + number), step=step)
            run.register(
                "pg-model",
                weights,
                metrics={"accuracy": 0.8 + number / 20},
                parents=["pg-model/1"] if number == 2 else None,
            )
    registry.set_alias("pg-model", "production", "pg-model/2")
    site = Site(registry, live_server.mount(create_app(registry)), page, page_errors)
    try:
        site.open("/models/pg-model")
        # accuracy, and loss: a run's last value of each metric is the version's
        assert {c["title"]: c["points"] for c in site.charts()} == {"accuracy": 2, "loss": 2}
        page = site.open("/models/pg-model@production")
        page.wait_for_function("() => window.modelreg.graph !== null")
        nodes = page.evaluate("() => window.modelreg.graph.nodes().map(n => n.data('kind'))")
        assert sorted(nodes) == ["dataset", "parent", "run", "this"]
        assert {c["title"]: c["points"] for c in site.charts()} == {"loss": 5}
        with page.expect_download() as download:
            page.locator("#files a", has_text="Download").first.click()
        saved = tmp_path / "downloaded.bin"
        download.value.save_as(saved)
        assert saved.read_bytes() == b"weights 2 " * 1000
        screenshot(page, "version-postgresql-s3")
        assert page_errors == []
    finally:
        registry.close()


# -- experiments and runs -------------------------------------------------------------------------


def test_an_experiments_runs_sort_filter_open_and_compare(site: Site) -> None:
    """An experiment logged as MLflow clients log one: its runs table sorts by a metric on the
    server, takes MLflow's filter grammar (a bad filter says why), opens a run whose long
    history is charted downsampled, and compares two runs picked by their checkboxes."""
    reg = site.registry
    eid = new_experiment(reg, "sweep")
    for name, alpha, acc, steps in [("a", "0.1", 0.7, 1500), ("b", "0.2", 0.9, 200),
                                    ("c", "0.3", 0.8, 200)]:  # fmt: skip
        losses = [1 / (s + 1) + float(alpha) for s in range(steps)]
        track(reg, eid, name, params={"alpha": alpha}, metrics={"loss": losses, "acc": [acc]},
              tags={"team": "growth"})  # fmt: skip
    page = site.open("/experiments")
    row = page.locator("#experiments tbody tr", has_text="sweep")
    assert row.locator("td").nth(2).inner_text() == "3"
    screenshot(page, "experiments")
    row.get_by_role("link", name="sweep").click()
    page.wait_for_url(re.compile(rf"/experiments/{eid}$"))

    def names() -> list[str]:
        return page.locator("#runs tbody tr td:nth-child(2) a").all_inner_texts()

    assert names() == ["c", "b", "a"]  # newest first
    page.locator("#runs thead a", has_text=re.compile(r"^acc")).click()
    page.wait_for_url(re.compile(r"sort=metrics.acc&order=desc"))
    assert names() == ["b", "c", "a"]
    page.locator("#runs thead a", has_text=re.compile(r"^acc")).click()
    page.wait_for_url(re.compile(r"order=asc"))
    assert names() == ["a", "c", "b"]
    assert page.locator('#runs th[aria-sort="ascending"]').inner_text().startswith("acc")
    screenshot(page, "experiment-runs")
    # MLflow's filter grammar; the sort stays.
    page.get_by_label("Filter runs").fill("metrics.acc >= 0.8 and params.alpha != '0.3'")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"q=metrics"))
    assert names() == ["b"]
    page.get_by_label("Filter runs").fill("metrics.acc >")
    page.keyboard.press("Enter")
    page.wait_for_selector("#filter-error")
    assert "number" in page.get_by_role("alert").inner_text()
    assert page.locator("#runs").count() == 0
    screenshot(page, "experiment-bad-filter")
    assert all("400" in e for e in site.errors), site.errors  # the page's own status: 400
    site.errors.clear()
    # Pick two runs and compare them.
    page = site.open(f"/experiments/{eid}")
    page.get_by_label("Compare a", exact=True).check()
    page.get_by_label("Compare b", exact=True).check()
    page.get_by_role("button", name="Compare selected runs").click()
    page.wait_for_url(re.compile(r"/runs/compare\?r=\w+&r=\w+$"))
    changed = page.locator("#compare-params tr.changed").evaluate_all(
        "rows => rows.map(r => r.dataset.key)"
    )
    assert changed == ["alpha"]
    assert "changed" not in page.locator('#compare-tags tr[data-key="team"]').inner_text()
    charts = {c["title"]: c for c in site.charts()}
    assert len(charts["loss"]["labels"]) == 2
    assert sorted(charts["loss"]["values"]) == [200, 750]  # a's 1500 steps, two per point
    assert charts["loss"]["painted"] > 500
    screenshot(page, "compare-runs")
    # Open a run: its long history is charted as buckets' mean, min and max.
    page.locator("#compare-params").get_by_role("link", name=re.compile(r"^a \(")).click()
    page.wait_for_url(re.compile(r"/runs/[0-9a-f]{32}$"))
    assert page.get_by_role("heading", level=1).inner_text().startswith("a")
    assert "alpha\t0.1" in page.locator("#params").inner_text()
    charts = {c["title"]: c for c in site.charts()}
    assert charts["loss"]["labels"] == ["loss (mean of 2 points)", "min", "max"]
    assert charts["loss"]["points"] == 750
    assert charts["loss"]["placed"]
    assert charts["loss"]["painted"] > 500
    assert charts["acc"]["points"] == 1
    screenshot(page, "run")


def test_a_versions_training_run_opens_the_runs_page(site: Site) -> None:
    v = site.registry.get(MIDDLE)
    run = (v.lineage or {})["run"]
    page = site.open(f"/models/{MAIN}/versions/{v.number}")
    page.locator("#run a", has_text=run["name"]).click()
    page.wait_for_url(re.compile(rf"/runs/{run['id']}$"))
    assert page.get_by_role("heading", level=1).inner_text().startswith(run["name"])
    assert "Default" in page.locator(".crumbs").inner_text()  # the SDK's runs: experiment 0
    charts = {c["title"]: c for c in site.charts()}
    history = run["metric_history"]
    assert sorted(charts) == sorted(history)
    for key, points in history.items():
        assert charts[key]["points"] == len(points), key
        assert charts[key]["painted"] > 500, key
    assert MIDDLE in page.locator("#versions").inner_text()
    for d in (v.lineage or {})["datasets"]:
        assert d["digest"] in page.locator("#datasets").inner_text()
    screenshot(page, "run-sdk")
    page.locator("#versions a", has_text=MIDDLE).click()
    page.wait_for_url(re.compile(rf"/models/{MAIN}/versions/{v.number}$"))
