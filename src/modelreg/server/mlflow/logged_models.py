"""MLflow 3's logged models (``/api/2.0/mlflow/logged-models``) and a run's outputs: what
``mlflow.<flavor>.log_model`` creates, uploads files to, finalizes and tags, and what a
model version is later registered from (the store is ``modelreg.logged_models``).

Each model is answered as MLflow's ``LoggedModel``: ``info`` (ids, times in milliseconds,
status, tags as a list, the versions registered from it) and ``data`` (params as a list;
metrics are not kept for logged models here, so the list is empty).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import Field
from sqlalchemy.engine import Connection

from modelreg import artifacts, logged_models
from modelreg.errors import InvalidInput
from modelreg.logged_models import WIRE_STATUS, LoggedModel
from modelreg.manifest import check_path
from modelreg.mlflow_filter import LOGGED_MODELS, page_start, page_token, parse_filter
from modelreg.refs import ArtifactLocation
from modelreg.server.api import Maintainer, Reader, Writer
from modelreg.server.auth import single_values
from modelreg.server.mlflow.artifacts import file_info
from modelreg.server.mlflow.protocol import ERRORS, Body
from modelreg.timestamps import to_ms
from modelreg.values import MAX_PAGE

PREFIX = "/api/2.0/mlflow"
router = APIRouter(
    prefix=PREFIX, tags=["mlflow"], responses=ERRORS, dependencies=[Depends(single_values())]
)

JSON = dict[str, Any]
DEFAULT_RESULTS = 100  # MLflow's page of logged models
_STATUS_NUMBERS = {
    1: "LOGGED_MODEL_PENDING",
    2: "LOGGED_MODEL_READY",
    3: "LOGGED_MODEL_UPLOAD_FAILED",
}
Text = Annotated[str, Query(max_length=4096)]


class KeyValue(Body):
    key: str = Field(max_length=1000)
    value: str = Field(default="", max_length=100_000)


class CreateBody(Body):
    experiment_id: str = Field(max_length=20)
    name: str | None = Field(default=None, max_length=10_000)
    model_type: str | None = Field(default=None, max_length=10_000)
    source_run_id: str | None = Field(default=None, max_length=100)
    params: list[KeyValue] = Field(default_factory=list, max_length=10_000)
    tags: list[KeyValue] = Field(default_factory=list, max_length=10_000)


class FinalizeBody(Body):
    status: str | int


class TagsBody(Body):
    tags: list[KeyValue] = Field(default_factory=list, max_length=10_000)


class ParamsBody(Body):
    params: list[KeyValue] = Field(default_factory=list, max_length=10_000)


class OrderBy(Body):
    field_name: str = Field(max_length=1000)
    ascending: bool = True


class SearchBody(Body):
    experiment_ids: list[str] = Field(default_factory=list, max_length=1000)
    filter: str | None = Field(default=None, max_length=100_000)
    max_results: int | None = Field(default=None, ge=0)
    order_by: list[OrderBy] = Field(default_factory=list, max_length=20)
    page_token: str | None = Field(default=None, max_length=4096)
    datasets: list[dict[str, Any]] = Field(default_factory=list, max_length=1000)


class ModelOutput(Body):
    model_id: str = Field(max_length=100)
    step: int = Field(default=0, ge=0)


class OutputsBody(Body):
    run_id: str = Field(max_length=100)
    models: list[ModelOutput] = Field(max_length=10_000)


# -- the routes ----------------------------------------------------------------------------------


@router.post("/logged-models")
def create_logged_model(body: CreateBody, reg: Writer) -> JSON:
    """A new logged model, pending until its files are uploaded and it is finalized."""
    experiment_id = _experiment_id(body.experiment_id)
    model = reg.db.write(
        lambda conn: logged_models.create(
            conn,
            experiment_id=experiment_id,
            name=body.name,
            model_type=body.model_type or "",
            run_id=body.source_run_id or None,
            params=_pairs(body.params),
            tags=_pairs(body.tags),
            actor=reg.actor,
        )
    )
    return {"model": as_mlflow(model)}


@router.get("/logged-models/{model_id}")
def get_logged_model(model_id: str, reg: Reader) -> JSON:
    return {"model": as_mlflow(reg.db.read(lambda conn: logged_models.get(conn, model_id)))}


@router.patch("/logged-models/{model_id}")
def finalize_logged_model(model_id: str, body: FinalizeBody, reg: Writer) -> JSON:
    """Mark the model ready (its files are all uploaded) or failed."""
    status = body.status
    if isinstance(status, int):
        status = _STATUS_NUMBERS.get(status, str(status))
    model = reg.db.write(
        lambda conn: logged_models.finalize(conn, model_id, str(status), actor=reg.actor)
    )
    return {"model": as_mlflow(model)}


@router.delete("/logged-models/{model_id}")
def delete_logged_model(model_id: str, reg: Maintainer) -> JSON:
    """Delete a logged model that no live version was registered from (a maintainer's
    call, as deleting a version is); its record stays in the audit log."""
    reg.db.write(lambda conn: logged_models.delete(conn, model_id, actor=reg.actor))
    return {}


@router.patch("/logged-models/{model_id}/tags")
def set_logged_model_tags(model_id: str, body: TagsBody, reg: Writer) -> JSON:
    tags = _pairs(body.tags)
    reg.db.write(lambda conn: logged_models.set_tags(conn, model_id, tags, actor=reg.actor))
    return {}


@router.delete("/logged-models/{model_id}/tags/{tag_key:path}")
def delete_logged_model_tag(model_id: str, tag_key: str, reg: Writer) -> JSON:
    reg.db.write(lambda conn: logged_models.delete_tag(conn, model_id, tag_key, actor=reg.actor))
    return {}


@router.post("/logged-models/{model_id}/params")
def log_logged_model_params(model_id: str, body: ParamsBody, reg: Writer) -> JSON:
    params = _pairs(body.params)
    reg.db.write(lambda conn: logged_models.log_params(conn, model_id, params, actor=reg.actor))
    return {}


@router.post("/logged-models/search")
def search_logged_models(body: SearchBody, reg: Reader) -> JSON:
    """Logged models of the experiments named, that meet MLflow's filter, in order, paged."""
    if not body.experiment_ids:
        raise InvalidInput("experiment_ids is required: the experiments to search")
    experiment_ids = [_experiment_id(e) for e in body.experiment_ids]
    clauses = parse_filter(body.filter, LOGGED_MODELS)
    order = [_order_key(item) for item in body.order_by]
    limit = body.max_results or DEFAULT_RESULTS
    if limit > MAX_PAGE:
        raise InvalidInput(f"max_results must be at most {MAX_PAGE}, not {limit}")
    offset, after = page_start(body.page_token)
    if body.datasets:  # models with metrics on these datasets: none, as none are kept
        return {"models": []}
    found, last = reg.db.read(
        lambda conn: logged_models.search(
            conn, experiment_ids, clauses, order, offset=offset, limit=limit, after=after
        )
    )
    answer: JSON = {"models": [as_mlflow(m) for m in found]}
    if last is not None:
        answer["next_page_token"] = page_token(offset + limit, last)
    return answer


