"""The governance commands of ``modelreg``: who may move an alias, who signed a version, what
a deployed version was made of, who hears about changes, and which data may no longer be used.

Promotion gates (``alias check``, ``alias rollback``, ``policy``, ``approve``), signatures
(``keys``, ``verify``), cards and traces, webhooks, dataset retirement and evaluations. They
register on the app of :mod:`modelreg.cli`, which imports this module at its end; error
handling and exit codes are its :func:`~modelreg.cli.main`'s. As there, nothing heavy is
imported at module level.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from modelreg.cli import alias_app, app, dataset_app
from modelreg.cli_support import (
    DatasetRef,
    Failure,
    ForceOption,
    JsonOption,
    MarkdownOption,
    OverrideReasonOption,
    UsageProblem,
    at_most_one,
    check_alias,
    check_dataset_ref,
    check_metric_name,
    check_model_name,
    check_name,
    check_reason,
    check_ref,
    count,
    emit_json,
    evaluation_dataset,
    help_if_bare,
    metric_values,
    open_registry,
    override_reason,
    parsed,
    public_key_file,
    say,
)

policy_app = typer.Typer()
keys_app = typer.Typer()
webhook_app = typer.Typer()
app.add_typer(policy_app, name="policy")
app.add_typer(keys_app, name="keys")
app.add_typer(webhook_app, name="webhook")


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


# -- retirement ----------------------------------------------------------------------------


@dataset_app.command("impact")
def dataset_impact(
    ctx: typer.Context,
    ref: DatasetRef,
    as_json: JsonOption = False,
    as_markdown: MarkdownOption = False,
) -> None:
    """What retiring a dataset touches, or touched: the versions and the aliases on them.

    Versions trained, validated, tested or evaluated on it, their descendants through
    parent links, and every alias pointing at one of them. Changes nothing.
    """
    at_most_one(json=as_json, markdown=as_markdown)
    check_dataset_ref(ref)
    report = open_registry(ctx).dataset_impact(ref)
    if as_json:
        emit_json(report)
        return
    if as_markdown:
        from modelreg import retirement

        retired = all(d["retired"] for d in report["datasets"])
        sys.stdout.write(retirement.markdown(report, dry_run=not retired))
        return
    from modelreg import cli_render

    cli_render.retirement(report, mode="impact")


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

    The retirement is recorded and audited and cannot be undone. Flagged versions stay
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
        from modelreg import retirement

        sys.stdout.write(retirement.markdown(report, dry_run=dry_run))
        return
    from modelreg import cli_render

    cli_render.retirement(report, mode="dry-run" if dry_run else "retired", reason=text)


# -- evaluations ---------------------------------------------------------------------------


@app.command()
def evaluate(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(metavar="REF", help="The version evaluated.")],
    dataset: Annotated[
        str,
        typer.Option(
            "--dataset",
            metavar="PATH[,name=N]",
            help="The data it was evaluated on, hashed from its contents (required).",
        ),
    ],
    metric: Annotated[
        list[str],
        typer.Option(
            "--metric", metavar="K=V", help="A metric; V is a number (required, repeatable)."
        ),
    ],
    as_json: JsonOption = False,
) -> None:
    """Record a version's metrics on a dataset.

    Evaluate versions on the same data to compare them with "leaderboard" and "trend".
    """
    check_ref(ref)
    use = evaluation_dataset(dataset)
    metrics = metric_values(metric)
    found = open_registry(ctx).evaluate(ref, use, metrics=metrics)
    if as_json:
        emit_json(found)
        return
    from modelreg import cli_render

    cli_render.evaluation(found)


@app.command()
def evaluations(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(metavar="REF", help="The version.")],
    as_json: JsonOption = False,
) -> None:
    """List the evaluations of a version, oldest first."""
    check_ref(ref)
    found = open_registry(ctx).evaluations(ref)
    if as_json:
        emit_json(found)
        return
    from modelreg import cli_render

    cli_render.evaluations(ref, found)


EvaluationDataset = Annotated[
    str,
    typer.Option(
        "--dataset",
        metavar="NAME[@DIGEST]",
        help="The dataset compared on; NAME alone means its newest version (required).",
    ),
]
EvaluationMetric = Annotated[
    str, typer.Option("--metric", metavar="M", help="The metric, e.g. accuracy (required).")
]


@app.command()
def leaderboard(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="The model's name.")],
    dataset: EvaluationDataset,
    metric: EvaluationMetric,
    lower_is_better: Annotated[
        bool, typer.Option("--lower-is-better", help="Rank the smallest value first (a loss).")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Rank a model's versions by a metric on exactly one dataset version.

    Each version counts with its latest evaluation on that digest; evaluations on other
    versions of the dataset are left out.
    """
    check_model_name(name)
    check_dataset_ref(dataset)
    check_metric_name(metric)
    board = open_registry(ctx).leaderboard(
        name, dataset=dataset, metric=metric, higher_is_better=not lower_is_better
    )
    if as_json:
        emit_json(board)
        return
    from modelreg import cli_render

    cli_render.leaderboard(board)


