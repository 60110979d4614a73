"""MLflow's tracking routes: experiments, runs, params, metrics, tags, inputs and run search,
answered by modelreg's own stores (``experiments``, ``runs``, ``tracking_search``).

- An MLflow run is a modelreg run (``origin`` "mlflow"), filed under an experiment: params,
  full metric history with MLflow's times and steps, tags, datasets, status and times, its
  events audited as the SDK's are (``run.start``, ``run.params``, ``run.metric``, ...). The
  runs of modelreg's SDK are in experiment ``0`` and show there.
- A run's ``data.metrics`` holds the latest value of each metric (greatest step, then time).
- A run's ``outputs`` are the logged models it produced (``runs/outputs``), as MLflow 3 shows.
- A run resumed with ``start_run(run_id=...)`` (status RUNNING after it ended) is reopened,
  audited as ``run.reopen``; a run of modelreg's SDK that ended stays ended (INVALID_STATE).
- ``log_input``'s datasets become modelreg datasets, so lineage and retirement see them:
  named by their name's slug, with MLflow's digest kept as ``mlflow:<digest>`` (MLflow's
  digests are not sha256, and never equal or prefix one); the input as logged is shown back.
- Metric values must be finite (values.check_metric): NaN and infinities are refused.
- Deleting or restoring runs and experiments needs the maintainer role, as deletions do.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import Field, StrictInt
from sqlalchemy.engine import Connection

from modelreg import experiments, logged_models, metric_points, runs, tracking_search
from modelreg.dataset_files import ROLES
from modelreg.errors import InvalidInput
from modelreg.local import LocalRegistry
from modelreg.mlflow_filter import (
    EXPERIMENTS,
    RUNS,
    Clause,
    Grammar,
    page_offset,
    page_start,
    parse_filter,
    parse_order_by,
    stored_times,
)
from modelreg.mlflow_filter import page_token as next_page_token
from modelreg.records import DatasetUse, Experiment, RunInput, TrackedRun
from modelreg.refs import RUN, check_name, is_owner_id, is_uuid, slug
from modelreg.run import MAX_NAME as MAX_RUN_NAME
from modelreg.server.api import Maintainer, Reader, Writer
from modelreg.server.mlflow.protocol import ERRORS, Body
from modelreg.timestamps import check_ms, from_ms, now, now_ms, to_ms
from modelreg.values import (
    MAX_EXPERIMENT_TAG_VALUE,
    MAX_RUN_TAG_VALUE,
    check_key,
    check_params,
    check_tag,
    check_text,
)

router = APIRouter(prefix="/api/2.0/mlflow", tags=["mlflow"], responses=ERRORS)

JSON = dict[str, Any]

MAX_EXPERIMENT_NAME = 500
MAX_RESULTS = 50_000  # MLflow's own ceiling for a page of runs or experiments
DEFAULT_RESULTS = 1000
MAX_HISTORY = 1_000_000
# log-batch's limits, as MLflow's server sets them
MAX_BATCH_METRICS = 1000
MAX_BATCH_PARAMS = 100
MAX_BATCH_TAGS = 100
MAX_BATCH_ENTRIES = 1000
MAX_INPUTS = 1000
# a dataset input's fields, as MLflow limits them
MAX_DATASET_NAME = 500
MAX_DATASET_DIGEST = 36
MAX_DATASET_SOURCE = 65_535
MAX_DATASET_SCHEMA = 1_048_575
MAX_DATASET_PROFILE = 16_777_215
MAX_INPUT_TAG_KEY = 255
MAX_INPUT_TAG_VALUE = 500
CONTEXT_TAG = "mlflow.data.context"
STATUSES = ("RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED")  # MLflow's, 1 to 5
VIEWS = {"1": "ACTIVE_ONLY", "2": "DELETED_ONLY", "3": "ALL"}


# -- what the routes check ---------------------------------------------------------------------


def experiment_id(value: Any, field: str = "experiment_id") -> int:
    if value is None or value == "":
        raise InvalidInput(f"{field} is required")
    return tracking_search.experiment_number(value)


def run_id_of(run_id: str | None, run_uuid: str | None) -> str:
    found = run_id or run_uuid
    if not found:
        raise InvalidInput("run_id is required")
    if not is_owner_id(RUN, found):
        raise InvalidInput(
            f"run_id {found[:80]!r} is invalid: a run id is up to 36 letters, digits and '-'"
        )
    return found


def max_results(value: int | None, *, default: int = DEFAULT_RESULTS) -> int:
    if value is None:
        return default
    if not 1 <= value <= MAX_RESULTS:
        raise InvalidInput(f"max_results must be from 1 to {MAX_RESULTS}, not {value}")
    return value


def view_of(value: str | int | None, field: str) -> str:
    if value is None or value == "":
        return "ACTIVE_ONLY"
    text = str(value).upper()
    found = VIEWS.get(text, text)
    if found not in VIEWS.values():
        raise InvalidInput(f"{field} {value!r} is invalid: use one of {', '.join(VIEWS.values())}")
    return found


def _ms_stamp(ms: int) -> str:
    return from_ms(ms, "time")


def _times(clauses: Sequence[Clause], grammar: Grammar) -> tuple[Clause, ...]:
    """The clauses with MLflow's milliseconds on time attributes made stored times."""
    return stored_times(clauses, grammar, _ms_stamp)


