"""The governance half of the embedded registry: dataset retirement, evaluations, model
cards and traces, signatures, webhooks, version deletion and API tokens.

A mixin of :class:`modelreg.local.LocalRegistry`, apart only so that each file stays
readable: the rules live in the noun modules it calls (retirement, evaluations, cards,
signing, webhooks, tokens), each change in one transaction with its audit event.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import Connection

from modelreg import (
    deletion,
    evaluations,
    retirement,
    signatures,
    signing,
    tokens,
    transfer,
    versions,
)
from modelreg.datasets import DatasetArg, DatasetUse
from modelreg.db import Database
from modelreg.errors import InvalidInput
from modelreg.governance_records import (
    Card,
    DatasetImpact,
    Evaluation,
    Leaderboard,
    MetricTrend,
    Trace,
)
from modelreg.records import (
    Deletion,
    NewTokenInfo,
    NewWebhookInfo,
    SignatureAdded,
    SignatureCheck,
    TokenInfo,
    TrustedKey,
    WebhookDelivery,
    WebhookInfo,
)
from modelreg.refs import check_name, parse_ref
from modelreg.values import check_deletion_reason, check_metrics


class Governance:
    """Retirement, evaluations, cards and traces, signatures, webhooks and API tokens."""

    db: Database
    actor: str

    if TYPE_CHECKING:  # provided by LocalRegistry

        def _dataset_use(self, item: DatasetArg, *, role: str = "train") -> DatasetUse: ...

    # -- governance: retirement and evaluations -------------------------------------------

    def dataset_impact(self, ref: str) -> DatasetImpact:
        """What retiring a dataset (``NAME`` or ``NAME@DIGEST``) touches: every version that
        used its bytes or was evaluated on them, under any name, their descendants, and the
        aliases on them."""
        return self.db.read(lambda conn: retirement.impact(conn, ref))

    def retire_dataset(self, ref: str, *, reason: str, dry_run: bool = False) -> DatasetImpact:
        """Retire a dataset and flag ``data-retired`` every version that depends on it.

        The retirement is recorded for good (and audited); ``dry_run`` only reports.
        """
        text = retirement.check_reason(reason)
        if dry_run:

            def read(conn: Connection) -> DatasetImpact:
                retirement.pending(conn, ref)  # refuses, as the real run would
                return retirement.impact(conn, ref)

            return self.db.read(read)
        return self.db.write(
            lambda conn: retirement.retire(conn, ref, reason=text, actor=self.actor)
        )

    def evaluate(self, ref: str, dataset: DatasetArg, *, metrics: Mapping[str, Any]) -> Evaluation:
        """Record a version's metrics on a dataset (hashed from the data, like training data)."""
        parsed = parse_ref(ref)
        checked = check_metrics(metrics)
        use = self._dataset_use(dataset, role="test")

        def change(conn: Connection) -> Evaluation:
            vid = versions.resolve(conn, parsed)
            return evaluations.record(conn, vid, use, checked, actor=self.actor)

        return self.db.write(change)

    def evaluations(self, ref: str) -> list[Evaluation]:
        """Every evaluation of a version, oldest first."""
        parsed = parse_ref(ref)
        return self.db.read(
            lambda conn: evaluations.of_version(conn, versions.resolve(conn, parsed))
        )

    def leaderboard(
        self, name: str, *, dataset: str, metric: str, higher_is_better: bool = True
    ) -> Leaderboard:
        """A model's versions ranked by their latest evaluation on one dataset digest."""
        check_name(name)
        return self.db.read(
            lambda conn: evaluations.leaderboard(
                conn, name, dataset, metric, higher_is_better=higher_is_better
            )
        )

    def metric_trend(self, name: str, *, dataset: str, metric: str) -> MetricTrend:
        """Every evaluation of a model's versions on one dataset digest, over time."""
        check_name(name)
        return self.db.read(lambda conn: evaluations.trend(conn, name, dataset, metric))

    # -- cards and traces ------------------------------------------------------------------------

    def card(self, ref: str) -> Card:
        """A model card for an auditor: everything recorded about one version, by section."""
        from modelreg import cards

        parsed = parse_ref(ref)
        return self.db.read(lambda conn: cards.build(conn, versions.resolve(conn, parsed)))

    def trace(self, target: str | os.PathLike[str] | Mapping[str, Any]) -> Trace:
        """The full lineage of a deployed version and of each of its ancestors.

        ``target`` is the version UUID a service logs from the ``modelreg.json`` that pull
        writes, that file's path, or the directory the version was pulled into.
        """
        from modelreg import cards

        version_id, marker = transfer.trace_target(target)
        return self.db.read(lambda conn: cards.trace(conn, version_id, marker=marker))

    # -- signatures ----------------------------------------------------------------------------

    def verify(self, ref: str, *, public_key: signing.PublicKeyArg | None = None) -> SignatureCheck:
        """Check a version's signature against its stored records, by ``public_key`` (a key
        or its PEM file) or else by any trusted key: ``{"version", "ok", "key_id", "reason"}``.
        """
        key = signing.public_key(public_key) if public_key is not None else None
        parsed = parse_ref(ref)

        def read(conn: Connection) -> SignatureCheck:
            found = versions.load(conn, [versions.resolve(conn, parsed)])[0]
            return signatures.check(conn, found, key)

        return self.db.read(read)

    def signing_document(self, ref: str) -> bytes:
        """The canonical document a signature of the version covers (what a client signs)."""
        parsed = parse_ref(ref)
        return self.db.read(
            lambda conn: signatures.document_of(
                conn, versions.load(conn, [versions.resolve(conn, parsed)])[0]
            )
        )

    def attach_signature(
        self, ref: str, public_key: signing.PublicKeyArg, signature: str
    ) -> SignatureAdded:
        """Store a signature of the version made with the private key of ``public_key``."""
        key = signing.public_key(public_key)
        parsed = parse_ref(ref)
        if not isinstance(signature, str):
            raise InvalidInput("a signature is base64 text")

        def change(conn: Connection) -> SignatureAdded:
            found = versions.load(conn, [versions.resolve(conn, parsed)])[0]
            return signatures.attach(conn, found, key, signature, actor=self.actor)

        return self.db.write(change)

    def trust_key(self, name: str, public_key: signing.PublicKeyArg) -> TrustedKey:
        """Trust a public key (or its PEM file) under ``name`` for ``verify`` and pulls."""
        key = signing.public_key(public_key)
        return self.db.write(lambda conn: signatures.trust(conn, name, key, actor=self.actor))

    def untrust_key(self, name: str) -> TrustedKey:
        return self.db.write(lambda conn: signatures.untrust(conn, name, actor=self.actor))

    def trusted_keys(self) -> list[TrustedKey]:
        return self.db.read(signatures.trusted)

    # -- webhooks ------------------------------------------------------------------------------

    def add_webhook(
        self,
        name: str,
        url: str,
        *,
        actions: Sequence[str] = ("*",),
        secret: str | None = None,
    ) -> NewWebhookInfo:
        """Deliver future events whose action matches ``actions`` (``alias.set``, a prefix
        such as ``alias.``, or ``*``) to ``url``, signed with ``secret`` (random if None).

        The result holds the secret: the only time it is shown. The URL is checked against
        server-side request forgery (see modelreg.outbound).
        """
        from modelreg import outbound, webhooks

        check_name(name, kind="webhook name")
        checked = webhooks.check_actions(actions)
        key = webhooks.check_secret(secret)
        target = outbound.check_url(url, allowed_hosts=outbound.allowed_hosts_from_env())
        return self.db.write(
            lambda conn: webhooks.add(
                conn, name, target, actions=checked, secret=key, actor=self.actor
            )
        )

    def webhooks(self) -> list[WebhookInfo]:
        """The webhooks, by name, with their backlog; never their secrets."""
        from modelreg import webhooks

        return self.db.read(webhooks.listing)

    def remove_webhook(self, name: str) -> WebhookInfo:
        from modelreg import webhooks

        return self.db.write(lambda conn: webhooks.remove(conn, name, actor=self.actor))

    def webhook_deliveries(
        self, name: str | None = None, *, limit: int = 100
    ) -> list[WebhookDelivery]:
        """The delivery log, newest attempt first."""
        from modelreg import webhooks

        return self.db.read(lambda conn: webhooks.deliveries(conn, name, limit=limit))

    def deliver_webhooks(self) -> dict[str, int]:
        """One delivery pass: send due events, schedule retries; counts by outcome."""
        from modelreg import webhook_delivery

        return webhook_delivery.deliver_pending(self.db)

    # -- deletion ------------------------------------------------------------------------------

    def delete_version(self, ref: str, *, reason: str) -> Deletion:
        """Delete the version ``ref`` names (``NAME/N`` or its UUID), with a reason.

        Its record stays (number, audit history, children's lineage) but it is no longer
        listed, found or pulled, and reaching it raises Gone; ``gc`` then frees its files
        unless a version not deleted, or a run, holds the same content. Refused (Conflict)
        while an alias points at it.
        """
        text = check_deletion_reason(reason)
        return self.db.write(lambda conn: deletion.delete(conn, ref, reason=text, actor=self.actor))

    # -- API tokens ----------------------------------------------------------------------------

    def create_token(self, name: str, *, role: str = "reader") -> NewTokenInfo:
        """Create an API token for the team server with a role (reader, writer, maintainer or
        admin). The result holds the secret under ``"token"``: the only time it is shown, as
        only its hash is kept. Names are never reused, a revoked token's included.

        >>> reg.create_token("ci", role="writer")["token"]  # doctest: +SKIP
        'mr_...'
        """
        check_name(name, kind="token name")
        tokens.check_role(role)
        return self.db.write(lambda conn: tokens.create(conn, name, role, actor=self.actor))

    def tokens(self) -> list[TokenInfo]:
        """Every API token by name, revoked ones included; never a secret or its hash."""
        return self.db.read(tokens.listing)

    def revoke_token(self, name: str) -> TokenInfo:
        """Revoke an API token: it never authenticates again. Revoking a revoked token
        returns it unchanged."""
        check_name(name, kind="token name")
        return self.db.write(lambda conn: tokens.revoke(conn, name, actor=self.actor))
