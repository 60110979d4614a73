"""Models and versions as the registry hands them out, and the queries that load them."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from modelreg import schema
from modelreg.datasets import DatasetUse
from modelreg.errors import NotFound
from modelreg.manifest import FileEntry
from modelreg.refs import Ref


class _Puller(Protocol):
    def pull(
        self, ref: str, dest: str | Path, *, force: bool = False, progress: Any = None
    ) -> Path: ...


CHUNK = 500


@dataclass
class Model:
    id: str
    name: str
    description: str
    created_at: str
    updated_at: str
    version_count: int = 0
    latest: int | None = None
    aliases: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "version_count": self.version_count,
            "latest": self.latest,
            "aliases": self.aliases,
        }


@dataclass
class Version:
    """One immutable model version. ``lineage`` is filled by ``Registry.get``."""

    id: str
    model: str
    number: int
    created_at: str
    created_by: str
    description: str
    manifest_digest: str
    size: int
    params: dict[str, str]
    metrics: dict[str, float]
    tags: dict[str, str]
    aliases: list[str]
    files: list[FileEntry]
    datasets: list[DatasetUse]
    parents: list[str]
    run_id: str | None
    lineage: dict[str, Any] | None = None
    _registry: _Puller | None = field(default=None, repr=False, compare=False)

    @property
    def ref(self) -> str:
        return f"{self.model}/{self.number}"

    def pull(self, dest: str | Path, *, force: bool = False) -> Path:
        """Write this version's files into ``dest``, each verified against its digest."""
        if self._registry is None:
            raise RuntimeError("this Version is not attached to a registry")
        return self._registry.pull(self.id, dest, force=force)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "model": self.model,
            "number": self.number,
            "ref": self.ref,
            "created_at": self.created_at,
            "created_by": self.created_by,
            "description": self.description,
            "manifest_digest": self.manifest_digest,
            "size": self.size,
            "params": self.params,
            "metrics": self.metrics,
            "tags": self.tags,
            "aliases": self.aliases,
            "files": [f.to_dict() for f in self.files],
            "run_id": self.run_id,
        }
        if self.lineage is not None:
            out["lineage"] = self.lineage
        else:
            out["datasets"] = [d.to_dict() for d in self.datasets]
            out["parents"] = self.parents
        return out


def _chunks(ids: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(ids), CHUNK):
        yield ids[start : start + CHUNK]


def load(conn: Connection, ids: Sequence[str], registry: _Puller | None = None) -> list[Version]:
    """Load versions by id, keeping the order of ``ids``; a handful of queries for any count."""
    v, m = schema.versions, schema.models
    rows: dict[str, Any] = {}
    params: dict[str, dict[str, str]] = {}
    metrics: dict[str, dict[str, float]] = {}
    tags: dict[str, dict[str, str]] = {}
    aliases: dict[str, list[str]] = {}
    files: dict[str, list[FileEntry]] = {}
    used: dict[str, list[DatasetUse]] = {}
    parents: dict[str, list[str]] = {}
    for chunk in _chunks(list(dict.fromkeys(ids))):
        q = sa.select(v, m.c.name.label("model_name")).join(m, m.c.id == v.c.model_id)
        for r in conn.execute(q.where(v.c.id.in_(chunk))):
            rows[r.id] = r
        t = schema.version_params
        for r in conn.execute(sa.select(t).where(t.c.version_id.in_(chunk)).order_by(t.c.key)):
            params.setdefault(r.version_id, {})[r.key] = r.value
        t = schema.version_metrics
        for r in conn.execute(sa.select(t).where(t.c.version_id.in_(chunk)).order_by(t.c.key)):
            metrics.setdefault(r.version_id, {})[r.key] = r.value
        t = schema.version_tags
        for r in conn.execute(sa.select(t).where(t.c.version_id.in_(chunk)).order_by(t.c.key)):
            tags.setdefault(r.version_id, {})[r.key] = r.value
        t = schema.aliases
        q = sa.select(t.c.version_id, t.c.alias).where(t.c.version_id.in_(chunk))
        for r in conn.execute(q.order_by(t.c.alias)):
            aliases.setdefault(r.version_id, []).append(r.alias)
        t = schema.version_files
        for r in conn.execute(sa.select(t).where(t.c.version_id.in_(chunk)).order_by(t.c.path)):
            files.setdefault(r.version_id, []).append(FileEntry(r.path, r.digest, r.size))
        vd, d = schema.version_datasets, schema.datasets
        q = (
            sa.select(vd.c.version_id, vd.c.role, d)
            .join(d, d.c.id == vd.c.dataset_id)
            .where(vd.c.version_id.in_(chunk))
            .order_by(vd.c.role, d.c.name)
        )
        for r in conn.execute(q):
            use = DatasetUse(r.name, r.digest, r.uri, r.size, r.file_count, r.role)
            used.setdefault(r.version_id, []).append(use)
        p, pv = schema.version_parents, v.alias("pv")
        q = (
            sa.select(p.c.version_id, m.c.name, pv.c.number)
            .join(pv, pv.c.id == p.c.parent_id)
            .join(m, m.c.id == pv.c.model_id)
            .where(p.c.version_id.in_(chunk))
            .order_by(m.c.name, pv.c.number)
        )
        for r in conn.execute(q):
            parents.setdefault(r.version_id, []).append(f"{r.name}/{r.number}")
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
                _registry=registry,
            )
        )
    return out