# -- JSON forms --------------------------------------------------------------------------------


def _pairs(mapping: dict[str, str]) -> list[JSON]:
    return [{"key": k, "value": v} for k, v in mapping.items()]


def experiment_json(e: Experiment) -> JSON:
    return {
        "experiment_id": str(e.id),
        "name": e.name,
        "artifact_location": f"mlflow-artifacts:/{e.id}",
        "lifecycle_stage": e.lifecycle_stage,
        "last_update_time": to_ms(e.updated_at),
        "creation_time": to_ms(e.created_at),
        "tags": _pairs(e.tags),
    }


def run_info_json(r: TrackedRun) -> JSON:
    info: JSON = {
        "run_id": r.id,
        "run_uuid": r.id,
        "run_name": r.name,
        "experiment_id": str(r.experiment_id),
        "user_id": r.user,
        "status": r.status.upper(),
        "start_time": to_ms(r.started_at),
        "artifact_uri": f"mlflow-artifacts:/{r.experiment_id}/{r.id}/artifacts",
        "lifecycle_stage": r.lifecycle_stage,
    }
    if r.ended_at is not None:
        info["end_time"] = to_ms(r.ended_at)
    return info


def _input_json(used: RunInput) -> JSON:
    dataset: JSON = {
        "name": used.name,
        "digest": used.digest,
        "source_type": used.source_type,
        "source": used.source,
    }
    if used.schema:
        dataset["schema"] = used.schema
    if used.profile:
        dataset["profile"] = used.profile
    return {"tags": _pairs(used.tags), "dataset": dataset}


def run_json(r: TrackedRun, outputs: Sequence[tuple[str, int]] = ()) -> JSON:
    """A run as MLflow's ``Run``: info, data, its inputs, and its outputs (the logged models
    it produced, each at its step; ``{}`` when none, as MLflow writes it)."""
    tags = dict(r.tags)
    tags.setdefault(runs.RUN_NAME_TAG, r.name)
    return {
        "info": run_info_json(r),
        "data": {
            "metrics": [
                {"key": m.key, "value": m.value, "timestamp": to_ms(m.timestamp), "step": m.step}
                for m in r.metrics
            ],
            "params": _pairs(r.params),
            "tags": _pairs(tags),
        },
        "inputs": {"dataset_inputs": [_input_json(i) for i in r.inputs]},
        "outputs": (
            {"model_outputs": [{"model_id": m, "step": step} for m, step in outputs]}
            if outputs
            else {}
        ),
    }


# -- experiments -------------------------------------------------------------------------------


class KeyValue(Body):
    key: str
    value: str = ""


class CreateExperimentBody(Body):
    name: str
    artifact_location: str | None = None
    tags: list[KeyValue] = Field(default_factory=list, max_length=1000)


