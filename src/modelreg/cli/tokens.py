"""API tokens for the team server: create (the secret shown once), list, revoke.

:mod:`modelreg.cli` mounts ``token_app`` (``token``).
"""

from __future__ import annotations

from typing import Annotated

import typer

from modelreg.cli.support import (
    JsonOption,
    check_name,
    emit_json,
    help_if_bare,
    open_registry,
    parsed,
    say,
)

token_app = typer.Typer()


@token_app.callback(invoke_without_command=True)
def token(ctx: typer.Context) -> None:
    """API tokens for the team server: create one per client with a role, list, revoke."""
    help_if_bare(ctx)


TokenName = Annotated[str, typer.Argument(metavar="NAME", help="The token's name, e.g. ci.")]


@token_app.command("create")
def token_create(
    ctx: typer.Context,
    name: Annotated[
        str,
        typer.Option(
            "--name", metavar="NAME", help="Who or what the token is for, e.g. ci; never reused."
        ),
    ],
    role: Annotated[
        str,
        typer.Option(
            "--role",
            metavar="ROLE",
            help="reader (read, pull), writer (also register, tags, runs, datasets),"
            " maintainer (also aliases, approvals, dataset retirement) or admin (also tokens,"
            " keys, webhooks, fsck, gc).",
        ),
    ] = "reader",
    as_json: JsonOption = False,
) -> None:
    """Create an API token with a role and print its secret, once.

    Only a hash of the secret is kept: it cannot be shown again. Clients send it from the
    environment variable MODELREG_TOKEN. Against a server this needs an admin token; the
    first admin token is made with direct access to the store: "modelreg --registry
    DIR_OR_DB_URL token create --name admin --role admin".
    """
    from modelreg import tokens

    check_name(name, kind="token name")
    parsed(tokens.check_role, role)
    found = open_registry(ctx).create_token(name, role=role)
    if as_json:
        emit_json(found)
        return
    say(f"created token {found['name']} ({found['role']})")
    say(f"token: {found['token']}")
    say("(it will not be shown again: store it now, e.g. as MODELREG_TOKEN in a secret store)")


@token_app.command("list")
def token_list(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """List the tokens, revoked ones included.

    Each with its role, who created it and when, when it was revoked and last used, and the
    first characters of its secret to tell tokens apart; never the secrets themselves.
    """
    found = open_registry(ctx).tokens()
    if as_json:
        emit_json(found)
        return
    from modelreg.cli import render_governance

    render_governance.api_tokens(found)


@token_app.command("revoke")
def token_revoke(ctx: typer.Context, name: TokenName) -> None:
    """Revoke a token: it is refused from now on. Its name is kept and not reused.

    Revoking a revoked token changes nothing.
    """
    from modelreg.cli.render import when

    check_name(name, kind="token name")
    found = open_registry(ctx).revoke_token(name)
    say(
        f"revoked token {found['name']} ({found['role']})"
        f" at {when(found['revoked_at'])} by {found['revoked_by']}"
    )
