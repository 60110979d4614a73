"""Every connection the server accepts gets TCP_NODELAY, also with ``--workers``.

uvicorn's multi-process mode binds a socket that asyncio does not recognise as TCP, so
asyncio leaves Nagle's algorithm on; with the client's delayed ACK that adds about 40 ms to
each response on a kept-alive connection. ``modelreg server`` runs uvicorn with
:class:`NoDelayH11Protocol`, which sets the option itself.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest

from modelreg.cli import main
from modelreg.server.app import NoDelayH11Protocol, set_nodelay


class _Transport:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.sock if name == "socket" else default


def test_an_accepted_tcp_connection_gets_tcp_nodelay() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    client = socket.create_connection(listener.getsockname())
    accepted, _ = listener.accept()
    try:
        assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 0
        set_nodelay(_Transport(accepted))  # type: ignore[arg-type]
        assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
    finally:
        for s in (client, accepted, listener):
            s.close()


def test_the_server_command_runs_uvicorn_with_the_no_delay_protocol(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import uvicorn

    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda *args, **options: calls.append(options))
    for workers in ("1", "3"):
        assert main(["--registry", str(tmp_path / "reg"), "server", "--workers", workers]) == 0
    assert [c["http"] for c in calls] == [NoDelayH11Protocol, NoDelayH11Protocol]
    assert calls[1]["workers"] == 3
