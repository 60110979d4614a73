"""Models and versions as the registry hands them out, and the queries that load them."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from modelreg import audit, capture, datasets, metric_summary, schema
from modelreg.datasets import DatasetUse
from modelreg.db import insert_rows, now
from modelreg.errors import Gone, NotFound
from modelreg.governance_records import DeletionNote
from modelreg.manifest import FileEntry, manifest_digest
from modelreg.mlflow_mapping import logged_model_of
from modelreg.records import Model as Model
from modelreg.records import NewVersion as NewVersion
from modelreg.records import Puller
from modelreg.records import Version as Version
from modelreg.refs import Ref
from modelreg.values import param_number

CHUNK = 500


def _chunks(ids: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(ids), CHUNK):
        yield ids[start : start + CHUNK]


def _by_ids(column: Any) -> Any:
    return column.in_(sa.bindparam("ids", expanding=True))


def _by_id(column: Any) -> Any:
    return column == sa.bindparam("id")


# Built once: constructing statements costs more than SQLite takes to run them.
_v, _m = schema.versions, schema.models
_pv = _v.alias("pv")
#: Versions not deleted: what listings, search, charts and lineage's descendants show.
LIVE = _v.c.deleted_at.is_(None)
_vd, _d, _p = schema.version_datasets, schema.datasets, schema.version_parents


# What a version's rows of each table are, in the one statement that reads them all.
_PARAM, _METRIC, _TAG, _ALIAS, _FILE, _DATASET, _PARENT, _FLAG = range(8)


def _child_rows(where: Callable[[Any], Any]) -> Any:
    """Every row that belongs to the versions ``where(version id column)`` keeps, of every
    table, in one UNION ALL: one round trip instead of one per table. Each arm fills the
    columns it has (``a``, ``d``: text sorted on; ``b``, ``c``: text; ``x``: a number;
    ``n``: a whole number) and the rest with typed NULLs; ORDER BY kind, a, d, n puts each
    table's rows in the order they are shown (keys, aliases, paths, datasets by role then
    name, parents by model then number)."""
    text, real, whole = sa.Text(), sa.Float(), sa.BigInteger()
    types: dict[str, Any] = {
        "a": text,
        "b": text,
        "c": text,
        "d": text,
        "x": real,
        "n": whole,
        "m": whole,
    }

    def arm(kind: int, vid: Any, **cols: Any) -> Any:
        out = [vid.label("version_id"), sa.literal_column(str(kind)).label("kind")]
        for name, type_ in types.items():
            out.append(sa.cast(cols.get(name, sa.null()), type_).label(name))
        return sa.select(*out)

    c = schema
    p, me, t, al = c.version_params, c.version_metrics, c.version_tags, c.aliases
    f, fl = c.version_files, c.version_flags
    arms = [
        arm(_PARAM, p.c.version_id, a=p.c.key, b=p.c.value).where(where(p.c.version_id)),
        arm(_METRIC, me.c.version_id, a=me.c.key, x=me.c.value).where(where(me.c.version_id)),
        arm(_TAG, t.c.version_id, a=t.c.key, b=t.c.value).where(where(t.c.version_id)),
        arm(_ALIAS, al.c.version_id, a=al.c.alias).where(where(al.c.version_id)),
        arm(_FILE, f.c.version_id, a=f.c.path, b=f.c.digest, n=f.c.size).where(
            where(f.c.version_id)
        ),
        arm(
            _DATASET,
            _vd.c.version_id,
            a=_vd.c.role,
            d=_d.c.name,
            b=_d.c.digest,
            c=_d.c.uri,
            n=_d.c.size,
            m=_d.c.file_count,
        )
        .join(_d, _d.c.id == _vd.c.dataset_id)
        .where(where(_vd.c.version_id)),
        arm(_PARENT, _p.c.version_id, a=_m.c.name, n=_pv.c.number)
        .join(_pv, _pv.c.id == _p.c.parent_id)
        .join(_m, _m.c.id == _pv.c.model_id)
        .where(where(_p.c.version_id)),
        arm(_FLAG, fl.c.version_id, a=fl.c.flag).where(where(fl.c.version_id)).distinct(),
    ]
    rows = sa.union_all(*arms).subquery()
    return sa.select(rows).order_by(rows.c.kind, rows.c.a, rows.c.d, rows.c.n)


def _version_rows(where: Callable[[Any], Any]) -> Any:
    return (
        sa.select(_v, _m.c.name.label("model_name"))
        .join(_m, _m.c.id == _v.c.model_id)
        .where(where(_v.c.id))
    )


# Many versions by an IN list; one (the hot path: a get, an alias move) by equality, which
# spares expanding the list into the statement on every call.
_LOAD_MANY = (_version_rows(_by_ids), _child_rows(_by_ids))
_LOAD_ONE = (_version_rows(_by_id), _child_rows(_by_id))


def load(conn: Connection, ids: Sequence[str], registry: Puller | None = None) -> list[Version]:
    """Load versions by id, keeping the order of ``ids``: two queries for up to 500."""
    return _assemble(conn, {}, ids, registry)


def load_ref(
    conn: Connection, ref: Ref, registry: Puller | None = None, *, at: str | None = None
) -> Version:
    """The version a parsed reference names, loaded (Gone when it was deleted). A number or
    an alias is resolved by the statement that reads the version's row: two in all, where
    ``resolve`` then ``load`` take three (each a round trip to PostgreSQL)."""
    if ref.version_id is None and _by_name(ref, at):
        row = _named(conn, ref)
        return _assemble(conn, {row.id: row}, [row.id], registry)[0]
    return load(conn, [resolve(conn, ref, at=at)], registry)[0]


def _assemble(
    conn: Connection, rows: dict[str, Any], ids: Sequence[str], registry: Puller | None
) -> list[Version]:
    """Versions of ``ids`` built from their rows (read here unless given) and their
    children's rows."""
    params: dict[str, dict[str, str]] = {}
    metrics: dict[str, dict[str, float]] = {}
    tags: dict[str, dict[str, str]] = {}
    aliases: dict[str, list[str]] = {}
    files: dict[str, list[FileEntry]] = {}
    used: dict[str, list[DatasetUse]] = {}
    parents: dict[str, list[str]] = {}
    flags: dict[str, list[str]] = {}
    unique = list(dict.fromkeys(ids))
    for chunk in _chunks(unique):
        one = len(chunk) == 1
        by_version, children = _LOAD_ONE if one else _LOAD_MANY
        bound: dict[str, Any] = {"id": chunk[0]} if one else {"ids": list(chunk)}
        if not all(vid in rows for vid in chunk):
            for r in conn.execute(by_version, bound):
                rows[r.id] = r
        for r in conn.execute(children, bound):
            vid, kind = r.version_id, r.kind
            if kind == _PARAM:
                params.setdefault(vid, {})[r.a] = r.b
            elif kind == _METRIC:
                metrics.setdefault(vid, {})[r.a] = r.x
            elif kind == _TAG:
                tags.setdefault(vid, {})[r.a] = r.b
            elif kind == _ALIAS:
                aliases.setdefault(vid, []).append(r.a)
            elif kind == _FILE:
                files.setdefault(vid, []).append(FileEntry(r.a, r.b, r.n))
            elif kind == _DATASET:
                use = DatasetUse(r.d, r.b, r.c, r.n, r.m, r.a)
                used.setdefault(vid, []).append(use)
            elif kind == _PARENT:
                parents.setdefault(vid, []).append(f"{r.a}/{r.n}")
            else:
                flags.setdefault(vid, []).append(r.a)
    out = []
    for vid in ids:
        row = rows.get(vid)
        if row is None:
            continue
        out.append(
            Version(
                id=row.id,
                model=row.model_name,
                number=row.number,
                created_at=row.created_at,
                created_by=row.created_by,
                description=row.description,
                manifest_digest=row.manifest_digest,
                size=row.size,
                params=params.get(vid, {}),
                metrics=metrics.get(vid, {}),
                tags=tags.get(vid, {}),
                aliases=aliases.get(vid, []),
                files=files.get(vid, []),
                datasets=used.get(vid, []),
                parents=parents.get(vid, []),
                run_id=row.run_id,
                flags=flags.get(vid, []),
                _registry=registry,
            )
        )
    return out


