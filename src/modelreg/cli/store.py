"""The store as a whole: its audit log, its blobs (``fsck``, ``gc``, ``repack``) and example
content.

:mod:`modelreg.cli` mounts ``commands`` (``fsck``, ``gc``, ``repack``, ``demo``) and ``audit_app``
(``audit``, which reads the log itself and has ``audit verify``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from modelreg.cli.support import (
    Failure,
    JsonOption,
    check_ref,
    count,
    emit_json,
    open_registry,
    say,
)

if TYPE_CHECKING:
    from modelreg.records import RepackReport

commands = typer.Typer()
audit_app = typer.Typer()

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
    from modelreg.cli import render

    render.audit(events)


@audit_app.command("verify")
def audit_verify(
    ctx: typer.Context,
    full: Annotated[
        bool,
        typer.Option("--full", help="Re-hash every event, not only those since the last check."),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Check the audit log's hash chain from the last event a check found sound.

    Prints the event count and head hash; exits 1 naming the first bad event. --full re-hashes
    every event: an edit before the last check that left later hashes alone shows only then.
    """
    result = open_registry(ctx).verify_audit(full=full)
    if as_json:
        emit_json(result.to_dict())
    elif result.ok:
        new = result.events - result.since
        since = f" ({new} new since event {result.since}, found sound before; --full re-hashes all)"
        say(f"audit log ok: {result.events} events{since if result.since else ''},"
            f" head {result.head}")  # fmt: skip
    if not result.ok:
        raise Failure(f"audit log is broken at event {result.bad_seq}: {result.reason}")


@commands.command()
def fsck(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Check every stored blob against its digest, and every pack of chunks.

    Exits 1 listing the blobs and packs that are corrupt or missing.
    """
    report = open_registry(ctx).fsck()
    if as_json:
        emit_json(report)
    else:
        say(
            f"{count(report['blobs'], 'blob')}: {report['referenced']} referenced,"
            f" {report['unreferenced']} unreferenced"
        )
        say(f"{count(report['packs'], 'pack')} holding {count(report['chunks'], 'chunk')}")
        for digest in report["corrupt"]:
            say(f"corrupt: {digest}")
        for digest in report["missing"]:
            say(f"missing: {digest}")
        for digest in report["corrupt_packs"]:
            say(f"corrupt pack: {digest}")
        for digest in report["missing_packs"]:
            say(f"missing pack: {digest}")
        if report["missing_chunks"]:
            say(f"{count(report['missing_chunks'], 'chunk')} missing")
    if not report["ok"]:
        corrupt, missing = len(report["corrupt"]), len(report["missing"])
        found = [f"{corrupt} corrupt and {missing} missing blobs"]
        bad_packs, lost_packs = len(report["corrupt_packs"]), len(report["missing_packs"])
        if bad_packs or lost_packs:
            found.append(f"{bad_packs} corrupt and {lost_packs} missing packs")
        if report["missing_chunks"]:
            found.append(f"{count(report['missing_chunks'], 'chunk')} missing")
        raise Failure(f"fsck found {', '.join(found)}")
    if not as_json:
        say("ok")


@commands.command()
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
    """Delete blobs that no version references, and packs of chunks no file uses."""
    report = open_registry(ctx).gc(dry_run=dry_run, grace_seconds=grace)
    if as_json:
        emit_json(report)
        return
    verb = "would remove" if dry_run else "removed"
    for digest in report["removed"]:
        say(f"{verb}: {digest}")
    leftovers = count(report["temporaries_removed"], "leftover")
    say(
        f"{verb} {count(len(report['removed']), 'blob')}; kept {report['kept_recent']} recent"
        " unreferenced" + ("" if dry_run else f"; {leftovers} of interrupted writes removed")
    )
    removed, rewritten = len(report["packs_removed"]), len(report["packs_repacked"])
    if not (removed or rewritten):
        return
    packs, sparse = count(removed, "pack"), count(rewritten, "sparse pack")
    if dry_run:  # a dry run frees nothing, so it has no size to tell
        say(f"would remove {packs}, would rewrite {sparse}")
        return
    from modelreg.cli import render

    say(f"removed {packs}, rewrote {sparse}, freed {render.size(report['pack_bytes_freed'])}")


@commands.command()
def repack(
    ctx: typer.Context,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List what would be converted; change nothing.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Store large whole blobs (written before chunking) as deduplicated chunks in packs."""
    report = open_registry(ctx).repack(dry_run=dry_run)
    if as_json:
        emit_json(report)
    else:
        _say_repacked(report)
    if report["failed"]:
        raise Failure(
            f"repack could not convert {count(len(report['failed']), 'blob')} whose bytes do"
            " not match their digest: see modelreg fsck"
        )


def _say_repacked(report: RepackReport) -> None:
    from modelreg.cli import render

    dry_run = report["dry_run"]
    for digest in report["failed"]:
        say(f"failed: {digest}")
    if not report["converted"]:
        say("no whole blob of 8 MiB or more: nothing to convert")
        return
    verb = "would convert" if dry_run else "converted"
    for digest in report["converted"]:
        say(f"{verb}: {digest}")
    line = f"{verb} {count(len(report['converted']), 'blob')} ({render.size(report['bytes'])})"
    if not dry_run:
        line += f" into {render.size(report['pack_bytes'])} of new packs"
    say(line)


@commands.command()
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
