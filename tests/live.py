"""A real HTTP server (uvicorn on a loopback port) for the tests of the remote registry.

One server runs for the whole session; each test points it at its own application (a fresh
registry) through :class:`Switch`, so that starting a test costs no new process or port.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn

from modelreg.server.app import UVICORN_OPTIONS


class Switch:
    """An ASGI application that hands each request to the application set last."""

    def __init__(self) -> None:
        self.app: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if self.app is None:
            raise RuntimeError("no application is mounted on the test server")
        await self.app(scope, receive, send)


class LiveServer:
    def __init__(self, switch: Switch, server: uvicorn.Server, url: str) -> None:
        self.switch = switch
        self.server = server
        self.url = url

    def mount(self, app: Any) -> str:
        self.switch.app = app
        return self.url


def start(app: Any) -> tuple[uvicorn.Server, threading.Thread, str]:
    """uvicorn serving ``app`` on a free loopback port, in a thread; returns its URL."""
    options = {**UVICORN_OPTIONS, "lifespan": "off", "access_log": False}
    config = uvicorn.Config(app, host="127.0.0.1", port=0, **options)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    return server, thread, f"http://127.0.0.1:{port}"


@pytest.fixture(scope="session")
def live_server() -> Iterator[LiveServer]:
    switch = Switch()
    server, thread, url = start(switch)
    try:
        yield LiveServer(switch, server, url)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
