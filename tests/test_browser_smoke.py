"""The browser test kit works: Chromium opens a page from the test server, the vendored
libraries load from the package under a strict Content-Security-Policy, and what goes wrong in
a page (a CSP violation, an exception, a missing file) reaches ``page_errors``."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

import modelreg.ui
from browser import PageErrors, screenshot
from live import LiveServer

if TYPE_CHECKING:
    from playwright.sync_api import Page

VENDOR = Path(modelreg.ui.__file__).parent / "static" / "vendor"
CSP = "default-src 'self'; script-src 'self'; style-src 'self'"

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Browser smoke test</title>
<link rel="icon" href="/favicon.svg">
<link rel="stylesheet" href="/vendor/uPlot.min.css">
<link rel="stylesheet" href="/vendor/cytoscape-container.css" id="__________cytoscape_stylesheet">
<link rel="stylesheet" href="/page.css">
<script src="/vendor/uPlot.iife.min.js"></script>
<script src="/vendor/cytoscape.min.js"></script>
<script src="/vendor/cytoscape-dagre.js"></script>
</head>
<body>
<h1>Vendored libraries</h1>
<div id="chart"></div>
<div id="graph"></div>
<p id="status">scripts did not run</p>
<script src="/page.js"></script>
</body>
</html>
"""

# Draws with each library, as the UI's pages will: a uPlot chart and a cytoscape graph laid
# out by dagre. Served from the page's own origin: under the CSP an inline script would not run.
PAGE_JS = """
new uPlot(
  {title: "loss", width: 600, height: 250, series: [{}, {label: "loss", stroke: "#1f77b4"}]},
  [[1, 2, 3, 4, 5], [0.9, 0.5, 0.35, 0.3, 0.28]],
  document.getElementById("chart"),
);
const cy = cytoscape({
  container: document.getElementById("graph"),
  elements: [
    {data: {id: "data"}}, {data: {id: "model"}}, {data: {id: "eval"}},
    {data: {id: "e1", source: "data", target: "model"}},
    {data: {id: "e2", source: "model", target: "eval"}},
  ],
  style: [{selector: "node", style: {label: "data(id)"}}],
  layout: {name: "dagre", rankDir: "LR"},
});
document.getElementById("status").textContent = "drawn " + cy.nodes().length + " nodes";
"""

# Without an icon Chromium asks for /favicon.ico, and the 404 is a console error.
FAVICON = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 1 1"><rect width="1" height="1"/></svg>'
)
PAGE_CSS = "#graph { width: 600px; height: 200px; border: 1px solid #ccc; }\n"

INLINE = """<!doctype html><html><head><title>inline</title><link rel="icon" href="/favicon.svg">
</head><body>
<p id="status">inline script blocked</p>
<script>document.getElementById("status").textContent = "inline script ran";</script>
<script src="/throws.js"></script>
<script src="/vendor/missing.js"></script>
</body></html>
"""


async def csp_headers(scope: Any, receive: Any, send: Any, app: Any) -> None:
    async def with_csp(message: Any) -> None:
        if message["type"] == "http.response.start":
            message.setdefault("headers", []).append((b"content-security-policy", CSP.encode()))
        await send(message)

    await app(scope, receive, with_csp)


def smoke_app() -> Any:
    def text(body: str, media_type: str) -> Any:
        async def endpoint(request: Request) -> Response:
            return Response(body, media_type=media_type)

        return endpoint

    async def page(request: Request) -> HTMLResponse:
        return HTMLResponse(PAGE)

    async def inline(request: Request) -> HTMLResponse:
        return HTMLResponse(INLINE)

    app = Starlette(
        routes=[
            Route("/", page),
            Route("/inline", inline),
            Route("/page.js", text(PAGE_JS, "text/javascript")),
            Route("/page.css", text(PAGE_CSS, "text/css")),
            Route("/favicon.svg", text(FAVICON, "image/svg+xml")),
            Route("/throws.js", text("throw new Error('thrown on purpose');", "text/javascript")),
            Mount("/vendor", StaticFiles(directory=VENDOR)),
        ]
    )

    async def asgi(scope: Any, receive: Any, send: Any) -> None:
        await csp_headers(scope, receive, send, app)

    return asgi


@pytest.fixture
def smoke_url(live_server: LiveServer) -> str:
    return live_server.mount(smoke_app())


def test_vendored_libraries_load_under_strict_csp(
    smoke_url: str, page: Page, page_errors: PageErrors
) -> None:
    response = page.goto(smoke_url + "/")
    assert response is not None
    assert response.headers["content-security-policy"] == CSP
    assert page.locator("h1").inner_text() == "Vendored libraries"
    assert page.locator("#status").inner_text() == "drawn 3 nodes"
    assert page.evaluate("typeof uPlot") == "function"
    assert page.evaluate("typeof cytoscape") == "function"
    assert page.evaluate("typeof cytoscapeDagre") == "function"
    assert page.locator("#chart canvas").count() == 1
    assert page.locator("#graph canvas").count() >= 1

    # cytoscape-dagre registered its layout on the global cytoscape when it loaded
    positions = page.evaluate(
        """() => {
            const cy = cytoscape({
                headless: true,
                elements: [
                    {data: {id: "a"}}, {data: {id: "b"}}, {data: {id: "c"}},
                    {data: {id: "ab", source: "a", target: "b"}},
                    {data: {id: "bc", source: "b", target: "c"}},
                ],
            });
            cy.layout({name: "dagre"}).run();
            return cy.nodes().map(n => n.position("y"));
        }"""
    )
    assert positions[0] < positions[1] < positions[2]  # top to bottom, one rank each

    screenshot(page, "browser-smoke")
    assert (Path(__file__).parent.parent / "test-output/screenshots/browser-smoke.png").is_file()
    assert page_errors == []


def test_page_errors_collect_csp_violations_exceptions_and_failed_loads(
    smoke_url: str, page: Page, page_errors: PageErrors
) -> None:
    page.goto(smoke_url + "/inline")
    assert page.locator("#status").inner_text() == "inline script blocked"
    kinds = "\n".join(page_errors)
    assert "Content Security Policy" in kinds, kinds
    assert "pageerror: Error: thrown on purpose" in kinds, kinds
    assert "404" in kinds, kinds
    assert len(page_errors) == 3, kinds


def test_asyncio_runs_in_a_test_after_the_browser() -> None:
    """Playwright's sync API marks its loop as running in the main thread; tests without the
    browser must still be able to start their own (this test runs after the ones above)."""

    async def answer() -> int:
        return 42

    assert asyncio.run(answer()) == 42
