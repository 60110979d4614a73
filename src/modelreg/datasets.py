"""Datasets: a dataset version is a name plus a digest computed from the data itself.

A file's digest is the sha256 of its bytes; a directory's is the digest of its manifest
(relative path, sha256 and size of every file), so renaming or changing any file changes it.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from modelreg import schema
from modelreg.blobs import hash_file
from modelreg.db import now
from modelreg.errors import InvalidInput, NotFound
from modelreg.manifest import FileEntry, is_digest, manifest_digest
from modelreg.refs import check_name, slug

ROLES = ("train", "validation", "test")


@dataclass(frozen=True)
class Dataset:
    id: str
    name: str
    digest: str
    uri: str
    size: int
    file_count: int
    created_at: str
    retired_at: str | None = None  # when the data was retired (see retirement), if it was
    retired_reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "digest": self.digest,
            "uri": self.uri,
            "size": self.size,
            "file_count": self.file_count,
            "created_at": self.created_at,
            "retired_at": self.retired_at,
            "retired_reason": self.retired_reason,
        }


@dataclass(frozen=True)
class DatasetUse:
    """A dataset as seen from what it was used for: a name, a digest and a role."""

    name: str
    digest: str
    uri: str
    size: int
    file_count: int
    role: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "digest": self.digest,
            "uri": self.uri,
            "size": self.size,
            "file_count": self.file_count,
            "role": self.role,
        }


# What a caller may hand over as a dataset: a path or URI, a described use, or a mapping
# {"path": ..., "name": ..., "role": ..., "digest": ...}.
DatasetArg = str | os.PathLike[str] | DatasetUse | Mapping[str, Any]


def check_role(role: str) -> str:
    if role not in ROLES:
        raise InvalidInput(f"dataset role {role!r} is invalid: use one of {', '.join(ROLES)}")
    return role


def default_name(path: Path) -> str:
    return check_name(slug(path.name) or "dataset", kind="dataset name")


def describe(
    path_or_uri: str | Path,
    *,
    name: str | None = None,
    role: str = "train",
    digest: str | None = None,
) -> DatasetUse:
    """Hash a local file or directory (streaming), or take a remote URI with its digest."""
    check_role(role)
    text = str(path_or_uri)
    if "://" in text and not text.startswith("file://"):
        if digest is None or not is_digest(digest):
            raise InvalidInput(
                f"dataset {text!r} is not a local path: pass its sha256 digest to record it"
            )
        label = name or text.rstrip("/").rsplit("/", 1)[-1]
        return DatasetUse(check_name(label, kind="dataset name"), digest, text, 0, 0, role)
    path = Path(text.removeprefix("file://"))
    if path.is_file():
        found, size = hash_file(path)
        count = 1
    elif path.is_dir():
        entries = []
        for item in sorted(path.rglob("*")):
            if item.is_file():
                item_digest, item_size = hash_file(item)
                entries.append(FileEntry(item.relative_to(path).as_posix(), item_digest, item_size))
        if not entries:
            raise InvalidInput(f"dataset directory {text!r} holds no files")
        found = manifest_digest(entries)
        size = sum(e.size for e in entries)
        count = len(entries)
    else:
        raise InvalidInput(f"dataset path {text!r} does not exist")
    if digest is not None and digest != found:
        raise InvalidInput(f"dataset {text!r} has digest {found}, not the expected {digest}")
    label = check_name(name, kind="dataset name") if name else default_name(path)
    return DatasetUse(label, found, path.resolve().as_uri(), size, count, role)


def parse_cli_dataset(spec: str) -> tuple[str, str | None, str]:
    """Parse ``PATH[,role=R][,name=N]`` into (path, name, role)."""
    path, *options = spec.split(",")
    name: str | None = None
    role = "train"
    for option in options:
        key, sep, value = option.partition("=")
        if not sep or key not in ("role", "name"):
            raise InvalidInput(
                f"--dataset {spec!r}: options are role=R and name=N, separated by commas"
            )
        if key == "role":
            role = check_role(value)
        else:
            name = check_name(value, kind="dataset name")
    if not path:
        raise InvalidInput(f"--dataset {spec!r} has no path")
    return path, name, role


def ensure(conn: Connection, use: DatasetUse) -> str:
    """The id of the dataset version (name, digest), recorded now if it is new."""
    t = schema.datasets
    found = conn.execute(
        sa.select(t.c.id).where(t.c.name == use.name, t.c.digest == use.digest)
    ).scalar()
    if found is not None:
        return str(found)
    new_id = str(uuid.uuid4())
    conn.execute(
        t.insert().values(
            id=new_id,
            name=use.name,
            digest=use.digest,
            uri=use.uri,
            size=use.size,
            file_count=use.file_count,
            created_at=now(),
        )
    )
    return new_id


def row_to_dataset(row: Any) -> Dataset:
    return Dataset(row.id, row.name, row.digest, row.uri, row.size, row.file_count, row.created_at)


def list_all(conn: Connection) -> list[Dataset]:
    t = schema.datasets
    return _with_retirements(
        conn,
        [row_to_dataset(r) for r in conn.execute(sa.select(t).order_by(t.c.name, t.c.created_at))],
    )


def _with_retirements(conn: Connection, found: list[Dataset]) -> list[Dataset]:
    """The datasets, each with when and why it was retired, if it was."""
    t = schema.dataset_retirements
    retired = {r.dataset_id: r for r in conn.execute(sa.select(t))}  # few: one per retirement
    return [
        replace(d, retired_at=retired[d.id].retired_at, retired_reason=retired[d.id].reason)
        if d.id in retired
        else d
        for d in found
    ]


def parse_ref(text: str) -> tuple[str, str | None]:
    """``NAME`` or ``NAME@DIGEST`` (a digest prefix of 8 or more hex digits is enough)."""
    if not isinstance(text, str):
        raise InvalidInput(f"dataset reference must be text, not {text!r}")
    name, at, digest = text.partition("@")
    check_name(name, kind="dataset name")
    if at and not digest:
        raise InvalidInput(f"dataset reference {text!r}: give a digest after '@', or no '@'")
    if digest and not re.fullmatch(r"[0-9a-f]{8,64}", digest):
        raise InvalidInput(
            f"dataset reference {text!r}: the part after '@' must be 8 to 64 lowercase hex"
            " digits of the data's sha256 (a prefix is enough)"
        )
    return name, digest or None


def find(conn: Connection, text: str) -> list[Dataset]:
    """Every version of the named dataset (newest last), narrowed by digest if given."""
    name, digest = parse_ref(text)
    t = schema.datasets
    q = sa.select(t).where(t.c.name == name).order_by(t.c.created_at)
    if digest:
        q = q.where(t.c.digest.startswith(digest))
    found = [row_to_dataset(r) for r in conn.execute(q)]
    if not found:
        raise NotFound(f"dataset {text!r} not found")
    return _with_retirements(conn, found)


def users(conn: Connection, dataset_ids: list[str]) -> dict[str, int]:
    """How many versions (not deleted) used each dataset: trained, validated, tested or
    evaluated on it."""
    vd, ev, v = schema.version_datasets, schema.evaluations, schema.versions
    # Every user counted, then the deleted ones (few, found by their index) taken off: a join
    # of every use with its version costs more than the count itself.
    deleted = sa.select(v.c.id).where(v.c.deleted_at.is_not(None))
    counts: dict[str, int] = {}
    for sign, deleted_only in ((1, False), (-1, True)):
        arms = []
        for t in (vd, ev):
            arm = sa.select(t.c.dataset_id, t.c.version_id).where(t.c.dataset_id.in_(dataset_ids))
            arms.append(arm.where(t.c.version_id.in_(deleted)) if deleted_only else arm)
        used = sa.union(*arms).subquery()
        q = sa.select(used.c.dataset_id, sa.func.count()).group_by(used.c.dataset_id)
        for dataset_id, count in conn.execute(q):
            counts[dataset_id] = counts.get(dataset_id, 0) + sign * count
    return {dataset_id: count for dataset_id, count in counts.items() if count}
