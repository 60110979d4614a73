"""Datasets: list the recorded ones, show one, find the versions made from it, and retire it.

:mod:`modelreg.cli` mounts ``commands`` (``datasets``) and ``dataset_app`` (``dataset``).
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from modelreg.cli.support import (
    DatasetRef,
    Failure,
    JsonOption,
    MarkdownOption,
    at_most_one,
    check_dataset_ref,
    check_reason,
    emit_json,
    help_if_bare,
    open_registry,
)

commands = typer.Typer()
dataset_app = typer.Typer()


@dataset_app.callback(invoke_without_command=True)
def dataset(ctx: typer.Context) -> None:
    """One dataset's versions, and the model versions made from them."""
    help_if_bare(ctx)


# -- datasets ------------------------------------------------------------------------------


@commands.command("datasets")
def datasets_list(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """List every recorded dataset version, with the other names of the same bytes."""
    found = open_registry(ctx).datasets()
    if as_json:
        emit_json([d.to_dict() for d in found])
        return
    from modelreg.cli import render

    render.datasets(found)


@dataset_app.command("show")
def dataset_show(ctx: typer.Context, ref: DatasetRef, as_json: JsonOption = False) -> None:
    """Show the recorded versions of a dataset: digest, the other names of the same bytes,
    URI, size, files, and when and why it was retired."""
    check_dataset_ref(ref)
    found = open_registry(ctx).dataset(ref)
    if as_json:
        emit_json([d.to_dict() for d in found])
        return
    from modelreg.cli import render

    render.dataset_versions(found)


@dataset_app.command("models")
def dataset_models(ctx: typer.Context, ref: DatasetRef, as_json: JsonOption = False) -> None:
    """Every version that used a dataset, and every version derived from those.

    A dataset is its bytes: versions that used the same bytes under another name are listed
    too (each row says the name it used), as retiring the dataset would flag them.
    """
    check_dataset_ref(ref)
    reg = open_registry(ctx)
    found = reg.dataset_models(ref)
    if as_json:
        emit_json(found)
        return
    from modelreg.cli import render

    others = sorted({name for d in reg.dataset(ref) for name in d.also_known_as})
    render.dataset_models(ref, found, others=others)


# -- retirement ----------------------------------------------------------------------------


@dataset_app.command("impact")
def dataset_impact(
    ctx: typer.Context,
    ref: DatasetRef,
    as_json: JsonOption = False,
    as_markdown: MarkdownOption = False,
) -> None:
    """What retiring a dataset touches, or touched: the versions and the aliases on them.

    Versions trained, validated, tested or evaluated on its bytes, under this name or any
    other the same bytes are recorded under, their descendants through parent links, and
    every alias pointing at one of them. Changes nothing.
    """
    at_most_one(json=as_json, markdown=as_markdown)
    check_dataset_ref(ref)
    report = open_registry(ctx).dataset_impact(ref)
    if as_json:
        emit_json(report)
        return
    if as_markdown:
        from modelreg import reports

        retired = all(d["retired"] for d in report["datasets"])
        sys.stdout.write(reports.retirement_markdown(report, dry_run=not retired))
        return
    from modelreg.cli import render_governance

    render_governance.retirement(report, mode="impact")


@dataset_app.command("retire")
def dataset_retire(
    ctx: typer.Context,
    ref: DatasetRef,
    reason: Annotated[
        str,
        typer.Option(
            "--reason",
            metavar="TEXT",
            help="Why it is withdrawn, e.g. the erasure request it answers (required).",
        ),
    ],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Report what would be flagged; change nothing.")
    ] = False,
    as_json: JsonOption = False,
    as_markdown: MarkdownOption = False,
) -> None:
    """Withdraw a dataset for good, and flag data-retired every version that depends on it.

    Retirement is about the bytes: the same bytes recorded under another name are retired
    with it, and the report names every name. The retirement is recorded and audited and
    cannot be undone. Flagged versions stay
    readable; "pull" warns about them, and "pull --strict" refuses them. Prints the affected
    versions and the aliases on them: the deployments to look at first.
    """
    at_most_one(json=as_json, markdown=as_markdown)
    check_dataset_ref(ref)
    text = check_reason(reason)
    report = open_registry(ctx).retire_dataset(ref, reason=text, dry_run=dry_run)
    if dry_run and all(d["retired"] for d in report["datasets"]):
        # What the real run would say: a dry run predicts the refusal too.
        raise Failure(f"dataset {ref!r} is already retired")
    if as_json:
        emit_json(report)
        return
    if as_markdown:
        from modelreg import reports

        sys.stdout.write(reports.retirement_markdown(report, dry_run=dry_run))
        return
    from modelreg.cli import render_governance

    render_governance.retirement(report, mode="dry-run" if dry_run else "retired", reason=text)