@router.get("/logged-models/{model_id}/artifacts/directories")
def list_logged_model_artifacts(
    model_id: str,
    reg: Reader,
    artifact_directory_path: Text = "",
    token: Annotated[str, Query(alias="page_token", max_length=4096)] = "",
) -> JSON:
    """The files and folders directly in a folder of the model's files, named from its
    root (every entry comes in one page, so ``page_token`` is never needed)."""
    del token
    folder = artifact_directory_path.strip("/")
    folder = check_path(folder) if folder else ""

    def read(conn: Connection) -> tuple[LoggedModel, list[artifacts.Listed]]:
        model = logged_models.get(conn, model_id, registrations=False)
        return model, artifacts.listing(conn, model.id, folder)

    model, listed = reg.db.read(read)
    prefix = f"{folder}/" if folder else ""
    return {
        "root_uri": _root(model).uri,
        "files": [file_info(prefix + item.name, item.is_dir, item.size) for item in listed],
    }


@router.post("/runs/outputs")
def log_run_outputs(body: OutputsBody, reg: Writer) -> JSON:
    """Record the logged models a run produced, each at a step."""
    outputs = [(item.model_id, item.step) for item in body.models]
    reg.db.write(
        lambda conn: logged_models.log_outputs(conn, body.run_id, outputs, actor=reg.actor)
    )
    return {}


# -- MLflow's shapes -------------------------------------------------------------------------


def as_mlflow(model: LoggedModel) -> JSON:
    """A logged model as MLflow's ``LoggedModel`` message (its JSON form)."""
    info: JSON = {
        "model_id": model.id,
        "experiment_id": str(model.experiment_id),
        "name": model.name,
        "creation_timestamp_ms": to_ms(model.created_at),
        "last_updated_timestamp_ms": to_ms(model.updated_at),
        "artifact_uri": _root(model).uri,
        "status": WIRE_STATUS[model.status],
        "model_type": model.model_type,
        "tags": [{"key": k, "value": v} for k, v in sorted(model.tags.items())],
    }
    if model.run_id:
        info["source_run_id"] = model.run_id
    if model.status_message:
        info["status_message"] = model.status_message
    if model.registrations:
        info["registrations"] = [
            {"name": name, "version": str(number)} for name, number in model.registrations
        ]
    params = [{"key": k, "value": v} for k, v in sorted(model.params.items())]
    return {"info": info, "data": {"params": params} if params else {}}


def _root(model: LoggedModel) -> ArtifactLocation:
    return ArtifactLocation(model.experiment_id, "logged_model", model.id, "")


def _pairs(items: list[KeyValue]) -> dict[str, str]:
    return {item.key: item.value for item in items}


def _experiment_id(text: str) -> int:
    if (
        not (text.isascii() and text.isdigit())
        or len(text) > 18
        or (text != "0" and text.startswith("0"))
    ):
        raise InvalidInput(f"experiment id {text[:40]!r} is not an experiment id (a number)")
    return int(text)


def _order_key(item: OrderBy) -> tuple[str, bool]:
    """(attribute, ascending) of an ``order_by`` entry; ``metrics.KEY`` orders nothing here
    (logged models hold no metrics), and any other entity is refused, as MLflow does."""
    name = item.field_name.strip()
    if "." in name:
        entity = name.split(".", 1)[0]
        if entity != "metrics":
            raise InvalidInput(
                f"order_by field {name[:100]!r}: only attributes and metrics.<name> are allowed"
            )
        return name, item.ascending
    attribute = LOGGED_MODELS.attribute(name)
    if attribute is None:
        listed = ", ".join(sorted(LOGGED_MODELS.orderable))
        raise InvalidInput(
            f"order_by field {name[:100]!r} is unknown: use {listed} or metrics.<name>"
        )
    return attribute, item.ascending
