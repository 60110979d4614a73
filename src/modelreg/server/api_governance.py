"""The JSON API's governance routes: aliases and their policies, datasets and retirement,
evaluations, cards and traces, trusted keys, the audit log, tokens, webhooks, maintenance."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import Field

from modelreg import signing, wire
from modelreg.errors import InvalidInput
from modelreg.governance_records import (
    Card,
    DatasetImpact,
    DependentVersion,
    Evaluation,
    Leaderboard,
    MetricTrend,
    Trace,
)
from modelreg.local import LocalRegistry
from modelreg.records import (
    AliasMove,
    AuditEventInfo,
    DatasetInfo,
    Deletion,
    FsckReport,
    GcReport,
    NewTokenInfo,
    NewWebhookInfo,
    PolicyInfo,
    PromotionCheck,
    RepackReport,
    SignatureCheck,
    TokenInfo,
    TrustedKey,
    WebhookDelivery,
    WebhookInfo,
)
from modelreg.server.api import JSON, Body, Maintainer, Reader, Text, Writer
from modelreg.server.auth import allow, single_values
from modelreg.server.problems import PROBLEMS
from modelreg.values import MAX_GRACE, MAX_PAGE

router = APIRouter(prefix="/api/v1", responses=PROBLEMS, dependencies=[Depends(single_values())])
Admin = Annotated[LocalRegistry, Depends(allow("admin"))]


# -- aliases and promotion policies ----------------------------------------------------------


class AliasBody(Body):
    ref: str = Field(max_length=300)
    force: bool = False
    reason: str | None = Field(default=None, max_length=2000)


@router.put("/models/{name}/aliases/{alias}", tags=["aliases"])
def set_alias(reg: Maintainer, name: str, alias: str, body: AliasBody) -> JSON:
    """Point an alias at a version; a protected alias runs its promotion gates first."""
    version = reg.set_alias(name, alias, body.ref, force=body.force, reason=body.reason)
    return wire.version_to_json(version)


@router.delete("/models/{name}/aliases/{alias}", tags=["aliases"])
def delete_alias(reg: Maintainer, name: str, alias: str) -> JSON:
    reg.delete_alias(name, alias)
    return {"ok": True}


@router.get("/models/{name}/aliases/{alias}/history", tags=["aliases"])
def alias_history(reg: Reader, name: str, alias: str) -> list[AliasMove]:
    """Every move of an alias, oldest first."""
    return reg.alias_history(name, alias)


class RollbackBody(Body):
    force: bool = False
    reason: str | None = Field(default=None, max_length=2000)


@router.post("/models/{name}/aliases/{alias}/rollback", tags=["aliases"])
def rollback_alias(reg: Maintainer, name: str, alias: str, body: RollbackBody) -> JSON:
    version = reg.rollback_alias(name, alias, force=body.force, reason=body.reason)
    return wire.version_to_json(version)


@router.put("/models/{name}/aliases/{alias}/policy", tags=["aliases"])
def set_policy(reg: Maintainer, name: str, alias: str, body: dict[str, Any]) -> PolicyInfo:
    """Set the promotion gates of an alias (see ``modelreg policy set``)."""
    clash = sorted({"name", "alias"} & set(body))
    if clash:
        raise InvalidInput(f"unknown policy options: {', '.join(clash)}")
    return reg.set_policy(name, alias, **body)


@router.get("/models/{name}/aliases/{alias}/policy", tags=["aliases"])
def get_policy(reg: Reader, name: str, alias: str) -> JSON:
    return {"policy": reg.policy(name, alias)}


@router.get("/models/{name}/aliases/{alias}/check", tags=["aliases"])
def check_promotion(reg: Reader, name: str, alias: str, ref: Text) -> PromotionCheck:
    """Run an alias's gates on a version without moving anything."""
    return reg.check_promotion(name, alias, ref)


class ApprovalBody(Body):
    ref: str = Field(max_length=300)
    alias: str = Field(max_length=300)


@router.post("/approvals", tags=["aliases"])
def approve(reg: Maintainer, body: ApprovalBody) -> JSON:
    return {"approved_by": reg.approve(body.ref, alias=body.alias)}


# -- datasets and evaluations ------------------------------------------------------------------


@router.get("/datasets", tags=["datasets"])
def list_datasets(reg: Reader) -> list[DatasetInfo]:
    return [d.to_dict() for d in reg.datasets()]