def model_id(conn: Connection, name: str) -> str:
    found = conn.execute(sa.select(schema.models.c.id).where(schema.models.c.name == name)).scalar()
    if found is None:
        raise NotFound(f"model {name!r} not found")
    return str(found)


def resolve(conn: Connection, ref: Ref, *, at: str | None = None) -> str:
    """The version id a parsed reference names; ``at`` resolves an alias as it was then."""
    v = schema.versions
    if ref.version_id is not None:
        found = conn.execute(sa.select(v.c.id).where(v.c.id == ref.version_id)).scalar()
        if found is None:
            raise NotFound(f"version {ref.version_id} not found")
        return str(found)
    assert ref.model is not None
    mid = model_id(conn, ref.model)
    if ref.number is not None:
        found = conn.execute(
            sa.select(v.c.id).where(v.c.model_id == mid, v.c.number == ref.number)
        ).scalar()
        if found is None:
            raise NotFound(f"version {ref} not found")
        return str(found)
    if ref.alias is not None:
        if at is not None:
            e = schema.alias_events
            row = conn.execute(
                sa.select(e.c.version_id)
                .where(e.c.model_id == mid, e.c.alias == ref.alias, e.c.at <= at)
                .order_by(e.c.at.desc(), e.c.id.desc())
                .limit(1)
            ).first()
            if row is None or row.version_id is None:
                raise NotFound(f"alias {ref} did not point at any version at {at}")
            return str(row.version_id)
        a = schema.aliases
        found = conn.execute(
            sa.select(a.c.version_id).where(a.c.model_id == mid, a.c.alias == ref.alias)
        ).scalar()
        if found is None:
            raise NotFound(f"alias {ref} not found")
        return str(found)
    found = conn.execute(
        sa.select(v.c.id).where(v.c.model_id == mid).order_by(v.c.number.desc()).limit(1)
    ).scalar()
    if found is None:
        raise NotFound(f"model {ref.model!r} has no versions")
    return str(found)


def children(conn: Connection, version_id: str) -> list[str]:
    p, v, m = schema.version_parents, schema.versions, schema.models
    q = (
        sa.select(m.c.name, v.c.number)
        .select_from(p.join(v, v.c.id == p.c.version_id).join(m, m.c.id == v.c.model_id))
        .where(p.c.parent_id == version_id)
        .order_by(m.c.name, v.c.number)
    )
    return [f"{r.name}/{r.number}" for r in conn.execute(q)]


def decode(text: str | None) -> Any:
    return None if text is None else json.loads(text)
