"""MLflow's logged models in the store: a model's files, logged under an experiment (usually
by a run) before any version is registered from them, with params, tags and a status.

A logged model is created ``pending``, its files are uploaded as artifacts (``artifacts``,
owner ``m-<32 hex>``), and the client marks it ``ready`` (or ``failed``). Versions registered
from it copy its files into their own immutable manifest; they are its ``registrations``
(found by index in ``version_logged_models``, written with each version whose code facts name
the logged model, see ``mlflow_mapping.code_facts``), and while one lives the logged model
cannot be deleted. Each change is audited. A run's outputs (``log_outputs``) link it to the
models it produced.

Searches take MLflow's filter grammar (``mlflow_filter.LOGGED_MODELS``); the attributes that
compare by equality are filtered in SQL, the rest (patterns, times, params and tags, kept as
JSON text) on the rows of the experiments searched.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re
import secrets
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from modelreg import artifacts, audit, experiments, keyset, runs, schema
from modelreg.db import now
from modelreg.errors import Conflict, InvalidInput, NotFound
from modelreg.mlflow_filter import Clause
from modelreg.records import LoggedModel as LoggedModel
from modelreg.refs import LOGGED_MODEL_ID
from modelreg.values import MAX_RUN_TAG_VALUE, check_params, check_tag, check_text

_m = schema.logged_models
_o = schema.logged_model_outputs
_v, _vl = schema.versions, schema.version_logged_models

STATUSES = ("pending", "ready", "failed")
# MLflow's names of the statuses, as its clients send and read them.
WIRE_STATUS = {
    "pending": "LOGGED_MODEL_PENDING",
    "ready": "LOGGED_MODEL_READY",
    "failed": "LOGGED_MODEL_UPLOAD_FAILED",
}
MAX_NAME = 500
_NOT_IN_NAME = ("/", ":", ".", "%", '"', "'")  # MLflow's rule: the name is part of URIs
MAX_STEP = 2**63 - 1


def new_id() -> str:
    return "m-" + uuid.uuid4().hex


def check_id(model_id: Any) -> str:
    if not isinstance(model_id, str) or LOGGED_MODEL_ID.fullmatch(model_id) is None:
        raise NotFound(f"logged model {str(model_id)[:80]!r} not found: ids are m-<32 hex>")
    return model_id


def check_name(name: Any) -> str:
    """A logged model's name: 1-500 characters, none of / : . % " ' (as MLflow requires)."""
    text = check_text(name, what="a logged model's name", limit=MAX_NAME)
    bad = [c for c in _NOT_IN_NAME if c in text]
    if bad:
        raise InvalidInput(
            f"logged model name {text[:100]!r} contains {' '.join(bad)}: a name may not contain"
            f" {' '.join(_NOT_IN_NAME)}"
        )
    return text


def check_status(status: Any) -> str:
    """``ready`` or ``failed`` (what a client may finalize a model as), from either form."""
    found = {v: k for k, v in WIRE_STATUS.items()}.get(status, status)
    if found not in ("ready", "failed"):
        wanted = ", ".join(WIRE_STATUS[s] for s in ("ready", "failed"))
        raise InvalidInput(f"a logged model is finalized as {wanted}, not {status!r}")
    return str(found)


def check_tags(tags: Mapping[str, Any]) -> dict[str, str]:
    return dict(check_tag(k, v, limit=MAX_RUN_TAG_VALUE) for k, v in tags.items())


# -- records ---------------------------------------------------------------------------------


def _load(rows: Sequence[sa.Row[Any]]) -> list[LoggedModel]:
    return [
        LoggedModel(
            id=r.id,
            experiment_id=r.experiment_id,
            name=r.name,
            status=r.status,
            status_message=r.status_message,
            model_type=r.model_type,
            run_id=r.run_id,
            created_at=r.created_at,
            created_by=r.created_by,
            updated_at=r.updated_at,
            params=json.loads(r.params),
            tags=json.loads(r.tags),
        )
        for r in rows
    ]


def get(conn: Connection, model_id: str, *, registrations: bool = True) -> LoggedModel:
    """The logged model, with the versions registered from it unless ``registrations`` is
    false; NotFound when there is none by that id."""
    row = conn.execute(sa.select(_m).where(_m.c.id == check_id(model_id))).first()
    if row is None:
        raise NotFound(f"logged model {model_id!r} not found")
    (model,) = _load([row])
    return with_registrations(conn, [model])[0] if registrations else model


def registrations_query(model_ids: Sequence[str]) -> sa.Select[Any]:
    """The live versions registered from these logged models: (logged model, model name,
    number), by index (``version_logged_models.model_id``), never a scan of the versions."""
    return (
        sa.select(_vl.c.model_id, schema.models.c.name, _v.c.number)
        .join(_v, _v.c.id == _vl.c.version_id)
        .join(schema.models, schema.models.c.id == _v.c.model_id)
        .where(_vl.c.model_id.in_(list(model_ids)), _v.c.deleted_at.is_(None))
        .order_by(schema.models.c.name, _v.c.number)
    )


def with_registrations(conn: Connection, models: list[LoggedModel]) -> list[LoggedModel]:
    """``models`` with the live versions registered from each, by model name and number."""
    if not models:
        return models
    found: dict[str, list[tuple[str, int]]] = {m.id: [] for m in models}
    for row in conn.execute(registrations_query(list(found))):
        found[row.model_id].append((row.name, row.number))
    return [_replace(m, registrations=tuple(found[m.id])) for m in models]


def registered_from(conn: Connection, version_id: str) -> str | None:
    """The logged model version ``version_id`` was registered from, if any."""
    query = sa.select(_vl.c.model_id).where(_vl.c.version_id == version_id)
    found = conn.execute(query).scalar()
    return None if found is None else str(found)


def _replace(model: LoggedModel, **changes: Any) -> LoggedModel:
    return dataclasses.replace(model, **changes)


# -- changes ---------------------------------------------------------------------------------


def create(
    conn: Connection,
    *,
    experiment_id: int,
    name: str | None,
    model_type: str,
    run_id: str | None,
    params: Mapping[str, Any],
    tags: Mapping[str, Any],
    actor: str,
) -> LoggedModel:
    """A new logged model, ``pending``, in an active experiment; ``run_id`` (the run that
    produced it) must exist. Without a name, it gets one."""
    name = check_name(name) if name else f"model-{secrets.token_hex(4)}"
    if len(model_type) > MAX_NAME or "\x00" in model_type:
        raise InvalidInput(f"model_type must be text of at most {MAX_NAME} characters")
    checked_params = check_params(params)
    checked_tags = check_tags(tags)
    experiments.check_active(conn, experiment_id)
    if run_id:
        runs.check_exists(conn, run_id)
    model_id = new_id()
    stamp = now()
    conn.execute(
        _m.insert().values(
            id=model_id,
            experiment_id=experiment_id,
            run_id=run_id or None,
            name=name,
            status="pending",
            status_message="",
            model_type=model_type,
            params=_encode(checked_params),
            tags=_encode(checked_tags),
            created_at=stamp,
            created_by=actor,
            updated_at=stamp,
        )
    )
    after = {
        "experiment_id": experiment_id,
        "name": name,
        "run_id": run_id or None,
        "model_type": model_type,
        "params": checked_params,
        "tags": checked_tags,
    }
    _audit(conn, "logged_model.create", model_id, name, actor=actor, after=after)
    return get(conn, model_id, registrations=False)


def finalize(conn: Connection, model_id: str, status: str, *, actor: str) -> LoggedModel:
    """Mark the model ``ready`` (its files are all uploaded) or ``failed``."""
    status = check_status(status)
    model = get(conn, model_id, registrations=False)
    if model.status != status:
        _update(conn, model_id, status=status)
        _audit(
            conn,
            "logged_model.finalize",
            model_id,
            model.name,
            actor=actor,
            before={"status": model.status},
            after={"status": status},
        )
    return get(conn, model_id)


def set_tags(conn: Connection, model_id: str, tags: Mapping[str, Any], *, actor: str) -> None:
    """Set tags (a key already set takes its new value)."""
    checked = check_tags(tags)
    model = get(conn, model_id, registrations=False)
    changed = {k: v for k, v in checked.items() if model.tags.get(k) != v}
    if not changed:
        return
    before = {k: model.tags[k] for k in changed if k in model.tags}
    _update(conn, model_id, tags=_encode({**model.tags, **changed}))
    _audit(
        conn, "logged_model.tag", model_id, model.name, actor=actor, before=before, after=changed
    )


def delete_tag(conn: Connection, model_id: str, key: str, *, actor: str) -> None:
    model = get(conn, model_id, registrations=False)
    if key not in model.tags:
        raise NotFound(f"logged model {model_id} has no tag {key[:250]!r}")
    rest = {k: v for k, v in model.tags.items() if k != key}
    _update(conn, model_id, tags=_encode(rest))
    _audit(
        conn,
        "logged_model.untag",
        model_id,
        model.name,
        actor=actor,
        before={key: model.tags[key]},
    )


def log_params(conn: Connection, model_id: str, params: Mapping[str, Any], *, actor: str) -> None:
    """Add params; one already logged keeps its value (a different one is refused)."""
    checked = check_params(params)
    model = get(conn, model_id, registrations=False)
    clash = {k: v for k, v in checked.items() if k in model.params and model.params[k] != v}
    if clash:
        key = next(iter(clash))
        raise Conflict(
            f"logged model {model_id} has param {key!r} = {model.params[key][:100]!r}; a"
            f" param once logged keeps its value (not {clash[key][:100]!r})"
        )
    new = {k: v for k, v in checked.items() if k not in model.params}
    if not new:
        return
    _update(conn, model_id, params=_encode({**model.params, **new}))
    _audit(conn, "logged_model.params", model_id, model.name, actor=actor, after=new)


def delete(conn: Connection, model_id: str, *, actor: str) -> None:
    """Delete the model and its file names (the blobs stay until gc finds them unused);
    refused while a version registered from it lives."""
    model = get(conn, model_id)
    if model.registrations:
        named = ", ".join(f"{name}/{number}" for name, number in model.registrations[:10])
        raise Conflict(
            f"logged model {model_id} cannot be deleted: version(s) {named} were registered"
            " from it (their files are theirs, but their record names it; delete them first)"
        )
    gone = artifacts.remove_all(conn, model_id)
    conn.execute(_o.delete().where(_o.c.model_id == model_id))
    conn.execute(_m.delete().where(_m.c.id == model_id))
    before = {
        "experiment_id": model.experiment_id,
        "name": model.name,
        "status": model.status,
        "run_id": model.run_id,
        "params": model.params,
        "tags": model.tags,
        "files": [e.to_dict() for e in gone[:100]],
        "file_count": len(gone),
    }
    _audit(conn, "logged_model.delete", model_id, model.name, actor=actor, before=before)


def log_outputs(
    conn: Connection, run_id: str, outputs: Sequence[tuple[str, int]], *, actor: str
) -> None:
    """Record that run ``run_id`` produced these logged models, each at a step."""
    runs.check_exists(conn, run_id)
    for model_id, step in outputs:
        get(conn, model_id, registrations=False)
        if isinstance(step, bool) or not isinstance(step, int) or not 0 <= step <= MAX_STEP:
            raise InvalidInput(f"the step of output {model_id} must be a whole number >= 0")
    wanted = dict(outputs)
    key = (_o.c.run_id == run_id) & _o.c.model_id.in_(list(wanted))
    held = {r.model_id: r.step for r in conn.execute(sa.select(_o).where(key))}
    changed = {m: s for m, s in wanted.items() if held.get(m) != s}
    if not changed:
        return
    for model_id, step in changed.items():
        if model_id in held:
            pair = (_o.c.run_id == run_id) & (_o.c.model_id == model_id)
            conn.execute(_o.update().where(pair).values(step=step))
        else:
            conn.execute(_o.insert().values(run_id=run_id, model_id=model_id, step=step))
    audit.append(
        conn,
        actor=actor,
        action="run.outputs",
        entity_type="run",
        entity_id=run_id,
        entity=run_id,
        after={"models": [{"model_id": m, "step": s} for m, s in changed.items()]},
    )


def outputs_of(conn: Connection, run_id: str) -> list[tuple[str, int]]:
    """The logged models run ``run_id`` produced, with their steps (MLflow's run outputs)."""
    return outputs_of_runs(conn, [run_id])[run_id]


def outputs_of_runs(conn: Connection, run_ids: Sequence[str]) -> dict[str, list[tuple[str, int]]]:
    """{run id: the logged models it produced, with their steps}, for every run of ``run_ids``
    (in a few queries, whatever their number)."""
    found: dict[str, list[tuple[str, int]]] = {run_id: [] for run_id in run_ids}
    ids = list(found)
    for start in range(0, len(ids), _CHUNK):
        query = sa.select(_o.c.run_id, _o.c.model_id, _o.c.step).where(
            _o.c.run_id.in_(ids[start : start + _CHUNK])
        )
        for r in conn.execute(query.order_by(_o.c.run_id, _o.c.model_id)):
            found[r.run_id].append((r.model_id, r.step))
    return found


_CHUNK = 500  # ids in one IN list


def _update(conn: Connection, model_id: str, **values: str) -> None:
    conn.execute(_m.update().where(_m.c.id == model_id).values(updated_at=now(), **values))


def _encode(values: Mapping[str, str]) -> str:
    return json.dumps(dict(values), sort_keys=True)


def _audit(
    conn: Connection,
    action: str,
    model_id: str,
    name: str,
    *,
    actor: str,
    before: Any = None,
    after: Any = None,
) -> None:
    audit.append(
        conn,
        actor=actor,
        action=action,
        entity_type="logged_model",
        entity_id=model_id,
        entity=name,
        before=before,
        after=after,
    )


# -- search -----------------------------------------------------------------------------------

# The attributes of a search, as columns (those compared in SQL) or as values of a record.
ORDERABLE = {
    "name": _m.c.name,
    "model_id": _m.c.id,
    "model_type": _m.c.model_type,
    "status": _m.c.status,
    "source_run_id": _m.c.run_id,
    "creation_timestamp": _m.c.created_at,
    "last_updated_timestamp": _m.c.updated_at,
}
_IN_SQL = ("=", "!=", "IN", "NOT IN")
_STRINGS = ("name", "model_id", "model_type", "status", "source_run_id")


def search(
    conn: Connection,
    experiment_ids: Sequence[int],
    clauses: Sequence[Clause],
    order: Sequence[tuple[str, bool]],
    *,
    offset: int,
    limit: int,
    after: Sequence[Any] | None = None,
) -> tuple[list[LoggedModel], tuple[Any, ...] | None]:
    """Up to ``limit`` logged models of these experiments that meet every clause, in
    ``order`` ((attribute, ascending) pairs; metrics order nothing, as logged models hold
    none here), then newest first, then by id: from the ``offset``-th, or else ``after`` the
    sort values given; and the sort values of the last when more follow. The clauses SQL
    cannot test run in Python over the ordered rows."""
    query = sa.select(_m).where(_m.c.experiment_id.in_(list(experiment_ids)))
    rest = []
    for clause in clauses:
        if clause.entity == "attribute" and clause.op in _IN_SQL and clause.key in _STRINGS:
            query = query.where(_sql(clause))
            continue
        rest.append(clause)
    keys: list[tuple[sa.ColumnElement[Any], bool]] = []
    for attribute, ascending in order:
        column = ORDERABLE.get(attribute)
        if column is not None:  # metrics.KEY: none held, so all tie
            keys += [(sa.case((column.is_(None), 1), else_=0), False), (column, not ascending)]
    if not any(a == "creation_timestamp" for a, _ in order):
        keys.append((_m.c.created_at, True))
    keys.append((_m.c.id, False))
    offset = 0 if after is not None else offset
    found: list[LoggedModel] = []
    last: tuple[Any, ...] | None = None
    for row in conn.execute(keyset.ordered(query, keys, after)):
        (model,) = _load([row])
        if not all(matches(model, clause) for clause in rest):
            continue
        if offset:
            offset -= 1
            continue
        if len(found) == limit:  # one more follows the page
            return with_registrations(conn, found), last
        found.append(model)
        last = tuple(row[-len(keys) :])
    return with_registrations(conn, found), None


def _sql(clause: Clause) -> sa.ColumnElement[bool]:
    column = ORDERABLE[clause.key]
    value = clause.value
    if clause.key == "status":
        value = _stored_status(value)
    if clause.op == "=":
        return column == value
    if clause.op == "!=":
        return column != value
    values = list(value) if isinstance(value, tuple) else [value]
    return column.in_(values) if clause.op == "IN" else column.not_in(values)


def _stored_status(value: Any) -> Any:
    """A status as a filter names it (``LOGGED_MODEL_READY`` or ``READY``), as stored."""
    if isinstance(value, tuple):
        return tuple(_stored_status(v) for v in value)
    if not isinstance(value, str):
        return value
    by_name = {v: k for k, v in WIRE_STATUS.items()}
    short = {v.removeprefix("LOGGED_MODEL_"): k for k, v in WIRE_STATUS.items()}
    return by_name.get(value.upper(), short.get(value.upper(), value))


def matches(model: LoggedModel, clause: Clause) -> bool:
    """Whether ``model`` meets ``clause``, as MLflow reads it: a value the model lacks meets
    nothing but IS NULL; LIKE is case-sensitive, ILIKE not; times are milliseconds."""
    lhs: str | int | None
    if clause.entity == "param":
        lhs = model.params.get(clause.key)
    elif clause.entity == "tag":
        lhs = model.tags.get(clause.key)
    elif clause.entity == "attribute":
        lhs = _attribute(model, clause.key)
    else:
        lhs = None  # metrics: a logged model here holds none
    op, value = clause.op, clause.value
    if op in ("IS NULL", "IS NOT NULL"):
        return (lhs is None) == (op == "IS NULL")
    if lhs is None:
        return False
    if clause.entity == "attribute" and clause.key == "status":
        value = _stored_status(value)
    if op in ("LIKE", "ILIKE"):
        return _like(str(value), ignore_case=op == "ILIKE").fullmatch(str(lhs)) is not None
    if op in ("IN", "NOT IN"):
        listed = value if isinstance(value, tuple) else ()
        return (lhs in listed) == (op == "IN")
    if isinstance(lhs, int) != isinstance(value, (int, float)):
        return False
    compare: dict[str, Any] = {
        "=": lambda a, b: a == b,
        "!=": lambda a, b: a != b,
        "<": lambda a, b: a < b,
        "<=": lambda a, b: a <= b,
        ">": lambda a, b: a > b,
        ">=": lambda a, b: a >= b,
    }
    return bool(compare[op](lhs, value))


def _attribute(model: LoggedModel, key: str) -> str | int | None:
    if key == "creation_timestamp":
        return milliseconds(model.created_at)
    if key == "last_updated_timestamp":
        return milliseconds(model.updated_at)
    values: dict[str, str | None] = {
        "name": model.name,
        "model_id": model.id,
        "model_type": model.model_type,
        "status": model.status,
        "source_run_id": model.run_id,
    }
    return values.get(key)


def milliseconds(stamp: str) -> int:
    """A stored time as milliseconds since the epoch, as MLflow shows times."""
    moment = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    return (moment - _EPOCH) // timedelta(milliseconds=1)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@functools.lru_cache(maxsize=256)
def _like(pattern: str, *, ignore_case: bool) -> re.Pattern[str]:
    parts = [".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern]
    return re.compile("".join(parts), re.DOTALL | (re.IGNORECASE if ignore_case else 0))