@app.command()
def trend(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="The model's name.")],
    dataset: EvaluationDataset,
    metric: EvaluationMetric,
    as_json: JsonOption = False,
) -> None:
    """A metric of a model's versions on one dataset version, over time."""
    check_model_name(name)
    check_dataset_ref(dataset)
    check_metric_name(metric)
    series = open_registry(ctx).metric_trend(name, dataset=dataset, metric=metric)
    if as_json:
        emit_json(series)
        return
    from modelreg import cli_render

    cli_render.trend(series)


# -- promotion gates -----------------------------------------------------------------------

ModelName = Annotated[str, typer.Argument(metavar="NAME", help="The model's name.")]
AliasName = Annotated[str, typer.Argument(metavar="ALIAS", help="The alias, e.g. production.")]


@alias_app.command("rollback")
def alias_rollback(
    ctx: typer.Context,
    name: ModelName,
    alias: AliasName,
    force: ForceOption = False,
    reason: OverrideReasonOption = None,
) -> None:
    """Move an alias back to the version it pointed at before.

    The move goes through the alias's gates like any other; --force --reason overrides them.
    """
    check_model_name(name)
    check_alias(alias)
    text = override_reason(force=force, reason=reason)
    version = open_registry(ctx).rollback_alias(name, alias, force=force, reason=text)
    say(f"{name}@{alias} -> {version.ref} (rolled back)")


@alias_app.command("check")
def alias_check(
    ctx: typer.Context,
    name: ModelName,
    alias: AliasName,
    ref: Annotated[str, typer.Argument(metavar="REF", help="The candidate, e.g. churn/4.")],
    as_json: JsonOption = False,
) -> None:
    """Run the gates of NAME@ALIAS on a version without moving anything.

    Prints each check, ok or FAILED, with the figures that decided it; exits 1 when one
    fails.
    """
    check_model_name(name)
    check_alias(alias)
    check_ref(ref)
    result = open_registry(ctx).check_promotion(name, alias, ref)
    label = f"{name}@{alias}"
    checks = result["checks"]
    failed = [c["name"] for c in checks if not c["ok"]]
    if as_json:
        emit_json(result)
    elif not result["protected"]:
        say(f"{label} is not protected: any version of {name} may take it")
    else:
        width = max((len(c["name"]) for c in checks), default=0)
        for c in checks:
            say(f"{'ok' if c['ok'] else 'FAILED':<6}  {c['name']:<{width}}  {c['detail']}")
        if not checks:
            say(f"{label} is protected but checks nothing")
    if failed:
        raise Failure(
            f"{ref} may not take {label}: {count(len(failed), 'check')} failed"
            f" ({', '.join(failed)})"
        )
    if not as_json and result["protected"]:
        say(f"{ref} may take {label}")


