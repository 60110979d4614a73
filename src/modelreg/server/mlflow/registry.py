"""MLflow's model registry routes: registered models, their versions, tags, aliases and
stages, answered by modelreg's own records and rules (see ``modelreg.mlflow_mapping``).

- A registered model is a model; its name must be a modelreg name, and it is never renamed.
- A model version is an ordinary immutable version made from files this server holds (a
  logged model, or a folder of a run's artifacts): created through ``commit_version`` with
  its run, the run's datasets, params and latest metrics, and the environment its files
  describe; its MLflow ``source`` is kept with it, unchanged. Its download URI is its own
  files (``mlflow-artifacts:/versions/<UUID>``), so ``models:/NAME/N`` loads exactly them;
  a version registered by modelreg's SDK is listed and downloaded there too.
- The stages Staging, Production and Archived are the aliases ``staging``, ``production``
  and ``archived``: a transition moves the alias, through the promotion gates of a
  protected one, so each stage holds at most one version.

Who may call what follows ``/api/v1``: readers read, writers create models, versions, tags
and descriptions, maintainers move aliases and stages and delete.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import Field
from sqlalchemy.engine import Connection

from modelreg import deletion, mlflow_sources, models, registry_search, stages, versions
from modelreg.errors import Conflict, InvalidInput, NotFound
from modelreg.mlflow_filter import (
    MODEL_VERSIONS,
    REGISTERED_MODELS,
    Grammar,
    page_start,
    page_token,
    parse_filter,
    parse_order_by,
)
from modelreg.mlflow_mapping import (
    STAGES,
    canonical_stage,
    check_model_name,
    lookup_alias,
    lookup_name,
    parse_source,
    stage_of,
    version_number,
)
from modelreg.records import Version
from modelreg.refs import RUN, VERSION, ArtifactLocation, Ref, is_owner_id
from modelreg.server.api import Maintainer, Reader, Writer
from modelreg.server.auth import single_values
from modelreg.server.mlflow.protocol import ERRORS, Body
from modelreg.timestamps import to_ms
from modelreg.values import check_description, check_key, check_tag, check_tags

router = APIRouter(
    tags=["mlflow"], responses=ERRORS, dependencies=[Depends(single_values("order_by", "stages"))]
)
P = "/api/2.0/mlflow"
JSON = dict[str, Any]
Text = Annotated[str, Query(max_length=4096)]
Texts = Annotated[list[str] | None, Query()]
DELETED_BY_MLFLOW = "deleted through MLflow's API (model-versions/delete)"
# MLflow's pages of registry searches: the most one may ask for, and what one gets unasked.
MAX_RESULTS = {REGISTERED_MODELS.what: 1000, MODEL_VERSIONS.what: 10_000}
DEFAULT_RESULTS = {REGISTERED_MODELS.what: 100, MODEL_VERSIONS.what: 10_000}


def check_max_results(value: Any, grammar: Grammar) -> int:
    if value is None:
        return DEFAULT_RESULTS[grammar.what]
    limit = MAX_RESULTS[grammar.what]
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= limit:
        raise InvalidInput(
            f"max_results must be a whole number from 1 to {limit} for {grammar.what},"
            f" not {value!r}"
        )
    return value


# -- the shapes MLflow's client reads ------------------------------------------------------------


def _version_json(version: Version, source: str, model_id: str | None) -> JSON:
    created = to_ms(version.created_at)
    return {
        "name": version.model,
        "version": str(version.number),
        "creation_timestamp": created,
        "last_updated_timestamp": created,
        "user_id": version.created_by,
        "current_stage": stage_of(version.aliases),
        "description": version.description,
        "source": source,
        "run_id": version.run_id or "",
        "status": "READY",
        "run_link": "",
        "tags": [{"key": k, "value": v} for k, v in version.tags.items()],
        "aliases": list(version.aliases),
        **({"model_id": model_id} if model_id else {}),
    }


def _versions_json(conn: Connection, ids: list[str]) -> dict[str, JSON]:
    """{version id: ModelVersion} for ``ids``, in their order."""
    found = versions.load(conn, ids)
    sources = registry_search.sources(conn, ids)
    return {v.id: _version_json(v, *sources.get(v.id, ("", None))) for v in found}


def _models_json(conn: Connection, ids: list[str]) -> list[JSON]:
    """RegisteredModel of each of ``ids``, with the newest version in each stage."""
    found = models.load(conn, ids)
    holders = stages.holders(conn, ids)
    held = _versions_json(conn, [vid for h in holders.values() for vid in h.values()])
    out = []
    for model in found:
        latest = [
            held[vid]
            for stage, vid in sorted(holders[model.id].items(), key=lambda s: STAGES.index(s[0]))
            if vid in held and held[vid]["current_stage"] == stage
        ]
        out.append(
            {
                "name": model.name,
                "creation_timestamp": to_ms(model.created_at),
                "last_updated_timestamp": to_ms(model.updated_at),
                "user_id": model.created_by,
                "description": model.description,
                "latest_versions": latest,
                "tags": [{"key": k, "value": v} for k, v in model.tags.items()],
                "aliases": [{"alias": a, "version": str(n)} for a, n in model.aliases.items()],
            }
        )
    return out


def _model_json(conn: Connection, name: str) -> JSON:
    return _models_json(conn, [versions.model_id(conn, name)])[0]


def _version_id(conn: Connection, name: str, version: Any) -> str:
    return versions.resolve(conn, Ref(model=lookup_name(name), number=version_number(version)))


def _version_of(conn: Connection, vid: str) -> JSON:
    return _versions_json(conn, [vid])[vid]


# -- request bodies -------------------------------------------------------------------------------


class Tag(Body):
    key: str = Field(max_length=1000)
    value: str = ""  # MLflow's client leaves an empty value out


class ModelName(Body):
    name: str = Field(max_length=1000)


class NewModelBody(ModelName):
    tags: list[Tag] = Field(default_factory=list, max_length=1000)
    description: str | None = None


class DescriptionBody(ModelName):
    description: str | None = None


class RenameBody(ModelName):
    new_name: str = Field("", max_length=1000)


class ModelTagBody(ModelName):
    key: str = Field(max_length=1000)
    value: str = ""


class ModelTagKey(ModelName):
    key: str = Field(max_length=1000)


class AliasBody(ModelName):
    alias: str = Field(max_length=1000)
    version: str | int


class AliasKey(ModelName):
    alias: str = Field(max_length=1000)


class LatestBody(ModelName):
    stages: list[str] = Field(default_factory=list, max_length=10)


class NewVersionBody(ModelName):
    source: str = Field("", max_length=4096)
    run_id: str | None = Field(None, max_length=100)
    tags: list[Tag] = Field(default_factory=list, max_length=1000)
    description: str | None = None
    model_id: str | None = Field(None, max_length=100)


class VersionKey(ModelName):
    version: str | int


class VersionDescription(VersionKey):
    description: str | None = None


class VersionTagBody(VersionKey):
    key: str = Field(max_length=1000)
    value: str = ""


class VersionTagKey(VersionKey):
    key: str = Field(max_length=1000)


class TransitionBody(VersionKey):
    stage: str = Field(max_length=100)
    archive_existing_versions: bool = False


def _tags(tags: list[Tag]) -> dict[str, str]:
    return check_tags({tag.key: tag.value for tag in tags})


# -- registered models ----------------------------------------------------------------------------


@router.post(f"{P}/registered-models/create")
def create_registered_model(reg: Writer, body: NewModelBody) -> JSON:
    """A model with no versions yet; its name must be a modelreg name."""
    name = check_model_name(body.name)
    tags = _tags(body.tags)
    description = check_description(body.description)
    reg.db.write(
        lambda conn: models.create(conn, name, description=description, tags=tags, actor=reg.actor)
    )
    return {"registered_model": reg.db.read(lambda conn: _model_json(conn, name))}


@router.get(f"{P}/registered-models/get")
def get_registered_model(reg: Reader, name: Text) -> JSON:
    name = lookup_name(name)
    return {"registered_model": reg.db.read(lambda conn: _model_json(conn, name))}


@router.get(f"{P}/registered-models/search")
def search_registered_models(
    reg: Reader,
    filter: Text | None = None,
    max_results: int | None = None,
    order_by: Texts = None,
    page_token: Text | None = None,
) -> JSON:
    """Models by MLflow's filter (name and tags with =, !=, LIKE, ILIKE; AND), by name
    unless ``order_by`` says otherwise."""
    clauses = parse_filter(filter, REGISTERED_MODELS)
    order = parse_order_by(order_by, REGISTERED_MODELS)
    limit = check_max_results(max_results, REGISTERED_MODELS)
    offset, after = page_start(page_token)

    def read(conn: Connection) -> JSON:
        ids, last = registry_search.search_models(
            conn, clauses, order, offset=offset, limit=limit, after=after
        )
        found: JSON = {"registered_models": _models_json(conn, ids)}
        if last is not None:
            found["next_page_token"] = next_page(offset, limit, last)
        return found

    return reg.db.read(read)


def next_page(offset: int, limit: int, last: tuple[Any, ...]) -> str:
    """The token of the page after one that ends on a row of sort values ``last``."""
    return page_token(offset + limit, last)


@router.patch(f"{P}/registered-models/update")
def update_registered_model(reg: Writer, body: DescriptionBody) -> JSON:
    name = lookup_name(body.name)
    text = check_description(body.description)
    reg.db.write(lambda conn: models.describe(conn, name, text, actor=reg.actor))
    return {"registered_model": reg.db.read(lambda conn: _model_json(conn, name))}


@router.post(f"{P}/registered-models/rename")
def rename_registered_model(reg: Writer, body: RenameBody) -> JSON:
    """Refused: a model's name is part of every reference to its versions."""
    name = lookup_name(body.name)
    reg.db.read(lambda conn: versions.model_id(conn, name))
    raise Conflict(
        f"registered model {name!r} cannot be renamed: modelreg names are stable, since"
        f" references such as {name}/3 and {name}@production in deploy configurations, the"
        " audit log and lineage keep naming the same model. Register new versions under the"
        f" new name {body.new_name!r} instead"
    )


