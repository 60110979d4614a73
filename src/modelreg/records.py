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
from typing import TYPE_CHECKING, Any, NotRequired, Protocol, TypeAlias

from typing_extensions import TypedDict  # pydantic reads it on Python 3.11 (responses)

from modelreg.manifest import FileEntry, FileInfo
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
    lineage: VersionLineage | None = None
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
    # The other names the same bytes are recorded under: one data, whatever it is called.
    also_known_as: tuple[str, ...] = ()

    def to_dict(self) -> DatasetInfo:
        return {
            "id": self.id,
            "name": self.name,
            "also_known_as": list(self.also_known_as),
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

    def to_dict(self) -> DatasetUseInfo:
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

    def to_dict(self) -> AuditEventInfo:
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
    since: int = 0  # the walk trusted the events up to this one, checked before (0: none)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "events": self.events,
            "head": self.head,
            "bad_seq": self.bad_seq,
            "reason": self.reason,
            "since": self.since,
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
    """Every blob re-hashed (a chunked file rebuilt from its chunks, each chunk checked, and
    every pack re-hashed): which are damaged, and which the records need but are missing."""

    ok: bool
    blobs: int
    referenced: int
    unreferenced: int
    corrupt: list[str]
    missing: list[str]
    packs: int
    chunks: int
    corrupt_packs: list[str]
    missing_packs: list[str]
    missing_chunks: int


class GcReport(TypedDict):
    """What gc removed (or, with ``dry_run``, would remove) and kept for its grace period."""

    dry_run: bool
    removed: list[str]
    kept_recent: int
    temporaries_removed: int
    packs_removed: list[str]
    packs_repacked: list[str]
    pack_bytes_freed: int


class RepackReport(TypedDict):
    """The whole blobs repack stored as chunks (or, with ``dry_run``, would store), those it
    could not (their bytes fail their digest), the bytes converted, and the bytes of the
    packs written meanwhile."""

    dry_run: bool
    converted: list[str]
    failed: list[str]
    bytes: int
    pack_bytes: int


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


class DatasetInfo(TypedDict):
    """A recorded dataset version (``Dataset.to_dict``); ``also_known_as`` lists the other
    names its bytes are recorded under, ``retired_*`` when and why the bytes were retired."""

    id: str
    name: str
    also_known_as: list[str]
    digest: str
    uri: str
    size: int
    file_count: int
    created_at: str
    retired_at: str | None
    retired_reason: str | None


class DatasetUseInfo(TypedDict):
    """A dataset as a version or run used it (``DatasetUse.to_dict``)."""

    name: str
    digest: str
    uri: str
    size: int
    file_count: int
    role: str


class AuditEventInfo(TypedDict):
    """An audit event (``AuditEvent.to_dict``); ``before`` and ``after`` are the change's
    own records, whatever their shape."""

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


# -- comparing two versions ---------------------------------------------------------------------


class MappingDiff(TypedDict):
    """What changed between two mappings (params, tags, packages): ``changed`` holds
    ``[a, b]`` per key."""

    changed: dict[str, list[Any]]
    added: dict[str, Any]
    removed: dict[str, Any]


class MetricChange(TypedDict):
    """A metric of each version (None where it has none), and ``b - a``."""

    a: float | None
    b: float | None
    delta: float | None


class DatasetChange(TypedDict):
    """A dataset (by role and name) whose digest differs; None where a version has none."""

    role: str
    name: str
    a: str | None
    b: str | None


class CodeChange(TypedDict):
    """Each version's commit (a code fact as captured, usually text or None), and whether
    the repository, commit or uncommitted diff differ."""

    a: Any
    b: Any
    changed: bool


class EnvironmentChange(TypedDict):
    """``[a, b]`` where Python or the platform differ (None where they do not)."""

    python: list[Any] | None
    platform: list[Any] | None
    packages: MappingDiff


class FileChanges(TypedDict):
    added: list[str]
    removed: list[str]
    changed: list[str]


class ParentLists(TypedDict):
    a: list[str]
    b: list[str]


class Comparison(TypedDict):
    """What changed from version ``a`` to version ``b``."""

    a: str
    b: str
    same_content: bool
    params: MappingDiff
    metrics: dict[str, MetricChange]
    tags: MappingDiff
    datasets: list[DatasetChange]
    code: CodeChange
    environment: EnvironmentChange
    files: FileChanges
    parents: ParentLists


# -- lineage ------------------------------------------------------------------------------------


class RunMetricPoint(TypedDict):
    step: int
    value: float
    timestamp: str


class LineageRun(TypedDict):
    """The run that made a version, with each metric's history (its code and environment are
    the lineage's own ``code`` and ``environment``): every point of a metric of up to 10,000,
    and for a longer one at most 10,000 buckets of consecutive points, each its mean at its
    first step and time; ``metric_points`` counts each metric's points."""

    id: str
    name: str
    status: str
    started_at: str
    ended_at: str | None
    hostname: str
    user: str
    command: str
    params: dict[str, Any]
    error: str | None
    metric_history: dict[str, list[RunMetricPoint]]
    metric_points: NotRequired[dict[str, int]]  # from servers of this version on


class StoredSignature(TypedDict):
    """A signature as stored: who attached it and when (verifying it is ``verify``'s job)."""

    key_id: str
    algorithm: str
    created_at: str
    created_by: str


class VersionLineage(TypedDict):
    """What it takes to recreate a version: run, code, environment, data, parents, children
    and who signed it. ``code`` and ``environment`` hold the facts as captured."""

    version: str
    id: str
    run: LineageRun | None
    code: dict[str, Any]
    environment: dict[str, Any]
    environment_digest: str | None
    hostname: str
    datasets: list[DatasetUseInfo]
    parents: list[str]
    deleted_parents: list[str]
    children: list[str]
    signatures: list[StoredSignature]


# -- reproducing a version ----------------------------------------------------------------------


class RecipeRun(TypedDict):
    id: str
    name: str


class RecipeDataset(TypedDict):
    name: str
    digest: str
    uri: str
    role: str
    size: int
    file_count: int


class ModelregSource(TypedDict):
    """Where the running modelreg came from: an index (``modelreg==X``) or a directory."""

    version: str
    source: str
    install: str


class RecipeModelreg(ModelregSource):
    recorded: str | None  # the modelreg the training ran with, when recorded


class Recipe(TypedDict):
    """What ``reproduce(ref, to=...)`` wrote into recipe.json: the code, command, params,
    data and environment that recreate a version."""

    version: str
    id: str
    model: str
    manifest_digest: str
    files: list[FileInfo]
    run: RecipeRun
    repository: str
    commit: str
    branch: str | None
    diff: str | None
    diff_digest: str | None
    untracked: list[str]
    command: str
    argv: list[str]
    masked: list[str]
    params: dict[str, Any]
    seeds: dict[str, Any]
    datasets: list[RecipeDataset]
    python: str | None
    platform: str | None
    packages: int
    modelreg: RecipeModelreg


class Reproduced(TypedDict):
    version: str
    manifest_digest: str
    registry: str


class DifferingFile(TypedDict):
    """A file whose digest differs; None where one side has no such file."""

    path: str
    registered: str | None
    reproduced: str | None


class PythonUsed(TypedDict):
    recorded: str | None
    used: str


class Reproduction(TypedDict):
    """What ``reproduce(ref, run=True)`` found: whether the re-trained version is identical."""

    version: str
    manifest_digest: str
    identical: bool
    reproduced: Reproduced
    differing_files: list[DifferingFile]
    workdir: str
    recipe: str
    python: PythonUsed
    timings: dict[str, float]


# -- webhooks -----------------------------------------------------------------------------------


class WebhookInfo(TypedDict):
    """A webhook as listings show it: its URL's credentials hidden, never its secret;
    ``pending`` counts the matching events after its cursor."""

    name: str
    url: str
    actions: list[str]
    active: bool
    cursor_seq: int
    pending: int
    created_at: str
    created_by: str


class NewWebhookInfo(WebhookInfo):
    """A webhook just added, with its full URL and its secret: the only time it is shown."""

    secret: str


class WebhookDelivery(TypedDict):
    """One attempt to deliver one event to one webhook."""

    id: int
    webhook: str
    delivery: str
    event_seq: int
    action: str
    attempt: int
    status: str
    status_code: int | None
    error: str | None
    at: str
    next_attempt_at: str | None


# -- experiments and tracked runs (what MLflow clients log: server/mlflow) ----------------------


@dataclass(frozen=True)
class Experiment:
    """A named folder of runs; ``0`` ("Default") holds the runs modelreg's SDK makes.
    ``lifecycle_stage`` is ``active`` or ``deleted``."""

    id: int
    name: str
    lifecycle_stage: str
    created_at: str
    updated_at: str
    tags: dict[str, str] = field(default_factory=dict)


# A metric point as a run logs it: (key, value, step), or with the time it was logged in
# milliseconds since the epoch, (key, value, step, ms).
MetricPointArg: TypeAlias = tuple[str, float, int] | tuple[str, float, int, int]


@dataclass(frozen=True)
class MetricPoint:
    """One point of a run's metric history."""

    key: str
    value: float
    step: int
    timestamp: str


@dataclass(frozen=True)
class RunInput:
    """A dataset a run read, as an MLflow client logged it (its own name and digest, the
    source as JSON text, schema and profile), or as modelreg's SDK recorded it."""

    name: str
    digest: str
    source_type: str
    source: str
    schema: str = ""
    profile: str = ""
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class TrackedRun:
    """A run as a tracking client sees it: its record, params, tags, the latest value of
    each metric and its inputs. ``status`` is running, finished, failed, killed or scheduled;
    ``origin`` is ``modelreg`` (the SDK) or ``mlflow`` (the MLflow API)."""

    id: str
    name: str
    experiment_id: int
    user: str
    status: str
    started_at: str
    ended_at: str | None
    lifecycle_stage: str
    origin: str
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    metrics: list[MetricPoint] = field(default_factory=list)
    inputs: list[RunInput] = field(default_factory=list)


@dataclass(frozen=True)
class LoggedModel:
    """An MLflow logged model (``m-<32 hex>``): files logged under an experiment, usually by
    a run (``run_id``), from which versions are registered. ``status`` is ``pending`` (its
    files are being uploaded), ``ready`` or ``failed``; ``registrations`` lists the live
    versions made from it, as (model name, version number)."""

    id: str
    experiment_id: int
    name: str
    status: str
    status_message: str
    model_type: str
    run_id: str | None
    created_at: str
    created_by: str
    updated_at: str
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    registrations: tuple[tuple[str, int], ...] = ()
