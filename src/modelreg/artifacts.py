"""The files of runs and of logged models, by path: the artifact store MLflow clients see.

Each file is a blob, stored and verified like a version's, shared with every version and
artifact that has the same bytes; ``artifact_files`` only names it under its owner (a run id
or a logged model id). A path written again points at its new bytes; each write is audited.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from modelreg import audit, schema
from modelreg.db import now
from modelreg.manifest import FileEntry, check_path

_t = schema.artifact_files


@dataclass(frozen=True)
class Listed:
    """An entry of a folder's listing: a file (with its size) or a folder."""

    name: str
    is_dir: bool
    size: int | None


def put(conn: Connection, owner_id: str, entry: FileEntry, *, actor: str, kind: str) -> None:
    """Name ``entry``'s blob (already stored) as ``entry.path`` of ``owner_id``, a ``kind``
    ("run" or "logged_model"); a file already at that path is replaced."""
    path = check_path(entry.path)
    key = (_t.c.owner_id == owner_id) & (_t.c.path == path)
    before = conn.execute(sa.select(_t.c.digest, _t.c.size).where(key)).first()
    if before is not None and before.digest == entry.digest:
        return  # the same bytes again: nothing changes, nothing to audit
    if before is not None:
        conn.execute(_t.delete().where(key))
    conn.execute(
        _t.insert().values(
            owner_id=owner_id, path=path, digest=entry.digest, size=entry.size, created_at=now()
        )
    )
    audit.append(
        conn,
        actor=actor,
        action="artifact.put",
        entity_type=kind,
        entity_id=owner_id,
        entity=f"{owner_id}/{path}",
        before=None if before is None else {"digest": before.digest, "size": before.size},
        after=entry.to_dict(),
    )


def get(conn: Connection, owner_id: str, path: str) -> FileEntry | None:
    """The file at ``path`` of ``owner_id``, if there is one."""
    row = conn.execute(
        sa.select(_t.c.path, _t.c.digest, _t.c.size).where(
            _t.c.owner_id == owner_id, _t.c.path == path
        )
    ).first()
    return None if row is None else FileEntry(row.path, row.digest, row.size)


def files(conn: Connection, owner_id: str, folder: str = "") -> list[FileEntry]:
    """Every file of ``owner_id`` under ``folder`` ("" for all), by path."""
    query = sa.select(_t.c.path, _t.c.digest, _t.c.size).where(_t.c.owner_id == owner_id)
    folder = folder.strip("/")
    if folder:
        escaped = folder.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(_t.c.path.like(escaped + "/%", escape="\\"))
    return [FileEntry(r.path, r.digest, r.size) for r in conn.execute(query.order_by(_t.c.path))]


def listing(conn: Connection, owner_id: str, folder: str = "") -> list[Listed]:
    """The entries directly in ``folder`` of ``owner_id``: files with their sizes, and the
    folders that hold deeper files, by name."""
    prefix = folder.strip("/") + "/" if folder.strip("/") else ""
    found: dict[str, Listed] = {}
    for entry in files(conn, owner_id, folder):
        name, slash, _ = entry.path[len(prefix) :].partition("/")
        if slash:
            found.setdefault(name, Listed(name, True, None))
        else:
            found[name] = Listed(name, False, entry.size)
    return sorted(found.values(), key=lambda listed: listed.name)