@router.delete(f"{P}/registered-models/delete")
def delete_registered_model(reg: Maintainer, body: ModelName) -> JSON:
    """Deletes a model that has never held a version (see models.delete)."""
    name = lookup_name(body.name)
    reg.db.write(lambda conn: models.delete(conn, name, actor=reg.actor))
    return {}


@router.post(f"{P}/registered-models/set-tag")
def set_registered_model_tag(reg: Writer, body: ModelTagBody) -> JSON:
    name = lookup_name(body.name)
    key, value = check_tag(body.key, body.value)
    reg.db.write(lambda conn: models.set_tag(conn, name, key, value, actor=reg.actor))
    return {}


@router.delete(f"{P}/registered-models/delete-tag")
def delete_registered_model_tag(reg: Writer, body: ModelTagKey) -> JSON:
    name = lookup_name(body.name)
    key = check_key(body.key, kind="tag")
    reg.db.write(lambda conn: models.set_tag(conn, name, key, None, actor=reg.actor))
    return {}


@router.post(f"{P}/registered-models/alias")
def set_registered_model_alias(reg: Maintainer, body: AliasBody) -> JSON:
    """Point an alias at a version; ``production`` (or any protected alias) runs its
    promotion gates, and a refusal names the failed checks."""
    name = lookup_name(body.name)
    reg.set_alias(name, body.alias, f"{name}/{version_number(body.version)}")
    return {}


