"""Lineage queries across versions: who used a dataset, and everything derived from them."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, cast

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from modelreg import datasets, runs, schema, versions
from modelreg.governance_records import DeletedDependent, DependentVersion
from modelreg.records import LineageRun, VersionLineage

if TYPE_CHECKING:
    from modelreg.versions import Version


CHUNK = 5000  # ids per IN list
_EVALUATION = sa.literal("evaluation").label("role")
_DATASET = schema.datasets.c.name.label("dataset")


def descendants(conn: Connection, roots: set[str]) -> dict[str, str]:
    """Every version derived from ``roots`` through parent links: {version id: parent id}."""
    p = schema.version_parents
    found: dict[str, str] = {}
    frontier = set(roots)
    seen = set(roots)
    while frontier:
        ids, frontier = sorted(frontier), set()
        for start in range(0, len(ids), CHUNK):  # SQLite takes at most 32,766 parameters
            q = sa.select(p.c.version_id, p.c.parent_id).where(
                p.c.parent_id.in_(ids[start : start + CHUNK])
            )
            for row in conn.execute(q):
                if row.version_id not in seen:
                    seen.add(row.version_id)
                    found[row.version_id] = row.parent_id
                    frontier.add(row.version_id)
    return found


def dataset_dependents(conn: Connection, ref: str) -> list[DependentVersion]:
    """Versions that used a dataset (``NAME`` or ``NAME@DIGEST``) and all their descendants:
    its bytes, under whatever name they were used (as retiring it would flag)."""
    return dependents(conn, [d.id for d in datasets.same_content(conn, ref)])


def dependents(
    conn: Connection, dataset_ids: list[str], *, deleted: list[DeletedDependent] | None = None
) -> list[DependentVersion]:
    """Versions trained, validated, tested or evaluated on these dataset versions (direct,
    with how they used them) and, transitively through parent links, their descendants.

    Deleted versions are left out, but not what derives from them: a version fine-tuned
    from a deleted one still depends on its data. Given a list ``deleted``, the deleted
    ones are added to it, each with when it was deleted."""
    vd, ev, d = schema.version_datasets, schema.evaluations, schema.datasets
    v, m = schema.versions, schema.models
    direct: dict[str, set[str]] = {}
    refs: dict[str, str] = {}
    used = (
        sa.select(
            vd.c.version_id, vd.c.role, _DATASET, d.c.digest, m.c.name, v.c.number, v.c.deleted_at
        )
        .join(d, d.c.id == vd.c.dataset_id)
        .join(v, v.c.id == vd.c.version_id)
        .join(m, m.c.id == v.c.model_id)
        .where(vd.c.dataset_id.in_(dataset_ids))
    )
    evaluated = (
        sa.select(
            ev.c.version_id, _EVALUATION, _DATASET, d.c.digest, m.c.name, v.c.number, v.c.deleted_at
        )
        .join(d, d.c.id == ev.c.dataset_id)
        .join(v, v.c.id == ev.c.version_id)
        .join(m, m.c.id == v.c.model_id)
        .where(ev.c.dataset_id.in_(dataset_ids))
    )
    deleted_at: dict[str, str] = {}
    for row in conn.execute(sa.union_all(used, evaluated)):
        use = f"{row.role}:{row.dataset}@{row.digest[:12]}"  # the name it was used under
        direct.setdefault(row.version_id, set()).add(use)
        refs[row.version_id] = f"{row.name}/{row.number}"
        if row.deleted_at is not None:
            deleted_at[row.version_id] = row.deleted_at
    derived = descendants(conn, set(direct))
    more = [i for i in {*derived, *derived.values()} if i not in refs]
    refs.update(refs_of(conn, more, deleted=deleted_at))
    found: list[DependentVersion] = [
        {"version": refs[i], "id": i, "relation": "direct", "uses": sorted(uses), "via": None}
        for i, uses in direct.items()
    ]
    found += [
        {"version": refs[i], "id": i, "relation": "descendant", "uses": [], "via": refs[parent]}
        for i, parent in derived.items()
        if i not in direct
    ]
    found.sort(key=lambda r: (r["relation"] != "direct", *_ref_key(str(r["version"]))))
    if deleted is not None:
        deleted.extend(
            {**r, "deleted_at": deleted_at[r["id"]]} for r in found if r["id"] in deleted_at
        )
    return [r for r in found if r["id"] not in deleted_at]


def _ref_key(ref: str) -> tuple[str, int]:
    name, _, number = ref.rpartition("/")
    return name, int(number)


def refs_of(
    conn: Connection, ids: list[str], *, deleted: dict[str, str] | None = None
) -> dict[str, str]:
    """{version id: "name/number"} for many ids; the deleted ones are added to ``deleted``
    with when they were deleted."""
    v, m = schema.versions, schema.models
    refs: dict[str, str] = {}
    for start in range(0, len(ids), 500):
        q = (
            sa.select(v.c.id, m.c.name, v.c.number, v.c.deleted_at)
            .join(m, m.c.id == v.c.model_id)
            .where(v.c.id.in_(ids[start : start + 500]))
        )
        for r in conn.execute(q):
            refs[r.id] = f"{r.name}/{r.number}"
            if deleted is not None and r.deleted_at is not None:
                deleted[r.id] = r.deleted_at
    return refs


_VERSION_FACTS = sa.select(
    schema.versions.c.code,
    schema.versions.c.command,
    schema.versions.c.hostname,
    schema.versions.c.environment_digest,
).where(schema.versions.c.id == sa.bindparam("id"))
_ENVIRONMENT = sa.select(schema.environments.c.data).where(
    schema.environments.c.digest == sa.bindparam("digest")
)
_DELETED_PARENTS = (
    sa.select(schema.models.c.name, schema.versions.c.number)
    .select_from(
        schema.version_parents.join(
            schema.versions, schema.versions.c.id == schema.version_parents.c.parent_id
        ).join(schema.models, schema.models.c.id == schema.versions.c.model_id)
    )
    .where(schema.version_parents.c.version_id == sa.bindparam("id"))
    .where(schema.versions.c.deleted_at.is_not(None))
    .order_by(schema.models.c.name, schema.versions.c.number)
)
_SIGNATURES = (
    sa.select(
        schema.version_signatures.c.key_id,
        schema.version_signatures.c.algorithm,
        schema.version_signatures.c.created_at,
        schema.version_signatures.c.created_by,
    )
    .where(schema.version_signatures.c.version_id == sa.bindparam("id"))
    .order_by(schema.version_signatures.c.created_at, schema.version_signatures.c.key_id)
)


CODE_FIELDS: dict[str, Any] = {
    "repository": None,
    "commit": None,
    "branch": None,
    "dirty": None,
    "untracked": [],
}


def of_version(conn: Connection, version: Version) -> VersionLineage:
    """What it takes to recreate a version: run, code, environment, data, parents, children,
    and who signed it.

    A version registered in a run takes its code and environment from the run, under any
    facts of its own; one registered outside a run carries its own, captured when it was
    registered.
    """
    row = conn.execute(_VERSION_FACTS, {"id": version.id}).one()
    code = json.loads(row.code)
    command, hostname, env_digest = row.command, row.hostname, row.environment_digest
    run: LineageRun | None = None
    if version.run_id is not None:
        found = runs.record(conn, version.run_id)
        # A version's own facts, where it has them, stand on top of its run's: one made
        # through MLflow's API keeps the source it came from and the environment its files
        # describe (one registered by the SDK in a run has none of its own).
        code = {**found.pop("code"), **code}
        command, hostname = found["command"], found["hostname"]
        run_environment = found.pop("environment_digest")
        env_digest = env_digest or run_environment
        run = cast(LineageRun, found)  # the run's record, its code and environment taken out
    env = {}
    if env_digest is not None:
        env = json.loads(conn.execute(_ENVIRONMENT, {"digest": env_digest}).scalar_one())
    return {
        "version": version.ref,
        "id": version.id,
        "run": run,
        "code": {**CODE_FIELDS, **code, "command": command},
        "environment": env,
        "environment_digest": env_digest,
        "hostname": hostname,
        "datasets": [d.to_dict() for d in version.datasets],
        "parents": version.parents,
        # Children still name a deleted parent (its rows stay); this says which ones are.
        "deleted_parents": (
            [f"{r.name}/{r.number}" for r in conn.execute(_DELETED_PARENTS, {"id": version.id})]
            if version.parents
            else []
        ),
        "children": versions.children(conn, version.id),
        "signatures": [
            {
                "key_id": r.key_id,
                "algorithm": r.algorithm,
                "created_at": r.created_at,
                "created_by": r.created_by,
            }
            for r in conn.execute(_SIGNATURES, {"id": version.id})
        ],
    }
