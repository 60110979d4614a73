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

Start-up is kept cheap (``modelreg --help`` within 0.2 s, a read such as ``modelreg show`` on
an embedded registry within 0.5 s: benchmarks/bench_cli_startup.py). Nothing heavy is imported
at module level: the registry, SQLAlchemy and Rich's tables are imported inside the commands
that use them. :func:`main` builds only the command it runs (:func:`command_for`); values that
need no checking skip Typer's pydantic check (``support.PlainValues``); the objects made by
opening a registry are kept out of the garbage collector's walks (``support.Session``); and
the schema check is one query, with Alembic loaded only to migrate (``db.Database.migrate``).

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
from typing import Annotated, Any

import typer
from typer.core import TyperCommand
from typer.main import get_command_name

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
from modelreg.cli.support import (
    Command,
    Failure,
    Group,
    Session,
    UsageProblem,
    help_if_bare,
    say,
)
from modelreg.errors import ModelregError


def _new_app() -> typer.Typer:
    return typer.Typer(
        name="modelreg",
        cls=Group,
        add_completion=False,
        pretty_exceptions_enable=False,
        rich_markup_mode=None,
        context_settings={"help_option_names": ["-h", "--help"]},
    )


app = _new_app()


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
    session = Session(registry, last_in_process=ctx.obj is OWN_PROCESS)
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


def _commands_show_plain_metavars(group: typer.Typer) -> None:
    """Make every command of ``group`` and its sub-groups a :class:`support.Command`, whose
    help shows ``NAME`` and ``PATH...`` where Typer's own shows ``NAME <str>``."""
    for info in group.registered_commands:
        if info.cls in (None, TyperCommand):
            info.cls = Command
    for sub in group.registered_groups:
        if isinstance(sub.typer_instance, typer.Typer):
            _commands_show_plain_metavars(sub.typer_instance)


_commands_show_plain_metavars(app)


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


# The root's options that take a value: the command's name is the first word after them.
ROOT_VALUE_OPTIONS = ("--registry",)


def _invoked(args: Sequence[str]) -> str | None:
    """The command or group ``args`` name, None if they name none (``--help``, ``--version``)."""
    words = iter(args)
    for word in words:
        if word in ROOT_VALUE_OPTIONS:
            next(words, None)
        elif not word.startswith(ROOT_VALUE_OPTIONS):
            return None if word.startswith("-") else word
    return None


def _only(name: str) -> typer.Typer | None:
    """The app with its one command or group called ``name``; None if it has none."""
    only = _new_app()
    only.registered_callback = app.registered_callback
    for info in app.registered_groups:
        if info.name == name:
            only.registered_groups.append(info)
            return only
        mounted = info.typer_instance
        if isinstance(info.name, str) or mounted is None:
            continue
        for command in mounted.registered_commands:
            callback = command.callback
            called = command.name or (callback and get_command_name(callback.__name__))
            if called == name:
                lent = typer.Typer()  # mounted without a name, as the app's own Typers are
                lent.registered_commands.append(command)
                only.add_typer(lent)
                return only
    return None


def command_for(args: Sequence[str]) -> Any:
    """The Click command that runs ``args``: the app with only the command they name.

    Typer builds every command of the app (about 30 ms: each function's signature and type
    hints) before it runs one; its help and errors print the same either way. ``--help``, a
    bare ``modelreg`` and a name the app does not know get the whole app.
    """
    name = _invoked(args)
    only = _only(name) if name is not None else None
    return typer.main.get_command(only if only is not None else app)


# Given to the root as its context's object when the command is all its process runs.
OWN_PROCESS = "the command line's own process"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code (the console script exits with it).

    Without ``argv`` (the console script, ``python -m modelreg.cli``) the command is all its
    process runs: see ``support.Session``'s ``last_in_process``.
    """
    args = list(argv) if argv is not None else sys.argv[1:]
    command = command_for(args)
    start = OWN_PROCESS if argv is None else None
    try:
        result = command.main(args=args, prog_name="modelreg", standalone_mode=False, obj=start)
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