@router.delete(f"{P}/registered-models/alias")
def delete_registered_model_alias(reg: Maintainer, body: AliasKey) -> JSON:
    reg.delete_alias(lookup_name(body.name), lookup_alias(body.alias))
    return {}


@router.get(f"{P}/registered-models/alias")
def get_model_version_by_alias(reg: Reader, name: Text, alias: Text) -> JSON:
    """As MLflow answers: ``latest`` (any case) is the newest version, and an alias the model
    does not hold is INVALID_PARAMETER_VALUE (a model that does not exist is a 404)."""
    model = lookup_name(name)

    def read(conn: Connection) -> JSON:
        versions.model_id(conn, model)
        if alias.lower() == "latest":
            return _version_of(conn, versions.resolve(conn, Ref(model=model)))
        try:
            found = versions.resolve(conn, Ref(model=model, alias=lookup_alias(alias)))
        except NotFound as exc:
            raise InvalidInput(exc.message) from None
        return _version_of(conn, found)

    return {"model_version": reg.db.read(read)}


def _latest_versions(reg: Reader, name: str, asked: list[str]) -> JSON:
    """The newest version in each stage ``asked`` for (every stage when none is named)."""
    name = lookup_name(name)
    wanted = {canonical_stage(s) for s in asked} or set(STAGES)

    def read(conn: Connection) -> JSON:
        mid = versions.model_id(conn, name)
        holders = stages.holders(conn, [mid])[mid]
        picked = [vid for stage, vid in holders.items() if stage in wanted]
        held = _versions_json(conn, picked)
        found = [
            held[vid]
            for stage in STAGES
            if stage in wanted
            and (vid := holders.get(stage)) in held
            and held[vid]["current_stage"] == stage
        ]
        return {"model_versions": found}

    return reg.db.read(read)


@router.post(f"{P}/registered-models/get-latest-versions")
def get_latest_versions(reg: Reader, body: LatestBody) -> JSON:
    return _latest_versions(reg, body.name, body.stages)


@router.get(f"{P}/registered-models/get-latest-versions")
def get_latest_versions_by_query(
    reg: Reader, name: Text, asked: Annotated[list[str] | None, Query(alias="stages")] = None
) -> JSON:
    return _latest_versions(reg, name, asked or [])


# -- model versions ------------------------------------------------------------------------------


