"""Datasets in the store: a dataset version is a name plus a digest computed from the data
itself (``dataset_files`` computes it), recorded once and found by ``NAME`` or ``NAME@DIGEST``.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from modelreg import schema
from modelreg.dataset_files import ROLES as ROLES
from modelreg.dataset_files import check_role as check_role
from modelreg.dataset_files import default_name as default_name
from modelreg.dataset_files import describe as describe
from modelreg.dataset_files import parse_cli_dataset as parse_cli_dataset
from modelreg.dataset_files import parse_ref as parse_ref
from modelreg.db import now
from modelreg.errors import NotFound
from modelreg.records import Dataset as Dataset
from modelreg.records import DatasetArg as DatasetArg
from modelreg.records import DatasetUse as DatasetUse


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