def _experiment_tags(tags: Sequence[KeyValue]) -> dict[str, str]:
    return dict(check_tag(t.key, t.value, limit=MAX_EXPERIMENT_TAG_VALUE) for t in tags)


@router.get("/experiments/get-by-name")
def get_experiment_by_name(reg: Reader, experiment_name: str) -> JSON:
    name = check_text(experiment_name, what="experiment_name", limit=MAX_EXPERIMENT_NAME)
    found = reg.db.read(lambda c: experiments.by_name(c, name))
    return {"experiment": experiment_json(found)}


@router.post("/experiments/create")
def create_experiment(reg: Writer, body: CreateExperimentBody) -> JSON:
    name = check_text(body.name, what="experiment name", limit=MAX_EXPERIMENT_NAME)
    if body.artifact_location:
        raise InvalidInput(
            "artifact_location cannot be set: this server holds every experiment's artifacts"
            " itself (mlflow-artifacts:/<experiment id>); leave it out"
        )
    tags = _experiment_tags(body.tags)
    new = reg.db.write(lambda c: experiments.create(c, name, tags=tags, actor=reg.actor))
    return {"experiment_id": str(new)}


@router.get("/experiments/get")
def get_experiment(reg: Reader, experiment_id: str) -> JSON:
    number = tracking_search.experiment_number(experiment_id)
    return {"experiment": experiment_json(reg.db.read(lambda c: experiments.get(c, number)))}


class SearchExperimentsBody(Body):
    max_results: StrictInt | None = None
    page_token: str | None = None
    filter: str | None = None
    order_by: list[str] = Field(default_factory=list)
    view_type: str | StrictInt | None = None


@router.post("/experiments/search")
def search_experiments(reg: Reader, body: SearchExperimentsBody) -> JSON:
    return _search_experiments(reg, body)


@router.get("/experiments/search")
def search_experiments_get(
    reg: Reader,
    max_results: int | None = None,
    page_token: str | None = None,
    filter: str | None = None,
    order_by: Annotated[list[str] | None, Query()] = None,
    view_type: str | None = None,
) -> JSON:
    body = SearchExperimentsBody(
        max_results=max_results,
        page_token=page_token,
        filter=filter,
        order_by=order_by or [],
        view_type=view_type,
    )
    return _search_experiments(reg, body)


def _search_experiments(reg: LocalRegistry, body: SearchExperimentsBody) -> JSON:
    limit = max_results(body.max_results)
    offset, after = page_start(body.page_token)
    clauses = _times(parse_filter(body.filter, EXPERIMENTS), EXPERIMENTS)
    order = parse_order_by(body.order_by, EXPERIMENTS)
    view = view_of(body.view_type, "view_type")
    found, last = reg.db.read(
        lambda c: tracking_search.search_experiments(
            c, clauses=clauses, order=order, view=view, limit=limit, offset=offset, after=after
        )
    )
    answer: JSON = {"experiments": [experiment_json(e) for e in found]}
    if last is not None:
        answer["next_page_token"] = next_page_token(offset + limit, last)
    return answer


class UpdateExperimentBody(Body):
    experiment_id: str
    new_name: str


@router.post("/experiments/update")
def update_experiment(reg: Writer, body: UpdateExperimentBody) -> JSON:
    number = experiment_id(body.experiment_id)
    name = check_text(body.new_name, what="new_name", limit=MAX_EXPERIMENT_NAME)
    reg.db.write(lambda c: experiments.rename(c, number, name, actor=reg.actor))
    return {}


class ExperimentBody(Body):
    experiment_id: str


@router.post("/experiments/delete")
def delete_experiment(reg: Maintainer, body: ExperimentBody) -> JSON:
    number = experiment_id(body.experiment_id)
    reg.db.write(lambda c: experiments.set_stage(c, number, "deleted", actor=reg.actor))
    return {}


@router.post("/experiments/restore")
def restore_experiment(reg: Maintainer, body: ExperimentBody) -> JSON:
    number = experiment_id(body.experiment_id)
    reg.db.write(lambda c: experiments.set_stage(c, number, "active", actor=reg.actor))
    return {}


