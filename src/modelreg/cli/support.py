"""What every CLI command shares: the registry session, input parsers, output helpers.

Parsers turn an InvalidInput into :class:`UsageProblem`, so that malformed input typed on the
command line exits 2 while a registry refusal exits 1 (see :func:`modelreg.cli.main`).
Nothing heavy is imported here: this module loads with ``modelreg --help``.
"""

from __future__ import annotations

import contextlib
import gc
import json
import sys
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

from modelreg.errors import InvalidInput

if TYPE_CHECKING:
    from typer._click import Context, HelpFormatter

T = TypeVar("T")


class Command(TyperCommand):
    """A command whose help names an argument as its usage line does, by its metavar alone:
    ``NAME``, ``PATH...``, ``[FILTER]``. (Typer writes ``{NAME}`` in the usage line and
    ``NAME <str>``, ``PATH <list[Path]>`` in the list, the Python type showing through.) An
    option given no metavar shows its name, ``--port PORT``, not ``--port <int range>``.

    ``cli/__init__.py`` makes every command of the app one of these.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for param in self.params:
            if not isinstance(param, TyperOption) or param.is_flag or param.count:
                continue
            if param.metavar is None and param.name:
                param.metavar = param.name.upper()
        check_plain_values_first(self.params)

    def get_help_option(self, ctx: Context) -> TyperOption | None:
        option = super().get_help_option(ctx)
        check_plain_values_first([option])
        return option

    def collect_usage_pieces(self, ctx: Context) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if isinstance(param, TyperArgument):
                name = _argument_name(param, repeat=False)
                name = name if param.required else f"[{name}]"
                pieces.append(name + ("..." if param.nargs != 1 else ""))
            else:
                pieces.extend(param.get_usage_pieces(ctx))
        return pieces

    def format_options(self, ctx: Context, formatter: HelpFormatter) -> None:
        arguments, options = [], []
        for param in self.get_params(ctx):
            record = param.get_help_record(ctx)
            if record is None:
                continue
            if isinstance(param, TyperArgument):
                arguments.append((_argument_name(param, repeat=True), record[1]))
            else:
                options.append(record)
        for title, rows in (("Arguments", arguments), ("Options", options)):
            if rows:
                with formatter.section(title):
                    formatter.write_dl(rows)


class Group(TyperGroup):
    """The app's root: its options' values are checked as a :class:`Command`'s are."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        check_plain_values_first(self.params)

    def get_help_option(self, ctx: Context) -> TyperOption | None:
        option = super().get_help_option(ctx)
        check_plain_values_first([option])
        return option


def check_plain_values_first(params: Sequence[Any]) -> None:
    """Let each parameter's value go through :class:`PlainValues` before Typer's own check.

    Typer (0.29) checks every value with a pydantic TypeAdapter, built on first use: every
    command, even ``show REF`` given one word, loads pydantic (about 70 ms, the most costly
    part of the CLI's start after SQLAlchemy) to hand back the str it was given. Where Typer
    keeps that check elsewhere, this does nothing and Typer checks as before.
    """
    for param in params:
        if getattr(param, "_runtime_param", False) is None and hasattr(param, "type_descriptor"):
            setattr(param, "_runtime_param", PlainValues())  # noqa: B010 (Typer's own slot)


class PlainValues:
    """Typer's check of one parameter's value, but for the values that need none.

    None, text for a ``str``, a whole number within bounds for an ``int``, and texts for a
    ``list[str]`` are returned as Typer would return them, without loading pydantic. Any
    other value (a path, a float, a choice, a number out of bounds, anything malformed) goes
    to Typer's own check, built on first use, so its result and its error are Typer's.
    """

    def __init__(self) -> None:
        self._typer: Any = None

    def coerce(self, value: Any, *, param: Any, ctx: Any) -> Any:
        plain = _plain_value(param, value)
        if plain is not _NOT_PLAIN:
            return plain
        if self._typer is None:
            from typer._coercion import build_runtime_param

            self._typer = build_runtime_param(param.type_descriptor)
        return self._typer.coerce(value, param=param, ctx=ctx)


_NOT_PLAIN = object()


def _plain_value(param: Any, value: Any) -> Any:
    many = param.multiple or param.nargs == -1
    if value is None:
        return () if many else None
    described = param.type_descriptor
    if described.parameter_info.parser is not None or described.file_annotation is not None:
        return _NOT_PLAIN
    kind = described.annotation
    if kind is str and not many and isinstance(value, str):
        return value
    if kind == list[str] and many and isinstance(value, (list, tuple)):
        return list(value) if all(isinstance(v, str) for v in value) else _NOT_PLAIN
    if kind is int and not many:
        if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) < 19:
            value = int(value)  # longer text goes to Typer's own check and error
        low, high = getattr(param, "min", None), getattr(param, "max", None)
        if type(value) is int and (low is None or value >= low) and (high is None or value <= high):
            return value
    return _NOT_PLAIN


