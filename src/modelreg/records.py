"""The records every face exchanges: models, versions, datasets and audit events as the
registry hands them out (the SDK, the CLI, the server's JSON and the web UI all read these).

Plain dataclasses and the checks of their own shape; nothing here touches SQL or HTTP, so the
client and the CLI load them without SQLAlchemy.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from typing_extensions import TypedDict  # pydantic reads it on Python 3.11 (responses)

from modelreg.manifest import FileEntry
from modelreg.refs import Ref

if TYPE_CHECKING:
    from modelreg import capture


class Puller(Protocol):
    """What a Version pulls its files through: the registry it came from."""

    def pull(
        self,
        ref: str,
        dest: str | Path,
        *,
        force: bool = False,
        strict: bool = False,
        progress: Any = None,
        verify_with: Any = None,
        verify: bool = False,
    ) -> Path: ...


@dataclass
class Model:
    id: str
    name: str
    description: str
    created_at: str
    updated_at: str
    version_count: int = 0
    latest: int | None = None
    aliases: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "version_count": self.version_count,
            "latest": self.latest,
            "aliases": self.aliases,
        }


@dataclass
class Version:
    """One immutable model version. ``lineage`` is filled by ``Registry.get``."""

    id: str
    model: str
    number: int
    created_at: str
    created_by: str
    description: str
    manifest_digest: str
    size: int
    params: dict[str, str]
    metrics: dict[str, float]
    tags: dict[str, str]
    aliases: list[str]
    files: list[FileEntry]
    datasets: list[DatasetUse]
    parents: list[str]
    run_id: str | None
    flags: list[str] = field(default_factory=list)
    lineage: dict[str, Any] | None = None
    _registry: Puller | None = field(default=None, repr=False, compare=False)

    @property
    def ref(self) -> str:
        return f"{self.model}/{self.number}"

    def pull(
        self,
        dest: str | Path,
        *,
        force: bool = False,
        strict: bool = False,
        verify_with: Any = None,
        verify: bool = False,
    ) -> Path:
        """Write this version's files into ``dest``, each verified against its digest; with
        ``verify_with`` (a public key) or ``verify`` (trusted keys), its signature first."""
        if self._registry is None:
            raise RuntimeError("this Version is not attached to a registry")
        return self._registry.pull(
            self.id, dest, force=force, strict=strict, verify_with=verify_with, verify=verify
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "model": self.model,
            "number": self.number,
            "ref": self.ref,
            "created_at": self.created_at,
            "created_by": self.created_by,
            "description": self.description,
            "manifest_digest": self.manifest_digest,
            "size": self.size,
            "params": self.params,
            "metrics": self.metrics,
            "tags": self.tags,
            "aliases": self.aliases,
            "files": [f.to_dict() for f in self.files],
            "run_id": self.run_id,
            "flags": self.flags,
            "datasets": [d.to_dict() for d in self.datasets],
            "parents": self.parents,
        }
        if self.lineage is not None:
            out["lineage"] = self.lineage
        return out


@dataclass(frozen=True)
class NewVersion:
    """Everything checked and hashed, ready to be written in one transaction."""

    model: str
    files: list[FileEntry]
    params: dict[str, str]
    metrics: dict[str, float]
    tags: dict[str, str]
    description: str
    parents: list[Ref]
    datasets: list[DatasetUse]
    code: dict[str, Any]
    command: str
    hostname: str
    environment: capture.Environment | None
    run_id: str | None


@dataclass(frozen=True)
class Dataset:
    id: str
    name: str
    digest: str
    uri: str
    size: int
    file_count: int
    created_at: str
    retired_at: str | None = None  # when the data was retired (see retirement), if it was
    retired_reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "digest": self.digest,
            "uri": self.uri,
            "size": self.size,
            "file_count": self.file_count,
            "created_at": self.created_at,
            "retired_at": self.retired_at,
            "retired_reason": self.retired_reason,
        }


@dataclass(frozen=True)
class DatasetUse:
    """A dataset as seen from what it was used for: a name, a digest and a role."""

    name: str
    digest: str
    uri: str
    size: int
    file_count: int
    role: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "digest": self.digest,
            "uri": self.uri,
            "size": self.size,
            "file_count": self.file_count,
            "role": self.role,
        }


# What a caller may hand over as a dataset: a path or URI, a described use, or a mapping
# {"path": ..., "name": ..., "role": ..., "digest": ...}.
DatasetArg = str | os.PathLike[str] | DatasetUse | Mapping[str, Any]


@dataclass(frozen=True)
class AuditEvent:
    seq: int
    at: str
    actor: str
    action: str
    entity_type: str
    entity_id: str
    entity: str
    before: Any
    after: Any
    hash: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "at": self.at,
            "actor": self.actor,
            "action": self.action,
            "entity_type": self.entity_type,
            "entity_id": self.entity_id,
            "entity": self.entity,
            "before": self.before,
            "after": self.after,
            "hash": self.hash,
        }


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    events: int
    head: str
    bad_seq: int | None = None
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "events": self.events,
            "head": self.head,
            "bad_seq": self.bad_seq,
            "reason": self.reason,
        }


# -- results of operations, as the SDK returns them and the API sends them ----------------------


class TokenInfo(TypedDict):
    """An API token as listings show it: never its secret, never the secret's hash."""

    id: str
    name: str
    role: str
    prefix: str
    created_at: str
    created_by: str
    revoked_at: str | None
    revoked_by: str | None
    last_used_at: str | None


class NewTokenInfo(TokenInfo):
    """A token just made, with its secret: the only time the secret is shown."""

    token: str


class Deletion(TypedDict):
    """A version deleted: when, by whom and why, and what its files held."""

    ref: str
    id: str
    deleted_at: str
    deleted_by: str
    reason: str
    files: int
    size: int


class GateCheck(TypedDict):
    """One check of a protected alias's gates, with the figures that decided it."""

    name: str
    ok: bool
    detail: str


class PromotionCheck(TypedDict):
    """A version run through an alias's gates without moving anything."""

    protected: bool
    ok: bool
    checks: list[GateCheck]


class FsckReport(TypedDict):
    """Every blob re-hashed: which are damaged, and which the records need but are missing."""

    ok: bool
    blobs: int
    referenced: int
    unreferenced: int
    corrupt: list[str]
    missing: list[str]


class GcReport(TypedDict):
    """What gc removed (or, with ``dry_run``, would remove) and kept for its grace period."""

    dry_run: bool
    removed: list[str]
    kept_recent: int
    temporaries_removed: int


class AliasMove(TypedDict):
    """One move of an alias: ``version`` is None where the alias was deleted."""

    at: str
    actor: str
    version: str | None
    version_deleted_at: str | None


class PolicyInfo(TypedDict):
    """The gates of a protected alias (see promotion.Policy)."""

    protected: bool
    block_retired: bool
    metric: str | None
    dataset: str | None
    higher_is_better: bool
    min_margin: float
    approvals: int
    overrides: str


class SignatureCheck(TypedDict):
    """A version's signature checked against its stored records: ``reason`` says why not."""

    version: str
    ok: bool
    key_id: str | None
    reason: str


class SignatureAdded(TypedDict):
    """A signature made elsewhere, stored once it verified."""

    version: str
    key_id: str


class TrustedKey(TypedDict):
    """A public key the registry trusts to verify signatures by."""

    name: str
    key_id: str
    public_key: str
    added_at: str
    added_by: str
