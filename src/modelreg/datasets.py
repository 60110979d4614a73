"""Datasets in the store: a dataset version is a name plus a digest computed from the data
itself (``dataset_files`` computes it), recorded once and found by ``NAME`` or ``NAME@DIGEST``.

The same bytes may be recorded under several names (``churn-train`` and ``train.csv``). They
are one data: every dataset version names the others (``also_known_as``), and who used it,
what retiring it touches and whether it is retired are answered over its bytes
(``same_content``), whatever name they were used under.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from modelreg import keyset, schema
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
    found = [
        row_to_dataset(r) for r in conn.execute(sa.select(t).order_by(t.c.name, t.c.created_at))
    ]
    return _described(conn, found, complete=True, everything=True)


def page(
    conn: Connection, *, limit: int, offset: int = 0, after: Sequence[Any] | None = None
) -> tuple[list[Dataset], tuple[Any, ...] | None]:
    """A page of the dataset versions by name, then time recorded, from ``offset`` or else
    ``after`` the sort values given (name, time, id); with the sort values of its last when
    more follow."""
    t = schema.datasets
    keys: list[tuple[Any, bool]] = [(t.c.name, False), (t.c.created_at, False), (t.c.id, False)]
    rows, last = keyset.page(conn, sa.select(t), keys, limit=limit, offset=offset, after=after)
    return _described(conn, [row_to_dataset(r) for r in rows]), last


def count(conn: Connection) -> int:
    """How many dataset versions are recorded."""
    return int(conn.execute(sa.select(sa.func.count()).select_from(schema.datasets)).scalar_one())


def retirements(conn: Connection, digests: list[str] | None = None) -> dict[str, Any]:
    """The first retirement of the bytes with each digest (of these, or of all), recorded
    under whatever name: retiring data retires it whatever it is called."""
    r, d = schema.dataset_retirements, schema.datasets
    q = (
        sa.select(d.c.digest, r.c.id, r.c.reason, r.c.retired_at, r.c.retired_by)
        .join(r, r.c.dataset_id == d.c.id)
        .order_by(r.c.retired_at.desc(), r.c.id.desc())
    )
    if digests is not None:
        q = q.where(d.c.digest.in_(digests))
    return {row.digest: row for row in conn.execute(q)}  # few: the oldest is written last


def _described(
    conn: Connection, found: list[Dataset], *, complete: bool = False, everything: bool = False
) -> list[Dataset]:
    """The datasets, each with the other names its bytes are recorded under and when and why
    the bytes were retired, if they were. ``complete``: ``found`` already holds every name
    of its digests; ``everything``: it is every dataset version recorded."""
    digests = sorted({d.digest for d in found})
    pairs = [(d.name, d.digest) for d in found]
    if not complete:
        t = schema.datasets
        q = sa.select(t.c.name, t.c.digest).where(t.c.digest.in_(digests))
        pairs = [(r.name, r.digest) for r in conn.execute(q)]
    names: dict[str, set[str]] = {}
    for name, digest in pairs:
        names.setdefault(digest, set()).add(name)
    retired = retirements(conn, None if everything else digests)
    described = []
    for d in found:
        at = retired.get(d.digest)
        described.append(
            replace(
                d,
                also_known_as=tuple(sorted(names.get(d.digest, set()) - {d.name})),
                retired_at=None if at is None else at.retired_at,
                retired_reason=None if at is None else at.reason,
            )
        )
    return described


def _named(conn: Connection, text: str) -> list[Dataset]:
    name, digest = parse_ref(text)
    t = schema.datasets
    q = sa.select(t).where(t.c.name == name).order_by(t.c.created_at)
    if digest:
        q = q.where(t.c.digest.startswith(digest))
    found = [row_to_dataset(r) for r in conn.execute(q)]
    if not found:
        raise NotFound(f"dataset {text!r} not found")
    return found


def find(conn: Connection, text: str) -> list[Dataset]:
    """Every version of the named dataset (newest last), narrowed by digest if given."""
    return _described(conn, _named(conn, text))


def same_content(conn: Connection, text: str) -> list[Dataset]:
    """The dataset versions ``text`` names plus every one recorded under another name with
    the same bytes (oldest first): what the data is, whatever it is called. Its users, its
    impact and its retirement are computed over these."""
    t = schema.datasets
    digests = sorted({d.digest for d in _named(conn, text)})
    q = sa.select(t).where(t.c.digest.in_(digests)).order_by(t.c.created_at, t.c.name)
    found = [row_to_dataset(r) for r in conn.execute(q)]
    return _described(conn, found, complete=True)


def users(conn: Connection, dataset_ids: list[str]) -> dict[str, int]:
    """How many versions (not deleted) used the bytes of each dataset version, under any
    name: trained, validated, tested or evaluated on them."""
    vd, ev, v, d = schema.version_datasets, schema.evaluations, schema.versions, schema.datasets
    shown = sa.select(d.c.id, d.c.digest).where(d.c.id.in_(dataset_ids))
    digest_of: dict[str, str] = {r.id: r.digest for r in conn.execute(shown)}
    digests = sorted(set(digest_of.values()))
    # Every user counted, then the deleted ones (few, found by their index) taken off: a join
    # of every use with its version costs more than the count itself.
    deleted = sa.select(v.c.id).where(v.c.deleted_at.is_not(None))
    counts: dict[str, int] = {}
    for sign, deleted_only in ((1, False), (-1, True)):
        arms = []
        for t in (vd, ev):
            arm = (
                sa.select(d.c.digest, t.c.version_id)
                .join(d, d.c.id == t.c.dataset_id)
                .where(d.c.digest.in_(digests))
            )
            arms.append(arm.where(t.c.version_id.in_(deleted)) if deleted_only else arm)
        used = sa.union(*arms).subquery()
        q = sa.select(used.c.digest, sa.func.count()).group_by(used.c.digest)
        for digest, count in conn.execute(q):
            counts[digest] = counts.get(digest, 0) + sign * count
    return {i: counts[digest] for i, digest in digest_of.items() if counts.get(digest)}
