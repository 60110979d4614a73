"""The typed results of governance, as the SDK returns them and the API sends them: datasets
and their retirement, evaluations and leaderboards, model cards and traces. The shapes every
face shares otherwise are in ``records``."""

from __future__ import annotations

from typing import Any

from typing_extensions import TypedDict  # pydantic reads it on Python 3.11 (responses)

from modelreg.manifest import FileInfo
from modelreg.records import (
    AuditEventInfo,
    DatasetInfo,
    DatasetUseInfo,
    GateCheck,
    LineageRun,
    StoredSignature,
    VersionLineage,
)

# -- datasets and their retirement --------------------------------------------------------------


class DependentVersion(TypedDict):
    """A version that used a dataset (``relation`` "direct", with ``uses`` such as
    ``train:customers.csv@3f2a...``: the role, and the name and digest it used the bytes
    under) or derives from one that did ("descendant", ``via`` its parent)."""

    version: str
    id: str
    relation: str
    uses: list[str]
    via: str | None


class DeletedDependent(DependentVersion):
    deleted_at: str


class DatasetStatus(DatasetInfo):
    """A dataset version and whether its bytes are retired; ``reason`` is ``retired_reason``
    (both null until they are)."""

    retired: bool
    reason: str | None


class AliasOnVersion(TypedDict):
    alias: str  # NAME@ALIAS
    version: str


class DatasetImpact(TypedDict):
    """What retiring a dataset touches (or touched): its versions under any name, the
    versions that depend on it, the aliases on those, and deleted dependents whose files
    stay until gc."""

    dataset: str
    datasets: list[DatasetStatus]
    versions: list[DependentVersion]
    aliases: list[AliasOnVersion]
    deleted_versions: list[DeletedDependent]


# -- evaluations --------------------------------------------------------------------------------


class EvaluatedOn(TypedDict):
    name: str
    digest: str
    uri: str


class Evaluation(TypedDict):
    """A version's metrics on one dataset version."""

    id: str
    version: str
    dataset: EvaluatedOn
    metrics: dict[str, float]
    created_at: str
    created_by: str


class TrendPoint(TypedDict):
    at: str
    version: str
    value: float


class MetricTrend(TypedDict):
    """Every evaluation of a model's versions on one dataset digest, oldest first."""

    model: str
    dataset: str
    digest: str
    metric: str
    points: list[TrendPoint]


class RankedVersion(TypedDict):
    rank: int
    version: str
    value: float
    evaluated_at: str


class Leaderboard(TypedDict):
    """A model's versions ranked by their latest evaluation on one dataset digest."""

    model: str
    dataset: str
    digest: str
    metric: str
    higher_is_better: bool
    ranking: list[RankedVersion]


# -- cards and traces ---------------------------------------------------------------------------


class Retirement(TypedDict):
    """Whether data with a digest is retired, when, by whom and why."""

    retired: bool
    retired_at: str | None
    retired_by: str | None
    reason: str | None


class CardIdentity(TypedDict):
    id: str
    ref: str
    model: str
    number: int
    description: str
    manifest_digest: str
    size: int
    file_count: int
    tags: dict[str, str]


class CardRegistration(TypedDict):
    created_by: str
    created_at: str
    hostname: str


class AliasOverride(TypedDict):
    """A move forced past an alias's failing gates (``--force``): who forced it, the reason
    they gave, the checks that failed and who had approved the version."""

    by: str
    reason: str | None
    failed: list[GateCheck]
    approvers: list[str]


# A move of an alias onto or away from a version (None where it was deleted), with its
# override when it was forced past failing gates; "from" is a keyword, hence the functional
# form.
VersionAliasMove = TypedDict(
    "VersionAliasMove",
    {
        "alias": str,
        "at": str,
        "actor": str,
        "from": str | None,
        "to": str | None,
        "override": AliasOverride | None,
    },
)


class CardAliases(TypedDict):
    current: list[str]
    history: list[VersionAliasMove]


class CardEvaluationData(EvaluatedOn, Retirement):
    """The data of an evaluation, and whether it is retired."""


class CardEvaluation(TypedDict):
    id: str
    version: str
    dataset: CardEvaluationData
    metrics: dict[str, float]
    created_at: str
    created_by: str


class CardDataset(DatasetUseInfo, Retirement):
    """A dataset the version used, and whether it is retired."""


class FlagSource(TypedDict):
    """The retirement that raised a flag."""

    dataset: str
    digest: str
    reason: str
    retired_at: str
    retired_by: str


class VersionFlag(TypedDict):
    flag: str
    raised_at: str
    source: FlagSource | None


class CardSignature(TypedDict):
    status: str  # "signed" or "unsigned"
    signatures: list[StoredSignature]


class Card(TypedDict):
    """A model card: everything recorded about one version, section by section.
    ``environment`` is the captured environment with its ``digest``."""

    identity: CardIdentity
    registration: CardRegistration
    run: LineageRun | None
    aliases: CardAliases
    params: dict[str, str]
    metrics: dict[str, float]
    evaluations: list[CardEvaluation]
    datasets: list[CardDataset]
    code: dict[str, Any]
    environment: dict[str, Any]
    parents: list[str]
    children: list[str]
    flags: list[VersionFlag]
    signature: CardSignature
    audit: list[AuditEventInfo]
    files: list[FileInfo]


class DeletionNote(TypedDict):
    """When a version was deleted, by whom and why."""

    at: str
    by: str
    reason: str


class TracedAncestor(TypedDict):
    """An ancestor of a traced version, ``depth`` generations back."""

    version: str
    id: str
    depth: int
    created_at: str
    created_by: str
    manifest_digest: str
    parents: list[str]
    datasets: list[DatasetUseInfo]
    code: dict[str, Any]
    environment_digest: str | None
    hostname: str
    run_id: str | None
    flags: list[str]
    deleted: DeletionNote | None


class DatasetUser(TypedDict):
    version: str
    role: str
    depth: int


class TracedDataset(TypedDict):
    """A dataset version that fed a traced version, directly or through an ancestor."""

    name: str
    digest: str
    uri: str
    size: int
    file_count: int
    retired: bool
    retired_at: str | None
    retired_by: str | None
    reason: str | None
    used_by: list[DatasetUser]


class Trace(TypedDict):
    """A deployed version's full lineage and each ancestor's; ``marker`` is the
    modelreg.json it was traced from, if any."""

    id: str
    version: str
    manifest_digest: str
    marker: dict[str, Any] | None
    flags: list[str]
    deleted: DeletionNote | None
    lineage: VersionLineage
    ancestors: list[TracedAncestor]
    datasets: list[TracedDataset]