@policy_app.command("set")
def policy_set(
    ctx: typer.Context,
    name: ModelName,
    alias: AliasName,
    metric: Annotated[
        str | None,
        typer.Option(
            "--metric",
            metavar="M",
            help="Require a version no worse on this metric than the alias's current one,"
            " both evaluated on the same dataset digest.",
        ),
    ] = None,
    dataset: Annotated[
        str | None,
        typer.Option(
            "--dataset",
            metavar="NAME",
            help="Compare on evaluations on this dataset only. Default: the dataset the"
            " current version was last evaluated on with the metric.",
        ),
    ] = None,
    lower_is_better: Annotated[
        bool, typer.Option("--lower-is-better", help="The metric is a loss: smaller is better.")
    ] = False,
    min_margin: Annotated[
        float,
        typer.Option(
            "--min-margin",
            min=0,
            metavar="X",
            help="Require the version to be better by at least X (needs --metric).",
        ),
    ] = 0.0,
    approvals: Annotated[
        int,
        typer.Option(
            "--approvals",
            min=0,
            metavar="N",
            help='Require approvals by N different people (see "approve").',
        ),
    ] = 0,
    allow_retired: Annotated[
        bool,
        typer.Option("--allow-retired", help="Let a version flagged data-retired take it."),
    ] = False,
    unprotect: Annotated[
        bool,
        typer.Option(
            "--unprotect",
            help="Lift every gate: any version may take the alias (production is protected"
            " by default).",
        ),
    ] = False,
) -> None:
    """Set the promotion gates of NAME@ALIAS, replacing its policy.

    Options not given take their defaults: a protected alias refuses a version flagged
    data-retired and checks nothing else. The gates run on every move ("alias set", "alias
    rollback"); "alias check" runs them on a version without moving anything.
    """
    import math

    from modelreg import promotion

    check_model_name(name)
    check_alias(alias)
    if metric is not None:
        check_metric_name(metric)
    if dataset is not None:
        check_name(dataset, kind="dataset name")
    if not math.isfinite(min_margin):
        raise UsageProblem(f"--min-margin {min_margin} is not a finite number")
    gates = {
        "--metric": metric is not None,
        "--dataset": dataset is not None,
        "--lower-is-better": lower_is_better,
        "--min-margin": min_margin > 0,
        "--approvals": approvals > 0,
        "--allow-retired": allow_retired,
    }
    if unprotect and any(gates.values()):
        given = ", ".join(option for option, on in gates.items() if on)
        raise UsageProblem(f"--unprotect lifts every gate: it cannot be combined with {given}")
    if metric is None:
        needs = [o for o in ("--dataset", "--lower-is-better", "--min-margin") if gates[o]]
        if needs:
            raise UsageProblem(f"{' and '.join(needs)} compare on a metric: give --metric too")
    checked = parsed(
        promotion.Policy.checked,
        protected=not unprotect,
        block_retired=not allow_retired,
        metric=metric,
        dataset=dataset,
        higher_is_better=not lower_is_better,
        min_margin=min_margin,
        approvals=approvals,
    )
    found = open_registry(ctx).set_policy(name, alias, **checked.to_dict())
    _say_policy(f"{name}@{alias}", found)


@policy_app.command("show")
def policy_show(
    ctx: typer.Context, name: ModelName, alias: AliasName, as_json: JsonOption = False
) -> None:
    """Show the promotion gates of NAME@ALIAS.

    With --json: the policy's options, or null when the alias is not protected.
    """
    check_model_name(name)
    check_alias(alias)
    found = open_registry(ctx).policy(name, alias)
    if as_json:
        emit_json(found)
        return
    _say_policy(f"{name}@{alias}", found)


def _say_policy(label: str, policy: dict[str, Any] | None) -> None:
    if policy is None or not policy["protected"]:
        say(f"{label} is not protected: any version of the model may take it")
        return
    gates = []
    if policy["block_retired"]:
        gates.append("not flagged data-retired")
    if policy["metric"] is not None:
        margin = policy["min_margin"]
        than = f"better by at least {margin:g} than" if margin else "no worse than"
        on = policy["dataset"] or "the same data"
        better = "higher" if policy["higher_is_better"] else "lower"
        gates.append(
            f"{than} the current version in {policy['metric']}, evaluated on {on}"
            f" ({better} is better)"
        )
    if policy["approvals"]:
        n = policy["approvals"]
        gates.append(f"approved by {n} different {'person' if n == 1 else 'people'}")
    if not gates:
        say(f"{label} is protected but checks nothing: any version of the model may take it")
        return
    say(f"{label} is protected: a version must be")
    for gate in gates:
        say(f"  {gate}")