_a, _e = schema.aliases, schema.alias_events
_MODEL_ID = sa.select(_m.c.id).where(_m.c.name == sa.bindparam("name"))
_BY_ID = sa.select(_v.c.id, _v.c.deleted_at).where(_v.c.id == sa.bindparam("id"))
# A model by name with the version a number or an alias names, in one round trip: no row
# when there is no such model, NULLs when it has no such version.
# Every column of the version comes along (``load_ref`` builds the version from it).
_NAMED = (_m.c.name.label("model_name"), *_v.c)
_BY_NUMBER = (
    sa.select(*_NAMED)
    .select_from(
        _m.outerjoin(_v, sa.and_(_v.c.model_id == _m.c.id, _v.c.number == sa.bindparam("number")))
    )
    .where(_m.c.name == sa.bindparam("name"))
)
_BY_ALIAS = (
    sa.select(*_NAMED)
    .select_from(
        _m.outerjoin(
            _a, sa.and_(_a.c.model_id == _m.c.id, _a.c.alias == sa.bindparam("alias"))
        ).outerjoin(_v, _v.c.id == _a.c.version_id)
    )
    .where(_m.c.name == sa.bindparam("name"))
)
_BY_ALIAS_AT = (
    sa.select(_e.c.version_id, _v.c.deleted_at)
    .outerjoin(_v, _v.c.id == _e.c.version_id)
    .where(
        _e.c.model_id == sa.bindparam("model_id"),
        _e.c.alias == sa.bindparam("alias"),
        _e.c.at <= sa.bindparam("at"),
    )
    .order_by(_e.c.at.desc(), _e.c.id.desc())
    .limit(1)
)
_LATEST = (
    sa.select(_v.c.id)
    .where(_v.c.model_id == sa.bindparam("model_id"), LIVE)
    .order_by(_v.c.number.desc())
    .limit(1)
)
_DELETED_COUNT = sa.select(sa.func.count()).where(
    _v.c.model_id == sa.bindparam("model_id"), _v.c.deleted_at.is_not(None)
)
_CHILDREN = (
    sa.select(_m.c.name, _v.c.number)
    .select_from(_p.join(_v, _v.c.id == _p.c.version_id).join(_m, _m.c.id == _v.c.model_id))
    .where(_p.c.parent_id == sa.bindparam("id"), LIVE)
    .order_by(_m.c.name, _v.c.number)
)