@router.get("/dataset", tags=["datasets"])
def get_dataset(reg: Reader, ref: Text) -> list[DatasetInfo]:
    """Every recorded version of a dataset: ``NAME`` or ``NAME@DIGEST``."""
    return [d.to_dict() for d in reg.dataset(ref)]


@router.get("/dataset/models", tags=["datasets"])
def dataset_models(reg: Reader, ref: Text) -> list[DependentVersion]:
    """Every version that used the dataset's bytes, under any name, and their descendants."""
    return reg.dataset_models(ref)


@router.get("/dataset/impact", tags=["datasets"])
def dataset_impact(reg: Reader, ref: Text) -> DatasetImpact:
    """What retiring the dataset would touch: its bytes under every name they are recorded
    under, the versions that used them, and the aliases on those."""
    return reg.dataset_impact(ref)


class RetireBody(Body):
    ref: str = Field(max_length=300)
    reason: Any
    dry_run: bool = False


@router.post("/dataset/retire", tags=["datasets"])
def retire_dataset(reg: Maintainer, body: RetireBody) -> DatasetImpact:
    """Retire a dataset and flag every version that depends on it."""
    return reg.retire_dataset(body.ref, reason=body.reason, dry_run=body.dry_run)


# -- deletion --------------------------------------------------------------------------------


@router.delete("/versions/{ref:path}", tags=["versions"])
def delete_version(
    reg: Maintainer, ref: str, reason: Annotated[str, Query(max_length=2000)]
) -> Deletion:
    """Delete a version (``NAME/N`` or UUID), with a reason: its record stays, reaching it
    answers 410, and gc frees its files. Refused (409) while an alias points at it."""
    return reg.delete_version(ref, reason=reason)


class EvaluationBody(Body):
    ref: str = Field(max_length=300)
    dataset: dict[str, Any]
    metrics: dict[str, Any]


@router.post("/evaluations", status_code=201, tags=["evaluations"])
def evaluate(reg: Writer, body: EvaluationBody) -> Evaluation:
    """Record a version's metrics on a dataset the client hashed."""
    use = wire.dataset_use_from_json(body.dataset)
    return reg.evaluate(body.ref, use, metrics=body.metrics)


@router.get("/evaluations", tags=["evaluations"])
def evaluations(reg: Reader, ref: Text) -> list[Evaluation]:
    return reg.evaluations(ref)


@router.get("/models/{name}/leaderboard", tags=["evaluations"])
def leaderboard(
    reg: Reader, name: str, dataset: Text, metric: Text, higher_is_better: bool = True
) -> Leaderboard:
    return reg.leaderboard(name, dataset=dataset, metric=metric, higher_is_better=higher_is_better)


@router.get("/models/{name}/trend", tags=["evaluations"])
def metric_trend(reg: Reader, name: str, dataset: Text, metric: Text) -> MetricTrend:
    return reg.metric_trend(name, dataset=dataset, metric=metric)


# -- cards, traces, signatures -------------------------------------------------------------------


@router.get("/card", tags=["governance"])
def card(reg: Reader, ref: Text) -> Card:
    """A model card: everything recorded about one version, by section."""
    return reg.card(ref)


class TraceBody(Body):
    id: str = Field(max_length=64)
    marker: dict[str, Any] | None = None


@router.post("/trace", tags=["governance"])
def trace(reg: Reader, body: TraceBody) -> Trace:
    """The lineage of a deployed version (by UUID, or the modelreg.json marker it came with)
    and of each of its ancestors."""
    # A UUID or the marker's content only: a client's string is never a path on the server.
    if body.marker is not None:
        return reg.trace(body.marker)
    return reg.trace(wire.check_uuid(body.id, "version id"))


class VerifyBody(Body):
    ref: str = Field(max_length=300)
    public_key: str | None = Field(default=None, max_length=4096)


@router.post("/verify", tags=["signatures"])
def verify(reg: Reader, body: VerifyBody) -> SignatureCheck:
    """Check a version's signature by the given public key (PEM) or any trusted key."""
    # PEM text only: a string from a client is never a path on the server.
    pem = body.public_key
    key = None if pem is None else signing.public_from_pem(pem.encode(), "the public key")
    return reg.verify(body.ref, public_key=key)


@router.get("/keys", tags=["signatures"])
def trusted_keys(reg: Reader) -> list[TrustedKey]:
    return reg.trusted_keys()


class KeyBody(Body):
    public_key: str = Field(max_length=4096)


