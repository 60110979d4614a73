"""Training runs in the store: a run's rows, its parameters, metric history and datasets, each
change audited. The context manager a training script holds (``reg.start_run``) is ``run.Run``;
how metric points are checked and written is ``metric_points``.
"""

from __future__ import annotations

import json
import secrets
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from modelreg import audit, capture, datasets, experiments, schema, versions
from modelreg.datasets import DatasetUse
from modelreg.db import now
from modelreg.errors import Conflict, InvalidInput, NotFound
from modelreg.records import MetricPoint as MetricPoint
from modelreg.records import RunInput as RunInput
from modelreg.records import TrackedRun as TrackedRun
from modelreg.refs import RUN, is_owner_id

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence


def encode(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


# -- the run records -------------------------------------------------------------------------


def insert(
    conn: Connection,
    *,
    run_id: str,
    name: str,
    params: dict[str, str],
    code: dict[str, Any],
    env: capture.Environment,
    facts: capture.ProcessFacts,
    actor: str,
) -> None:
    conn.execute(
        schema.runs.insert().values(
            id=run_id,
            name=name,
            status="running",
            started_at=now(),
            hostname=facts.hostname,
            user=facts.user,
            command=facts.command,
            code=encode(code),
            environment_digest=versions.ensure_environment(conn, env),
            params=encode(params),
        )
    )
    audit.append(
        conn,
        actor=actor,
        action="run.start",
        entity_type="run",
        entity_id=run_id,
        entity=name or run_id,
        after={"name": name, "params": params, "code": code},
    )


STATUSES = ("finished", "failed")


def check_exists(conn: Connection, run_id: str) -> None:
    # A text that is no run id names no run (and never reaches the database: PostgreSQL
    # refuses a NUL byte in a text parameter).
    if not isinstance(run_id, str) or not is_owner_id(RUN, run_id):
        raise NotFound(f"run {str(run_id)[:80]!r} not found: it is not a run id")
    found = conn.execute(sa.select(schema.runs.c.id).where(schema.runs.c.id == run_id)).first()
    if found is None:
        raise NotFound(f"run {run_id!r} not found")


def check_live(conn: Connection, run_id: str) -> str:
    """The name of a running run; NotFound or Conflict when there is none by that id."""
    row = conn.execute(
        sa.select(schema.runs.c.name, schema.runs.c.status).where(schema.runs.c.id == run_id)
    ).first()
    if row is None:
        raise NotFound(f"run {run_id!r} not found")
    if row.status != "running":
        raise Conflict(f"run {run_id} has ended ({row.status}): start a new run")
    return str(row.name)


def finish(
    conn: Connection,
    run_id: str,
    *,
    status: str,
    error: str | None,
    metrics: dict[str, float],
    datasets: list[DatasetUse],
    actor: str,
) -> None:
    if status not in STATUSES:
        raise InvalidInput(f"run status {status!r} is invalid: use one of {', '.join(STATUSES)}")
    name = check_live(conn, run_id)
    conn.execute(
        schema.runs.update()
        .where(schema.runs.c.id == run_id)
        .values(status=status, ended_at=now(), error=error)
    )
    audit.append(
        conn,
        actor=actor,
        action="run.end",
        entity_type="run",
        entity_id=run_id,
        entity=name or run_id,
        after={
            "status": status,
            "error": error,
            "metrics": metrics,
            "datasets": [d.to_dict() for d in datasets],
        },
    )


def update_params(
    conn: Connection, run_id: str, params: dict[str, str], new: dict[str, str], *, actor: str
) -> None:
    check_live(conn, run_id)
    conn.execute(
        schema.runs.update().where(schema.runs.c.id == run_id).values(params=encode(params))
    )
    audit.append(
        conn,
        actor=actor,
        action="run.params",
        entity_type="run",
        entity_id=run_id,
        entity=run_id,
        after=new,
    )


def add_dataset(
    conn: Connection, run_id: str, use: DatasetUse, *, actor: str, details: str | None = None
) -> None:
    """Record that a run read a dataset version; ``details`` is the input as an MLflow client
    logged it (JSON), shown back to MLflow clients."""
    check_writable(conn, run_id)
    did = datasets.ensure(conn, use)
    t = schema.run_datasets
    exists = conn.execute(
        sa.select(t.c.run_id).where(
            t.c.run_id == run_id, t.c.dataset_id == did, t.c.role == use.role
        )
    ).first()
    if exists is None:
        conn.execute(
            t.insert().values(run_id=run_id, dataset_id=did, role=use.role, details=details)
        )
        audit.append(
            conn,
            actor=actor,
            action="run.dataset",
            entity_type="run",
            entity_id=run_id,
            entity=run_id,
            after=use.to_dict(),
        )


HISTORY_POINTS = 10_000  # points per key a run's record holds, at most


def record(conn: Connection, run_id: str, *, history: bool = True) -> dict[str, Any]:
    """A run as lineage shows it, with each metric's history and its count of points (none
    without ``history``: a page charts it from ``metric_blocks.series``). A history of more
    than ``HISTORY_POINTS`` points is given in at most that many buckets of consecutive points, each
    its mean at its first step and time: a version made by a run of ten million points
    loads as fast as any."""
    r = conn.execute(sa.select(schema.runs).where(schema.runs.c.id == run_id)).one()
    points: dict[str, list[dict[str, Any]]] = {}
    counts: dict[str, int] = {}
    if history:
        from modelreg import metric_blocks  # numpy: loaded where points are read

        points, counts = metric_blocks.history(conn, run_id, max_points=HISTORY_POINTS)
    return {
        "id": r.id,
        "name": r.name,
        "status": r.status,
        "started_at": r.started_at,
        "ended_at": r.ended_at,
        "hostname": r.hostname,
        "user": r.user,
        "command": r.command,
        "params": json.loads(r.params),
        "error": r.error,
        "metric_history": points,
        "metric_points": counts,
        "code": json.loads(r.code),
        "environment_digest": r.environment_digest,
    }


# -- runs as tracking clients see them (the MLflow API) ------------------------------------
#
# A run made through MLflow's API (``origin`` "mlflow") follows MLflow's rules: it may be
# reopened (``status`` back to running) and take params, metrics and inputs after it ended.
# A run made by modelreg's SDK keeps its own: it takes them only while it runs, and once it
# has ended it stays ended. Tags are annotations: any run takes them until it is deleted.
# Params never change once logged, whatever made the run.

TRACKED_STATUSES = ("running", "scheduled", "finished", "failed", "killed")
ENDED = ("finished", "failed", "killed")
RUN_NAME_TAG = "mlflow.runName"
# The code a run's MLflow tags describe, as modelreg's ``code`` facts name it.
CODE_TAGS = {
    "repository": "mlflow.source.git.repoURL",
    "commit": "mlflow.source.git.commit",
    "branch": "mlflow.source.git.branch",
}
COMMAND_TAG = "mlflow.source.name"
CHUNK = 500  # ids per IN list

_r, _e = schema.runs, schema.experiments
# A run's experiment's lifecycle ("active" if the experiment's row is missing).
_STAGE = sa.func.coalesce(_e.c.lifecycle_stage, "active").label("lifecycle_stage")
_STATE = (
    sa.select(
        _r.c.id,
        _r.c.name,
        _r.c.status,
        _r.c.ended_at,
        _r.c.origin,
        _r.c.deleted_at,
        _STAGE,
    )
    .outerjoin(_e, _e.c.id == _r.c.experiment_id)
    .where(_r.c.id == sa.bindparam("run_id"))
)


_ADJECTIVES = ("able", "amber", "bold", "brave", "bright", "calm", "clever", "crisp", "eager",
               "fair", "gentle", "glad", "keen", "kind", "lively", "lucid", "merry", "nimble",
               "quiet", "rapid", "serene", "sharp", "steady", "swift", "vivid", "warm")  # fmt: skip
_NOUNS = ("badger", "bass", "crane", "deer", "eagle", "falcon", "finch", "fox", "gull", "hare",
          "heron", "lark", "lynx", "mole", "newt", "otter", "owl", "panda", "robin", "seal",
          "shrew", "swan", "trout", "vole", "wren", "yak")  # fmt: skip


def generated_name() -> str:
    """A name for a run its client did not name, as MLflow makes them: ``bold-otter-417``."""
    pick = secrets.choice
    return f"{pick(_ADJECTIVES)}-{pick(_NOUNS)}-{secrets.randbelow(900) + 100}"


def create_tracked(
    conn: Connection,
    *,
    run_id: str,
    name: str,
    experiment_id: int,
    user: str,
    started_at: str,
    tags: Mapping[str, str],
    actor: str,
) -> None:
    """Record a run an MLflow client starts, in an experiment that exists and is active;
    its command and code come from its ``mlflow.source.*`` tags where given."""
    experiments.check_active(conn, experiment_id)
    tags = _without_credentials(tags)
    code = {fact: tags[tag] for fact, tag in CODE_TAGS.items() if tags.get(tag)}
    conn.execute(
        _r.insert().values(
            id=run_id,
            name=name,
            status="running",
            started_at=started_at,
            hostname="",
            user=user,
            command=tags.get(COMMAND_TAG, ""),
            code=encode(code),
            params="{}",
            experiment_id=experiment_id,
            origin="mlflow",
        )
    )
    _write_tags(conn, run_id, {**tags, RUN_NAME_TAG: name}, {})
    audit.append(
        conn,
        actor=actor,
        action="run.start",
        entity_type="run",
        entity_id=run_id,
        entity=name or run_id,
        after={
            "name": name,
            "params": {},
            "code": code,
            "experiment_id": experiment_id,
            "tags": dict(tags),
        },
    )


def check_writable(conn: Connection, run_id: str, *, facts: bool = True) -> Any:
    """The state of a run that may be written to: NotFound, or Conflict for a deleted run
    and, for ``facts`` (params, metrics, datasets), for a run of modelreg's SDK that ended."""
    row = conn.execute(_STATE, {"run_id": run_id}).first()
    if row is None:
        raise NotFound(f"run {run_id!r} not found")
    if row.deleted_at is not None or row.lifecycle_stage != "active":
        where = "it" if row.deleted_at is not None else "its experiment"
        raise Conflict(f"run {run_id} is deleted: restore {where} to write to it")
    if facts and row.origin != "mlflow" and row.status != "running":
        raise Conflict(f"run {run_id} has ended ({row.status}): start a new run")
    return row


def update_tracked(
    conn: Connection,
    run_id: str,
    *,
    status: str | None = None,
    ended_at: str | None = None,
    name: str | None = None,
    actor: str,
) -> None:
    """Change a run's status, end time or name, as MLflow's ``runs/update`` does.

    Ending sets the end time (now, if none is given). Running again after the end reopens
    an MLflow run (``run.reopen``, its end time cleared); a run of modelreg's SDK that ended
    stays ended (Conflict).
    """
    if status is not None and status not in TRACKED_STATUSES:
        raise InvalidInput(
            f"run status {status!r} is invalid: use one of {', '.join(TRACKED_STATUSES)}"
        )
    row = check_writable(conn, run_id, facts=False)
    if name is not None and name != row.name:
        _rename(conn, run_id, row.name, name, actor=actor)
    if status is None and ended_at is None:
        return
    new_status = status or row.status
    if new_status in ENDED:
        new_end = ended_at or (row.ended_at if row.status in ENDED else None) or now()
    else:
        new_end = ended_at
    if (new_status, new_end) == (row.status, row.ended_at):
        return
    if row.origin != "mlflow" and row.status != "running":
        raise Conflict(
            f"run {run_id} has ended ({row.status}) and was made by modelreg's SDK, whose"
            " runs are not reopened: start a new run"
        )
    if new_status in ENDED:
        action = "run.end"
    else:
        action = "run.reopen" if row.status in ENDED else "run.status"
    conn.execute(_r.update().where(_r.c.id == run_id).values(status=new_status, ended_at=new_end))
    audit.append(
        conn,
        actor=actor,
        action=action,
        entity_type="run",
        entity_id=run_id,
        entity=(name or row.name) or run_id,
        before={"status": row.status, "ended_at": row.ended_at},
        after={"status": new_status, "ended_at": new_end},
    )


def _rename(conn: Connection, run_id: str, old: str, name: str, *, actor: str) -> None:
    conn.execute(_r.update().where(_r.c.id == run_id).values(name=name))
    _write_tags(conn, run_id, {RUN_NAME_TAG: name}, _tags_of(conn, run_id, [RUN_NAME_TAG]))
    audit.append(
        conn,
        actor=actor,
        action="run.rename",
        entity_type="run",
        entity_id=run_id,
        entity=name or run_id,
        before={"name": old},
        after={"name": name},
    )


def log_params(conn: Connection, run_id: str, params: Mapping[str, str], *, actor: str) -> None:
    """Add params to a run; one logged before with another value is refused (a run's params
    do not change), with the same value it is left as it is."""
    check_writable(conn, run_id)
    stored = conn.execute(sa.select(_r.c.params).where(_r.c.id == run_id)).scalar_one()
    current: dict[str, str] = json.loads(stored)
    new: dict[str, str] = {}
    for key, value in params.items():
        if key in current and current[key] != value:
            raise InvalidInput(
                f"param {key!r} of run {run_id} was logged as {current[key]!r}: a logged param"
                f" does not change (attempted {value!r})"
            )
        if key not in current:
            new[key] = value
    if not new:
        return
    conn.execute(_r.update().where(_r.c.id == run_id).values(params=encode({**current, **new})))
    audit.append(
        conn,
        actor=actor,
        action="run.params",
        entity_type="run",
        entity_id=run_id,
        entity=run_id,
        after=new,
    )


def set_tags(conn: Connection, run_id: str, tags: Mapping[str, str], *, actor: str) -> None:
    """Set a run's tags (audited when they change); ``mlflow.runName`` also renames it."""
    row = check_writable(conn, run_id, facts=False)
    tags = _without_credentials(tags)
    old = _tags_of(conn, run_id, list(tags))
    changed = {k: v for k, v in tags.items() if old.get(k) != v}
    if not changed:
        return
    _write_tags(conn, run_id, changed, old)
    if RUN_NAME_TAG in changed and changed[RUN_NAME_TAG] != row.name:
        conn.execute(_r.update().where(_r.c.id == run_id).values(name=changed[RUN_NAME_TAG]))
    before = {k: old[k] for k in changed if k in old}
    audit.append(
        conn,
        actor=actor,
        action="run.tag",
        entity_type="run",
        entity_id=run_id,
        entity=run_id,
        before=before or None,
        after=changed,
    )


def delete_tag(conn: Connection, run_id: str, key: str, *, actor: str) -> None:
    check_writable(conn, run_id, facts=False)
    old = _tags_of(conn, run_id, [key])
    if key not in old:
        raise NotFound(f"run {run_id} has no tag {key!r}")
    t = schema.run_tags
    conn.execute(t.delete().where(t.c.run_id == run_id, t.c.key == key))
    audit.append(
        conn,
        actor=actor,
        action="run.untag",
        entity_type="run",
        entity_id=run_id,
        entity=run_id,
        before=old,
    )


def _without_credentials(tags: Mapping[str, str]) -> dict[str, str]:
    """The tags with the user name and password of a repository's URL dropped: they would
    stay in the audit log for good."""
    url = CODE_TAGS["repository"]
    if url not in tags:
        return dict(tags)
    return {**tags, url: capture.clean_url(tags[url])}


def _tags_of(conn: Connection, run_id: str, keys: list[str]) -> dict[str, str]:
    t = schema.run_tags
    q = sa.select(t.c.key, t.c.value).where(t.c.run_id == run_id, t.c.key.in_(keys))
    return {r.key: r.value for r in conn.execute(q)}


def _write_tags(
    conn: Connection, run_id: str, tags: Mapping[str, str], old: Mapping[str, str]
) -> None:
    """Write ``tags``; ``old`` holds those of them the run has now."""
    t = schema.run_tags
    new = [{"run_id": run_id, "key": k, "value": v} for k, v in tags.items() if k not in old]
    if new:
        conn.execute(t.insert(), new)
    for key, value in tags.items():
        if key in old and old[key] != value:
            conn.execute(t.update().where(t.c.run_id == run_id, t.c.key == key).values(value=value))


def set_deleted(conn: Connection, run_id: str, deleted: bool, *, actor: str) -> None:
    """Delete a run (hide it from MLflow's searches: its record stays) or restore it."""
    row = conn.execute(sa.select(_r.c.name, _r.c.deleted_at).where(_r.c.id == run_id)).first()
    if row is None:
        raise NotFound(f"run {run_id!r} not found")
    if (row.deleted_at is not None) == deleted:
        return
    conn.execute(_r.update().where(_r.c.id == run_id).values(deleted_at=now() if deleted else None))
    audit.append(
        conn,
        actor=actor,
        action="run.delete" if deleted else "run.restore",
        entity_type="run",
        entity_id=run_id,
        entity=row.name or run_id,
        before={"deleted_at": row.deleted_at},
    )


def load_tracked(conn: Connection, run_id: str) -> TrackedRun:
    found = load_tracked_many(conn, [run_id])
    if not found:
        raise NotFound(f"run {run_id!r} not found")
    return found[0]


def load_tracked_many(conn: Connection, ids: Sequence[str]) -> list[TrackedRun]:
    """The runs of ``ids`` that exist, in the order given, each with its params, tags, the
    latest value of each metric and its inputs."""
    rows: dict[str, Any] = {}
    tags: dict[str, dict[str, str]] = {}
    metrics: dict[str, list[MetricPoint]] = {}
    inputs: dict[str, list[RunInput]] = {}
    for start in range(0, len(ids), CHUNK):
        chunk = list(ids[start : start + CHUNK])
        q = (
            sa.select(_r, _STAGE)
            .outerjoin(_e, _e.c.id == _r.c.experiment_id)
            .where(_r.c.id.in_(chunk))
        )
        rows.update((r.id, r) for r in conn.execute(q))
        t = schema.run_tags
        for tag in conn.execute(sa.select(t).where(t.c.run_id.in_(chunk)).order_by(t.c.key)):
            tags.setdefault(tag.run_id, {})[tag.key] = tag.value
        for run_id, point in _latest(conn, chunk):
            metrics.setdefault(run_id, []).append(point)
        for run_id, used in _inputs(conn, chunk):
            inputs.setdefault(run_id, []).append(used)
    return [
        TrackedRun(
            id=r.id,
            name=r.name,
            experiment_id=r.experiment_id,
            user=r.user,
            status=r.status,
            started_at=r.started_at,
            ended_at=r.ended_at,
            lifecycle_stage=(
                "active" if r.deleted_at is None and r.lifecycle_stage == "active" else "deleted"
            ),
            origin=r.origin,
            params=json.loads(r.params),
            tags=tags.get(r.id, {}),
            metrics=metrics.get(r.id, []),
            inputs=inputs.get(r.id, []),
        )
        for r in (rows.get(i) for i in ids)
        if r is not None
    ]


def _latest(conn: Connection, ids: list[str]) -> list[tuple[str, MetricPoint]]:
    from modelreg import metric_blocks

    latest = metric_blocks.latest_points(ids)
    q = sa.select(latest).order_by(latest.c.run_id, latest.c.key)
    return [(p.run_id, MetricPoint(p.key, p.value, p.step, p.timestamp)) for p in conn.execute(q)]


def _inputs(conn: Connection, ids: list[str]) -> list[tuple[str, RunInput]]:
    t, d = schema.run_datasets, schema.datasets
    q = (
        sa.select(t.c.run_id, t.c.role, t.c.details, d.c.name, d.c.digest, d.c.uri)
        .join(d, d.c.id == t.c.dataset_id)
        .where(t.c.run_id.in_(ids))
        .order_by(t.c.run_id, d.c.name, t.c.role)
    )
    found = []
    for row in conn.execute(q):
        if row.details is not None:
            given = json.loads(row.details)
            used = RunInput(**given)
        else:  # recorded by modelreg's SDK: its own name and sha256 digest, its role
            source = json.dumps({"uri": row.uri})
            scheme = row.uri.partition(":")[0]
            kind = {"file": "local", "https": "http"}.get(scheme, scheme) or "local"
            used = RunInput(row.name, row.digest, kind, source,
                            tags={"mlflow.data.context": row.role})  # fmt: skip
        found.append((row.run_id, used))
    return found


def datasets_of(conn: Connection, run_id: str) -> list[DatasetUse]:
    """The dataset versions a run read, each with its role (a version made from the run
    inherits them, so that lineage and retirement see its data)."""
    t, d = schema.run_datasets, schema.datasets
    q = (
        sa.select(d, t.c.role)
        .join(t, t.c.dataset_id == d.c.id)
        .where(t.c.run_id == run_id)
        .order_by(d.c.name, t.c.role)
    )
    return [
        DatasetUse(r.name, r.digest, r.uri, r.size, r.file_count, r.role) for r in conn.execute(q)
    ]


def metric_history(
    conn: Connection, run_id: str, key: str, *, limit: int | None = None, offset: int = 0
) -> list[MetricPoint]:
    """A run's points of one metric, in MLflow's order (time, step, value); NotFound for a
    run that does not exist."""
    check_exists(conn, run_id)
    from modelreg import metric_blocks

    return metric_blocks.metric_history(conn, run_id, key, limit=limit, offset=offset)