class ExperimentTagBody(Body):
    experiment_id: str
    key: str
    value: str = ""


@router.post("/experiments/set-experiment-tag")
def set_experiment_tag(reg: Writer, body: ExperimentTagBody) -> JSON:
    number = experiment_id(body.experiment_id)
    key, value = check_tag(body.key, body.value, limit=MAX_EXPERIMENT_TAG_VALUE)
    reg.db.write(lambda c: experiments.set_tag(c, number, key, value, actor=reg.actor))
    return {}


class ExperimentTagKeyBody(Body):
    experiment_id: str
    key: str


@router.post("/experiments/delete-experiment-tag")
def delete_experiment_tag(reg: Writer, body: ExperimentTagKeyBody) -> JSON:
    number = experiment_id(body.experiment_id)
    key = check_key(body.key, kind="tag")
    reg.db.write(lambda c: experiments.delete_tag(c, number, key, actor=reg.actor))
    return {}


# -- runs --------------------------------------------------------------------------------------


class CreateRunBody(Body):
    experiment_id: str | None = None
    user_id: str | None = None
    run_name: str | None = None
    start_time: StrictInt | None = None
    tags: list[KeyValue] = Field(default_factory=list, max_length=1000)


def _run_tags(tags: Sequence[KeyValue]) -> dict[str, str]:
    """Tags as MLflow sends them, checked; the last of a key given twice counts."""
    checked = dict(check_tag(t.key, t.value, limit=MAX_RUN_TAG_VALUE) for t in tags)
    if runs.RUN_NAME_TAG in checked:
        check_text(checked[runs.RUN_NAME_TAG], what="run name", limit=MAX_RUN_NAME)
    return checked


@router.post("/runs/create")
def create_run(reg: Writer, body: CreateRunBody) -> JSON:
    number = experiment_id(body.experiment_id) if body.experiment_id else experiments.DEFAULT
    tags = _run_tags(body.tags)
    named = tags.get(runs.RUN_NAME_TAG)
    if body.run_name and named and body.run_name != named:
        raise InvalidInput(
            f"run_name {body.run_name!r} and the tag mlflow.runName {named!r} differ: give one"
        )
    name = body.run_name or named or runs.generated_name()
    check_text(name, what="run_name", limit=MAX_RUN_NAME)
    started = from_ms(body.start_time, "start_time") if body.start_time is not None else now()
    new_id = uuid.uuid4().hex
    user = check_text(body.user_id, what="user_id", limit=256) if body.user_id else reg.actor

    def create(c: Connection) -> TrackedRun:
        runs.create_tracked(
            c,
            run_id=new_id,
            name=name,
            experiment_id=number,
            user=user,
            started_at=started,
            tags=tags,
            actor=reg.actor,
        )
        return runs.load_tracked(c, new_id)

    return {"run": run_json(reg.db.write(create))}


@router.get("/runs/get")
def get_run(reg: Reader, run_id: str | None = None, run_uuid: str | None = None) -> JSON:
    found = run_id_of(run_id, run_uuid)

    def read(c: Connection) -> JSON:
        return run_json(runs.load_tracked(c, found), logged_models.outputs_of(c, found))

    return {"run": reg.db.read(read)}


class UpdateRunBody(Body):
    run_id: str | None = None
    run_uuid: str | None = None
    status: str | StrictInt | None = None
    end_time: StrictInt | None = None
    run_name: str | None = None


def status_of(value: str | int | None) -> str | None:
    if value is None or value == "":
        return None
    text = str(value).upper()
    if text.isascii() and text.isdigit() and 1 <= int(text) <= len(STATUSES):
        text = STATUSES[int(text) - 1]
    if text not in STATUSES:
        raise InvalidInput(f"status {value!r} is invalid: use one of {', '.join(STATUSES)}")
    return text.lower()


