"""What makes a version trustworthy: signing keys and signatures, model cards, traces of a
deployed version, and reproducing a version from its record.

:mod:`modelreg.cli` mounts ``commands`` (``verify``, ``card``, ``trace``, ``reproduce``) and
``keys_app`` (``keys``).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from modelreg.cli.support import (
    Failure,
    JsonOption,
    UsageProblem,
    check_name,
    check_ref,
    count,
    emit_json,
    help_if_bare,
    open_registry,
    parsed,
    public_key_file,
    say,
    warn,
)

commands = typer.Typer()
keys_app = typer.Typer()


@keys_app.callback(invoke_without_command=True)
def keys(ctx: typer.Context) -> None:
    """Signing keys: create a key pair, and trust public keys for verification."""
    help_if_bare(ctx)


# -- signatures ----------------------------------------------------------------------------


@keys_app.command("create")
def keys_create(
    private: Annotated[
        Path,
        typer.Option(
            "--private", metavar="PATH", help="Where to write the private key (mode 0600)."
        ),
    ] = Path("modelreg-signing.key"),
    public: Annotated[
        Path, typer.Option("--public", metavar="PATH", help="Where to write the public key.")
    ] = Path("modelreg-signing.pub"),
) -> None:
    """Create an Ed25519 key pair for signing versions, as two PEM files.

    Existing files are never overwritten. Sign with "register --sign PRIVATE"; share the
    public key, and trust it with "keys trust NAME PUBLIC".
    """
    from modelreg import signing

    key_id = signing.create_keys(private, public)
    say(f"created signing key {key_id}")
    say(f"private key: {private} (keep it secret: whoever holds it signs as you)")
    say(f"public key:  {public}")


KeyName = Annotated[str, typer.Argument(metavar="NAME", help="The key's name, e.g. release.")]


@keys_app.command("trust")
def keys_trust(
    ctx: typer.Context,
    name: KeyName,
    pubkey: Annotated[
        Path, typer.Argument(metavar="PUBKEY", help="The Ed25519 public key, a PEM file.")
    ],
) -> None:
    """Trust a public key: "verify" and "pull --verify" accept versions it signed."""
    check_name(name, kind="key name")
    key = public_key_file(pubkey)
    found = open_registry(ctx).trust_key(name, key)
    say(f"trusted {found['name']}: key {found['key_id']}")


@keys_app.command("untrust")
def keys_untrust(ctx: typer.Context, name: KeyName) -> None:
    """Stop trusting a key: versions it signed no longer verify by trust alone."""
    check_name(name, kind="key name")
    found = open_registry(ctx).untrust_key(name)
    say(f"untrusted {found['name']}: key {found['key_id']}")


@keys_app.command("list")
def keys_list(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """List the trusted keys: name, key id, when and by whom each was added."""
    found = open_registry(ctx).trusted_keys()
    if as_json:
        emit_json(found)
        return
    from modelreg.cli import render_governance

    render_governance.trusted_keys(found)


@commands.command()
def verify(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(metavar="REF", help="The version, e.g. churn/4.")],
    key: Annotated[
        Path | None,
        typer.Option(
            "--key",
            metavar="PUBKEY",
            help="Check against this Ed25519 public key, a PEM file. Default: any key the"
            " registry trusts.",
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Check a version's signature against its stored records.

    What was signed is recomputed from what the registry holds, so an edited record fails.
    Exits 1 with the reason when the version is unsigned, signed by another key, or differs
    from what was signed.
    """
    check_ref(ref)
    public = public_key_file(key)
    reg = open_registry(ctx)
    result = reg.verify(ref, public_key=public)
    if as_json:
        emit_json(result)
    elif result["ok"]:
        names = {} if public is not None else {k["key_id"]: k["name"] for k in reg.trusted_keys()}
        trusted = f" (trusted as {names[result['key_id']]})" if result["key_id"] in names else ""
        say(f"{result['version']}: signature ok, key {result['key_id']}{trusted}")
    if not result["ok"]:
        raise Failure(f"{result['version']} failed signature verification: {result['reason']}")


# -- cards and traces ----------------------------------------------------------------------

CardFormatOption = Annotated[
    str, typer.Option("--format", metavar="FORMAT", help="md (Markdown, the default) or json.")
]


def _card_format(value: str) -> str:
    if value not in ("md", "json"):
        raise UsageProblem(f"--format {value!r} is invalid: use md or json")
    return value


@commands.command()
def card(
    ctx: typer.Context,
    ref: Annotated[
        str, typer.Argument(metavar="REF", help="NAME, NAME/N, NAME@ALIAS or a version UUID.")
    ],
    output_format: CardFormatOption = "md",
) -> None:
    """A model card for an auditor: everything recorded about one version.

    Identity, who registered it and when, aliases and their moves, params, metrics,
    evaluations, datasets with digests and retirement status, code, environment, parents
    and children, status flags, stored signatures and the version's audit events.
    """
    _card_format(output_format)
    check_ref(ref)
    found = open_registry(ctx).card(ref)
    if output_format == "json":
        emit_json(found)
        return
    from modelreg import reports

    sys.stdout.write(reports.card_markdown(found))