def _argument_name(param: TyperArgument, *, repeat: bool) -> str:
    name = param.metavar or str(param.name).upper()
    return name + ("..." if repeat and param.nargs != 1 else "")


class UsageProblem(Exception):
    """Something typed on the command line is malformed; :func:`main` exits with 2."""


class Failure(Exception):
    """A command ran but found a problem (fsck, audit verify): exit 1 with this message."""


class Session:
    """The registry location given on the command line, opened on first use and closed
    when the command ends.

    ``last_in_process``: the process ends with the command, so what opening the registry set
    aside from the garbage collector (:func:`_spared_by_the_collector`) stays aside: given
    back, it would be walked once more as the interpreter exits (about 40 ms). A caller
    running commands in its own process gets it back when each command ends.
    """

    def __init__(self, uri: str | None, *, last_in_process: bool = False) -> None:
        self.uri = uri
        self.last_in_process = last_in_process
        self._registry: Any = None
        self._frozen = False

    def registry(self) -> Any:
        if self._registry is None:
            from modelreg.locations import connect

            with _spared_by_the_collector():
                self._registry = connect(self.uri)
            self._frozen = True
        return self._registry

    def close(self) -> None:
        close = getattr(self._registry, "close", None)
        if close is not None:
            close()
        self._registry = None
        if self._frozen and not self.last_in_process:
            gc.unfreeze()  # what _spared_by_the_collector set aside is the collector's again
            self._frozen = False


@contextlib.contextmanager
def _spared_by_the_collector() -> Iterator[None]:
    """Make objects that last as long as the command, out of the garbage collector's way.

    Opening a registry imports SQLAlchemy and the stores: some 90,000 objects, which the
    cyclic collector would walk over and over while they are made (about 50 ms, a sixth of
    ``modelreg show``). It is paused meanwhile, and once they are made they are set aside
    (``gc.freeze``) so that it does not walk them again; ``Session.close`` gives them back
    (``gc.unfreeze``) unless the process ends with the command. The few hundred cycles the
    imports leave unreachable wait until then.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
        gc.freeze()
    finally:
        if enabled:
            gc.enable()


def open_registry(ctx: typer.Context) -> Any:
    session = ctx.find_object(Session)
    if session is None:  # a command invoked without the root callback (not via main)
        session = Session(None)
        ctx.obj = session
        ctx.call_on_close(session.close)
    return session.registry()


def parsed(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Call a parser; an InvalidInput it raises is a usage error (exit 2), not a refusal."""
    try:
        return fn(*args, **kwargs)
    except InvalidInput as exc:
        raise UsageProblem(str(exc)) from None


def check_ref(text: str) -> str:
    from modelreg.refs import parse_ref

    parsed(parse_ref, text)
    return text


def check_model_name(text: str) -> str:
    return check_name(text, kind="model name")


def check_name(text: str, *, kind: str) -> str:
    """A name of something the registry keeps (a model, a dataset, a key, a webhook)."""
    from modelreg.refs import check_name

    return parsed(check_name, text, kind=kind)


def check_alias(text: str) -> str:
    from modelreg.refs import check_alias

    return parsed(check_alias, text)


def check_dataset_ref(text: str) -> str:
    from modelreg.datasets import parse_ref

    parsed(parse_ref, text)
    return text


def assignments(items: Sequence[str] | None, kind: str) -> dict[str, str]:
    from modelreg.values import parse_assignment

    out: dict[str, str] = {}
    for item in items or []:
        key, value = parsed(parse_assignment, item, kind=kind)
        if key in out:
            raise UsageProblem(f"--{kind} {key!r} is given twice")
        out[key] = value
    return out


def metric_values(items: Sequence[str] | None) -> dict[str, float]:
    """``--metric K=V`` options as numbers; a value that is not a number is a usage error."""
    from modelreg.values import check_metric

    return {
        key: parsed(check_metric, key, value) for key, value in assignments(items, "metric").items()
    }


def check_metric_name(text: str) -> str:
    from modelreg.values import check_key

    return parsed(check_key, text, kind="metric")