@router.post("/runs/update")
def update_run(reg: Writer, body: UpdateRunBody) -> JSON:
    found = run_id_of(body.run_id, body.run_uuid)
    status = status_of(body.status)
    ended = from_ms(body.end_time, "end_time") if body.end_time is not None else None
    name = None
    if body.run_name:
        name = check_text(body.run_name, what="run_name", limit=MAX_RUN_NAME)

    def update(c: Connection) -> TrackedRun:
        runs.update_tracked(c, found, status=status, ended_at=ended, name=name, actor=reg.actor)
        return runs.load_tracked(c, found)

    return {"run_info": run_info_json(reg.db.write(update))}


class RunBody(Body):
    run_id: str | None = None
    run_uuid: str | None = None


@router.post("/runs/delete")
def delete_run(reg: Maintainer, body: RunBody) -> JSON:
    found = run_id_of(body.run_id, body.run_uuid)
    reg.db.write(lambda c: runs.set_deleted(c, found, True, actor=reg.actor))
    return {}


@router.post("/runs/restore")
def restore_run(reg: Maintainer, body: RunBody) -> JSON:
    found = run_id_of(body.run_id, body.run_uuid)
    reg.db.write(lambda c: runs.set_deleted(c, found, False, actor=reg.actor))
    return {}


class ParamBody(RunBody):
    key: str
    value: str


@router.post("/runs/log-parameter")
def log_param(reg: Writer, body: ParamBody) -> JSON:
    found = run_id_of(body.run_id, body.run_uuid)
    params = check_params({body.key: body.value})
    reg.db.write(lambda c: runs.log_params(c, found, params, actor=reg.actor))
    return {}


class MetricBody(Body):
    key: str
    value: Any = None  # checked by metric_points.check_points: a finite number
    timestamp: StrictInt | None = None
    step: StrictInt = 0


class LogMetricBody(MetricBody):
    run_id: str | None = None
    run_uuid: str | None = None


def _points(metrics: Sequence[MetricBody]) -> tuple[list[tuple[str, float, int]], list[int]]:
    """Metric points, checked (finite values, steps from 0 to 2**31 - 1), with their times
    (milliseconds; now for a point without one)."""
    points = metric_points.check_points([(m.key, m.value, m.step) for m in metrics]).points()
    stamp = now_ms()
    times = [
        stamp if m.timestamp is None else check_ms(m.timestamp, f"metric {m.key!r}: timestamp")
        for m in metrics
    ]
    return points, times


@router.post("/runs/log-metric")
def log_metric(reg: Writer, body: LogMetricBody) -> JSON:
    found = run_id_of(body.run_id, body.run_uuid)
    points, times = _points([body])
    batch = metric_points.batch_of(points, times)
    reg.db.write(lambda c: metric_points.add_metrics(c, found, batch, actor=reg.actor))
    return {}


class LogBatchBody(Body):
    run_id: str | None = None
    run_uuid: str | None = None
    metrics: list[MetricBody] = Field(default_factory=list)
    params: list[KeyValue] = Field(default_factory=list)
    tags: list[KeyValue] = Field(default_factory=list)


@router.post("/runs/log-batch")
def log_batch(reg: Writer, body: LogBatchBody) -> JSON:
    """Params, metrics and tags in one transaction: all of them, or (refused) none."""
    found = run_id_of(body.run_id, body.run_uuid)
    for what, items, limit in (
        ("metrics", body.metrics, MAX_BATCH_METRICS),
        ("params", body.params, MAX_BATCH_PARAMS),
        ("tags", body.tags, MAX_BATCH_TAGS),
    ):
        if len(items) > limit:
            raise InvalidInput(
                f"a batch holds at most {limit} {what}, not {len(items)}: split it into"
                " several requests"
            )
    total = len(body.metrics) + len(body.params) + len(body.tags)
    if total > MAX_BATCH_ENTRIES:
        raise InvalidInput(
            f"a batch holds at most {MAX_BATCH_ENTRIES} metrics, params and tags together,"
            f" not {total}"
        )
    params: dict[str, str] = {}
    for p in body.params:
        ((key, value),) = check_params({p.key: p.value}).items()
        if params.get(key, value) != value:
            raise InvalidInput(
                f"param {key!r} is given twice in the batch with different values"
                f" ({params[key]!r}, {value!r})"
            )
        params[key] = value
    points, times = _points(body.metrics)
    tags = _run_tags(body.tags)

    def log(c: Connection) -> None:
        if params:
            runs.log_params(c, found, params, actor=reg.actor)
        # A point sent again (the client re-sends a run's latest ones when it logs a model)
        # is stored once, as MLflow does.
        fresh, fresh_times = metric_points.unseen_points(c, found, points, times)
        if fresh:
            batch = metric_points.batch_of(fresh, fresh_times)
            metric_points.add_metrics(c, found, batch, actor=reg.actor)
        if tags:
            runs.set_tags(c, found, tags, actor=reg.actor)
        if not (params or fresh or tags):
            runs.check_writable(c, found, facts=False)

    reg.db.write(log)
    return {}


