"""Model cards and traces: what an auditor asks about one version, in one document.

A card (:func:`build`) gathers everything the registry holds about a version: identity, who
registered it and when, aliases with the moves that involved it (a move forced past failing
gates with who forced it, the reason given and what failed), params, metrics, evaluations,
datasets with their retirement status, code, environment, parents and children, status
flags, stored signatures and its audit events. A trace (:func:`trace`)
starts from the UUID a deployed service logs (read from the ``modelreg.json`` that ``pull``
writes) and follows parent links to the first generation, so that every dataset that fed
the model, directly or through a parent, is listed. :func:`markdown` and
:func:`trace_markdown` render them; every value from the registry is escaped, so no
description or name can break a table or start a heading.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from modelreg import aliases, audit, evaluations, lineage, schema, versions
from modelreg.audit import AuditEvent
from modelreg.errors import IntegrityError, NotFound
from modelreg.governance_records import (
    Card,
    EvaluatedOn,
    Retirement,
    Trace,
    TracedDataset,
    VersionAliasMove,
    VersionFlag,
)
from modelreg.records import DatasetUseInfo
from modelreg.reports import escape as escape
from modelreg.reports import moved
from modelreg.transfer import MARKER
from modelreg.versions import Version

AUDIT_PAGE = 500
SIGNED, UNSIGNED = "signed", "unsigned"


# -- building a card -----------------------------------------------------------------------


def build(conn: Connection, version_id: str) -> Card:
    """Everything recorded about one version, section by section (see the module doc)."""
    version = _load(conn, version_id)
    found = lineage.of_version(conn, version)
    evaluated = evaluations.of_version(conn, version.id)
    retired = _retirements(
        conn,
        {d.digest for d in version.datasets} | {e["dataset"]["digest"] for e in evaluated},
    )
    return {
        "identity": {
            "id": version.id,
            "ref": version.ref,
            "model": version.model,
            "number": version.number,
            "description": version.description,
            "manifest_digest": version.manifest_digest,
            "size": version.size,
            "file_count": len(version.files),
            "tags": version.tags,
        },
        "registration": {
            "created_by": version.created_by,
            "created_at": version.created_at,
            "hostname": found["hostname"],
        },
        "run": found["run"],
        "aliases": {"current": version.aliases, "history": _alias_moves(conn, version)},
        "params": version.params,
        "metrics": version.metrics,
        "evaluations": [
            {**e, "dataset": {**e["dataset"], **_retirement(retired, e["dataset"])}}
            for e in evaluated
        ],
        "datasets": [{**d, **_retirement(retired, d)} for d in found["datasets"]],
        "code": found["code"],
        "environment": {"digest": found["environment_digest"], **found["environment"]},
        "parents": found["parents"],
        "children": found["children"],
        "flags": _flags(conn, version.id),
        # As stored: verifying the signatures is signing.py's job, not the card's.
        "signature": {
            "status": SIGNED if found["signatures"] else UNSIGNED,
            "signatures": found["signatures"],
        },
        "audit": [e.to_dict() for e in _audit_events(conn, version)],
        "files": [f.to_dict() for f in version.files],
    }


def _load(conn: Connection, version_id: str) -> Version:
    found = versions.load(conn, [version_id])
    if not found:
        raise NotFound(f"version {version_id} not found")
    return found[0]


def _retirements(conn: Connection, digests: set[str]) -> dict[str, Any]:
    """The first retirement of the data with each of these digests, under whatever name:
    retiring data retires the same bytes whatever they are called (see retirement.py)."""
    if not digests:
        return {}
    r, d = schema.dataset_retirements, schema.datasets
    q = (
        sa.select(d.c.digest, r.c.reason, r.c.retired_at, r.c.retired_by)
        .join(r, r.c.dataset_id == d.c.id)
        .where(d.c.digest.in_(sorted(digests)))
        .order_by(r.c.retired_at.desc(), r.c.id.desc())
    )
    return {row.digest: row for row in conn.execute(q)}  # the oldest is written last


def _retirement(retired: dict[str, Any], dataset: DatasetUseInfo | EvaluatedOn) -> Retirement:
    row = retired.get(dataset["digest"])
    return {
        "retired": row is not None,
        "retired_at": None if row is None else row.retired_at,
        "retired_by": None if row is None else row.retired_by,
        "reason": None if row is None else row.reason,
    }


def _alias_moves(conn: Connection, version: Version) -> list[VersionAliasMove]:
    """Each move of an alias onto or away from this version (a deletion moves it to None),
    with who forced it past failing gates and why, where it was."""
    e = schema.alias_events
    names = conn.execute(
        sa.select(e.c.alias).where(e.c.version_id == version.id).distinct().order_by(e.c.alias)
    ).scalars()
    forced = aliases.overrides(conn, version.model)
    moves: list[VersionAliasMove] = []
    for alias in names:
        previous = None
        for entry in aliases.history(conn, version.model, alias):
            if version.ref in (previous, entry["version"]):
                moves.append(
                    {
                        "alias": alias,
                        "at": entry["at"],
                        "actor": entry["actor"],
                        "from": previous,
                        "to": entry["version"],
                        "override": forced.get((alias, entry["at"])),
                    }
                )
            previous = entry["version"]
    return sorted(moves, key=lambda m: (m["at"], m["alias"]))


def _flags(conn: Connection, version_id: str) -> list[VersionFlag]:
    """Status flags with what raised them (today: a dataset retirement)."""
    f, r, d = schema.version_flags, schema.dataset_retirements, schema.datasets
    q = (
        sa.select(
            f.c.flag,
            f.c.created_at,
            r.c.reason,
            r.c.retired_at,
            r.c.retired_by,
            d.c.name,
            d.c.digest,
        )
        .outerjoin(r, r.c.id == f.c.source_id)
        .outerjoin(d, d.c.id == r.c.dataset_id)
        .where(f.c.version_id == version_id)
        .order_by(f.c.created_at, f.c.flag, d.c.name)
    )
    return [
        {
            "flag": row.flag,
            "raised_at": row.created_at,
            "source": None
            if row.name is None
            else {
                "dataset": row.name,
                "digest": row.digest,
                "reason": row.reason,
                "retired_at": row.retired_at,
                "retired_by": row.retired_by,
            },
        }
        for row in conn.execute(q)
    ]


def _all_events(conn: Connection, **filters: Any) -> Iterator[AuditEvent]:
    before: int | None = None
    while True:
        page = list(audit.events(conn, limit=AUDIT_PAGE, before_seq=before, **filters))
        yield from page
        if len(page) < AUDIT_PAGE:
            return
        before = page[-1].seq


def _audit_events(conn: Connection, version: Version) -> list[AuditEvent]:
    """The version's own events, the alias moves onto or away from it and the retirements
    that flagged it; oldest first."""
    found = {e.seq: e for e in _all_events(conn, entity=version.id)}
    # Alias events name the model's id as their entity; keep those that involve this version.
    model_id = versions.model_id(conn, version.model)
    for event in _all_events(conn, entity_type="alias", entity=model_id):
        if version.ref in (moved(event.before), moved(event.after)):
            found[event.seq] = event
    for event in _all_events(conn, action="dataset.retire"):
        if isinstance(event.after, dict) and version.ref in event.after.get("flagged", []):
            found[event.seq] = event
    return [found[seq] for seq in sorted(found)]


# -- tracing a deployed version --------------------------------------------------------------


def trace(conn: Connection, version_id: str, *, marker: dict[str, Any] | None = None) -> Trace:
    """The version's full lineage, and each ancestor's through parent links, nearest first.

    A deleted version is traced too (a prediction it made still needs its lineage), with
    ``deleted`` saying when, by whom and why; so is each deleted ancestor.

    ``datasets`` lists every dataset version that fed the model, directly or through any
    ancestor, with who used it and whether it is retired. A ``marker`` whose manifest digest
    differs from the registry's is refused: the files or the marker are not what was pulled.
    """
    version = _load(conn, version_id)
    expected = None if marker is None else marker.get("manifest_digest")
    if expected is not None and expected != version.manifest_digest:
        raise IntegrityError(
            f"{marker['path'] if marker else MARKER} gives manifest digest {expected!r} for"
            f" {version.ref}, but the registry holds {version.manifest_digest}"
        )
    depths = _ancestors(conn, version.id)
    found = versions.load(conn, list(depths))
    ancestors = sorted(found, key=lambda v: (depths[v.id], v.model, v.number))
    generations = [
        (depths.get(v.id, 0), v, lineage.of_version(conn, v)) for v in [version, *ancestors]
    ]
    digests = {d["digest"] for _, _, facts in generations for d in facts["datasets"]}
    retired = _retirements(conn, digests)
    fed: dict[tuple[str, str], TracedDataset] = {}
    for depth, v, facts in generations:
        for d in facts["datasets"]:
            key = (d["name"], d["digest"])
            entry = fed.setdefault(
                key,
                {
                    "name": d["name"],
                    "digest": d["digest"],
                    "uri": d["uri"],
                    "size": d["size"],
                    "file_count": d["file_count"],
                    **_retirement(retired, d),
                    "used_by": [],
                },
            )
            entry["used_by"].append({"version": v.ref, "role": d["role"], "depth": depth})
    target = generations[0][2]
    deleted = versions.deletions(conn, [v.id for _, v, _ in generations])
    return {
        "id": version.id,
        "version": version.ref,
        "manifest_digest": version.manifest_digest,
        "marker": marker,
        "flags": version.flags,
        "deleted": deleted.get(version.id),
        "lineage": target,
        "ancestors": [
            {
                "version": v.ref,
                "id": v.id,
                "depth": depth,
                "created_at": v.created_at,
                "created_by": v.created_by,
                "manifest_digest": v.manifest_digest,
                "parents": facts["parents"],
                "datasets": facts["datasets"],
                "code": facts["code"],
                "environment_digest": facts["environment_digest"],
                "hostname": facts["hostname"],
                "run_id": v.run_id,
                "flags": v.flags,
                "deleted": deleted.get(v.id),
            }
            for depth, v, facts in generations[1:]
        ],
        "datasets": [fed[key] for key in sorted(fed)],
    }


def _ancestors(conn: Connection, version_id: str) -> dict[str, int]:
    """{ancestor id: generations back}, the shortest distance where paths join again."""
    p = schema.version_parents
    depths: dict[str, int] = {version_id: 0}
    frontier = [version_id]
    while frontier:
        q = sa.select(p.c.version_id, p.c.parent_id).where(p.c.version_id.in_(frontier))
        found = {row.parent_id: depths[row.version_id] + 1 for row in conn.execute(q)}
        frontier = [pid for pid in found if pid not in depths]
        depths.update({pid: found[pid] for pid in frontier})
    del depths[version_id]
    return depths