def evaluation_dataset(spec: str) -> dict[str, Any]:
    """``--dataset PATH[,name=N]`` of ``evaluate``: the data the metrics were measured on."""
    from modelreg.datasets import parse_cli_dataset

    if any(option.startswith("role=") for option in spec.split(",")[1:]):
        raise UsageProblem(f"--dataset {spec!r}: an evaluation has no role; the option is name=N")
    path, name, _ = parsed(parse_cli_dataset, spec)
    if "://" not in path and not Path(path).exists():
        raise UsageProblem(f"--dataset {spec!r}: path {path!r} does not exist")
    return {"path": path, "name": name}


def check_reason(text: str) -> str:
    from modelreg.values import check_reason

    return parsed(check_reason, text)


def at_most_one(**chosen: bool) -> None:
    """At most one of these options may be given (``--json`` or ``--markdown``, say); an
    underscore in a name stands for a dash (``verify_with`` is ``--verify-with``)."""
    given = [f"--{name.replace('_', '-')}" for name, on in chosen.items() if on]
    if len(given) > 1:
        raise UsageProblem(f"{' and '.join(given)} cannot be combined: choose one")


def override_reason(*, force: bool, reason: str | None) -> str | None:
    """``--force --reason TEXT`` of a move through a protected alias's gates. (Its length is
    the registry's to check: the limit lives there.)"""
    if reason is not None and not force:
        raise UsageProblem("--reason goes with --force: it is recorded only for an override")
    if not force:
        return None
    if reason is None or not reason.strip():
        raise UsageProblem("--force needs a --reason: overrides are audited with it")
    return reason


def private_key_file(path: Path | None) -> Any:
    """The Ed25519 private key in a PEM file named on the command line (None for None)."""
    from modelreg import signing

    return None if path is None else parsed(signing.load_private, path)


def public_key_file(path: Path | None) -> Any:
    """The Ed25519 public key in a PEM file named on the command line (None for None)."""
    from modelreg import signing

    return None if path is None else parsed(signing.load_public, path)


def help_if_bare(ctx: typer.Context) -> None:
    """A group given no sub-command prints its help (and exits 0), like ``modelreg`` alone."""
    if ctx.invoked_subcommand is None:
        say(ctx.get_help())
        raise typer.Exit()


def check_time(text: str | None) -> str | None:
    from datetime import datetime

    if text is None:
        return None
    try:
        datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UsageProblem(
            f"--at {text!r} is not an ISO 8601 time (e.g. 2026-11-01T12:00:00Z)"
        ) from None
    return text


def count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def emit_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, ensure_ascii=False, default=str) + "\n")


def say(line: str) -> None:
    sys.stdout.write(line + "\n")


def warn(message: str) -> None:
    """One line ``warning: <message>`` on stderr: the command goes on."""
    line = " ".join(part.strip() for part in message.splitlines())
    sys.stderr.write(f"warning: {line}\n")
    sys.stderr.flush()


@contextlib.contextmanager
def warnings_as_lines(*categories: type[Warning]) -> Iterator[None]:
    """Print the registry's warnings of ``categories`` as one line each (see :func:`warn`),
    once, and only when the block succeeds: a failure prints only its error line. Other
    warnings go back to the filters in force."""
    with warnings.catch_warnings(record=True) as caught:
        for category in categories:
            warnings.simplefilter("always", category)
        yield
    printed: set[str] = set()
    for item in caught:
        if issubclass(item.category, categories):
            if str(item.message) not in printed:
                printed.add(str(item.message))
                warn(str(item.message))
        else:  # not ours to reword
            warnings.warn_explicit(item.message, item.category, item.filename, item.lineno)


# Shared option declarations.
JsonOption = Annotated[
    bool, typer.Option("--json", help="Print machine-readable JSON instead of text.")
]
LimitOption = Annotated[
    int | None, typer.Option("--limit", min=1, metavar="N", help="Show at most N entries.")
]
OffsetOption = Annotated[
    int, typer.Option("--offset", min=0, metavar="N", help="Skip the first N entries.")
]
MarkdownOption = Annotated[
    bool, typer.Option("--markdown", help="Print the report as Markdown, e.g. for a ticket.")
]
DatasetRef = Annotated[
    str, typer.Argument(metavar="NAME[@DIGEST]", help="A dataset, optionally one version of it.")
]
ForceOption = Annotated[
    bool,
    typer.Option(
        "--force",
        help="Move it even if a gate of the protected alias fails (needs --reason; audited).",
    ),
]
OverrideReasonOption = Annotated[
    str | None,
    typer.Option(
        "--reason",
        metavar="TEXT",
        help="Why the gates are overridden; recorded in the audit log (with --force).",
    ),
]
