"""What an MLflow model version is made from: the files of a logged model, of a folder of a
run's artifacts, or of another version, that this server holds, and what the store knows of
the run behind them.

A version made this way is an ordinary modelreg version: its files are exactly those files
(paths relative to the folder), and its lineage names the run, the run's datasets, its params
and latest metrics, its code (the run's ``mlflow.source.*`` tags) and the environment the
model's MLmodel, python_env.yaml and requirements.txt describe. A source naming nothing this
server holds is refused (``mlflow_mapping.not_held``). MLflow's client then loads the version
from its own files (``mlflow-artifacts:/versions/<UUID>``), never from where they came from.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from modelreg import artifacts, capture, logged_models, runs, schema, versions
from modelreg.blobs import BlobStore
from modelreg.errors import Conflict, Gone, InvalidInput, NotFound
from modelreg.manifest import FileEntry, check_entries
from modelreg.mlflow_mapping import (
    ENVIRONMENT_FILES,
    MAX_ENVIRONMENT_FILE,
    code_facts,
    environment_facts,
    not_held,
)
from modelreg.records import DatasetUse, LoggedModel, NewVersion
from modelreg.refs import LOGGED_MODEL, RUN, VERSION, ArtifactLocation, Ref
from modelreg.values import check_metrics, check_params


@dataclass
class Held:
    """The files a source names, the experiment they are filed under (None for a version's),
    and the run behind them."""

    experiment_id: int | None
    files: list[FileEntry]  # relative to the source's folder
    run_id: str | None
    model_id: str | None  # the logged model, if the files are one's
    params: dict[str, str] = field(default_factory=dict)


def _files(conn: Connection, owner: str, folder: str, *, kind: str) -> list[FileEntry]:
    """The files under ``folder`` of ``owner``, by path relative to it; a folder that names
    one file gives that file, under its own name."""
    if not folder:
        return artifacts.files(conn, owner, kind=kind)
    found = [
        FileEntry(e.path[len(folder) + 1 :], e.digest, e.size)
        for e in artifacts.files(conn, owner, folder, kind=kind)
    ]
    if not found and (single := artifacts.get(conn, owner, folder, kind=kind)) is not None:
        found = [FileEntry(folder.rpartition("/")[2], single.digest, single.size)]
    return found


def _logged_model(conn: Connection, model_id: str, folder: str, source: str) -> Held:
    try:
        model: LoggedModel = logged_models.get(conn, model_id, registrations=False)
    except NotFound:
        raise not_held(source) from None
    if model.status != "ready":
        raise Conflict(
            f"logged model {model_id} is {model.status}"
            + (
                ": its upload failed"
                if model.status == "failed"
                else ": its files may still be uploading"
            )
            + "; a version is made from a logged model once it is finalized as"
            " LOGGED_MODEL_READY (its files are then the version's own, for good)"
        )
    held = Held(model.experiment_id, [], model.run_id, model_id, dict(model.params))
    held.files = _files(conn, model_id, folder, kind=LOGGED_MODEL)
    return held


def _version(conn: Connection, version_id: str, folder: str, source: str) -> Held:
    """Another version's files (an immutable copy of them), with its run, params and the
    logged model it was registered from. A deleted version says when and why."""
    try:
        found = versions.resolve(conn, Ref(version_id=version_id))
    except Gone:
        raise
    except NotFound:
        raise not_held(source) from None
    (version,) = versions.load(conn, [found])
    held = Held(None, [], version.run_id, None, dict(version.params))
    held.model_id = logged_models.registered_from(conn, version.id)
    held.files = _files(conn, version.id, folder, kind=VERSION)
    return held


def _newest_logged_model(conn: Connection, run_id: str, name: str) -> str | None:
    """MLflow 3's ``runs:/RUN/NAME``: the newest ready model the run logged under that name."""
    lm = schema.logged_models
    q = (
        sa.select(lm.c.id)
        .where(lm.c.run_id == run_id, lm.c.name == name, lm.c.status == "ready")
        .order_by(lm.c.created_at.desc(), lm.c.id.desc())
        .limit(1)
    )
    found = conn.execute(q).scalar()
    return None if found is None else str(found)


def resolve(conn: Connection, source: ArtifactLocation, text: str) -> Held:
    """The files ``source`` (parsed from ``text``) names on this server. A run folder that
    holds no files names the model the run logged under that name, as MLflow 3's client
    resolves ``runs:/RUN/NAME``; nothing held at all is refused."""
    if source.kind == LOGGED_MODEL:
        held = _logged_model(conn, source.owner_id, source.path, text)
    elif source.kind == VERSION:
        held = _version(conn, source.owner_id, source.path, text)
    else:
        try:
            run = runs.load_tracked(conn, source.owner_id)
        except NotFound:
            raise not_held(text) from None
        held = Held(run.experiment_id, [], run.id, None, dict(run.params))
        held.files = _files(conn, run.id, source.path, kind=RUN)
        if not held.files and source.path and "/" not in source.path:
            found = _newest_logged_model(conn, run.id, source.path)
            if found is not None and source.experiment_id is None:
                return _logged_model(conn, found, "", text)
    if source.experiment_id is not None and source.experiment_id != held.experiment_id:
        raise not_held(text)
    if not held.files:
        raise not_held(text)
    return held


@dataclass
class RunFacts:
    """What a version takes from the run that made its files: its params, the latest value
    of each metric (finite ones), its datasets and its tags."""

    params: dict[str, str]
    metrics: dict[str, float]
    datasets: list[DatasetUse]
    tags: dict[str, str]


def run_facts(conn: Connection, run_id: str) -> RunFacts:
    """NotFound when there is no such run."""
    run = runs.load_tracked(conn, run_id)
    metrics = {p.key: p.value for p in run.metrics if math.isfinite(p.value)}
    return RunFacts(dict(run.params), metrics, runs.datasets_of(conn, run_id), dict(run.tags))


def environment(blobs: BlobStore, files: list[FileEntry]) -> dict[str, Any] | None:
    """The environment the model's own MLmodel, python_env.yaml and requirements.txt (at
    the top of its folder) describe; None without them."""
    texts: dict[str, str] = {}
    for entry in files:
        if entry.path in ENVIRONMENT_FILES and entry.size <= MAX_ENVIRONMENT_FILE:
            with blobs.open(entry.digest) as f:
                texts[entry.path] = f.read(MAX_ENVIRONMENT_FILE + 1).decode("utf-8", "replace")
    return environment_facts(texts)


def new_version(
    conn: Connection,
    blobs: BlobStore,
    name: str,
    source: ArtifactLocation,
    text: str,
    *,
    run_id: str | None,
    tags: dict[str, str],
    description: str,
) -> tuple[NewVersion, Held]:
    """The version of model ``name`` that ``source`` (parsed from ``text``) makes, ready to
    commit: its files, the run behind them (``run_id`` if they name none) with its params,
    latest metrics, datasets and code, and the environment the files describe. NotFound
    without the registered model (MLflow's client creates it first) or the run."""
    versions.model_id(conn, name)
    held = resolve(conn, source, text)
    if run_id and held.run_id and run_id != held.run_id:
        raise InvalidInput(f"run_id {run_id!r} is not the run that logged {text!r} ({held.run_id})")
    held.run_id = held.run_id or run_id
    run = run_facts(conn, held.run_id) if held.run_id else RunFacts({}, {}, [], {})
    env = environment(blobs, held.files)
    new = NewVersion(
        model=name,
        files=check_entries(held.files),
        params=check_params(held.params or run.params),
        metrics=check_metrics(run.metrics),
        tags=tags,
        description=description,
        parents=[],
        datasets=run.datasets,
        code=code_facts(run.tags, source=text, model_id=held.model_id),
        command="",  # a version with a run takes its command and host from the run
        hostname="",
        environment=None if env is None else capture.environment(env),
        run_id=held.run_id,
    )
    return new, held
