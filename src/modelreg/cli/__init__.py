"""The ``modelreg`` command line: a thin Typer skin over the Registry interface.

This module creates the app, its root options and :func:`main`, and mounts the commands. They
live in one module per noun, each defining its own Typer groups and a ``commands`` Typer for its
top-level commands: ``versions`` (register, read, pull, tag, search, compare, lineage),
``datasets`` (datasets and their retirement), ``store`` (audit log, fsck, gc, demo),
``evaluations``, ``aliases`` (aliases, promotion policies, approvals), ``trust`` (keys,
signatures, cards, traces, reproduction), ``integrations`` (webhooks, MLflow import), ``tokens``
(API tokens for the team server) and ``server``. Their shared parsers and helpers are in
``support``, the human output in ``render`` and ``render_governance``. Nothing registers by
importing: the calls below mount each module's Typers, and no module of this package imports
this one (tests/test_structure.py checks it).

Start-up is kept cheap (``modelreg --help`` should take well under a third of a second), so
nothing heavy is imported at module level: the registry, SQLAlchemy and Rich's tables are
imported inside the commands that use them.

Every error becomes one line ``error: <message>`` on stderr, in :func:`main` alone. Exit codes:
0 ok; 1 a registry refusal (any ModelregError, an OSError) or a failed check (fsck, audit
verify, verify, alias check); 2 a usage error (Typer's own, or something the CLI parsed
itself: a reference, a ``--param`` or ``--dataset`` spec, a time, a search expression, a key
file).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Annotated

import typer

from modelreg.cli import (
    aliases,
    datasets,
    evaluations,
    integrations,
    server,
    store,
    tokens,
    trust,
    versions,
)
from modelreg.cli.support import Failure, Session, UsageProblem, help_if_bare, say
from modelreg.errors import ModelregError

app = typer.Typer(
    name="modelreg",
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _show_version(value: bool) -> None:
    if value:
        from modelreg import __version__

        say(f"modelreg {__version__}")
        raise typer.Exit()


@app.callback(invoke_without_command=True)
def root(
    ctx: typer.Context,
    registry: Annotated[
        str | None,
        typer.Option(
            "--registry",
            envvar="MODELREG_URI",
            metavar="URI",
            help="The registry to use: a directory, a database URL or a server URL."
            " Default: ~/.modelreg.",
        ),
    ] = None,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_show_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """modelreg: the system of record for trained models.

    Every version's files, params, metrics and lineage, with a tamper-evident audit log.
    """
    help_if_bare(ctx)
    session = Session(registry)
    ctx.obj = session
    ctx.call_on_close(session.close)


# The order of these calls is the order of `modelreg --help`: first the plain commands (a
# Typer mounted without a name lends its commands to the app), then the groups.
app.add_typer(versions.commands)
app.add_typer(datasets.commands)
app.add_typer(store.commands)
app.add_typer(evaluations.commands)
app.add_typer(aliases.commands)
app.add_typer(trust.commands)
app.add_typer(server.commands)
app.add_typer(aliases.alias_app, name="alias")
app.add_typer(versions.tag_app, name="tag")
app.add_typer(datasets.dataset_app, name="dataset")
app.add_typer(store.audit_app, name="audit")
app.add_typer(aliases.policy_app, name="policy")
app.add_typer(trust.keys_app, name="keys")
app.add_typer(integrations.webhook_app, name="webhook")
app.add_typer(integrations.import_app, name="import")
app.add_typer(tokens.token_app, name="token")


# -- entry point ---------------------------------------------------------------------------


def _fail(message: str, code: int) -> int:
    line = " ".join(part.strip() for part in message.splitlines())
    sys.stderr.write(f"error: {line}\n")
    sys.stderr.flush()
    return code


def _os_message(exc: OSError) -> str:
    if exc.strerror and exc.filename is not None:
        return f"{exc.strerror}: {exc.filename}"
    return str(exc)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code (the console script exits with it)."""
    command = typer.main.get_command(app)
    try:
        result = command.main(
            args=list(argv) if argv is not None else None,
            prog_name="modelreg",
            standalone_mode=False,
        )
    except UsageProblem as exc:
        return _fail(str(exc), 2)
    except Failure as exc:
        return _fail(str(exc), 1)
    except typer.TyperException as exc:  # Typer's usage errors (exit 2) and the like
        message = exc.format_message()
        context = getattr(exc, "ctx", None)
        if context is not None and exc.exit_code == 2:
            message = f"{message} (see '{context.command_path} --help')"
        return _fail(message, exc.exit_code)
    except typer.Abort:
        return _fail("aborted", 1)
    except ModelregError as exc:
        return _fail(str(exc), 1)
    except BrokenPipeError:
        _silence_stdout()
        return 1
    except OSError as exc:
        return _fail(_os_message(exc), 1)
    except Exception as exc:  # a bug: still one line, unless asked for the traceback
        if os.environ.get("MODELREG_DEBUG"):
            raise
        return _fail(
            f"internal error: {type(exc).__name__}: {exc} (MODELREG_DEBUG=1 shows more)", 1
        )
    return result if isinstance(result, int) else 0


def _silence_stdout() -> None:
    """After a closed pipe (``modelreg versions churn | head``), drop what is left to flush."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
