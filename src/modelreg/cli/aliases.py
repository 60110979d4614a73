"""Aliases and their promotion gates: move, check, roll back, delete and trace an alias; set
its policy; approve a version for it.

:mod:`modelreg.cli` mounts ``commands`` (``approve``), ``alias_app`` (``alias``) and
``policy_app`` (``policy``).
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from modelreg.cli.support import (
    Failure,
    ForceOption,
    JsonOption,
    OverrideReasonOption,
    UsageProblem,
    check_alias,
    check_metric_name,
    check_model_name,
    check_name,
    check_ref,
    count,
    emit_json,
    help_if_bare,
    open_registry,
    override_reason,
    parsed,
    say,
)

commands = typer.Typer()
alias_app = typer.Typer()
policy_app = typer.Typer()


@alias_app.callback(invoke_without_command=True)
def alias(ctx: typer.Context) -> None:
    """Move, check, roll back, delete and trace aliases (NAME@ALIAS)."""
    help_if_bare(ctx)


@policy_app.callback(invoke_without_command=True)
def policy(ctx: typer.Context) -> None:
    """The promotion gates of an alias: what a version must pass to take it."""
    help_if_bare(ctx)


# -- moving aliases ------------------------------------------------------------------------


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
    from modelreg.cli import render

    render.alias_history(f"{name}@{alias}", events)


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
    overrides: Annotated[
        str,
        typer.Option(
            "--overrides",
            metavar="WHO",
            help="Who may move the alias past failing gates with --force: 'allowed' (any"
            " maintainer, with a reason), 'approved' (a maintainer, once someone else has"
            " approved the version for the alias) or 'forbidden' (nobody).",
        ),
    ] = "allowed",
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
        "--overrides": overrides != "allowed",
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
        overrides=overrides,
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
    say(
        {
            "allowed": "A maintainer may override failing gates (--force with a reason).",
            "approved": "A maintainer may override failing gates once someone else has"
            " approved the version for it.",
            "forbidden": "No one may override failing gates.",
        }[policy.get("overrides", "allowed")]
    )


@commands.command()
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
