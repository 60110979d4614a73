"""Dataset retirement: withdraw a dataset version and flag everything that depends on it.

Retiring ``NAME`` (every recorded version of the dataset) or ``NAME@DIGEST`` records the
retirement, never deletable, and flags ``data-retired`` every version trained, validated,
tested or evaluated on it and, through parent links, every descendant of those. The report
also lists each alias that points at a flagged version: the deployments to look at first.
"""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from modelreg import audit, datasets, lineage, schema
from modelreg.db import now
from modelreg.errors import Conflict, InvalidInput

FLAG = "data-retired"
MAX_REASON = 2000


def check_reason(reason: Any) -> str:
    if not isinstance(reason, str) or not reason.strip():
        raise InvalidInput("a retirement needs a reason (e.g. the erasure request it answers)")
    if len(reason) > MAX_REASON:
        raise InvalidInput(f"reason is {len(reason)} characters long; the limit is {MAX_REASON}")
    return reason.strip()


def _retirements(conn: Connection, dataset_ids: list[str]) -> dict[str, Any]:
    t = schema.dataset_retirements
    rows = conn.execute(sa.select(t).where(t.c.dataset_id.in_(dataset_ids)))
    return {r.dataset_id: r for r in rows}


def _aliases_on(conn: Connection, version_ids: list[str]) -> list[dict[str, str]]:
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


def impact(conn: Connection, ref: str) -> dict[str, Any]:
    """What retiring ``ref`` touches (or touched): dataset versions, versions and aliases."""
    found = datasets.find(conn, ref)
    retired = _retirements(conn, [d.id for d in found])
    versions = lineage.dependents(conn, [d.id for d in found])
    return {
        "dataset": ref,
        "datasets": [
            {
                **d.to_dict(),
                "retired": d.id in retired,
                "retired_at": retired[d.id].retired_at if d.id in retired else None,
                "reason": retired[d.id].reason if d.id in retired else None,
            }
            for d in found
        ],
        "versions": versions,
        "aliases": _aliases_on(conn, [v["id"] for v in versions]),
    }


def retire(conn: Connection, ref: str, *, reason: str, actor: str) -> dict[str, Any]:
    """Retire the dataset versions ``ref`` names that are not retired yet; flag dependents."""
    found = datasets.find(conn, ref)
    already = _retirements(conn, [d.id for d in found])
    todo = [d for d in found if d.id not in already]
    if not todo:
        raise Conflict(f"dataset {ref!r} is already retired")
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
            "digests": [d.digest for d in todo],
            "flagged": sorted(v["version"] for v in report["versions"] if v["id"] in flagged),
            "aliases": report["aliases"],
        },
    )
    return report


def markdown(report: dict[str, Any], *, dry_run: bool) -> str:
    """The impact report as Markdown, for a compliance ticket."""
    title = "Impact of retiring" if dry_run else "Retirement of"
    lines = [f"# {title} dataset `{report['dataset']}`", ""]
    lines += ["## Dataset versions", "", "| name | digest | uri | retired | reason |"]
    lines += ["| --- | --- | --- | --- | --- |"]
    for d in report["datasets"]:
        when = d["retired_at"] or ("would be retired" if dry_run else "no")
        lines.append(
            f"| {d['name']} | `{d['digest']}` | {d['uri']} | {when} | {d['reason'] or ''} |"
        )
    lines += ["", f"## Affected versions ({len(report['versions'])})", ""]
    lines += ["| version | relation | uses | via |", "| --- | --- | --- | --- |"]
    for v in report["versions"]:
        lines.append(
            f"| {v['version']} | {v['relation']} | {', '.join(v['uses'])} | {v['via'] or ''} |"
        )
    lines += ["", f"## Aliases on affected versions ({len(report['aliases'])})", ""]
    lines += [f"- `{a['alias']}` -> {a['version']}" for a in report["aliases"]] or ["- none"]
    return "\n".join(lines) + "\n"