_REF = (
    sa.select(_m.c.name, _v.c.number)
    .join(_m, _m.c.id == _v.c.model_id)
    .where(_v.c.id == sa.bindparam("id"))
)


def ref_of(conn: Connection, version_id: str) -> str:
    """``name/number`` of a version id."""
    row = conn.execute(_REF, {"id": version_id}).one()
    return f"{row.name}/{row.number}"


def model_id(conn: Connection, name: str) -> str:
    found = conn.execute(_MODEL_ID, {"name": name}).scalar()
    if found is None:
        raise NotFound(f"model {name!r} not found")
    return str(found)


def resolve(conn: Connection, ref: Ref, *, at: str | None = None) -> str:
    """The version id a parsed reference names; ``at`` resolves an alias as it was then.

    A deleted version raises Gone; a bare model name names its newest version not deleted.
    """
    if ref.version_id is not None:
        row = conn.execute(_BY_ID, {"id": ref.version_id}).first()
        if row is None:
            raise NotFound(f"version {ref.version_id} not found")
        return _live(conn, row)
    assert ref.model is not None
    if _by_name(ref, at):
        return str(_named(conn, ref).id)
    mid = model_id(conn, ref.model)
    if ref.alias is not None:
        row = conn.execute(_BY_ALIAS_AT, {"model_id": mid, "alias": ref.alias, "at": at}).first()
        if row is None or row.version_id is None:
            raise NotFound(f"alias {ref} did not point at any version at {at}")
        return _live(conn, row)
    found = conn.execute(_LATEST, {"model_id": mid}).scalar()
    if found is None:
        deleted = conn.execute(_DELETED_COUNT, {"model_id": mid}).scalar() or 0
        raise NotFound(
            f"model {ref.model!r} has no versions"
            + (
                f": its {deleted} {'version was' if deleted == 1 else 'versions were'} deleted"
                if deleted
                else ""
            )
        )
    return str(found)


def _by_name(ref: Ref, at: str | None) -> bool:
    """Whether ``ref`` names its version by model and number, or by alias as it is now."""
    return ref.number is not None or (ref.alias is not None and at is None)


