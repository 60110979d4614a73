"""What an MLflow model version is made from: the files of a logged model or of a folder of
a run's artifacts that this server holds, and what the store knows of the run behind them.

A version made this way is an ordinary modelreg version: its files are exactly those files
(paths relative to the folder), and its lineage names the run, the run's datasets, its params
and latest metrics, its code (the run's ``mlflow.source.*`` tags) and the environment the
model's MLmodel, python_env.yaml and requirements.txt describe. A source naming nothing this
server holds is refused (``mlflow_mapping.not_held``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from modelreg import artifacts, capture, logged_models, runs, schema, versions
from modelreg.blobs import BlobStore
from modelreg.errors import Conflict, InvalidInput, NotFound
from modelreg.manifest import FileEntry, check_entries
from modelreg.mlflow_mapping import (
    ENVIRONMENT_FILES,
    LOGGED_MODEL,
    MAX_ENVIRONMENT_FILE,
    RUN,
    Source,
    artifact_uri,
    code_facts,
    environment_facts,
    not_held,
    parse_source,
)
from modelreg.records import DatasetUse, LoggedModel, NewVersion
from modelreg.values import check_metrics, check_params


@dataclass
class Held:
    """The files a source names, where they are, and the run behind them."""

    kind: str  # LOGGED_MODEL or RUN
    owner: str  # the logged model or run id
    folder: str
    experiment_id: int
    files: list[FileEntry]  # relative to ``folder``
    run_id: str | None
    model_id: str | None  # the logged model, if the files are one's
    params: dict[str, str] = field(default_factory=dict)

    @property
    def uri(self) -> str:
        """The artifact URI an MLflow client downloads these files from."""
        return artifact_uri(self.kind, self.experiment_id, self.owner, self.folder)


def _files(conn: Connection, owner: str, folder: str) -> list[FileEntry]:
    """The files under ``folder`` of ``owner``, by path relative to it; a folder that names
    one file gives that file, under its own name."""
    if not folder:
        return artifacts.files(conn, owner)
    found = [
        FileEntry(e.path[len(folder) + 1 :], e.digest, e.size)
        for e in artifacts.files(conn, owner, folder)
    ]
    if not found and (single := artifacts.get(conn, owner, folder)) is not None:
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
    held = Held(LOGGED_MODEL, model_id, folder, model.experiment_id, [], model.run_id, model_id)
    held.params = dict(model.params)
    held.files = _files(conn, model_id, folder)
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


def resolve(conn: Connection, source: Source, text: str) -> Held:
    """The files ``source`` (parsed from ``text``) names on this server. A run folder that
    holds no files names the model the run logged under that name, as MLflow 3's client
    resolves ``runs:/RUN/NAME``; nothing held at all is refused."""
    if source.kind == LOGGED_MODEL:
        held = _logged_model(conn, source.owner, source.folder, text)
    else:
        try:
            run = runs.load_tracked(conn, source.owner)
        except NotFound:
            raise not_held(text) from None
        held = Held(RUN, run.id, source.folder, run.experiment_id, [], run.id, None)
        held.params = dict(run.params)
        held.files = _files(conn, run.id, source.folder)
        if not held.files and source.folder and "/" not in source.folder:
            found = _newest_logged_model(conn, run.id, source.folder)
            if found is not None and source.experiment is None:
                return _logged_model(conn, found, "", text)
    if source.experiment is not None and source.experiment != held.experiment_id:
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
    source: Source,
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


def download_uri(conn: Connection, ref: str, source: str, files: list[FileEntry]) -> str:
    """The artifact URI an MLflow client loads version ``ref`` from: the folder its files
    came from, once checked to hold exactly those files still."""
    if not source:
        raise InvalidInput(
            f"{ref} was registered by modelreg, not from files logged through MLflow: it has"
            f" no MLflow artifact location (`modelreg pull {ref}` fetches its files)"
        )
    try:
        held = resolve(conn, parse_source(source), source)
    except InvalidInput:
        held = None
    ours = {(e.path, e.digest) for e in files}
    if held is None or {(e.path, e.digest) for e in held.files} != ours:
        raise Conflict(
            f"the files {source!r} named when {ref} was registered are no longer there as they"
            f" were: MLflow cannot load {ref} from them. The version's own files are intact:"
            f" `modelreg pull {ref}` fetches them"
        )
    return held.uri