class TagBody(RunBody):
    key: str
    value: str


@router.post("/runs/set-tag")
def set_tag(reg: Writer, body: TagBody) -> JSON:
    found = run_id_of(body.run_id, body.run_uuid)
    tags = _run_tags([KeyValue(key=body.key, value=body.value)])
    reg.db.write(lambda c: runs.set_tags(c, found, tags, actor=reg.actor))
    return {}


class DeleteTagBody(RunBody):
    key: str


@router.post("/runs/delete-tag")
def delete_tag(reg: Writer, body: DeleteTagBody) -> JSON:
    found = run_id_of(body.run_id, body.run_uuid)
    key = check_key(body.key, kind="tag")
    reg.db.write(lambda c: runs.delete_tag(c, found, key, actor=reg.actor))
    return {}


# -- inputs ------------------------------------------------------------------------------------


class DatasetBody(Body):
    name: str
    digest: str
    source_type: str = ""
    source: str = ""
    schema_: str = Field(default="", alias="schema")
    profile: str = ""


class DatasetInputBody(Body):
    tags: list[KeyValue] = Field(default_factory=list, max_length=100)
    dataset: DatasetBody


class LogInputsBody(Body):
    run_id: str | None = None
    run_uuid: str | None = None
    datasets: list[DatasetInputBody] = Field(default_factory=list)


def role_of(context: str | None) -> str:
    """The modelreg role of an MLflow dataset context: train (also when none is given),
    test, or validation for any other (eval, validation, ...)."""
    if context is None or context.lower().startswith("train"):
        return "train"
    return "test" if context.lower().startswith("test") else "validation"


def dataset_name(name: str) -> str:
    """The modelreg name of an MLflow dataset's name: its slug ("dataset" when none)."""
    found = slug(name) or "dataset"
    if is_uuid(found):
        found = f"dataset-{found}"
    return check_name(found, kind="dataset name")


def _source_uri(source: str) -> str:
    """Where a dataset's source (MLflow's JSON text) says its data is."""
    try:
        parsed = json.loads(source)
    except ValueError:
        return source
    if isinstance(parsed, dict):
        for key in ("uri", "url", "path", "location", "table_name"):
            if isinstance(parsed.get(key), str) and parsed[key] and "\x00" not in parsed[key]:
                return str(parsed[key])
    return source


def _check_input(given: DatasetInputBody) -> tuple[DatasetUse, str]:
    d = given.dataset
    for what, text, limit, required in (
        ("name", d.name, MAX_DATASET_NAME, True),
        ("digest", d.digest, MAX_DATASET_DIGEST, True),
        ("source", d.source, MAX_DATASET_SOURCE, False),
        ("schema", d.schema_, MAX_DATASET_SCHEMA, False),
        ("profile", d.profile, MAX_DATASET_PROFILE, False),
        ("source_type", d.source_type, MAX_DATASET_NAME, False),
    ):
        if required or text:
            check_text(text, what=f"dataset {what}", limit=limit)
    if any(not ch.isprintable() for ch in d.digest):
        raise InvalidInput(f"dataset digest {d.digest!r} holds a control character")
    tags: dict[str, str] = {}
    for t in given.tags:
        check_text(t.key, what="dataset input tag key", limit=MAX_INPUT_TAG_KEY)
        if len(t.value) > MAX_INPUT_TAG_VALUE or "\x00" in t.value:
            raise InvalidInput(
                f"dataset input tag {t.key!r} must be text of at most {MAX_INPUT_TAG_VALUE}"
                " characters"
            )
        tags[t.key] = t.value
    role = role_of(tags.get(CONTEXT_TAG))
    assert role in ROLES
    use = DatasetUse(dataset_name(d.name), f"mlflow:{d.digest}", _source_uri(d.source), 0, 0, role)
    logged = RunInput(d.name, d.digest, d.source_type, d.source, d.schema_, d.profile, tags)
    details = json.dumps(
        {
            "name": logged.name,
            "digest": logged.digest,
            "source_type": logged.source_type,
            "source": logged.source,
            "schema": logged.schema,
            "profile": logged.profile,
            "tags": logged.tags,
        }
    )
    return use, details