@router.put("/keys/{name}", tags=["signatures"])
def trust_key(reg: Admin, name: str, body: KeyBody) -> TrustedKey:
    return reg.trust_key(name, signing.public_from_pem(body.public_key.encode(), "the key"))


@router.delete("/keys/{name}", tags=["signatures"])
def untrust_key(reg: Admin, name: str) -> TrustedKey:
    return reg.untrust_key(name)


# -- the audit log ---------------------------------------------------------------------------------


@router.get("/audit", tags=["audit"])
def audit(
    reg: Reader,
    entity_type: Text | None = None,
    entity: Text | None = None,
    actor: Text | None = None,
    action: Text | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
    before_seq: Annotated[int | None, Query(ge=0, le=2**31 - 1)] = None,
) -> list[AuditEventInfo]:
    """Audit events, newest first; page back with ``before_seq``."""
    events = reg.audit(
        entity_type=entity_type,
        entity=entity,
        actor=actor,
        action=action,
        limit=limit,
        before_seq=before_seq,
    )
    return [e.to_dict() for e in events]


@router.get("/audit/verify", tags=["audit"])
def verify_audit(reg: Reader, full: bool = False) -> JSON:
    """Re-hash the audit chain from the last event a check found sound (``since``), or the
    whole chain with ``full=true``: finds an edited, inserted or deleted event."""
    return reg.verify_audit(full=full).to_dict()


# -- tokens --------------------------------------------------------------------------------------


class TokenBody(Body):
    name: str = Field(max_length=300)
    role: str = Field(default="reader", max_length=32)


@router.post("/tokens", status_code=201, tags=["tokens"])
def create_token(reg: Admin, body: TokenBody) -> NewTokenInfo:
    """Make a token; the response holds its secret, the only time it is shown."""
    return reg.create_token(body.name, role=body.role)


@router.get("/tokens", tags=["tokens"])
def list_tokens(reg: Admin) -> list[TokenInfo]:
    return reg.tokens()


@router.delete("/tokens/{name}", tags=["tokens"])
def revoke_token(reg: Admin, name: str) -> TokenInfo:
    return reg.revoke_token(name)


# -- webhooks --------------------------------------------------------------------------------------


class WebhookBody(Body):
    name: str = Field(max_length=300)
    url: str = Field(max_length=4096)
    actions: list[str] = Field(default_factory=lambda: ["*"], max_length=100)
    secret: str | None = Field(default=None, max_length=1000)


@router.post("/webhooks", status_code=201, tags=["webhooks"])
def add_webhook(reg: Admin, body: WebhookBody) -> NewWebhookInfo:
    return reg.add_webhook(body.name, body.url, actions=body.actions, secret=body.secret)


@router.get("/webhooks", tags=["webhooks"])
def list_webhooks(reg: Admin) -> list[WebhookInfo]:
    return reg.webhooks()


@router.delete("/webhooks/{name}", tags=["webhooks"])
def remove_webhook(reg: Admin, name: str) -> WebhookInfo:
    return reg.remove_webhook(name)


@router.get("/webhook-deliveries", tags=["webhooks"])
def webhook_deliveries(
    reg: Admin,
    name: Text | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
) -> list[WebhookDelivery]:
    return reg.webhook_deliveries(name, limit=limit)


@router.post("/webhook-deliveries", tags=["webhooks"])
def deliver_webhooks(reg: Admin) -> JSON:
    """One delivery pass: send due events and schedule retries."""
    return reg.deliver_webhooks()


# -- maintenance -----------------------------------------------------------------------------


@router.get("/fsck", tags=["maintenance"])
def fsck(reg: Admin) -> FsckReport:
    """Re-hash every blob; report missing and corrupt ones."""
    return reg.fsck()


class GcBody(Body):
    dry_run: bool = False
    grace_seconds: float = Field(default=3600, ge=0, le=MAX_GRACE)


@router.post("/gc", tags=["maintenance"])
def gc(reg: Admin, body: GcBody) -> GcReport:
    """Remove blobs no version references (never one a version being created will)."""
    return reg.gc(dry_run=body.dry_run, grace_seconds=body.grace_seconds)


class RepackBody(Body):
    dry_run: bool = False


@router.post("/repack", tags=["maintenance"])
def repack(reg: Admin, body: RepackBody) -> RepackReport:
    """Store large whole blobs (written before chunking) as chunks in packs."""
    return reg.repack(dry_run=body.dry_run)