@commands.command()
def trace(
    ctx: typer.Context,
    target: Annotated[
        str,
        typer.Argument(
            metavar="TARGET",
            help="A version UUID, as a service logs it from modelreg.json; or that file, or"
            " the directory the version was pulled into.",
        ),
    ],
    output_format: CardFormatOption = "md",
) -> None:
    """The full lineage of a deployed version, through every parent.

    Every dataset that fed the model, directly or through an ancestor, with its digest and
    retirement status; each generation's parents, code and environment digest. A
    modelreg.json whose manifest digest the registry does not hold is refused.
    """
    _card_format(output_format)
    from modelreg.transfer import trace_target

    parsed(trace_target, target)  # a malformed UUID or marker is a usage error (exit 2)
    found = open_registry(ctx).trace(target)
    if output_format == "json":
        emit_json(found)
        return
    from modelreg import reports

    sys.stdout.write(reports.trace_markdown(found))


# -- reproduction --------------------------------------------------------------------------


@commands.command()
def reproduce(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(metavar="REF", help="The version, e.g. churn/4.")],
    to: Annotated[
        Path | None,
        typer.Option("--to", metavar="DIR", help="Write the recipe into DIR (new or empty)."),
    ] = None,
    run: Annotated[
        bool,
        typer.Option("--run", help="Carry the recipe out in a fresh virtualenv and compare."),
    ] = False,
    workdir: Annotated[
        Path | None,
        typer.Option(
            "--workdir",
            metavar="DIR",
            help="Where --run clones, installs and trains (new or empty; kept afterwards)."
            " Default: a new temporary directory.",
        ),
    ] = None,
    find_links: Annotated[
        list[Path] | None,
        typer.Option(
            "--find-links",
            metavar="DIR",
            help="With --run: let pip take wheels from DIR too (repeatable).",
        ),
    ] = None,
    no_index: Annotated[
        bool, typer.Option("--no-index", help="With --run: install from --find-links only.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Recreate a version from its record: write the recipe, or run it and compare.

    --to DIR writes recipe.json (repository, commit, command, params and seeds, datasets,
    Python), requirements.lock (every recorded package pinned), uncommitted.diff (when one was
    recorded), check_data.py (checks each dataset's digest) and reproduce.sh. --run checks the
    data (exit 1 naming the dataset that differs, before anything is installed), clones the
    commit and applies the diff, installs the lock with "pip install --no-deps" (from pip's
    cache or --find-links) and the running modelreg (a wheel packed from its own files: no
    build tools needed), runs the recorded command with every modelreg.connect() opening a
    scratch registry (whatever location the script names), and compares the new version
    with the registered one: exit 0 when identical byte for byte, 1 otherwise. Only a
    version registered in a run (reg.start_run) records enough to be reproduced.
    """
    check_ref(ref)
    if (to is None) == (not run):
        raise UsageProblem("give either --to DIR (write the recipe) or --run (carry it out)")
    if not run and (workdir is not None or find_links or no_index):
        raise UsageProblem("--workdir, --find-links and --no-index go with --run")
    reg = open_registry(ctx)
    if not run:
        recipe = reg.reproduce(ref, to=to)
        if as_json:
            emit_json(recipe)
            return
        say(f"wrote the recipe of {recipe['version']} to {to}:")
        for name in ("recipe.json", "requirements.lock", "uncommitted.diff", "check_data.py"):
            if name != "uncommitted.diff" or recipe["diff"]:
                say(f"  {name}")
        say(f"  reproduce.sh   (runs: {recipe['command']})")
        if recipe["masked"]:
            warn(
                f"the command was recorded with {', '.join(recipe['masked'])} masked as ***:"
                " give the secret again in reproduce.sh before running it"
            )
        return
    report = reg.reproduce(
        ref, run=True, workdir=workdir, find_links=find_links or [], no_index=no_index
    )
    if as_json:
        emit_json(report)
    else:
        new = report["reproduced"]
        taken = ", ".join(f"{step} {sec:.1f}s" for step, sec in report["timings"].items())
        say(f"{report['version']}: re-trained as {new['version']} in {report['workdir']}")
        say(f"manifest registered {report['manifest_digest']}")
        say(f"manifest reproduced {new['manifest_digest']}")
        for diff in report["differing_files"]:
            say(f"  differs: {diff['path']}")
        say(f"identical: {'true' if report['identical'] else 'false'} ({taken})")
    if not report["identical"]:
        raise Failure(
            f"{report['version']} did not reproduce: "
            f"{count(len(report['differing_files']), 'file')} differ"
        )