@router.post("/runs/log-inputs")
def log_inputs(reg: Writer, body: LogInputsBody) -> JSON:
    """Datasets a run read, each recorded as a modelreg dataset version (name, ``mlflow:``
    digest, source URI) used by the run, with the input as logged kept for MLflow clients.
    Logged models as inputs are not recorded."""
    found = run_id_of(body.run_id, body.run_uuid)
    if len(body.datasets) > MAX_INPUTS:
        raise InvalidInput(f"at most {MAX_INPUTS} datasets per request, not {len(body.datasets)}")
    checked = [_check_input(d) for d in body.datasets]

    def log(c: Connection) -> None:
        runs.check_writable(c, found)
        for use, details in checked:
            runs.add_dataset(c, found, use, actor=reg.actor, details=details)

    reg.db.write(log)
    return {}


# -- metric history and run search -------------------------------------------------------------


@router.get("/metrics/get-history")
def get_metric_history(
    reg: Reader,
    metric_key: str,
    run_id: str | None = None,
    run_uuid: str | None = None,
    max_results: int | None = None,
    page_token: str | None = None,
) -> JSON:
    found = run_id_of(run_id, run_uuid)
    key = check_key(metric_key, kind="metric")
    if max_results is not None and not 1 <= max_results <= MAX_HISTORY:
        raise InvalidInput(f"max_results must be from 1 to {MAX_HISTORY}, not {max_results}")
    offset = page_offset(page_token)
    limit = None if max_results is None else max_results + 1
    points = reg.db.read(lambda c: runs.metric_history(c, found, key, limit=limit, offset=offset))
    answer: JSON = {
        "metrics": [
            {"key": p.key, "value": p.value, "timestamp": to_ms(p.timestamp), "step": p.step}
            for p in points[:max_results]
        ]
    }
    if max_results is not None and len(points) > max_results:
        answer["next_page_token"] = next_page_token(offset + max_results)
    return answer


class SearchRunsBody(Body):
    experiment_ids: list[str] = Field(default_factory=list, max_length=1000)
    filter: str | None = None
    run_view_type: str | StrictInt | None = None
    max_results: StrictInt | None = None
    order_by: list[str] = Field(default_factory=list)
    page_token: str | None = None


@router.post("/runs/search")
def search_runs(reg: Reader, body: SearchRunsBody) -> JSON:
    ids = [experiment_id(e, "experiment_ids") for e in body.experiment_ids]
    clauses = _times(parse_filter(body.filter, RUNS), RUNS)
    order = parse_order_by(body.order_by, RUNS)
    view = view_of(body.run_view_type, "run_view_type")
    limit = max_results(body.max_results)
    offset, after = page_start(body.page_token)

    def search(c: Connection) -> tuple[list[JSON], tuple[Any, ...] | None]:
        found, last = tracking_search.search_runs(
            c,
            experiment_ids=ids,
            clauses=clauses,
            order=order,
            view=view,
            limit=limit,
            offset=offset,
            after=after,
        )
        outputs = logged_models.outputs_of_runs(c, found)
        return [run_json(r, outputs[r.id]) for r in runs.load_tracked_many(c, found)], last

    found, last = reg.db.read(search)
    answer: JSON = {"runs": found}
    if last is not None:
        answer["next_page_token"] = next_page_token(offset + limit, last)
    return answer
