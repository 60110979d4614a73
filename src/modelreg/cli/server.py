"""``modelreg server``: the team server (JSON API) on uvicorn.

:mod:`modelreg.cli` mounts ``commands``. uvicorn and the server are imported only when the
command runs.
"""

from __future__ import annotations

import ipaddress
import os
import sys
from typing import Annotated

import typer

from modelreg.cli.support import Failure, Session, UsageProblem, warn

commands = typer.Typer()


@commands.command("server")
def server(
    ctx: typer.Context,
    host: Annotated[
        str, typer.Option("--host", metavar="HOST", help="Address to listen on.")
    ] = "127.0.0.1",
    port: Annotated[
        int, typer.Option("--port", min=0, max=65535, help="Port to listen on.")
    ] = 8080,
    db: Annotated[
        str | None,
        typer.Option(
            "--db",
            metavar="DB",
            help="The metadata store: a SQLite file or a postgresql:// URL. Default: the"
            " registry directory's (--registry).",
        ),
    ] = None,
    blobs: Annotated[
        str | None,
        typer.Option(
            "--blobs",
            metavar="BLOBS",
            help="The blob store: a directory or s3://bucket/prefix (endpoint from"
            " MODELREG_S3_ENDPOINT, credentials from AWS_*). Needed with --db.",
        ),
    ] = None,
    workers: Annotated[
        int, typer.Option("--workers", min=1, max=64, metavar="N", help="Server processes.")
    ] = 1,
    auth: Annotated[
        bool,
        typer.Option("--auth", help="Require a token (Authorization: Bearer) on every request."),
    ] = False,
    insecure_no_auth: Annotated[
        bool,
        typer.Option(
            "--insecure-no-auth",
            help="Serve a non-loopback address without auth: anyone who reaches it is admin.",
        ),
    ] = False,
) -> None:
    """Serve the registry over HTTP: the JSON API under /api/v1 (OpenAPI at /docs),
    /healthz and Prometheus /metrics.

    With no options it serves the embedded default registry (--registry, MODELREG_URI or
    ~/.modelreg) on 127.0.0.1:8080 without auth. Several servers may share one PostgreSQL
    database and one bucket. Make the first admin token with direct access to the store:
    modelreg --registry DIR_OR_DB_URL token create --name admin --role admin.
    """
    if not auth and not insecure_no_auth and not _is_loopback(host):
        raise UsageProblem(
            f"refusing to serve {host} without auth: pass --auth (clients send tokens), or"
            " --insecure-no-auth to let anyone who reaches it act as admin"
        )
    if (db is None) != (blobs is None):
        raise UsageProblem("--db and --blobs go together: give both, or neither")
    session = ctx.find_object(Session)
    root = session.uri if session is not None and session.uri else None
    if db is None:
        from modelreg.locations import default_uri

        root = root or default_uri()
        if root.startswith(("http://", "https://")):
            raise UsageProblem(f"{root} is a server already; serve a directory or a database")
    env = {
        "MODELREG_SERVER_ROOT": "" if db is not None else os.path.expanduser(str(root)),
        "MODELREG_SERVER_DB": db or "",
        "MODELREG_SERVER_BLOBS": blobs or "",
        "MODELREG_SERVER_AUTH": "1" if auth else "",
        "MODELREG_SERVER_ANY_HOST": "1" if insecure_no_auth else "",
    }
    os.environ.update(env)
    import uvicorn

    from modelreg.server.app import UVICORN_OPTIONS, app_from_environment

    application = app_from_environment()  # opens (and migrates) the store once, here
    registry = application.state.modelreg.registry
    if auth:
        count = len([t for t in registry.tokens() if not t["revoked_at"]])
        if count == 0:
            warn(
                "auth is on and no token exists yet: create one with"
                f" `modelreg --registry {registry.root or 'DB_URL'} token create --name admin"
                " --role admin`"
            )
    where = f"http://{host}:{port}"
    sys.stderr.write(f"serving {registry.uri} at {where} (auth {'on' if auth else 'off'})\n")
    sys.stderr.flush()
    try:
        if workers == 1:
            uvicorn.run(application, host=host, port=port, **UVICORN_OPTIONS)
        else:
            registry.close()
            uvicorn.run(
                "modelreg.server.app:app_from_environment",
                factory=True,
                host=host,
                port=port,
                workers=workers,
                **UVICORN_OPTIONS,
            )
    except SystemExit as exc:  # uvicorn exits 1 when it cannot bind
        raise Failure(f"the server stopped: could not serve {where}") from exc


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