def _named(conn: Connection, ref: Ref) -> Any:
    """The row of the live version a model's number or alias names, in one round trip."""
    by_number = ref.number is not None
    bound = {"name": ref.model, "number": ref.number, "alias": ref.alias}
    named = conn.execute(_BY_NUMBER if by_number else _BY_ALIAS, bound).first()
    if named is None:
        raise NotFound(f"model {ref.model!r} not found")
    if named.id is None:
        raise NotFound(f"{'version' if by_number else 'alias'} {ref} not found")
    if named.deleted_at is not None:
        raise gone(conn, str(named.id))
    return named


def _live(conn: Connection, row: Any) -> str:
    """The id of a resolved row (its first column), or Gone when that version was deleted."""
    if row.deleted_at is None:
        return str(row[0])
    raise gone(conn, str(row[0]))


_DELETIONS = sa.select(_v.c.id, _v.c.deleted_at, _v.c.deleted_by, _v.c.deleted_reason).where(
    _by_ids(_v.c.id), _v.c.deleted_at.is_not(None)
)


def deletions(conn: Connection, ids: Sequence[str]) -> dict[str, DeletionNote]:
    """{version id: {"at", "by", "reason"}} for those of ``ids`` that were deleted."""
    found: dict[str, DeletionNote] = {}
    for chunk in _chunks(list(ids)):
        for r in conn.execute(_DELETIONS, {"ids": list(chunk)}):
            found[r.id] = {"at": r.deleted_at, "by": r.deleted_by, "reason": r.deleted_reason}
    return found


def gone(conn: Connection, version_id: str) -> Gone:
    """The error for reaching deleted version ``version_id``: when, by whom, and why."""
    d = deletions(conn, [version_id])[version_id]
    return Gone(
        f"version {ref_of(conn, version_id)} was deleted at {d['at']} by {d['by']}: {d['reason']}"
    )


def children(conn: Connection, version_id: str) -> list[str]:
    return [f"{r.name}/{r.number}" for r in conn.execute(_CHILDREN, {"id": version_id})]


_MAX_NUMBER = sa.select(sa.func.max(_v.c.number)).where(_v.c.model_id == sa.bindparam("model_id"))
_INSERT_MODEL = _m.insert()
# The model row's summary of its live versions (schema.models), kept in the writing
# transaction; numbers only grow, so the newest version is the latest.
_COUNT_NEW = (
    _m.update()
    .where(_m.c.id == sa.bindparam("model_id"))
    .values(
        version_count=_m.c.version_count + 1,
        latest_number=sa.bindparam("number"),
        updated_at=sa.bindparam("stamp"),
    )
)
_LIVE_LATEST = (
    sa.select(sa.func.max(_v.c.number))
    .where(_v.c.model_id == _m.c.id, LIVE)
    .correlate(_m)
    .scalar_subquery()
)
COUNT_DELETED = (
    _m.update()
    .where(_m.c.id == sa.bindparam("model_id"))
    .values(
        version_count=_m.c.version_count - 1,
        latest_number=_LIVE_LATEST,
        updated_at=sa.bindparam("stamp"),
    )
)
_INSERT_ENVIRONMENT = schema.environments.insert()
# A version's rows go straight to the driver (db.insert_rows): the columns, in order.
_VERSION_COLUMNS = (
    "id",
    "model_id",
    "number",
    "description",
    "created_at",
    "created_by",
    "manifest_digest",
    "size",
    "file_count",
    "run_id",
    "code",
    "command",
    "hostname",
    "environment_digest",
)
_ENVIRONMENT = sa.select(schema.environments.c.digest).where(
    schema.environments.c.digest == sa.bindparam("digest")
)


@dataclass
class Known:
    """Rows a registry has seen committed: models and environments are never deleted, so
    their ids need not be looked up again. Only rows read back (hence committed) go in."""

    models: dict[str, str] = field(default_factory=dict)
    environments: set[str] = field(default_factory=set)


def ensure_model(conn: Connection, name: str, *, actor: str, known: Known | None = None) -> str:
    """The model's id; the model is created (and audited) on its first version."""
    if known is not None and name in known.models:
        return known.models[name]
    found = conn.execute(_MODEL_ID, {"name": name}).scalar()
    if found is not None:
        if known is not None:
            known.models[name] = str(found)
        return str(found)
    stamp = now()
    new_id = str(uuid.uuid4())
    conn.execute(
        _INSERT_MODEL,
        {
            "id": new_id,
            "name": name,
            "description": "",
            "created_at": stamp,
            "created_by": actor,
            "updated_at": stamp,
        },
    )
    audit.append(
        conn,
        actor=actor,
        action="model.create",
        entity_type="model",
        entity_id=new_id,
        entity=name,
        after={"name": name},
    )
    return new_id


