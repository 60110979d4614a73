"""fsck, gc and repack: checking every blob against its digest, collecting unreferenced
blobs and the packs of chunks no file uses, and converting large whole blobs to chunks."""

from __future__ import annotations

import contextlib
import json
import time
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from modelreg import schema, versions
from modelreg.blobs import BlobStore, verify
from modelreg.errors import IntegrityError, NotFound
from modelreg.records import FsckReport, GcReport, RepackReport
from modelreg.values import check_grace

if TYPE_CHECKING:
    from modelreg.local import LocalRegistry

_v, _f = schema.versions, schema.version_files
# A deleted version's files and diff are needed by nothing: they go unless another needs them.
_FILE_DIGESTS = (
    sa.select(_f.c.digest).join(_v, _v.c.id == _f.c.version_id).where(versions.LIVE).distinct()
)
_CODES = (
    sa.select(_v.c.code).where(versions.LIVE),
    sa.select(schema.runs.c.code),
)


_ARTIFACT_DIGESTS = sa.select(schema.artifact_files.c.digest).distinct()


_BASES = sa.select(schema.chunked_files.c.digest, schema.chunked_files.c.base).where(
    schema.chunked_files.c.base.is_not(None)
)


def referenced(conn: Connection) -> set[str]:
    """Digests some record needs: the files and code diffs of versions not deleted, the
    diffs of runs, the artifact files of runs and logged models (MLflow's), and the base
    files that the delta pieces of those files are read against."""
    found = set(conn.execute(_FILE_DIGESTS).scalars())
    found.update(conn.execute(_ARTIFACT_DIGESTS).scalars())
    for query in _CODES:
        for code in conn.execute(query).scalars():
            if '"diff_digest"' in code:
                digest = json.loads(code).get("diff_digest")
                if digest:
                    found.add(digest)
    found.update([base for digest, base in conn.execute(_BASES) if digest in found])
    return found


def _is_referenced(conn: Connection, digest: str) -> bool:
    based = schema.chunked_files.c.base
    if conn.execute(sa.select(based).where(based == digest).limit(1)).first():
        return True  # a base stays while a file reads deltas against it
    file = sa.select(_f.c.digest).join(_v, _v.c.id == _f.c.version_id)
    if conn.execute(file.where(_f.c.digest == digest, versions.LIVE)).first():
        return True
    artifact = schema.artifact_files.c.digest
    if conn.execute(sa.select(artifact).where(artifact == digest).limit(1)).first():
        return True
    return any(
        conn.execute(query).first()
        for query in (
            sa.select(_v.c.id).where(_v.c.code.contains(digest), versions.LIVE),
            sa.select(schema.runs.c.id).where(schema.runs.c.code.contains(digest)),
        )
    )


def fsck(registry: LocalRegistry) -> FsckReport:
    """Re-hash every blob, rebuilding chunked files from their chunks; re-hash every pack;
    report what is corrupt, and what records need but is missing."""
    needed = registry.db.read(referenced)
    stored = set(registry.blobs)
    corrupt = sorted(d for d in stored if not _intact(registry, d))
    missing = sorted(needed - stored)
    packs = registry.blobs.check_packs()
    return {
        "ok": not corrupt and not missing and packs.ok,
        "blobs": len(stored),
        "referenced": len(needed & stored),
        "unreferenced": len(stored - needed),
        "corrupt": corrupt,
        "missing": missing,
        "packs": packs.packs,
        "chunks": packs.chunks,
        "corrupt_packs": packs.corrupt,
        "missing_packs": packs.missing,
        "missing_chunks": packs.missing_chunks,
    }


def _intact(registry: LocalRegistry, digest: str) -> bool:
    try:
        return verify(registry.blobs, digest)
    except (IntegrityError, NotFound):  # a chunk that fails its hash, or is gone
        return False


def _modified(registry: LocalRegistry, digest: str) -> float:
    try:
        return registry.blobs.modified(digest)
    except NotFound:  # deleted meanwhile: nothing left to collect
        return float("inf")


def gc(registry: LocalRegistry, *, dry_run: bool, grace_seconds: float) -> GcReport:
    """Delete blobs nothing references.

    Kept: blobs that version files or code diffs reference, and blobs written or re-used
    within ``grace_seconds``. Each deletion re-checks both inside a write transaction that
    holds the blob lock, the lock a registration takes to check its blobs and commit its
    version: the registration either sees the blob gone (and stores it again) or commits its
    reference before gc looks.
    """
    grace_seconds = check_grace(grace_seconds)
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
            registry.db.lock_blobs(conn, delete=True)
            if _is_referenced(conn, digest) or _modified(registry, digest) >= cutoff:
                return False
            registry.blobs.delete(digest)
            return True

        try:
            deleted = registry.db.write(delete)
        except BaseException:
            # The blob may be gone though the transaction that moved the blob epoch did not
            # commit: move it now, so that a writer that found the blob before re-checks it.
            with contextlib.suppress(Exception):
                registry.db.write(lambda conn: registry.db.lock_blobs(conn, delete=True))
            raise
        if deleted:
            removed.append(digest)
    packs = registry.blobs.collect_packs(grace_seconds=grace_seconds, dry_run=dry_run)
    temporaries = 0
    # what interrupted writes left: temporary files; on S3, unfinished multipart uploads and
    # re-use markers whose blob is gone
    remove_stale = getattr(registry.blobs, "remove_stale_temporaries", None)
    if not dry_run and remove_stale is not None:
        temporaries = int(remove_stale(grace_seconds))
    return {
        "dry_run": dry_run,
        "removed": removed,
        "kept_recent": kept_recent,
        "temporaries_removed": temporaries,
        "packs_removed": packs.removed,
        "packs_repacked": packs.repacked,
        "pack_bytes_freed": packs.freed,
    }


def repack(registry: LocalRegistry, *, dry_run: bool) -> RepackReport:
    """Store each whole blob of ``chunking.CHUNKED_FROM`` bytes or more as chunks in packs
    (as files are stored since chunking exists), so that it shares chunks with the files
    like it; each is checked against its digest on the way, and its whole blob is deleted
    once its chunks are committed. A blob that fails its digest is kept as it is, and
    listed (``fsck`` says more)."""
    from modelreg import chunking

    inner = registry.blobs.inner
    sizes = {digest: _size(inner, digest) for digest in list(inner)}
    large = [digest for digest, size in sizes.items() if size >= chunking.CHUNKED_FROM]
    report: RepackReport = {
        "dry_run": dry_run,
        "converted": [],
        "failed": [],
        "bytes": 0,
        "pack_bytes": 0,
    }
    if dry_run:
        report["converted"] = large
        report["bytes"] = sum(sizes[d] for d in large)
        return report
    before = registry.blobs.pack_bytes()
    for digest in large:
        try:
            converted = registry.blobs.convert(digest)
        except (IntegrityError, NotFound):  # damaged, or deleted meanwhile
            report["failed"].append(digest)
            continue
        if converted:
            report["converted"].append(digest)
            report["bytes"] += sizes[digest]
    report["pack_bytes"] = registry.blobs.pack_bytes() - before
    return report


def _size(store: BlobStore, digest: str) -> int:
    try:
        return store.size(digest)
    except NotFound:  # deleted meanwhile
        return 0