@router.post(f"{P}/model-versions/create")
def create_model_version(reg: Writer, body: NewVersionBody) -> JSON:
    """A version made from a logged model or a run folder this server holds: its files are
    exactly those files, and it is READY at once (see ``mlflow_sources``)."""
    name = check_model_name(body.name)
    source = parse_source(body.source, body.model_id or None)
    if body.run_id and not is_owner_id(RUN, body.run_id):
        raise InvalidInput(f"run_id {body.run_id[:80]!r} is invalid: it is not a run id")
    tags = _tags(body.tags)
    description = check_description(body.description)

    new, held = reg.db.read(
        lambda conn: mlflow_sources.new_version(
            conn, reg.blobs, name, source, body.source, run_id=body.run_id or None, tags=tags,
            description=description,
        )
    )  # fmt: skip
    version = reg.commit_version(new)
    return {"model_version": _version_json(version, body.source, held.model_id)}


@router.get(f"{P}/model-versions/get")
def get_model_version(reg: Reader, name: Text, version: Text) -> JSON:
    return {
        "model_version": reg.db.read(
            lambda conn: _version_of(conn, _version_id(conn, name, version))
        )
    }


@router.get(f"{P}/model-versions/search")
def search_model_versions(
    reg: Reader,
    filter: Text | None = None,
    max_results: int | None = None,
    order_by: Texts = None,
    page_token: Text | None = None,
) -> JSON:
    """Versions (not deleted) by MLflow's filter: name, run_id, version_number and tags,
    joined with AND; by name, newest first, unless ``order_by`` says otherwise."""
    clauses = parse_filter(filter, MODEL_VERSIONS)
    order = parse_order_by(order_by, MODEL_VERSIONS)
    limit = check_max_results(max_results, MODEL_VERSIONS)
    offset, after = page_start(page_token)

    def read(conn: Connection) -> JSON:
        ids, last = registry_search.search_versions(
            conn, clauses, order, offset=offset, limit=limit, after=after
        )
        held = _versions_json(conn, ids)
        found: JSON = {"model_versions": [held[i] for i in ids if i in held]}
        if last is not None:
            found["next_page_token"] = next_page(offset, limit, last)
        return found

    return reg.db.read(read)


@router.patch(f"{P}/model-versions/update")
def update_model_version(reg: Writer, body: VersionDescription) -> JSON:
    """A version's description (its files, params, metrics and lineage never change)."""
    ref = Ref(model=lookup_name(body.name), number=version_number(body.version))
    reg.set_description(str(ref), check_description(body.description))
    return {
        "model_version": reg.db.read(lambda conn: _version_of(conn, versions.resolve(conn, ref)))
    }


@router.delete(f"{P}/model-versions/delete")
def delete_model_version(reg: Maintainer, body: VersionKey) -> JSON:
    """Delete a version by modelreg's rules, its record kept. The aliases on it go with
    it, as in MLflow, but a protected one (``production``) refuses: move it first."""
    name = lookup_name(body.name)
    number = version_number(body.version)

    ref = f"{name}/{number}"
    reg.db.write(
        lambda conn: deletion.delete_with_aliases(
            conn, ref, reason=DELETED_BY_MLFLOW, actor=reg.actor
        )
    )
    return {}


@router.post(f"{P}/model-versions/set-tag")
def set_model_version_tag(reg: Writer, body: VersionTagBody) -> JSON:
    reg.set_tag(f"{lookup_name(body.name)}/{version_number(body.version)}", body.key, body.value)
    return {}


@router.delete(f"{P}/model-versions/delete-tag")
def delete_model_version_tag(reg: Writer, body: VersionTagKey) -> JSON:
    reg.delete_tag(f"{lookup_name(body.name)}/{version_number(body.version)}", body.key)
    return {}


@router.get(f"{P}/model-versions/get-download-uri")
def get_model_version_download_uri(reg: Reader, name: Text, version: Text) -> JSON:
    """Where MLflow's client loads the version from: its own files, read-only
    (``mlflow-artifacts:/versions/<UUID>``), whatever the folder they were registered from
    holds now, and whoever registered it (MLflow's client or modelreg's SDK)."""
    vid = reg.db.read(lambda conn: _version_id(conn, name, version))
    return {"artifact_uri": ArtifactLocation(None, VERSION, vid, "").uri}


@router.post(f"{P}/model-versions/transition-stage")
def transition_model_version_stage(reg: Maintainer, body: TransitionBody) -> JSON:
    """Move a version to a stage, that is, its alias: through the promotion gates of a
    protected one (``production``), all in one transaction. The version leaves its other
    stage; with ``archive_existing_versions``, the stage's previous holder is archived."""
    name = lookup_name(body.name)
    number = version_number(body.version)
    stage = canonical_stage(body.stage)

    def change(conn: Connection) -> JSON:
        vid = stages.transition(
            conn,
            name,
            number,
            stage,
            archive_existing=body.archive_existing_versions,
            actor=reg.actor,
        )
        return _version_of(conn, vid)

    return {"model_version": reg.db.write(change)}
