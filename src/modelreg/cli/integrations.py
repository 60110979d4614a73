"""Other systems: webhooks that deliver registry events, and imports from MLflow.

:mod:`modelreg.cli` mounts ``webhook_app`` (``webhook``) and ``import_app`` (``import``).
"""

from __future__ import annotations

from typing import Annotated

import typer

from modelreg.cli.support import (
    JsonOption,
    check_name,
    count,
    emit_json,
    help_if_bare,
    open_registry,
    parsed,
    say,
    warn,
    warnings_as_lines,
)

webhook_app = typer.Typer()
import_app = typer.Typer()


@webhook_app.callback(invoke_without_command=True)
def webhook(ctx: typer.Context) -> None:
    """Deliver registry events (the audit log) to CI/CD systems over HTTP, signed."""
    help_if_bare(ctx)


@import_app.callback(invoke_without_command=True)
def import_(ctx: typer.Context) -> None:
    """Copy models from another registry, keeping their ids in tags; re-runs copy what is new."""
    help_if_bare(ctx)


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
    from modelreg.cli import render_governance

    render_governance.webhooks(found)


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
    from modelreg.cli import render_governance

    render_governance.webhook_deliveries(found)


# -- import from other registries ----------------------------------------------------------


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

    uri = parsed(mlflow_import.check_tracking_uri, tracking_uri)
    from modelreg.errors import SecretInCommandWarning

    with warnings_as_lines(SecretInCommandWarning):
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
