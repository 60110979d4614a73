"""The ``modelreg`` command line: a thin Typer skin over the Registry interface.

Start-up is kept cheap (``modelreg --help`` should take well under a third of a second), so
nothing heavy is imported at module level: the registry, SQLAlchemy and Rich's tables are
imported inside the commands that use them, and the human output lives in ``cli_render``.
The governance commands (promotion gates, signatures, cards, webhooks, retirement,
evaluations) live in ``cli_governance``, on the same app.

Every error becomes one line ``error: <message>`` on stderr, in :func:`main` alone. Exit codes:
0 ok; 1 a registry refusal (any ModelregError, an OSError) or a failed check (fsck, audit
verify, verify, alias check); 2 a usage error (Typer's own, or something the CLI parsed
itself: a reference, a ``--param`` or ``--dataset`` spec, a time, a search expression, a key
file).
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer

from modelreg.cli_support import (
    DatasetRef,
    Failure,
    ForceOption,
    JsonOption,
    LimitOption,
    OffsetOption,
    OverrideReasonOption,
    Session,
    UsageProblem,
    assignments,
    at_most_one,
    check_alias,
    check_dataset_ref,
    check_model_name,
    check_ref,
    check_time,
    count,
    emit_json,
    help_if_bare,
    metric_values,
    open_registry,
    override_reason,
    parsed,
    private_key_file,
    public_key_file,
    say,
    warn,
)
from modelreg.errors import ModelregError, RetiredDataWarning

# Above this many bytes `pull` shows a progress bar even when stderr is not a terminal.
PROGRESS_THRESHOLD = 50 * 1024 * 1024

app = typer.Typer(
    name="modelreg",
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)
alias_app = typer.Typer()
tag_app = typer.Typer()
dataset_app = typer.Typer()
audit_app = typer.Typer()
app.add_typer(alias_app, name="alias")
app.add_typer(tag_app, name="tag")
app.add_typer(dataset_app, name="dataset")
app.add_typer(audit_app, name="audit")


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
            help="The registry to use: a directory. Default: ~/.modelreg.",
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


# -- registering ---------------------------------------------------------------------------


@app.command()
def register(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="The model's name, e.g. churn.")],
    paths: Annotated[
        list[Path],
        typer.Argument(
            metavar="PATH",
            exists=True,
            help="Files or directories. One directory: its contents, relative to it.",
        ),
    ],
    param: Annotated[
        list[str] | None,
        typer.Option("--param", metavar="K=V", help="A training parameter (repeatable)."),
    ] = None,
    metric: Annotated[
        list[str] | None,
        typer.Option("--metric", metavar="K=V", help="A metric; V is a number (repeatable)."),
    ] = None,
    tag: Annotated[
        list[str] | None, typer.Option("--tag", metavar="K=V", help="A tag (repeatable).")
    ] = None,
    dataset: Annotated[
        list[str] | None,
        typer.Option(
            "--dataset",
            metavar="PATH[,role=R][,name=N]",
            help="A dataset used, hashed from its contents; role is train (default),"
            " validation or test (repeatable).",
        ),
    ] = None,
    parent: Annotated[
        list[str] | None,
        typer.Option(
            "--parent", metavar="REF", help="A version this one derives from (repeatable)."
        ),
    ] = None,
    description: Annotated[
        str | None, typer.Option("--description", metavar="TEXT", help="What this version is.")
    ] = None,
    sign: Annotated[
        Path | None,
        typer.Option(
            "--sign",
            metavar="KEY",
            help='Sign the version with this Ed25519 private key, a PEM file (see "keys create").',
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Register a new version of a model from local files.

    Prints the new version's reference and UUID, e.g. "churn/3 6f1c...". With --sign, the
    signature is stored with the version: "verify" and "pull --verify" check it.
    """
    from modelreg.datasets import parse_cli_dataset
    from modelreg.values import check_description, check_params, check_tags

    check_model_name(name)
    params = parsed(check_params, assignments(param, "param"))
    metrics = metric_values(metric)
    tags = parsed(check_tags, assignments(tag, "tag"))
    parsed(check_description, description)
    datasets: list[dict[str, Any]] = []
    for spec in dataset or []:
        path, dataset_name, role = parsed(parse_cli_dataset, spec)
        if "://" not in path and not Path(path).exists():
            raise UsageProblem(f"--dataset {spec!r}: path {path!r} does not exist")
        datasets.append({"path": path, "name": dataset_name, "role": role})
    parents = [check_ref(p) for p in parent or []]
    key = private_key_file(sign)
    files: Path | list[Path] = paths[0] if len(paths) == 1 else list(paths)
    version = open_registry(ctx).register(
        name,
        files,
        params=params,
        metrics=metrics,
        tags=tags,
        datasets=datasets,
        parents=parents,
        description=description,
        sign=key,
    )
    if as_json:
        emit_json(version.to_dict())
    else:
        say(f"{version.ref} {version.id}")


