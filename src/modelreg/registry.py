"""The Registry interface and ``connect``, the one way in."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, Unpack

from modelreg.errors import InvalidInput

if TYPE_CHECKING:
    from modelreg.audit import AuditEvent, VerifyResult
    from modelreg.capture import ProcessFacts
    from modelreg.datasets import Dataset, DatasetArg, DatasetUse
    from modelreg.options import (
        AuditFilters,
        PolicyOptions,
        RegisterOptions,
        ReproduceOptions,
        WebhookOptions,
    )
    from modelreg.run import Run
    from modelreg.signing import PublicKeyArg
    from modelreg.versions import Model, NewVersion, Version

DEFAULT_HOME = "~/.modelreg"


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
    ) -> list[Version]: ...

    def set_alias(
        self, name: str, alias: str, ref: str, *, force: bool = False, reason: str | None = None
    ) -> Version: ...

    def delete_alias(self, name: str, alias: str) -> None: ...

    def compare(self, a: str, b: str) -> dict[str, Any]: ...

    def lineage(self, ref: str) -> dict[str, Any]: ...

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

    def reproduce(self, ref: str, **options: Unpack[ReproduceOptions]) -> dict[str, Any]: ...

    def verify(self, ref: str, *, public_key: PublicKeyArg | None = None) -> dict[str, Any]: ...

    def trust_key(self, name: str, public_key: PublicKeyArg) -> dict[str, Any]: ...

    def untrust_key(self, name: str) -> dict[str, Any]: ...

    def trusted_keys(self) -> list[dict[str, Any]]: ...

    def dataset_impact(self, ref: str) -> dict[str, Any]: ...

    def retire_dataset(self, ref: str, *, reason: str, dry_run: bool = False) -> dict[str, Any]: ...

    def delete_version(self, ref: str, *, reason: str) -> dict[str, Any]: ...

    def evaluate(
        self, ref: str, dataset: DatasetArg, *, metrics: Mapping[str, Any]
    ) -> dict[str, Any]: ...

    def leaderboard(
        self, name: str, *, dataset: str, metric: str, higher_is_better: bool = True
    ) -> dict[str, Any]: ...

    def alias_history(self, name: str, alias: str) -> list[dict[str, Any]]: ...

    def rollback_alias(
        self, name: str, alias: str, *, force: bool = False, reason: str | None = None
    ) -> Version: ...

    def set_tag(self, ref: str, key: str, value: Any) -> None: ...

    def delete_tag(self, ref: str, key: str) -> None: ...

    def set_description(self, ref: str, description: str) -> None: ...

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
    ) -> dict[str, Any]: ...

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

    def record_run_metrics(self, run_id: str, points: Sequence[tuple[str, float, int]]) -> None: ...

    def record_run_dataset(self, run_id: str, use: DatasetUse) -> None: ...

    def datasets(self) -> list[Dataset]: ...

    def dataset(self, ref: str) -> list[Dataset]: ...

    def dataset_models(self, ref: str) -> list[dict[str, Any]]: ...

    def evaluations(self, ref: str) -> list[dict[str, Any]]: ...

    def metric_trend(self, name: str, *, dataset: str, metric: str) -> dict[str, Any]: ...

    def set_policy(
        self, name: str, alias: str, **options: Unpack[PolicyOptions]
    ) -> dict[str, Any]: ...

    def policy(self, name: str, alias: str) -> dict[str, Any] | None: ...

    def approve(self, ref: str, *, alias: str) -> list[str]: ...

    def check_promotion(self, name: str, alias: str, ref: str) -> dict[str, Any]: ...

    def card(self, ref: str) -> dict[str, Any]: ...

    def trace(self, target: str | os.PathLike[str] | Mapping[str, Any]) -> dict[str, Any]: ...

    def audit(self, **filters: Unpack[AuditFilters]) -> list[AuditEvent]: ...

    def verify_audit(self) -> VerifyResult: ...

    def fsck(self) -> dict[str, Any]: ...

    def gc(self, *, dry_run: bool = False, grace_seconds: float = 3600) -> dict[str, Any]: ...

    def add_webhook(
        self, name: str, url: str, **options: Unpack[WebhookOptions]
    ) -> dict[str, Any]: ...

    def webhooks(self) -> list[dict[str, Any]]: ...

    def remove_webhook(self, name: str) -> dict[str, Any]: ...

    def webhook_deliveries(
        self, name: str | None = None, *, limit: int = 100
    ) -> list[dict[str, Any]]: ...

    def deliver_webhooks(self) -> dict[str, int]: ...

    def create_token(self, name: str, *, role: str = "reader") -> dict[str, Any]: ...

    def tokens(self) -> list[dict[str, Any]]: ...

    def revoke_token(self, name: str) -> dict[str, Any]: ...

    def close(self) -> None: ...


def default_uri() -> str:
    return os.environ.get("MODELREG_URI") or str(Path(DEFAULT_HOME).expanduser())


def connect(uri: str | os.PathLike[str] | None = None, *, actor: str | None = None) -> Registry:
    """Open a registry.

    With no argument: ``$MODELREG_URI``, else ``~/.modelreg`` (created on first use). A
    directory is an embedded registry (SQLite and blobs inside it); an ``http(s)://`` URL
    is a ``modelreg server``, reached with the token in ``$MODELREG_TOKEN``. A database URL
    (``postgresql://...``, ``sqlite:///...``) opens that database directly, with the blob
    store in ``$MODELREG_BLOBS`` (a directory or ``s3://bucket/prefix``); without it, only
    what needs no blobs works (tokens, search, audit).

    >>> reg = connect("/tmp/my-registry")  # doctest: +SKIP
    """
    target = str(uri) if uri is not None else default_uri()
    if not target.strip():
        raise InvalidInput("registry location is empty")
    if target[:8].lower().startswith(("http://", "https://")):
        from modelreg.remote import RemoteRegistry

        return RemoteRegistry(target, actor=actor)
    from modelreg import backends
    from modelreg.local import LocalRegistry

    if backends.is_database_url(target):
        url = backends.database_url(target)
        blobs = os.environ.get("MODELREG_BLOBS")
        store = backends.blob_store(blobs) if blobs else backends.MissingBlobStore(url)
        return LocalRegistry(db_url=url, blobs=store, actor=actor)
    scheme = _SCHEME.match(target)
    if scheme and scheme[1].lower() != "file":
        # A mistyped URL (htp://, ftp://) must not become a folder named after it.
        raise InvalidInput(
            f"registry {target!r} has an unknown scheme {scheme[1]!r}: give a directory,"
            " http(s):// for a server, or a postgresql:// or sqlite:/// database URL"
        )
    return LocalRegistry(target.removeprefix("file://"), actor=actor)


_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")


if TYPE_CHECKING:  # mypy proves that both registries keep the contract

    def _embedded_keeps_the_contract(registry: LocalRegistry) -> Registry:
        return registry

    def _remote_keeps_the_contract(registry: RemoteRegistry) -> Registry:
        return registry

    from modelreg.local import LocalRegistry
    from modelreg.remote import RemoteRegistry