@app.command()
def approve(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(metavar="REF", help="The version, e.g. churn/4.")],
    alias: Annotated[
        str,
        typer.Option(
            "--alias",
            metavar="ALIAS",
            help="The protected alias of its model it is approved for (required).",
        ),
    ],
) -> None:
    """Approve a version for a protected alias, as yourself (your user name).

    Counts toward the --approvals of the alias's policy; one approval per person. Prints
    everyone who has approved the version for that alias.
    """
    check_ref(ref)
    check_alias(alias)
    approvers = open_registry(ctx).approve(ref, alias=alias)
    n = len(approvers)
    who = f"{n} {'person' if n == 1 else 'people'}"
    say(f"{ref} is approved for {alias} by {who}: {', '.join(approvers)}")


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
    from modelreg import cli_render

    cli_render.trusted_keys(found)


@app.command()
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


@app.command()
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
    from modelreg import cards

    sys.stdout.write(cards.markdown(found))


@app.command()
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
    from modelreg.cards import trace_target

    parsed(trace_target, target)  # a malformed UUID or marker is a usage error (exit 2)
    found = open_registry(ctx).trace(target)
    if output_format == "json":
        emit_json(found)
        return
    from modelreg import cards

    sys.stdout.write(cards.trace_markdown(found))


# -- reproduction --------------------------------------------------------------------------


@app.command()
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
    cache or --find-links) and modelreg from the source the running modelreg came from, runs
    the recorded command with MODELREG_URI set to a scratch registry, and compares the new
    version with the registered one: exit 0 when identical byte for byte, 1 otherwise. Only a
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


# -- webhooks ------------------------------------------------------------------------------

WebhookName = Annotated[str, typer.Argument(metavar="NAME", help="The webhook's name, e.g. ci.")]


@webhook_app.command("add")
def webhook_add(
    ctx: typer.Context,
    name: WebhookName,
    url: Annotated[
        str,
        typer.Argument(
            metavar="URL", help="Where to POST events, e.g. https://ci.example.com/hooks/modelreg."
        ),
    ],
    action: Annotated[
        list[str] | None,
        typer.Option(
            "--action",
            metavar="A",
            help="Deliver only this action (alias.set), the actions with this prefix (alias.)"
            " or * for every event (repeatable; default *).",
        ),
    ] = None,
    secret: Annotated[
        str | None,
        typer.Option(
            "--secret",
            metavar="S",
            help="The secret that signs the deliveries: 16 to 256 printable characters."
            " Default: a random one.",
        ),
    ] = None,
) -> None:
    """Deliver registry events from now on to a URL, signed with a secret.

    Each event of the audit log whose action matches is POSTed as JSON, with the header
    X-Modelreg-Signature (HMAC-SHA256 by the secret); "webhook deliver" sends them and
    retries failures. Prints the secret once: it will not be shown again. Non-https URLs and
    private addresses are refused unless the host is listed in MODELREG_WEBHOOK_ALLOW_HOSTS
    (comma-separated host names, IP addresses or networks).
    """
    from modelreg import webhooks

    check_name(name, kind="webhook name")
    actions = parsed(webhooks.check_actions, action or ["*"])
    if secret is not None:
        parsed(webhooks.check_secret, secret)
    found = open_registry(ctx).add_webhook(name, url, actions=actions, secret=secret)
    say(f"added webhook {found['name']}: {found['url']} ({', '.join(found['actions'])})")
    say(f"secret: {found['secret']}")
    say("(it will not be shown again: give it to the receiver, which checks signatures with it)")