# -- reading -------------------------------------------------------------------------------


@app.command()
def models(
    ctx: typer.Context,
    limit: LimitOption = None,
    offset: OffsetOption = 0,
    as_json: JsonOption = False,
) -> None:
    """List the models: versions, latest number, aliases, last update."""
    found = open_registry(ctx).models(limit=limit, offset=offset)
    if as_json:
        emit_json([m.to_dict() for m in found])
        return
    from modelreg import cli_render

    cli_render.models(found)


@app.command()
def versions(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="The model's name.")],
    limit: LimitOption = None,
    offset: OffsetOption = 0,
    as_json: JsonOption = False,
) -> None:
    """List the versions of a model, newest first."""
    check_model_name(name)
    found = open_registry(ctx).versions(name, limit=limit, offset=offset)
    if as_json:
        emit_json([v.to_dict() for v in found])
        return
    from modelreg import cli_render

    cli_render.versions(found, empty=f"model {name!r} has no versions")


@app.command()
def show(
    ctx: typer.Context,
    ref: Annotated[
        str, typer.Argument(metavar="REF", help="NAME, NAME/N, NAME@ALIAS or a version UUID.")
    ],
    at: Annotated[
        str | None,
        typer.Option(
            "--at",
            metavar="TIME",
            help="Resolve an alias as it was at this ISO 8601 time, e.g. 2026-11-01T12:00:00Z.",
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Show one version: params, metrics, tags, files, datasets and code."""
    from modelreg.refs import parse_ref

    if check_time(at) is not None and parsed(parse_ref, ref).alias is None:
        raise UsageProblem(f"--at applies to an alias (NAME@ALIAS), and {ref!r} is not one")
    check_ref(ref)
    version = open_registry(ctx).get(ref, at=at)
    if as_json:
        emit_json(version.to_dict())
        return
    from modelreg import cli_render

    cli_render.version(version)


@app.command()
def pull(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(metavar="REF", help="The version to fetch.")],
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", metavar="DIR", help="Where to write the files. Default: ./MODEL-N."
        ),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Overwrite files in DIR whose content differs.")
    ] = False,
    strict: Annotated[
        bool,
        typer.Option(
            "--strict", help="Refuse a version flagged data-retired (exit 1, write nothing)."
        ),
    ] = False,
    verify_with: Annotated[
        Path | None,
        typer.Option(
            "--verify-with",
            metavar="PUBKEY",
            help="Refuse the version (exit 1, write nothing) unless this Ed25519 public key,"
            " a PEM file, signed it.",
        ),
    ] = None,
    verify: Annotated[
        bool,
        typer.Option(
            "--verify",
            help="Refuse the version (exit 1, write nothing) unless a key the registry trusts"
            ' signed it (see "keys trust").',
        ),
    ] = False,
) -> None:
    """Write a version's files into a directory, verified.

    Files already present with the right content are kept; files that differ are not
    overwritten unless --force is given. Nothing is written outside DIR. A version flagged
    data-retired is pulled with a warning, or refused with --strict. With --verify or
    --verify-with, its signature is checked against its stored records before anything is
    written.
    """
    check_ref(ref)
    at_most_one(verify=verify, verify_with=verify_with is not None)
    key = public_key_file(verify_with)
    signed = verify or key is not None
    reg = open_registry(ctx)
    version = reg.get(ref)
    dest = output if output is not None else Path(f"{version.model}-{version.number}")
    # The registry warns about retired data; the CLI prints that as one line, not as Python's
    # warning text (and only once the pull succeeded: a failure prints only its error line).
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RetiredDataWarning)
        if version.size > PROGRESS_THRESHOLD or sys.stderr.isatty():
            from modelreg import cli_render

            with cli_render.byte_progress(version.size, f"pulling {version.ref}") as advance:
                # By id, so that an alias moved meanwhile cannot switch the version under us.
                root = reg.pull(
                    version.id,
                    dest,
                    force=force,
                    strict=strict,
                    progress=advance,
                    verify_with=key,
                    verify=verify,
                )
        else:
            root = reg.pull(
                version.id, dest, force=force, strict=strict, verify_with=key, verify=verify
            )
    for caught_warning in caught:
        if issubclass(caught_warning.category, RetiredDataWarning):
            warn(str(caught_warning.message))
        else:  # not ours to reword: hand it back to the warning filters in force
            warnings.warn_explicit(
                caught_warning.message,
                caught_warning.category,
                caught_warning.filename,
                caught_warning.lineno,
            )
    checked = ", signature verified" if signed else ""
    say(f"{version.ref}: {count(len(version.files), 'file')} in {root}{checked}")


# -- aliases, tags, descriptions -----------------------------------------------------------


@alias_app.command("set")
def alias_set(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="The model's name.")],
    alias: Annotated[str, typer.Argument(metavar="ALIAS", help="The alias, e.g. production.")],
    ref: Annotated[
        str, typer.Argument(metavar="REF", help="The version it should point at, e.g. churn/3.")
    ],
    force: ForceOption = False,
    reason: OverrideReasonOption = None,
) -> None:
    """Point NAME@ALIAS at a version of the same model.

    A protected alias (production, unless its policy says otherwise) first runs its gates:
    a failed one refuses the move (exit 1) naming the checks and their figures. A maintainer
    may override with --force --reason; the override is audited (action alias.override).
    """
    check_model_name(name)
    check_alias(alias)
    check_ref(ref)
    text = override_reason(force=force, reason=reason)
    version = open_registry(ctx).set_alias(name, alias, ref, force=force, reason=text)
    say(f"{name}@{alias} -> {version.ref}")


@alias_app.command("delete")
def alias_delete(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="The model's name.")],
    alias: Annotated[str, typer.Argument(metavar="ALIAS", help="The alias to delete.")],
) -> None:
    """Delete an alias (its history is kept)."""
    check_model_name(name)
    check_alias(alias)
    open_registry(ctx).delete_alias(name, alias)
    say(f"deleted {name}@{alias}")


@alias_app.command("history")
def alias_history(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="The model's name.")],
    alias: Annotated[str, typer.Argument(metavar="ALIAS", help="The alias.")],
    as_json: JsonOption = False,
) -> None:
    """Every move of an alias, oldest first."""
    check_model_name(name)
    check_alias(alias)
    events = open_registry(ctx).alias_history(name, alias)
    if as_json:
        emit_json(events)
        return
    from modelreg import cli_render

    cli_render.alias_history(f"{name}@{alias}", events)


@tag_app.command("set")
def tag_set(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(metavar="REF", help="The version.")],
    key: Annotated[str, typer.Argument(metavar="KEY", help="The tag's key.")],
    value: Annotated[str, typer.Argument(metavar="VALUE", help="The tag's value.")],
) -> None:
    """Set a tag on a version."""
    check_ref(ref)
    open_registry(ctx).set_tag(ref, key, value)
    say(f"{ref}: {key}={value}")


@tag_app.command("delete")
def tag_delete(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(metavar="REF", help="The version.")],
    key: Annotated[str, typer.Argument(metavar="KEY", help="The tag's key.")],
) -> None:
    """Delete a tag from a version."""
    check_ref(ref)
    open_registry(ctx).delete_tag(ref, key)
    say(f"{ref}: deleted tag {key}")


@app.command()
def describe(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(metavar="REF", help="The version.")],
    text: Annotated[
        str, typer.Argument(metavar="TEXT", help="The new description (empty to clear it).")
    ],
) -> None:
    """Set the description of a version."""
    check_ref(ref)
    open_registry(ctx).set_description(ref, text)
    say(f"{ref}: description set")


# -- search, compare, lineage --------------------------------------------------------------


@app.command()
def search(
    ctx: typer.Context,
    filter: Annotated[
        str,
        typer.Argument(
            metavar="FILTER",
            help='A filter in the search language, e.g. "metrics.accuracy > 0.9 and'
            " tags.team = 'growth'\". Empty matches every version.",
        ),
    ] = "",
    model: Annotated[
        str | None, typer.Option("--model", metavar="NAME", help="Only versions of this model.")
    ] = None,
    order_by: Annotated[
        str | None,
        typer.Option(
            "--order-by", metavar="EXPR", help='Sort order, e.g. "metrics.accuracy desc".'
        ),
    ] = None,
    limit: LimitOption = None,
    as_json: JsonOption = False,
) -> None:
    """Find versions by params, metrics, tags and more."""
    from modelreg.errors import InvalidInput

    if model is not None:
        check_model_name(model)
    reg = open_registry(ctx)
    try:
        found = reg.search(filter, model=model, order_by=order_by, limit=limit)
    except InvalidInput as exc:  # a syntax error (with its column) in what was typed
        raise UsageProblem(f"search: {exc}") from None
    if as_json:
        emit_json([v.to_dict() for v in found])
        return
    from modelreg import cli_render

    cli_render.versions(found, empty="no version matches")


@app.command()
def compare(
    ctx: typer.Context,
    a: Annotated[str, typer.Argument(metavar="REF", help="The version to compare from.")],
    b: Annotated[str, typer.Argument(metavar="REF", help="The version to compare to.")],
    as_json: JsonOption = False,
) -> None:
    """Show what changed between two versions.

    Params changed, added and removed; metrics with deltas; datasets whose digests differ;
    code commit; package changes; files added, removed and changed.
    """
    check_ref(a)
    check_ref(b)
    diff = open_registry(ctx).compare(a, b)
    if as_json:
        emit_json(diff)
        return
    from modelreg import cli_render

    cli_render.comparison(diff)


@app.command()
def lineage(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(metavar="REF", help="The version.")],
    as_json: JsonOption = False,
) -> None:
    """Show what made a version, and what was made from it.

    Parents, datasets, training run, code, environment, and children, as a tree.
    """
    check_ref(ref)
    found = open_registry(ctx).lineage(ref)
    if as_json:
        emit_json(found)
        return
    from modelreg import cli_render

    cli_render.lineage(found)


# -- datasets ------------------------------------------------------------------------------


@app.command("datasets")
def datasets_list(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """List every recorded dataset version."""
    found = open_registry(ctx).datasets()
    if as_json:
        emit_json([d.to_dict() for d in found])
        return
    from modelreg import cli_render

    cli_render.datasets(found)


@dataset_app.command("show")
def dataset_show(ctx: typer.Context, ref: DatasetRef, as_json: JsonOption = False) -> None:
    """Show the recorded versions of a dataset: digest, URI, size, files."""
    check_dataset_ref(ref)
    found = open_registry(ctx).dataset(ref)
    if as_json:
        emit_json([d.to_dict() for d in found])
        return
    from modelreg import cli_render

    cli_render.dataset_versions(found)


@dataset_app.command("models")
def dataset_models(ctx: typer.Context, ref: DatasetRef, as_json: JsonOption = False) -> None:
    """Every version that used a dataset, and every version derived from those."""
    check_dataset_ref(ref)
    found = open_registry(ctx).dataset_models(ref)
    if as_json:
        emit_json(found)
        return
    from modelreg import cli_render

    cli_render.dataset_models(ref, found)


# -- audit and maintenance -----------------------------------------------------------------


@audit_app.callback(invoke_without_command=True, subcommand_metavar="[verify]")
def audit(
    ctx: typer.Context,
    entity: Annotated[
        str | None, typer.Option("--entity", metavar="REF", help="Only events of this version.")
    ] = None,
    actor: Annotated[
        str | None, typer.Option("--actor", metavar="A", help="Only events by this actor.")
    ] = None,
    action: Annotated[
        str | None,
        typer.Option("--action", metavar="X", help="Only this action, e.g. alias.set."),
    ] = None,
    limit: Annotated[
        int, typer.Option("--limit", min=1, metavar="N", help="Show at most N events.")
    ] = 100,
    as_json: JsonOption = False,
) -> None:
    """Read the audit log, newest first; "audit verify" checks it."""
    if ctx.invoked_subcommand is not None:
        return
    if entity is not None:
        check_ref(entity)
    events = open_registry(ctx).audit(entity=entity, actor=actor, action=action, limit=limit)
    if as_json:
        emit_json([e.to_dict() for e in events])
        return
    from modelreg import cli_render

    cli_render.audit(events)


@audit_app.command("verify")
def audit_verify(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Check the audit log's hash chain.

    Prints the event count and head hash; exits 1 naming the first bad event.
    """
    result = open_registry(ctx).verify_audit()
    if as_json:
        emit_json(result.to_dict())
    elif result.ok:
        say(f"audit log ok: {result.events} events, head {result.head}")
    if not result.ok:
        raise Failure(f"audit log is broken at event {result.bad_seq}: {result.reason}")


@app.command()
def fsck(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Check every stored blob against its digest.

    Exits 1 listing the blobs that are corrupt or missing.
    """
    report = open_registry(ctx).fsck()
    if as_json:
        emit_json(report)
    else:
        say(
            f"{count(report['blobs'], 'blob')}: {report['referenced']} referenced,"
            f" {report['unreferenced']} unreferenced"
        )
        for digest in report["corrupt"]:
            say(f"corrupt: {digest}")
        for digest in report["missing"]:
            say(f"missing: {digest}")
    if not report["ok"]:
        corrupt, missing = len(report["corrupt"]), len(report["missing"])
        raise Failure(f"fsck found {corrupt} corrupt and {missing} missing blobs")
    if not as_json:
        say("ok")


@app.command()
def gc(
    ctx: typer.Context,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List what would be deleted; delete nothing.")
    ] = False,
    grace: Annotated[
        float,
        typer.Option(
            "--grace",
            min=0,
            metavar="SECONDS",
            help="Keep unreferenced blobs written within this many seconds.",
        ),
    ] = 3600,
    as_json: JsonOption = False,
) -> None:
    """Delete blobs that no version references."""
    report = open_registry(ctx).gc(dry_run=dry_run, grace_seconds=grace)
    if as_json:
        emit_json(report)
        return
    verb = "would remove" if dry_run else "removed"
    for digest in report["removed"]:
        say(f"{verb}: {digest}")
    say(
        f"{verb} {count(len(report['removed']), 'blob')}; kept {report['kept_recent']} recent"
        f" unreferenced; {count(report['temporaries_removed'], 'temporary file')} removed"
    )


@app.command()
def demo(ctx: typer.Context) -> None:
    """Fill the registry with a few example models to explore."""
    import importlib

    try:
        filler = importlib.import_module("modelreg.demo")
    except ImportError:
        raise Failure("the demo is not available in this installation") from None
    made = list(filler.fill(open_registry(ctx)))
    for ref in made:
        say(str(ref))
    say(f"made {count(len(made), 'version')}: try `modelreg models` and `modelreg lineage REF`")


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


# Last, not at the top: cli_governance registers its commands on `app` as it runs, and imports
# `app` from here, so this module must be fully defined by then. Importing it here means that
# whoever imports modelreg.cli (the console script, the docs generator) gets every command.
from modelreg import cli_governance  # noqa: E402, F401

if __name__ == "__main__":
    # Run as `python -m modelreg.cli`, this file is `__main__`, a copy of `modelreg.cli`:
    # the governance commands registered on the app of `modelreg.cli`, so run that one.
    from modelreg.cli import main as _main

    sys.exit(_main())
