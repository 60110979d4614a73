"""Dataset retirement: withdraw a dataset version and flag everything that depends on it.

Retiring ``NAME`` (every recorded version of the dataset) or ``NAME@DIGEST`` records the
retirement, never deletable, and flags ``data-retired`` every version trained, validated,
tested or evaluated on it and, through parent links, every descendant of those. Retirement is
about the bytes: the same bytes recorded under another name are retired with it, the versions
that used them under that name are flagged too, and the report names every name. It also
lists each alias that points at a flagged version: the deployments to look at first.
"""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from modelreg import audit, datasets, lineage, schema
from modelreg.db import now
from modelreg.errors import Conflict
from modelreg.governance_records import AliasOnVersion, DatasetImpact, DeletedDependent
from modelreg.reports import GC_NOTE as GC_NOTE
from modelreg.values import check_reason as check_reason

FLAG = "data-retired"


def _aliases_on(conn: Connection, version_ids: list[str]) -> list[AliasOnVersion]:
    a, m = schema.aliases, schema.models
    refs = lineage.refs_of(conn, version_ids)
    q = (
        sa.select(m.c.name, a.c.alias, a.c.version_id)
        .join(m, m.c.id == a.c.model_id)
        .where(a.c.version_id.in_(version_ids))
        .order_by(m.c.name, a.c.alias)
    )
    return [
        {"alias": f"{r.name}@{r.alias}", "version": refs[r.version_id]} for r in conn.execute(q)
    ]


def impact(conn: Connection, ref: str) -> DatasetImpact:
    """What retiring ``ref`` touches (or touched): its bytes under every name they are
    recorded under, the versions that used them under any of those names, and the aliases
    on those versions."""
    found = datasets.same_content(conn, ref)
    deleted: list[DeletedDependent] = []
    versions = lineage.dependents(conn, [d.id for d in found], deleted=deleted)
    return {
        "dataset": ref,
        "datasets": [
            {**d.to_dict(), "retired": d.retired_at is not None, "reason": d.retired_reason}
            for d in found
        ],
        "versions": versions,
        "aliases": _aliases_on(conn, [v["id"] for v in versions]),
        # Deleted versions are not flagged, but their files stay in the blob store until gc
        # collects the blobs nothing else references: data derived from the dataset, too.
        "deleted_versions": deleted,
    }


def pending(conn: Connection, ref: str) -> list[datasets.Dataset]:
    """The dataset versions that retiring ``ref`` would retire now (its bytes, under every
    name); Conflict if none."""
    todo = [x for x in datasets.same_content(conn, ref) if x.retired_at is None]
    if not todo:
        raise Conflict(f"dataset {ref!r} is already retired")
    return todo


def flag_new_version(conn: Connection, version_id: str) -> list[str]:
    """Flag a version registered with retired data, or derived from a flagged parent, from
    the start; return its flags."""
    t, d, vd = schema.dataset_retirements, schema.datasets, schema.version_datasets
    f, p = schema.version_flags, schema.version_parents
    used_digests = (
        sa.select(d.c.digest)
        .join(vd, vd.c.dataset_id == d.c.id)
        .where(vd.c.version_id == version_id)
    )
    retired = (
        sa.select(t.c.id).join(d, d.c.id == t.c.dataset_id).where(d.c.digest.in_(used_digests))
    )
    inherited = (
        sa.select(f.c.source_id)
        .join(p, p.c.parent_id == f.c.version_id)
        .where(p.c.version_id == version_id, f.c.flag == FLAG)
    )
    sources = set(conn.execute(retired).scalars()) | set(conn.execute(inherited).scalars())
    stamp = now()
    for source in sorted(sources):
        conn.execute(
            f.insert().values(version_id=version_id, flag=FLAG, source_id=source, created_at=stamp)
        )
    return [FLAG] if sources else []


def retire(conn: Connection, ref: str, *, reason: str, actor: str) -> DatasetImpact:
    """Retire the dataset versions ``ref`` names that are not retired yet; flag dependents."""
    todo = pending(conn, ref)
    stamp = now()
    flags = schema.version_flags
    flagged: set[str] = set()
    for dataset in todo:
        retirement_id = str(uuid.uuid4())
        conn.execute(
            schema.dataset_retirements.insert().values(
                id=retirement_id,
                dataset_id=dataset.id,
                reason=reason,
                retired_at=stamp,
                retired_by=actor,
            )
        )
        for version in lineage.dependents(conn, [dataset.id]):
            flagged.add(version["id"])
            conn.execute(
                flags.insert().values(
                    version_id=version["id"], flag=FLAG, source_id=retirement_id, created_at=stamp
                )
            )
    report = impact(conn, ref)
    audit.append(
        conn,
        actor=actor,
        action="dataset.retire",
        entity_type="dataset",
        entity_id=todo[0].id,
        entity=ref,
        after={
            "reason": reason,
            "names": sorted({d.name for d in todo}),
            "digests": sorted({d.digest for d in todo}),
            "flagged": sorted(v["version"] for v in report["versions"] if v["id"] in flagged),
            "aliases": report["aliases"],
        },
    )
    return report
