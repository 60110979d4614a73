"""fsck and gc: checking every blob against its digest, and collecting unreferenced blobs."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from modelreg import schema
from modelreg.blobs import LocalBlobStore, verify
from modelreg.db import format_time
from modelreg.errors import NotFound

if TYPE_CHECKING:
    from modelreg.local import LocalRegistry


def referenced(conn: Connection) -> set[str]:
    """Digests some record needs: version files, code diffs, and unexpired leases."""
    found = set(conn.execute(sa.select(schema.version_files.c.digest).distinct()).scalars())
    leases = schema.blob_leases
    stamp = format_time(datetime.now(UTC))
    found.update(
        conn.execute(sa.select(leases.c.digest).where(leases.c.expires_at > stamp)).scalars()
    )
    for table in (schema.versions, schema.runs):
        for code in conn.execute(sa.select(table.c.code)).scalars():
            if '"diff_digest"' in code:
                digest = json.loads(code).get("diff_digest")
                if digest:
                    found.add(digest)
    return found


def fsck(registry: LocalRegistry) -> dict[str, Any]:
    """Re-hash every blob; report corrupt blobs and blobs that records need but are missing."""
    needed = registry.db.read(referenced)
    files = registry.db.read(
        lambda conn: (
            conn.execute(sa.select(schema.version_files.c.digest).distinct()).scalars().all()
        )
    )
    stored = set(registry.blobs)
    corrupt = sorted(d for d in stored if not verify(registry.blobs, d))
    missing = sorted(set(files) - stored)
    return {
        "ok": not corrupt and not missing,
        "blobs": len(stored),
        "referenced": len(needed & stored),
        "unreferenced": len(stored - needed),
        "corrupt": corrupt,
        "missing": missing,
    }


def _modified(registry: LocalRegistry, digest: str) -> float:
    try:
        return registry.blobs.modified(digest)
    except NotFound:  # deleted meanwhile: nothing left to collect
        return float("inf")


def _still_unused(conn: Connection, digest: str) -> bool:
    if conn.execute(
        sa.select(schema.version_files.c.digest).where(schema.version_files.c.digest == digest)
    ).first():
        return False
    leases = schema.blob_leases
    stamp = format_time(datetime.now(UTC))
    if conn.execute(
        sa.select(leases.c.id).where(leases.c.digest == digest, leases.c.expires_at > stamp)
    ).first():
        return False
    for table in (schema.versions, schema.runs):
        if conn.execute(sa.select(table.c.id).where(table.c.code.contains(digest))).first():
            return False
    return True


def gc(registry: LocalRegistry, *, dry_run: bool, grace_seconds: float) -> dict[str, Any]:
    """Delete blobs nothing references.

    Kept: blobs that versions or code diffs reference, blobs under a lease (a registration
    takes one, in a write transaction, before it uploads), and blobs written or re-used within
    ``grace_seconds``. Each deletion re-checks all of that inside a write transaction, so a
    registration that starts meanwhile either sees its blob gone (and writes it again) or
    protects it with its lease first.
    """
    # List the store before reading the references: a blob that appears later is not a
    # candidate, and a reference committed before the read protects its blob.
    stored = list(registry.blobs)
    needed = registry.db.read(referenced)
    cutoff = time.time() - grace_seconds
    removed = []
    kept_recent = 0
    for digest in stored:
        if digest in needed:
            continue
        if _modified(registry, digest) >= cutoff:
            kept_recent += 1
            continue
        if dry_run:
            removed.append(digest)
            continue

        def delete(conn: Connection, digest: str = digest) -> bool:
            if not _still_unused(conn, digest) or _modified(registry, digest) >= cutoff:
                return False
            registry.blobs.delete(digest)
            return True

        if registry.db.write(delete):
            removed.append(digest)
    temporaries = 0
    if not dry_run and isinstance(registry.blobs, LocalBlobStore):
        temporaries = registry.blobs.remove_stale_temporaries(grace_seconds)
    if not dry_run:
        registry.db.write(
            lambda conn: conn.execute(
                schema.blob_leases.delete().where(
                    schema.blob_leases.c.expires_at <= format_time(datetime.now(UTC))
                )
            )
        )
    return {
        "dry_run": dry_run,
        "removed": removed,
        "kept_recent": kept_recent,
        "temporaries_removed": temporaries,
    }
