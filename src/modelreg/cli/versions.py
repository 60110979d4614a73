"""Versions: register one, list and read them, fetch their files, tag, describe, search,
compare and trace their lineage.

:mod:`modelreg.cli` mounts ``commands`` (the top-level commands) and ``tag_app`` (``tag``);
error handling and exit codes are its :func:`~modelreg.cli.main`'s. Nothing heavy is imported at
module level.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from modelreg.cli.support import (
    JsonOption,
    LimitOption,
    OffsetOption,
    UsageProblem,
    assignments,
    at_most_one,
    check_model_name,
    check_ref,
    check_time,
    count,
    emit_json,
    help_if_bare,
    metric_values,
    open_registry,
    parsed,
    private_key_file,
    public_key_file,
    say,
    warn,
    warnings_as_lines,
)
from modelreg.errors import ModelregError, RetiredDataWarning, SecretInCommandWarning

# Above this many bytes `register` and `pull` show a progress bar even when stderr is not a
# terminal. Read when a command runs, so a test may lower it.
PROGRESS_THRESHOLD = 50 * 1024 * 1024

commands = typer.Typer()
tag_app = typer.Typer()


@tag_app.callback(invoke_without_command=True)
def tag(ctx: typer.Context) -> None:
    """Set and delete the tags of a version."""
    help_if_bare(ctx)


# -- registering ---------------------------------------------------------------------------


def _total_size(files: Path | list[Path]) -> int:
    """The bytes a register call stores at most, for its progress bar (0 when unreadable:
    register then says what is wrong)."""
    from modelreg.manifest import collect_files

    try:
        return sum(p.stat().st_size for p in collect_files(files).values())
    except (ModelregError, OSError):
        return 0


@commands.command()
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
    Secret-looking arguments of the command line (a --registry URL's password, say) are
    recorded masked as *** with a warning naming them; MODELREG_COMMAND_REDACTION=keep
    records them as typed. The values of --param, --tag and --description are stored as
    given.
    """
    from modelreg.dataset_files import parse_cli_dataset
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
    options: dict[str, Any] = {
        "params": params,
        "metrics": metrics,
        "tags": tags,
        "datasets": datasets,
        "parents": parents,
        "description": description,
        "sign": key,
    }
    reg = open_registry(ctx)
    total = _total_size(files)
    # A secret on this command line (a --registry URL's password) is recorded masked: the
    # registry's warning says so in one line.
    with warnings_as_lines(SecretInCommandWarning):
        if total > PROGRESS_THRESHOLD or (total and sys.stderr.isatty()):
            from modelreg.cli import render

            with render.byte_progress(total, f"registering {name}") as advance:
                version = reg.register(name, files, progress=advance, **options)
        else:
            version = reg.register(name, files, **options)
    if as_json:
        emit_json(version.to_dict())
    else:
        say(f"{version.ref} {version.id}")
    from modelreg.transfer import RETIRED

    if RETIRED in version.flags:
        warn(
            f"{version.ref} is flagged data-retired: data it was trained or evaluated on, or"
            f" a parent's, was retired (see `modelreg card {version.ref}`)"
        )


# -- reading -------------------------------------------------------------------------------


@commands.command()
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
    from modelreg.cli import render

    render.models(found)


@commands.command()
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
    from modelreg.cli import render

    render.versions(found, empty=f"model {name!r} has no versions")


@commands.command()
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
    from modelreg.cli import render

    render.version(version)


@commands.command()
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
    overwritten unless --force is given. Nothing is written outside DIR. Pulled into a
    folder that holds another pulled version, it replaces it: that version's files the new
    one lacks are removed, unless they were changed since. A version flagged
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
    with warnings_as_lines(RetiredDataWarning):
        if version.size > PROGRESS_THRESHOLD or sys.stderr.isatty():
            from modelreg.cli import render

            with render.byte_progress(version.size, f"pulling {version.ref}") as advance:
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
    checked = ", signature verified" if signed else ""
    say(f"{version.ref}: {count(len(version.files), 'file')} in {root}{checked}")


# -- tags and descriptions -----------------------------------------------------------------


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


@commands.command()
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


@commands.command()
def delete(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(metavar="REF", help="The version: NAME/N or its UUID.")],
    reason: Annotated[
        str,
        typer.Option(
            "--reason",
            metavar="TEXT",
            help="Why it is deleted, e.g. the erasure request it answers (required).",
        ),
    ],
    as_json: JsonOption = False,
) -> None:
    """Delete a version: it is no longer listed, found or pulled, and gc frees its files.

    Its record stays (its number is never given again, the audit log keeps its manifest,
    and its children still name it as a parent), and reaching it says when, by whom and
    why it was deleted. Refused while an alias points at it: move the alias first.
    """
    from modelreg.refs import check_deletion_ref
    from modelreg.values import check_deletion_reason

    parsed(check_deletion_ref, ref)
    done = open_registry(ctx).delete_version(ref, reason=parsed(check_deletion_reason, reason))
    if as_json:
        emit_json(done)
        return
    say(
        f"deleted {done['ref']} ({done['id']}): {count(done['files'], 'file')},"
        f" freed by the next `modelreg gc` unless another version holds the same content"
    )


# -- search, compare, lineage --------------------------------------------------------------


@commands.command()
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
    after: Annotated[
        str | None,
        typer.Option(
            "--after",
            metavar="VERSION_ID",
            help="Start past this version (the id of the last one of the page before).",
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Find versions by params, metrics, tags and more."""
    from modelreg.errors import InvalidInput

    if model is not None:
        check_model_name(model)
    reg = open_registry(ctx)
    try:
        found = reg.search(filter, model=model, order_by=order_by, limit=limit, after=after)
    except InvalidInput as exc:  # a syntax error (with its column) in what was typed
        raise UsageProblem(f"search: {exc}") from None
    if as_json:
        emit_json([v.to_dict() for v in found])
        return
    from modelreg.cli import render

    render.versions(found, empty="no version matches")


@commands.command()
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
    from modelreg.cli import render

    render.comparison(diff)


@commands.command()
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
    from modelreg.cli import render

    render.lineage(found)
