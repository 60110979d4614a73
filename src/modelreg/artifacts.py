"""The files of runs and of logged models, by path: the artifact store MLflow clients see,
and the files of versions, read through the same paths.

Each file is a blob, stored and verified like a version's, shared with every version and
artifact that has the same bytes; ``artifact_files`` only names it under its owner (a run id
or a logged model id). A path written again points at its new bytes; each write is audited.
A version's files (``version_files``) are read here too, and never written: they are the
version's own, for good.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from modelreg import audit, runs, schema, versions
from modelreg.db import now
from modelreg.errors import Conflict, InvalidInput, NotFound
from modelreg.manifest import FileEntry, check_path
from modelreg.refs import LOGGED_MODEL, RUN, VERSION, ArtifactLocation, Ref

_t = schema.artifact_files
_OWNERS = {RUN: (schema.runs, "run"), LOGGED_MODEL: (schema.logged_models, "logged model")}
NOUNS = {RUN: "run", LOGGED_MODEL: "logged model", VERSION: "version"}


@dataclass(frozen=True)
class Listed:
    """An entry of a folder's listing: a file (with its size) or a folder."""

    name: str
    is_dir: bool
    size: int | None


def check_owner(conn: Connection, where: ArtifactLocation, *, writing: bool = False) -> None:
    """NotFound unless the run or logged model ``where`` names exists in its experiment. To
    be ``writing`` to, a run must also take new facts (``runs.check_writable``): an MLflow
    run does even after it ended, as MLflow's do; a run of modelreg's SDK only while it runs;
    a deleted one does not. A version's files are read, never written: its location is
    refused for ``writing``; a deleted version's answers Gone (saying when and why)."""
    if where.kind == VERSION:
        vid = versions.resolve(conn, Ref(version_id=where.owner_id))
        if writing:
            ref = versions.ref_of(conn, vid)
            raise Conflict(
                f"the files of version {ref} cannot change: a modelreg version holds its files"
                " for good. Log files to a run or a logged model, and register a new version"
                " from them"
            )
        return
    table, noun = _OWNERS[where.kind]
    row = conn.execute(sa.select(table.c.experiment_id).where(table.c.id == where.owner_id)).first()
    if row is None:
        raise NotFound(f"{noun} {where.owner_id!r} not found")
    if row.experiment_id != where.experiment_id:
        raise NotFound(
            f"experiment {where.experiment_id} has no {noun} {where.owner_id}: it is filed"
            f" under experiment {row.experiment_id}"
        )
    if writing and where.kind == "run":
        runs.check_writable(conn, where.owner_id)


def run_location(conn: Connection, run_id: str, path: str = "") -> ArtifactLocation:
    """Where ``path`` of run ``run_id`` is (its experiment read from the run); NotFound if
    there is no such run."""
    row = conn.execute(
        sa.select(schema.runs.c.experiment_id).where(schema.runs.c.id == run_id)
    ).first()
    if row is None:
        raise NotFound(f"run {run_id!r} not found")
    return ArtifactLocation(row.experiment_id, "run", run_id, path)


def put(conn: Connection, owner_id: str, entry: FileEntry, *, actor: str, kind: str) -> None:
    """Name ``entry``'s blob (already stored) as ``entry.path`` of ``owner_id``, a ``kind``
    ("run" or "logged_model"); a file already at that path is replaced. A path cannot be a
    file and a folder at once (a version made from these files could not hold both)."""
    path = check_path(entry.path)
    key = (_t.c.owner_id == owner_id) & (_t.c.path == path)
    before = conn.execute(sa.select(_t.c.digest, _t.c.size).where(key)).first()
    if before is not None and before.digest == entry.digest:
        return  # the same bytes again: nothing changes, nothing to audit
    if before is None:
        _check_no_clash(conn, owner_id, path)
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


