"""Deleting a version: its files stop being referenced, its record stays.

A deleted version keeps its row and its number (never given again), so the audit log, the
alias history and the children that name it as a parent still make sense. It is no longer
listed, searched, pulled or resolved (reaching it raises Gone, saying when, by whom and
why; ``trace`` still answers, marked deleted), and its blobs are freed by ``gc`` unless a
version not deleted, or a run, holds the same content (gc's grace period still applies). A
version an alias points at is refused: move the alias first (an MLflow client's deletion takes
the aliases on it along, but a protected one: ``delete_with_aliases``).
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from modelreg import aliases, audit, metric_summary, promotion, schema, versions
from modelreg.db import now
from modelreg.errors import Conflict
from modelreg.records import Deletion
from modelreg.refs import check_deletion_ref as check_ref

_a, _m, _v = schema.aliases, schema.models, schema.versions
_ALIASES_ON = (
    sa.select(_m.c.name, _a.c.alias)
    .join(_m, _m.c.id == _a.c.model_id)
    .where(_a.c.version_id == sa.bindparam("id"))
    .order_by(_a.c.alias)
)


def delete(conn: Connection, ref: str, *, reason: str, actor: str) -> Deletion:
    """Mark the version ``ref`` names (``NAME/N`` or its UUID) deleted, with its audit event."""
    vid = versions.resolve(conn, check_ref(ref))  # Gone when it was deleted already
    (version,) = versions.load(conn, [vid])
    pointing = [f"{r.name}@{r.alias}" for r in conn.execute(_ALIASES_ON, {"id": vid})]
    if pointing:
        raise Conflict(
            f"{version.ref} is what {', '.join(pointing)} points at: move or delete"
            f" {'that alias' if len(pointing) == 1 else 'those aliases'} first"
        )
    stamp = now()
    conn.execute(
        _v.update()
        .where(_v.c.id == vid)
        .values(deleted_at=stamp, deleted_by=actor, deleted_reason=reason)
    )
    model_id = versions.model_id(conn, version.model)
    conn.execute(versions.COUNT_DELETED, {"model_id": model_id, "stamp": stamp})
    metric_summary.recount(conn, model_id, version.number)
    audit.append(
        conn,
        actor=actor,
        action="version.delete",
        entity_type="version",
        entity_id=vid,
        entity=version.ref,
        before={
            "ref": version.ref,
            "manifest_digest": version.manifest_digest,
            "files": [f.to_dict() for f in version.files],
        },
        after={"deleted_at": stamp, "reason": reason},
    )
    return {
        "ref": version.ref,
        "id": vid,
        "deleted_at": stamp,
        "deleted_by": actor,
        "reason": reason,
        "files": len(version.files),
        "size": version.size,
    }


def delete_with_aliases(conn: Connection, ref: str, *, reason: str, actor: str) -> Deletion:
    """Delete a version and the aliases on it, as MLflow's clients expect of a deletion;
    one a protected alias (``production``) points at is refused: move that alias first."""
    vid = versions.resolve(conn, check_ref(ref))
    (version,) = versions.load(conn, [vid])
    model_id = versions.model_id(conn, version.model)
    protected = [a for a in version.aliases if promotion.policy_for(conn, model_id, a)]
    if protected:
        raise Conflict(
            f"{version.ref} is what {', '.join(f'{version.model}@{a}' for a in protected)}"
            " points at, a protected alias: point it at another version first"
        )
    for alias in version.aliases:
        aliases.delete_alias(conn, version.model, alias, actor=actor)
    return delete(conn, ref, reason=reason, actor=actor)