def ensure_environment(
    conn: Connection, env: capture.Environment, *, known: Known | None = None
) -> str:
    if known is not None and env.digest in known.environments:
        return env.digest
    if conn.execute(_ENVIRONMENT, {"digest": env.digest}).first() is None:
        conn.execute(_INSERT_ENVIRONMENT, {"digest": env.digest, "data": env.text})
    elif known is not None:
        known.environments.add(env.digest)
    return env.digest


def _parent(conn: Connection, ref: Ref) -> str:
    """The id of a new version's parent; a parent that does not resolve is named as one."""
    try:
        return resolve(conn, ref)
    except NotFound as exc:  # and Gone: a deleted version
        raise type(exc)(f"parent {ref}: {exc}") from None


def insert(
    conn: Connection,
    new: NewVersion,
    *,
    actor: str,
    signed_by: str | None = None,
    known: Known | None = None,
) -> Version:
    """Write a version with the next number of its model, and its audit event.

    ``signed_by`` (a key id) is recorded in the event; the caller writes the signature.
    """
    parent_ids = list(dict.fromkeys(_parent(conn, ref) for ref in new.parents))
    parent_refs = [ref_of(conn, pid) for pid in parent_ids]
    mid = ensure_model(conn, new.model, actor=actor, known=known)
    number = 1 + (conn.execute(_MAX_NUMBER, {"model_id": mid}).scalar() or 0)
    vid = str(uuid.uuid4())
    stamp = now()
    digest = manifest_digest(new.files)
    size = sum(e.size for e in new.files)
    env_digest = ensure_environment(conn, new.environment, known=known) if new.environment else None
    version_row = (
        vid,
        mid,
        number,
        new.description,
        stamp,
        actor,
        digest,
        size,
        len(new.files),
        new.run_id,
        json.dumps(new.code, sort_keys=True),
        new.command,
        new.hostname,
        env_digest,
    )
    insert_rows(conn, _v, _VERSION_COLUMNS, [version_row])
    conn.execute(_COUNT_NEW, {"model_id": mid, "number": number, "stamp": stamp})
    files = [(vid, e.path, e.digest, e.size) for e in new.files]
    insert_rows(conn, schema.version_files, ("version_id", "path", "digest", "size"), files)
    params = [(vid, k, text, param_number(text)) for k, text in new.params.items()]
    insert_rows(conn, schema.version_params, ("version_id", "key", "value", "value_num"), params)
    metrics = [(vid, k, val) for k, val in new.metrics.items()]
    insert_rows(conn, schema.version_metrics, ("version_id", "key", "value"), metrics)
    metric_summary.add(conn, mid, number, stamp, new.metrics)
    tags = [(vid, k, val) for k, val in new.tags.items()]
    insert_rows(conn, schema.version_tags, ("version_id", "key", "value"), tags)
    if (logged_model := logged_model_of(new.code)) is not None:  # its registrations, by index
        conn.execute(
            schema.version_logged_models.insert(), {"version_id": vid, "model_id": logged_model}
        )
    uses = list({(u.name, u.digest, u.role): u for u in new.datasets}.values())
    if uses:
        conn.execute(
            schema.version_datasets.insert(),
            [
                {"version_id": vid, "dataset_id": datasets.ensure(conn, u), "role": u.role}
                for u in uses
            ],
        )
    if parent_ids:
        conn.execute(
            schema.version_parents.insert(),
            [{"version_id": vid, "parent_id": pid} for pid in parent_ids],
        )
    version = Version(
        id=vid,
        model=new.model,
        number=number,
        created_at=stamp,
        created_by=actor,
        description=new.description,
        manifest_digest=digest,
        size=size,
        params=dict(sorted(new.params.items())),
        metrics=dict(sorted(new.metrics.items())),
        tags=dict(sorted(new.tags.items())),
        aliases=[],
        files=new.files,
        datasets=sorted(uses, key=lambda u: (u.role, u.name)),
        parents=sorted(parent_refs),
        run_id=new.run_id,
    )
    audit.append(
        conn,
        actor=actor,
        action="version.create",
        entity_type="version",
        entity_id=vid,
        entity=version.ref,
        after={
            "ref": version.ref,
            "manifest_digest": digest,
            "files": [e.to_dict() for e in new.files],
            "params": new.params,
            "metrics": new.metrics,
            "tags": new.tags,
            "description": new.description,
            "datasets": [u.to_dict() for u in uses],
            "parents": parent_refs,
            "run_id": new.run_id,
            **({"signed_by": signed_by} if signed_by is not None else {}),
        },
    )
    return version


