"""The Registry contract: what every registry offers, embedded or over HTTP (``connect``, in
``locations``, opens one)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, Unpack

if TYPE_CHECKING:
    from modelreg.audit import AuditEvent, VerifyResult
    from modelreg.capture import ProcessFacts
    from modelreg.datasets import Dataset, DatasetArg, DatasetUse
    from modelreg.governance_records import (
        Card,
        DatasetImpact,
        DependentVersion,
        Evaluation,
        Leaderboard,
        MetricTrend,
        Trace,
    )
    from modelreg.options import (
        AuditFilters,
        PolicyOptions,
        RegisterOptions,
        ReproduceOptions,
        WebhookOptions,
    )
    from modelreg.records import (
        AliasMove,
        Comparison,
        Deletion,
        FsckReport,
        GcReport,
        MetricPointArg,
        NewTokenInfo,
        NewWebhookInfo,
        PolicyInfo,
        PromotionCheck,
        Recipe,
        RepackReport,
        Reproduction,
        SignatureAdded,
        SignatureCheck,
        TokenInfo,
        TrustedKey,
        VersionLineage,
        WebhookDelivery,
        WebhookInfo,
    )
    from modelreg.run import Run
    from modelreg.signing import PublicKeyArg
    from modelreg.versions import Model, NewVersion, Version


# Set by `modelreg reproduce --run` for the re-run alone: every connect() opens the registry it
# names, whatever location the training gives, so that the re-run writes into no real registry.
SCRATCH_REGISTRY = "MODELREG_SCRATCH_REGISTRY"


class Registry(Protocol):
    """What every registry offers, embedded (LocalRegistry) or over HTTP (RemoteRegistry):
    mypy checks both against it (the functions at the end of this module)."""

    @property
    def uri(self) -> str: ...

    def register(self, name: str, files: Any, **options: Unpack[RegisterOptions]) -> Version: ...

    def get(
        self, ref: str, *, at: str | datetime | None = None, lineage: bool = True
    ) -> Version: ...

    def models(
        self, *, limit: int | None = None, offset: int = 0, after: str | None = None
    ) -> list[Model]: ...

    def versions(
        self,
        name: str,
        *,
        limit: int | None = None,
        offset: int = 0,
        before: int | None = None,
    ) -> list[Version]: ...

    def search(
        self,
        filter: str = "",
        *,
        model: str | None = None,
        order_by: str | None = None,
        limit: int | None = None,
        offset: int = 0,
        after: str | None = None,
    ) -> list[Version]: ...

    def set_alias(
        self, name: str, alias: str, ref: str, *, force: bool = False, reason: str | None = None
    ) -> Version: ...

    def delete_alias(self, name: str, alias: str) -> None: ...

    def compare(self, a: str, b: str) -> Comparison: ...

    def lineage(self, ref: str) -> VersionLineage: ...

    def pull(
        self,
        ref: str,
        dest: str | os.PathLike[str],
        *,
        force: bool = False,
        strict: bool = False,
        progress: Any = None,
        verify_with: PublicKeyArg | None = None,
        verify: bool = False,
    ) -> Path: ...

    def reproduce(self, ref: str, **options: Unpack[ReproduceOptions]) -> Recipe | Reproduction: ...

    def verify(self, ref: str, *, public_key: PublicKeyArg | None = None) -> SignatureCheck: ...

    def trust_key(self, name: str, public_key: PublicKeyArg) -> TrustedKey: ...

    def untrust_key(self, name: str) -> TrustedKey: ...

    def trusted_keys(self) -> list[TrustedKey]: ...

    def dataset_impact(self, ref: str) -> DatasetImpact: ...

    def retire_dataset(self, ref: str, *, reason: str, dry_run: bool = False) -> DatasetImpact: ...

    def delete_version(self, ref: str, *, reason: str) -> Deletion: ...

    def evaluate(
        self, ref: str, dataset: DatasetArg, *, metrics: Mapping[str, Any]
    ) -> Evaluation: ...

    def leaderboard(
        self, name: str, *, dataset: str, metric: str, higher_is_better: bool = True
    ) -> Leaderboard: ...

    def alias_history(self, name: str, alias: str) -> list[AliasMove]: ...

    def rollback_alias(
        self, name: str, alias: str, *, force: bool = False, reason: str | None = None
    ) -> Version: ...

    def set_tag(self, ref: str, key: str, value: Any) -> None: ...

    def delete_tag(self, ref: str, key: str) -> None: ...

    def set_description(self, ref: str, description: str) -> None: ...

    def load(
        self, ref: str, *, trust: bool = False, dest: str | os.PathLike[str] | None = None
    ) -> Any: ...

    def start_run(
        self, name: str | None = None, *, params: Mapping[str, Any] | None = None
    ) -> Run: ...

    # The halves of register and of a run that a remote client sends over HTTP.

    def commit_version(
        self,
        new: NewVersion,
        *,
        signer: Any = None,
        restore: Any = None,
        signed_by: str | None = None,
    ) -> Version: ...

    def signing_document(self, ref: str) -> bytes: ...

    def draft_signing_document(self, new: NewVersion) -> bytes: ...

    def attach_signature(
        self, ref: str, public_key: PublicKeyArg, signature: str
    ) -> SignatureAdded: ...

    def open_run(
        self,
        *,
        name: str,
        params: Mapping[str, Any],
        code: Mapping[str, Any],
        environment: Mapping[str, Any],
        facts: ProcessFacts,
    ) -> str: ...

    def close_run(
        self,
        run_id: str,
        *,
        status: str,
        error: str | None = None,
        metrics: Mapping[str, float] | None = None,
        datasets: Sequence[DatasetUse] = (),
    ) -> None: ...

    def record_run_params(
        self, run_id: str, params: Mapping[str, Any], new: Mapping[str, Any]
    ) -> None: ...

    def record_run_metrics(self, run_id: str, points: Sequence[MetricPointArg]) -> None: ...

    def record_run_dataset(self, run_id: str, use: DatasetUse) -> None: ...

    def datasets(self) -> list[Dataset]: ...

    def dataset(self, ref: str) -> list[Dataset]: ...

    def dataset_models(self, ref: str) -> list[DependentVersion]: ...

    def evaluations(self, ref: str) -> list[Evaluation]: ...

    def metric_trend(self, name: str, *, dataset: str, metric: str) -> MetricTrend: ...

    def set_policy(self, name: str, alias: str, **options: Unpack[PolicyOptions]) -> PolicyInfo: ...

    def policy(self, name: str, alias: str) -> PolicyInfo | None: ...

    def approve(self, ref: str, *, alias: str) -> list[str]: ...

    def check_promotion(self, name: str, alias: str, ref: str) -> PromotionCheck: ...

    def card(self, ref: str) -> Card: ...

    def trace(self, target: str | os.PathLike[str] | Mapping[str, Any]) -> Trace: ...

    def audit(self, **filters: Unpack[AuditFilters]) -> list[AuditEvent]: ...

    def verify_audit(self, *, full: bool = False) -> VerifyResult: ...

    def fsck(self) -> FsckReport: ...

    def gc(self, *, dry_run: bool = False, grace_seconds: float = 3600) -> GcReport: ...

    def repack(self, *, dry_run: bool = False) -> RepackReport: ...

    def add_webhook(
        self, name: str, url: str, **options: Unpack[WebhookOptions]
    ) -> NewWebhookInfo: ...

    def webhooks(self) -> list[WebhookInfo]: ...

    def remove_webhook(self, name: str) -> WebhookInfo: ...

    def webhook_deliveries(
        self, name: str | None = None, *, limit: int = 100
    ) -> list[WebhookDelivery]: ...

    def deliver_webhooks(self) -> dict[str, int]: ...

    def create_token(self, name: str, *, role: str = "reader") -> NewTokenInfo: ...

    def tokens(self) -> list[TokenInfo]: ...

    def revoke_token(self, name: str) -> TokenInfo: ...

    def close(self) -> None: ...


if TYPE_CHECKING:  # mypy proves that both registries keep the contract

    def _embedded_keeps_the_contract(registry: LocalRegistry) -> Registry:
        return registry

    def _remote_keeps_the_contract(registry: RemoteRegistry) -> Registry:
        return registry

    from modelreg.local import LocalRegistry
    from modelreg.remote import RemoteRegistry
