"""The ``modelreg`` command line: a thin Typer skin over the Registry interface.

This module holds the app and its command groups, the root options and :func:`main`; the
commands live in one module per noun, each registering on the apps defined here:
``cli_versions`` (register, read, pull, tag, search, compare, lineage), ``cli_datasets``
(datasets and their retirement), ``cli_store`` (audit log, fsck, gc, demo), ``cli_evaluations``,
``cli_aliases`` (aliases, promotion policies, approvals), ``cli_trust`` (keys, signatures,
cards, traces, reproduction), ``cli_integrations`` (webhooks, MLflow import) and ``cli_tokens``
(API tokens for the team server). Their shared parsers and helpers are in ``cli_support``, the
human output in ``cli_render``.

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

from modelreg.cli_support import Failure, Session, UsageProblem, help_if_bare, say
from modelreg.errors import ModelregError

# Above this many bytes `pull` shows a progress bar even when stderr is not a terminal.
PROGRESS_THRESHOLD = 50 * 1024 * 1024

app = typer.Typer(
    name="modelreg",
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)
# The groups, in the order `modelreg --help` lists them (after the plain commands).
alias_app = typer.Typer()
tag_app = typer.Typer()
dataset_app = typer.Typer()
audit_app = typer.Typer()
policy_app = typer.Typer()
keys_app = typer.Typer()
webhook_app = typer.Typer()
import_app = typer.Typer()
token_app = typer.Typer()
app.add_typer(alias_app, name="alias")
app.add_typer(tag_app, name="tag")
app.add_typer(dataset_app, name="dataset")
app.add_typer(audit_app, name="audit")
app.add_typer(policy_app, name="policy")
app.add_typer(keys_app, name="keys")
app.add_typer(webhook_app, name="webhook")
app.add_typer(import_app, name="import")
app.add_typer(token_app, name="token")


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


@alias_app.callback(invoke_without_command=True)
def alias(ctx: typer.Context) -> None:
    """Move, check, roll back, delete and trace aliases (NAME@ALIAS)."""
    help_if_bare(ctx)


@tag_app.callback(invoke_without_command=True)
def tag(ctx: typer.Context) -> None:
    """Set and delete the tags of a version."""
    help_if_bare(ctx)


@dataset_app.callback(invoke_without_command=True)
def dataset(ctx: typer.Context) -> None:
    """One dataset's versions, and the model versions made from them."""
    help_if_bare(ctx)


@policy_app.callback(invoke_without_command=True)
def policy(ctx: typer.Context) -> None:
    """The promotion gates of an alias: what a version must pass to take it."""
    help_if_bare(ctx)


@keys_app.callback(invoke_without_command=True)
def keys(ctx: typer.Context) -> None:
    """Signing keys: create a key pair, and trust public keys for verification."""
    help_if_bare(ctx)


@webhook_app.callback(invoke_without_command=True)
def webhook(ctx: typer.Context) -> None:
    """Deliver registry events (the audit log) to CI/CD systems over HTTP, signed."""
    help_if_bare(ctx)


@import_app.callback(invoke_without_command=True)
def import_(ctx: typer.Context) -> None:
    """Copy models from another registry, keeping their ids in tags; re-runs copy what is new."""
    help_if_bare(ctx)


@token_app.callback(invoke_without_command=True)
def token(ctx: typer.Context) -> None:
    """API tokens for the team server: create one per client with a role, list, revoke."""
    help_if_bare(ctx)


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


if __name__ == "__main__":
    # Run as `python -m modelreg.cli`, this file is `__main__`, a copy of `modelreg.cli`; the
    # commands register on the app of `modelreg.cli` (imported afresh here), so run that one.
    from modelreg.cli import main as _main

    sys.exit(_main())

# Last, not at the top: each command module imports the apps from here and registers its
# commands on them as it runs, so this module must be fully defined by then. Importing them here
# means whoever imports modelreg.cli (the console script, the docs generator) gets every
# command; the order of these imports is the order of the commands in `modelreg --help`.
# isort: off
from modelreg import cli_versions  # noqa: E402, F401
from modelreg import cli_datasets  # noqa: E402, F401
from modelreg import cli_store  # noqa: E402, F401
from modelreg import cli_evaluations  # noqa: E402, F401
from modelreg import cli_aliases  # noqa: E402, F401
from modelreg import cli_trust  # noqa: E402, F401
from modelreg import cli_integrations  # noqa: E402, F401
from modelreg import cli_tokens  # noqa: E402, F401
from modelreg import cli_server  # noqa: E402, F401
# isort: on