def list_models(
    conn: Connection,
    *,
    limit: int | None,
    offset: int,
    name: str | None = None,
    after: str | None = None,
) -> list[Model]:
    """Models by name, each with its version count, latest number and aliases; ``name``
    keeps just that one, ``after`` those named after it."""
    a = schema.aliases
    q = sa.select(_m).order_by(_m.c.name).offset(offset)
    if limit is not None:
        q = q.limit(limit)
    if name is not None:
        q = q.where(_m.c.name == name)
    if after is not None:
        q = q.where(_m.c.name > after)
    out = {
        r.id: Model(
            r.id,
            r.name,
            r.description,
            r.created_at,
            r.updated_at,
            r.version_count,
            r.latest_number,
        )
        for r in conn.execute(q)
    }
    aq = (
        sa.select(a.c.model_id, a.c.alias, _v.c.number)
        .join(_v, _v.c.id == a.c.version_id)
        .where(a.c.model_id.in_(list(out)))
        .order_by(a.c.alias)
    )
    for r in conn.execute(aq):
        out[r.model_id].aliases[r.alias] = r.number
    return list(out.values())


def get_model(conn: Connection, name: str) -> Model:
    found = list_models(conn, limit=1, offset=0, name=name)
    if not found:
        raise NotFound(f"model {name!r} not found")
    return found[0]


def count_models(conn: Connection) -> int:
    return int(conn.execute(sa.select(sa.func.count()).select_from(_m)).scalar_one())


RAW_BUCKETS = 5  # a chart's buckets are counted from metric rows up to this many versions wide
_LATEST_NUMBER = sa.select(_m.c.latest_number).where(_m.c.id == sa.bindparam("model_id"))


def metric_series(
    conn: Connection, model_id: str, *, max_points: int = 1000
) -> dict[str, dict[str, Any]]:
    """Each metric across a model's versions, by number: ``number``, ``created_at`` and
    ``value`` lists.

    A model with more than ``max_points`` versions is summed up in buckets of ``bucket``
    consecutive numbers: each point is a bucket's mean, at its first number and time, with
    the bucket's ``min`` and ``max`` beside it, so a regression in one version still shows.
    Up to RAW_BUCKETS times ``max_points`` versions the buckets are counted from the metric
    rows; past that they are merged from the stored ones (metric_summary), a multiple of its
    BUCKET numbers wide, so that a chart reads a tenth of the rows of a long model.
    """
    vm = schema.version_metrics
    latest = conn.execute(_LATEST_NUMBER, {"model_id": model_id}).scalar() or 0
    width = -(-latest // max_points)  # ceiling division
    if width > RAW_BUCKETS:
        stored = metric_summary.BUCKET
        return metric_summary.series(conn, model_id, stored * -(-width // stored))
    joined = vm.join(_v, _v.c.id == vm.c.version_id)
    if width <= 1:
        q = (
            sa.select(vm.c.key, _v.c.number, _v.c.created_at, vm.c.value)
            .select_from(joined)
            .where(_v.c.model_id == model_id, LIVE)
            .order_by(vm.c.key, _v.c.number)
        )
        series: dict[str, dict[str, Any]] = {}
        for key, number, created, value in conn.execute(q):
            found = series.setdefault(key, {"number": [], "created_at": [], "value": []})
            found["number"].append(number)
            found["created_at"].append(created)
            found["value"].append(value)
        return series
    bucket = (_v.c.number - 1) // width
    grouped = (
        sa.select(
            vm.c.key,
            sa.func.min(_v.c.number),
            sa.func.min(_v.c.created_at),
            sa.func.avg(vm.c.value),
            sa.func.min(vm.c.value),
            sa.func.max(vm.c.value),
        )
        .select_from(joined)
        .where(_v.c.model_id == model_id, LIVE)
        .group_by(vm.c.key, bucket)
        .order_by(vm.c.key, sa.func.min(_v.c.number))
    )
    return metric_summary.bucketed(conn.execute(grouped), width)