def _check_no_clash(conn: Connection, owner_id: str, path: str) -> None:
    parts = path.split("/")
    folders = ["/".join(parts[:i]) for i in range(1, len(parts))]
    if folders:
        file = conn.execute(
            sa.select(_t.c.path).where(_t.c.owner_id == owner_id, _t.c.path.in_(folders)).limit(1)
        ).scalar()
        if file is not None:
            raise InvalidInput(
                f"artifact {path!r} cannot be written: {file!r} is a file, not a folder"
            )
    inside = conn.execute(
        sa.select(_t.c.path).where(_t.c.owner_id == owner_id, _under(path)).limit(1)
    ).scalar()
    if inside is not None:
        raise InvalidInput(
            f"artifact {path!r} cannot be written: it is a folder (it holds {inside!r})"
        )


def _under(folder: str, table: sa.Table = _t) -> sa.ColumnElement[bool]:
    """Paths inside ``folder``: compared as text, since LIKE ignores case on SQLite."""
    prefix = folder + "/"
    return sa.func.substr(table.c.path, 1, len(prefix)) == prefix


def _table(kind: str) -> tuple[sa.Table, sa.Column[str]]:
    """Where the files of a ``kind`` are named, and its owner column: a version's in
    ``version_files``, a run's and a logged model's in ``artifact_files``."""
    if kind == VERSION:
        return schema.version_files, schema.version_files.c.version_id
    return _t, _t.c.owner_id


def delete(conn: Connection, owner_id: str, path: str, *, actor: str, kind: str) -> int:
    """Remove the file at ``path`` of ``owner_id``, or every file in the folder ``path``;
    how many. Their blobs stay until gc finds nothing else names them."""
    path = check_path(path)
    gone = files(conn, owner_id, path)
    file = get(conn, owner_id, path)
    if file is not None:
        gone.insert(0, file)
    if not gone:
        raise NotFound(f"{_OWNERS[kind][1]} {owner_id} has no artifact file or folder {path!r}")
    conn.execute(_t.delete().where(_t.c.owner_id == owner_id, (_t.c.path == path) | _under(path)))
    audit.append(
        conn,
        actor=actor,
        action="artifact.delete",
        entity_type=kind,
        entity_id=owner_id,
        entity=f"{owner_id}/{path}",
        before={"files": [e.to_dict() for e in gone[:_LISTED]], "count": len(gone)},
        after=None,
    )
    return len(gone)


_LISTED = 100  # files named in a deletion's audit event (the count covers the rest)


def remove_all(conn: Connection, owner_id: str) -> list[FileEntry]:
    """Remove every file of ``owner_id`` (a logged model being deleted, whose own event
    records them); what they were."""
    gone = files(conn, owner_id)
    conn.execute(_t.delete().where(_t.c.owner_id == owner_id))
    return gone


def get(conn: Connection, owner_id: str, path: str, *, kind: str = RUN) -> FileEntry | None:
    """The file at ``path`` of ``owner_id`` (a ``kind``), if there is one."""
    table, owner = _table(kind)
    row = conn.execute(
        sa.select(table.c.path, table.c.digest, table.c.size).where(
            owner == owner_id, table.c.path == path
        )
    ).first()
    return None if row is None else FileEntry(row.path, row.digest, row.size)


def files(conn: Connection, owner_id: str, folder: str = "", *, kind: str = RUN) -> list[FileEntry]:
    """Every file of ``owner_id`` (a ``kind``) under ``folder`` ("" for all), by path."""
    table, owner = _table(kind)
    query = sa.select(table.c.path, table.c.digest, table.c.size).where(owner == owner_id)
    folder = folder.strip("/")
    if folder:
        query = query.where(_under(folder, table))
    rows = conn.execute(query.order_by(table.c.path))
    return [FileEntry(r.path, r.digest, r.size) for r in rows]


def listing(conn: Connection, owner_id: str, folder: str = "", *, kind: str = RUN) -> list[Listed]:
    """The entries directly in ``folder`` of ``owner_id`` (a ``kind``): files with their
    sizes, and the folders that hold deeper files, by name."""
    prefix = folder.strip("/") + "/" if folder.strip("/") else ""
    found: dict[str, Listed] = {}
    for entry in files(conn, owner_id, folder, kind=kind):
        name, slash, _ = entry.path[len(prefix) :].partition("/")
        if slash:
            found.setdefault(name, Listed(name, True, None))
        else:
            found[name] = Listed(name, False, entry.size)
    return sorted(found.values(), key=lambda listed: listed.name)