@webhook_app.command("list")
def webhook_list(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """List the webhooks: URL, actions, events waiting for delivery (never the secrets)."""
    found = open_registry(ctx).webhooks()
    if as_json:
        emit_json(found)
        return
    from modelreg import cli_render

    cli_render.webhooks(found)


@webhook_app.command("remove")
def webhook_remove(ctx: typer.Context, name: WebhookName) -> None:
    """Remove a webhook and its delivery log; events not yet delivered are dropped."""
    check_name(name, kind="webhook name")
    found = open_registry(ctx).remove_webhook(name)
    pending = found["pending"]
    dropped = f"; {count(pending, 'undelivered event')} dropped" if pending else ""
    say(f"removed webhook {found['name']} ({found['url']}){dropped}")


@webhook_app.command("deliver")
def webhook_deliver(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Run one delivery pass: send the events due to every webhook, schedule retries.

    Run it from a timer (cron, a systemd timer). A failed send is retried later with a
    growing delay; after the last attempt the event is marked failed and the webhook moves
    on. Prints how many events were delivered, will be retried, failed, or are waiting.
    """
    counts = open_registry(ctx).deliver_webhooks()
    if as_json:
        emit_json(counts)
        return
    say(
        f"{count(counts['webhooks'], 'webhook')}: {counts['delivered']} delivered,"
        f" {counts['retrying']} to retry, {counts['failed']} failed,"
        f" {counts['waiting']} waiting for a retry"
    )


@webhook_app.command("deliveries")
def webhook_deliveries(
    ctx: typer.Context,
    name: Annotated[
        str | None, typer.Argument(metavar="NAME", help="Only this webhook's deliveries.")
    ] = None,
    limit: Annotated[
        int,
        typer.Option("--limit", min=1, max=10_000, metavar="N", help="Show at most N attempts."),
    ] = 100,
    as_json: JsonOption = False,
) -> None:
    """The delivery log, newest attempt first: event, attempt, outcome, HTTP status, error."""
    if name is not None:
        check_name(name, kind="webhook name")
    found = open_registry(ctx).webhook_deliveries(name, limit=limit)
    if as_json:
        emit_json(found)
        return
    from modelreg import cli_render

    cli_render.webhook_deliveries(found)


# -- import from other registries ------------------------------------------------------------

import_app = typer.Typer()
app.add_typer(import_app, name="import")


@import_app.callback(invoke_without_command=True)
def import_(ctx: typer.Context) -> None:
    """Copy models from another registry, keeping their ids in tags; re-runs copy what is new."""
    help_if_bare(ctx)


@import_app.command("mlflow")
def import_mlflow(
    ctx: typer.Context,
    tracking_uri: Annotated[
        str,
        typer.Option(
            "--tracking-uri",
            metavar="URI",
            help="The MLflow tracking server, e.g. http://127.0.0.1:5000 (--serve-artifacts).",
        ),
    ],
    models: Annotated[
        list[str] | None,
        typer.Option(
            "--model",
            metavar="NAME",
            help="Import only this MLflow model (repeatable). Default: every registered model.",
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Copy registered models from MLflow: versions in order, aliases, tags, descriptions, each
    version's run (params, full metric history) and artifacts, verified by digest.

    Names become valid modelreg names (``Churn Model`` -> ``churn-model``; the original is in
    the ``mlflow.model_name`` tag). Versions already imported are skipped; aliases re-synced.
    """
    from modelreg import mlflow_import
    from modelreg.cli_support import warn

    uri = parsed(mlflow_import.check_tracking_uri, tracking_uri)
    report = mlflow_import.import_mlflow(open_registry(ctx), uri, models=models or None)
    if as_json:
        emit_json(report)
        return
    for line in report["warnings"]:
        warn(line)
    for item in report["imported"]:
        say(f"imported {item['model']} version {item['mlflow_version']} as {item['version']}")
    for move in report["aliases"]:
        protected = " (protected: moved with --force)" if move["protected"] else ""
        say(f"{move['alias']} -> {move['to']}{protected}")
    say(
        f"{count(len(report['imported']), 'version')} imported,"
        f" {len(report['skipped'])} already there, {len(report['aliases'])} alias moves"
    )
