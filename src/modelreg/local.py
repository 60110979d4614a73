"""LocalRegistry: the registry's rules over a SQL store and a blob store.

Everything that changes the registry happens here, in one transaction per change, with its
audit event in the same transaction. The CLI, the server and the UI only call these methods.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Unpack

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from modelreg import (
    aliases,
    audit,
    capture,
    promotion,
    registering,
    retirement,
    runs,
    schema,
    search,
    signatures,
    signing,
    transfer,
    versions,
)
from modelreg.audit import AuditEvent, VerifyResult
from modelreg.blobs import BlobStore, LocalBlobStore
from modelreg.chunk_store import ChunkedBlobStore
from modelreg.compare import compare
from modelreg.datasets import DatasetArg, DatasetUse
from modelreg.db import Database, format_time
from modelreg.errors import BlobMissing, Conflict, IntegrityError, InvalidInput, NotFound
from modelreg.governance import Governance
from modelreg.lineage import of_version as lineage_of
from modelreg.local_runs import Runs
from modelreg.manifest import FileEntry, FilesArg, check_entries
from modelreg.records import (
    AliasMove,
    Comparison,
    FsckReport,
    GcReport,
    PolicyInfo,
    PromotionCheck,
    Recipe,
    RepackReport,
    Reproduction,
    SignatureCheck,
    VersionLineage,
)
from modelreg.refs import check_alias, check_name, is_uuid, parse_ref
from modelreg.run import Run
from modelreg.values import (
    check_before,
    check_description,
    check_key,
    check_page,
    check_tag,
)
from modelreg.versions import Model, NewVersion, Version

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )

    from modelreg.options import DraftOptions, PolicyOptions, ReproduceOptions


class LocalRegistry(Runs, Governance):
    """A registry in one directory (SQLite + blobs) or on a database URL and a blob store."""

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        db_url: str | None = None,
        blobs: BlobStore | None = None,
        actor: str | None = None,
    ) -> None:
        self.root: Path | None = None
        if path is not None:
            self.root = Path(path).expanduser().resolve()
            if self.root.exists() and not self.root.is_dir():
                raise InvalidInput(f"registry location {str(self.root)!r} is not a directory")
            self.root.mkdir(parents=True, exist_ok=True)
            db_url = db_url or f"sqlite:///{self.root / 'registry.db'}"
            blobs = blobs if blobs is not None else LocalBlobStore(self.root / "blobs")
        if db_url is None or blobs is None:
            raise InvalidInput("give a registry directory, or both a database URL and a blob store")
        self.db = Database(db_url)
        try:
            self.db.migrate(lock_path=self.root / ".migrate.lock" if self.root else None)
        except sa.exc.DatabaseError as exc:
            self.db.dispose()
            raise IntegrityError(
                f"{self.uri} is not a modelreg registry database: {exc.orig}"
            ) from None
        self.db.where = f"the registry at {self.uri}"
        if isinstance(blobs, ChunkedBlobStore):
            blobs = blobs.inner
        self.blobs = ChunkedBlobStore(blobs, self.db)
        self.actor = actor or capture.user()
        self._known = versions.Known()

    def __repr__(self) -> str:
        return f"LocalRegistry({str(self.root or self.db.url)!r})"

    @property
    def uri(self) -> str:
        """The directory, or the database URL without its password."""
        if self.root is not None:
            return str(self.root)
        return sa.engine.make_url(self.db.url).render_as_string(hide_password=True)

    def close(self) -> None:
        self.db.dispose()

    def __enter__(self) -> LocalRegistry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- registering ---------------------------------------------------------------------

    def register(
        self,
        name: str,
        files: FilesArg | Any,
        *,
        progress: Callable[[int], None] | None = None,
        _run: Run | None = None,
        **options: Unpack[DraftOptions],
    ) -> Version:
        """Register a new immutable version of model ``name`` from local files, or from a
        trained model object saved by its flavor (``flavor`` names one; by default the first
        that recognises it) with a flavor.json holding its signature when ``input_example``
        is given.

        Everything is checked and hashed before anything is stored; the version becomes
        visible only once all its blobs are stored and its rows are committed. ``sign`` (an
        Ed25519 private key or its PEM file) signs it in the transaction that creates it.
        ``progress`` is called with the number of bytes of each chunk stored.
        """
        with registering.prepare(name, files, run=_run, **options) as draft:
            bases: dict[str, str] = {}
            if draft.parents:  # fail before storing anything; resolved again when committing
                ids = self.db.read(lambda conn: [versions.resolve(conn, r) for r in draft.parents])
                bases = self._parent_files(ids[0])
            # One pass per file: hashed while it is copied into the store (dedup keeps one).
            # A large file is stored as chunks, as deltas against the first parent's file at
            # the same path where that is smaller.
            entries = check_entries(
                FileEntry(path, *self._put_file(source, progress=progress, base=bases.get(path)))
                for path, source in draft.local.items()
            )
            new = draft.new_version(entries)
            if draft.diff is not None:
                new.code["diff_digest"], new.code["diff_size"] = self._put_diff(draft.diff)

            def restore(digest: str) -> None:
                # A blob gc removed since it was stored above (a re-used old blob, or grace
                # 0) is stored again from the caller's file.
                for entry in entries:
                    if entry.digest == digest:
                        self._put_file(draft.local[entry.path], digest)
                        return
                if draft.diff is not None:
                    self._put_diff(draft.diff)

            return self.commit_version(new, signer=draft.signer, restore=restore)

    def commit_version(
        self,
        new: NewVersion,
        *,
        signer: Ed25519PrivateKey | None = None,
        restore: Callable[[str], None] | None = None,
        signed_by: str | None = None,
        signature: tuple[Ed25519PublicKey, str] | None = None,
    ) -> Version:
        """Create a version whose files are already in the blob store, in one transaction.

        A blob the manifest (or the code's diff) names that the store does not hold is
        stored again by ``restore``; without one, the version is refused with InvalidInput
        naming the blob, and nothing is written. ``signature`` (a public key and the base64
        signature of ``draft_signing_document(new)``, made where the private key is) is
        checked and stored in the same transaction: the version is created signed, or not at
        all. ``signed_by`` names the key of a signature its creator attaches later.
        """
        needed: dict[str, int | None] = {entry.digest: entry.size for entry in new.files}
        if new.code.get("diff_digest"):
            needed.setdefault(str(new.code["diff_digest"]), new.code.get("diff_size"))
        # The blobs are checked in the store (a HEAD each, on S3) before the transaction, so
        # that it waits on no request; inside it again only if gc deleted anything meanwhile.
        epoch = self.db.blob_epoch()
        self._check_blobs(needed, restore)

        def create(conn: Connection) -> Version:
            # gc deletes only inside a write transaction holding this lock alone, so a blob
            # seen here stays until the version that references it is committed.
            self.db.lock_blobs(conn)
            if self.db.blob_epoch(conn) != epoch:
                self._check_blobs(needed, restore)
            if new.run_id is not None:
                runs.check_exists(conn, new.run_id)
            key = signing.key_id(signer.public_key()) if signer is not None else signed_by
            if signature is not None:
                key = signing.key_id(signature[0])
            version = versions.insert(conn, new, actor=self.actor, signed_by=key, known=self._known)
            # Signed in the same transaction: a signed version is never visible unsigned.
            if signer is not None:
                signatures.add(conn, version, signer, actor=self.actor)
            if signature is not None:
                try:
                    signatures.attach(conn, version, signature[0], signature[1], actor=self.actor)
                except InvalidInput:
                    raise InvalidInput(
                        f"the signature by key {key[:16] if key else '?'} does not match the"
                        " version this request creates: it was made for another document (ask"
                        " for the signing document of this same request, and sign that)"
                    ) from None
            if new.datasets or new.parents:
                version.flags = retirement.flag_new_version(conn, version.id)
            return version

        version = self.db.write(create)
        version._registry = self
        return version

    def _check_blobs(
        self, needed: Mapping[str, int | None], restore: Callable[[str], None] | None
    ) -> None:
        """Each blob is in the store, with the size given (None: any); one missing is stored
        again by ``restore``, or refused with BlobMissing."""
        for digest, size in needed.items():
            try:
                stored = self.blobs.size(digest)
            except NotFound:
                if restore is None:
                    raise BlobMissing(
                        f"blob {digest} is not in the store: upload it before creating"
                        " the version that names it"
                    ) from None
                restore(digest)
                continue
            if size is not None and stored != size:  # a client's manifest states sizes
                raise InvalidInput(
                    f"blob {digest} holds {stored} bytes, not the {size} the manifest says"
                )

    def draft_signing_document(self, new: NewVersion) -> bytes:
        """The canonical document that version ``new`` would have (see signing): what a
        client signs before creating it, so that it is created signed. Its rows are written
        in a transaction that is rolled back, so the document comes from the very code
        that verifies signatures; it names no id or number, which the real one then gets."""
        found: list[bytes] = []

        def probe(conn: Connection) -> None:
            if new.run_id is not None:
                runs.check_exists(conn, new.run_id)
            version = versions.insert(conn, new, actor=self.actor)
            found.append(signatures.document_of(conn, version))
            raise _RolledBack

        with contextlib.suppress(_RolledBack):
            self.db.write(probe)
        return found[0]

    def _put_file(
        self,
        path: Path,
        digest: str | None = None,
        *,
        progress: Callable[[int], None] | None = None,
        base: str | None = None,
    ) -> tuple[str, int]:
        """Store a local file; with ``digest``, an existing blob is only touched."""
        with open(path, "rb") as f:
            stream = f if progress is None else transfer.Counted(f, progress)
            try:
                return self.blobs.put(stream, digest=digest, base=base)  # type: ignore[arg-type]
            except IntegrityError:
                raise IntegrityError(
                    f"file {str(path)!r} changed while it was registered"
                ) from None

    def _parent_files(self, version_id: str) -> dict[str, str]:
        """The files of version ``version_id``, by path: the bases of its child's deltas."""
        f = schema.version_files.c
        query = sa.select(f.path, f.digest).where(f.version_id == version_id)
        return dict(self.db.read(lambda conn: [tuple(r) for r in conn.execute(query)]))

    def _put_diff(self, diff: bytes) -> tuple[str, int]:
        digest = hashlib.sha256(diff).hexdigest()
        return self.blobs.put(io.BytesIO(diff), digest=digest)

    def _dataset_use(self, item: DatasetArg, *, role: str = "train") -> DatasetUse:
        return registering.dataset_use(item, role=role)

    # -- reading -------------------------------------------------------------------------

    def get(self, ref: str, *, at: str | datetime | None = None, lineage: bool = True) -> Version:
        """The version a reference names, with its full lineage (``lineage=False``: without
        it, which a deployer resolving an alias has no use for).

        ``at`` (an ISO time) resolves an alias to what it pointed at then.
        """
        parsed = parse_ref(ref)
        when = None if at is None else _parse_time(at)
        if when is not None and parsed.alias is None:
            raise InvalidInput(f"at= applies to NAME@ALIAS references, not to {ref!r}")

        def read(conn: Connection) -> Version:
            version = versions.load_ref(conn, parsed, self, at=when)
            if lineage:
                version.lineage = lineage_of(conn, version)
            return version

        return self.db.read(read)

    def models(
        self, *, limit: int | None = None, offset: int = 0, after: str | None = None
    ) -> list[Model]:
        """Every model with its version count, latest number and aliases, by name; ``after``
        starts past that name (a page that stays put while models are added)."""
        check_page(limit, offset)
        if after is not None:
            check_name(after)
        return self.db.read(
            lambda conn: versions.list_models(conn, limit=limit, offset=offset, after=after)
        )

    def versions(
        self,
        name: str,
        *,
        limit: int | None = None,
        offset: int = 0,
        before: int | None = None,
    ) -> list[Version]:
        """The versions of a model, newest first; ``before`` starts below that number (a
        page that stays put while versions are registered or deleted)."""
        check_name(name)
        check_page(limit, offset)
        check_before(before)

        def read(conn: Connection) -> list[Version]:
            mid = versions.model_id(conn, name)
            v = schema.versions
            q = sa.select(v.c.id).where(v.c.model_id == mid, versions.LIVE)
            if before is not None:
                q = q.where(v.c.number < before)
            q = q.order_by(v.c.number.desc())
            q = q.offset(offset)
            if limit is not None:
                q = q.limit(limit)
            return versions.load(conn, list(conn.execute(q).scalars()), self)

        return self.db.read(read)

    def search(
        self,
        filter: str = "",
        *,
        model: str | None = None,
        order_by: str | None = None,
        limit: int | None = None,
        offset: int = 0,
        after: str | None = None,
    ) -> list[Version]:
        """Versions matching a filter in the search language (see docs/concepts.md).

        ``after``, the id of the last version of a page, starts the next page past it by the
        values it sorts by: pages that stay put as versions are registered, each as fast as
        the first (an ``offset`` reads every version before it)."""
        query = search.parse_search(filter, order_by)
        check_page(limit, offset)
        if after is not None and not is_uuid(after):
            raise InvalidInput(
                f"after= takes the id of the last version of a page (a UUID), not {after[:80]!r}"
            )

        def read(conn: Connection) -> list[Version]:
            self.db.plan_each(conn)
            mid = versions.model_id(conn, check_name(model)) if model is not None else None
            start = None
            if after is not None:
                row = conn.execute(search.sort_values(query), {"after": after}).first()
                if row is None:
                    raise NotFound(f"version {after} (after=, the last of a page) not found")
                start = tuple(row)
            few = search.few_matches(conn, query)
            q = search.cached_select(query, mid, limit, offset, start, few)
            return versions.load(conn, list(conn.execute(q).scalars()), self)

        return self.db.read(read)

    def lineage(self, ref: str) -> VersionLineage:
        """Run, code, environment, datasets, parents and children of a version."""
        found = self.get(ref).lineage
        assert found is not None
        return found

    def compare(self, a: str, b: str) -> Comparison:
        """What changed from version ``a`` to version ``b``."""
        return compare(self.get(a).to_dict(), self.get(b).to_dict())

    def pull(
        self,
        ref: str,
        dest: str | os.PathLike[str],
        *,
        force: bool = False,
        strict: bool = False,
        progress: Any = None,
        verify_with: signing.PublicKeyArg | None = None,
        verify: bool = False,
    ) -> Path:
        """Write a version's files into ``dest``; every file is verified against its digest.

        A version flagged ``data-retired`` warns (RetiredDataWarning), or with ``strict``
        is refused before any file is written. With ``verify_with`` (a public key or its PEM
        file) or ``verify`` (any trusted key), a version whose signature is missing or does
        not match its records is refused with IntegrityError before any file is written.
        """
        key = signing.public_key(verify_with) if verify_with is not None else None

        def read(conn: Connection) -> tuple[Version, SignatureCheck | None]:
            found = versions.load(conn, [versions.resolve(conn, parse_ref(ref))])[0]
            checked = signatures.check(conn, found, key) if key is not None or verify else None
            return found, checked

        found, checked = self.db.read(read)
        if checked is not None and not checked["ok"]:
            raise IntegrityError(f"{found.ref} failed signature verification: {checked['reason']}")
        transfer.check_flags(found, strict=strict)
        return transfer.pull(
            self.blobs,
            found.files,
            dest,
            force=force,
            progress=progress,
            marker=transfer.marker_of(found, self.uri),
        )

    def reproduce(self, ref: str, **options: Unpack[ReproduceOptions]) -> Recipe | Reproduction:
        """Write the recipe that recreates a version into ``to`` (recipe.json, a pinned
        requirements.lock, the uncommitted diff, check_data.py, reproduce.sh); or, with
        ``run``, carry it out in a fresh virtualenv and report whether the re-trained version
        is identical (see modelreg.reproduce). Refuses a version with no recorded run.
        """
        from modelreg import reproduce

        return reproduce.recreate(self, ref, **options)

    # -- changing what may change ----------------------------------------------------------

    def set_alias(
        self,
        name: str,
        alias: str,
        ref: str,
        *,
        force: bool = False,
        reason: str | None = None,
    ) -> Version:
        """Point ``name@alias`` at a version of the same model.

        A protected alias (``production`` by default) runs its promotion gates and raises
        PromotionRefused listing the failed checks; ``force`` with a ``reason`` overrides,
        and the override is audited.
        """
        check_name(name)
        check_alias(alias)
        target = parse_ref(ref)
        text = _override_reason(force, reason)

        def change(conn: Connection) -> Version:
            vid = aliases.set_alias(
                conn, name, alias, target, actor=self.actor, force=force, reason=text
            )
            return versions.load(conn, [vid], self)[0]  # as committed, without its lineage

        return self.db.write(change)

    def rollback_alias(
        self, name: str, alias: str, *, force: bool = False, reason: str | None = None
    ) -> Version:
        """Move an alias back to the version it pointed at before, through the same gates."""
        check_name(name)
        check_alias(alias)
        text = _override_reason(force, reason)

        def change(conn: Connection) -> Version:
            target = aliases.previous_target(conn, name, alias)
            vid = aliases.set_alias(
                conn, name, alias, target, actor=self.actor, force=force, reason=text
            )
            return versions.load(conn, [vid], self)[0]

        return self.db.write(change)

    def set_policy(self, name: str, alias: str, **options: Unpack[PolicyOptions]) -> PolicyInfo:
        """Set the promotion gates of ``name@alias`` (see promotion.Policy for the options;
        ``protected=False`` lifts them)."""
        check_name(name)
        check_alias(alias)
        policy = promotion.Policy.checked(**options)
        return self.db.write(
            lambda conn: promotion.set_policy(conn, name, alias, policy, actor=self.actor)
        )

    def policy(self, name: str, alias: str) -> PolicyInfo | None:
        """The promotion gates of ``name@alias``, or None when it is not protected."""
        check_name(name)
        check_alias(alias)

        def read(conn: Connection) -> PolicyInfo | None:
            found = promotion.policy_for(conn, versions.model_id(conn, name), alias)
            return None if found is None else found.to_dict()

        return self.db.read(read)

    def approve(self, ref: str, *, alias: str) -> list[str]:
        """Approve a version for a protected alias; returns everyone who approved it."""
        check_alias(alias)
        parsed = parse_ref(ref)
        return self.db.write(
            lambda conn: promotion.approve(
                conn, versions.resolve(conn, parsed), alias, actor=self.actor
            )
        )

    def check_promotion(self, name: str, alias: str, ref: str) -> PromotionCheck:
        """Run ``name@alias``'s gates on a version without moving anything."""
        check_name(name)
        check_alias(alias)
        parsed = parse_ref(ref)

        def read(conn: Connection) -> PromotionCheck:
            mid = versions.model_id(conn, name)
            vid = versions.resolve(conn, parsed)
            ref_found = versions.ref_of(conn, vid)
            if not ref_found.startswith(f"{name}/"):
                raise InvalidInput(
                    f"{ref} is a version of {ref_found.split('/')[0]!r}, not of {name!r}"
                )
            policy = promotion.policy_for(conn, mid, alias)
            if policy is None:
                return {"protected": False, "ok": True, "checks": []}
            checks = promotion.evaluate(policy, promotion.gather(conn, policy, mid, alias, vid))
            return {
                "protected": True,
                "ok": all(c.ok for c in checks),
                "checks": [c.to_dict() for c in checks],
            }

        return self.db.read(read)

    def delete_alias(self, name: str, alias: str) -> None:
        check_name(name)
        check_alias(alias)
        self.db.write(lambda conn: aliases.delete_alias(conn, name, alias, actor=self.actor))

    def alias_history(self, name: str, alias: str) -> list[AliasMove]:
        """Every move of an alias, oldest first; ``version`` is None where it was deleted."""
        check_name(name)
        check_alias(alias)
        return self.db.read(lambda conn: aliases.history(conn, name, alias))

    def set_tag(self, ref: str, key: str, value: Any) -> None:
        key, text = check_tag(key, value)
        self._change_tag(ref, key, text)

    def delete_tag(self, ref: str, key: str) -> None:
        self._change_tag(ref, check_key(key, kind="tag"), None)

    def _change_tag(self, ref: str, key: str, value: str | None) -> None:
        parsed = parse_ref(ref)

        def change(conn: Connection) -> None:
            vid = versions.resolve(conn, parsed)
            t = schema.version_tags
            where = (t.c.version_id == vid, t.c.key == key)
            old = conn.execute(sa.select(t.c.value).where(*where)).scalar()
            if value is None and old is None:
                raise NotFound(f"tag {key!r} not found on {ref}")
            if old == value:
                return
            conn.execute(t.delete().where(*where))
            if value is not None:
                conn.execute(t.insert().values(version_id=vid, key=key, value=value))
            audit.append(
                conn,
                actor=self.actor,
                action="tag.set" if value is not None else "tag.delete",
                entity_type="version",
                entity_id=vid,
                entity=versions.ref_of(conn, vid),
                before=None if old is None else {key: old},
                after=None if value is None else {key: value},
            )

        self.db.write(change)

    def set_description(self, ref: str, description: str) -> None:
        text = check_description(description)
        parsed = parse_ref(ref)

        def change(conn: Connection) -> None:
            vid = versions.resolve(conn, parsed)
            v = schema.versions
            old = conn.execute(sa.select(v.c.description).where(v.c.id == vid)).scalar()
            if old == text:
                return
            conn.execute(v.update().where(v.c.id == vid).values(description=text))
            audit.append(
                conn,
                actor=self.actor,
                action="version.describe",
                entity_type="version",
                entity_id=vid,
                entity=versions.ref_of(conn, vid),
                before={"description": old},
                after={"description": text},
            )

        self.db.write(change)

    # -- runs --------------------------------------------------------------------------------

    def load(
        self, ref: str, *, trust: bool = False, dest: str | os.PathLike[str] | None = None
    ) -> Any:
        """The model object ``ref`` names in this registry, verified against its digests (see
        modelreg.flavors.loading.load); files that run code when loaded need ``trust=True``."""
        from modelreg.flavors.loading import load

        return load(ref, registry=self, trust=trust, dest=dest)

    def start_run(self, name: str | None = None, *, params: Mapping[str, Any] | None = None) -> Run:
        """A training run that captures code, command and environment when entered."""
        return Run(self, name=name, params=params)

    # -- audit and maintenance -----------------------------------------------------------------

    def audit(
        self,
        *,
        entity_type: str | None = None,
        entity: str | None = None,
        actor: str | None = None,
        action: str | None = None,
        limit: int = 100,
        before_seq: int | None = None,
    ) -> list[AuditEvent]:
        """Audit events, newest first, filtered by entity (a UUID, a model name or a
        reference), actor or action; page back with ``before_seq``."""
        check_page(limit, 0)
        for label, value in (("entity_type", entity_type), ("entity", entity), ("actor", actor),
                             ("action", action)):  # fmt: skip
            if value is not None and not isinstance(value, str):
                raise InvalidInput(f"{label} must be text, not {value!r}")
            if value is not None and "\x00" in value:
                raise InvalidInput(f"{label} contains a NUL character")
        if before_seq is not None and (
            isinstance(before_seq, bool)
            or not isinstance(before_seq, int)
            or not 0 <= before_seq <= 2**31 - 1
        ):
            raise InvalidInput(
                f"before_seq must be a whole number from 0 to {2**31 - 1}, not {before_seq!r}"
            )

        def read(conn: Connection) -> list[AuditEvent]:
            return list(
                audit.events(
                    conn,
                    entity_type=entity_type,
                    entity=entity,
                    actor=actor,
                    action=action,
                    limit=limit,
                    before_seq=before_seq,
                )
            )

        return self.db.read(read)

    def verify_audit(self, *, full: bool = False) -> VerifyResult:
        """Check the audit log's hash chain from the last event a check found sound (every
        event with ``full``); a sound chain's head is recorded for the next check."""
        result = self.db.read(lambda conn: audit.verify(conn, full=full))
        if result.ok and result.since < result.events:
            # A check by someone who may only read the database (a read-only SQLite file, a
            # SELECT-only PostgreSQL role) still answers; the next starts where the last
            # recorded check did.
            with contextlib.suppress(sa.exc.DBAPIError, Conflict):
                self.db.write(lambda conn: audit.record_checked(conn, result, actor=self.actor))
        return result

    def fsck(self) -> FsckReport:
        from modelreg import maintenance

        return maintenance.fsck(self)

    def gc(self, *, dry_run: bool = False, grace_seconds: float = 3600) -> GcReport:
        from modelreg import maintenance

        return maintenance.gc(self, dry_run=dry_run, grace_seconds=grace_seconds)

    def repack(self, *, dry_run: bool = False) -> RepackReport:
        from modelreg import maintenance

        return maintenance.repack(self, dry_run=dry_run)


class _RolledBack(Exception):
    """Ends a transaction that was opened only to read what its writes would give."""


def _override_reason(force: bool, reason: str | None) -> str | None:
    if reason is not None and not force:
        raise InvalidInput("a reason is only for --force: without it, the gates decide")
    if reason is not None and (not isinstance(reason, str) or len(reason) > 2000):
        raise InvalidInput("the override reason must be text of at most 2000 characters")
    if force and not (reason and reason.strip()):
        raise InvalidInput("--force needs a --reason: overrides are audited with it")
    return reason.strip() if reason else None


def _parse_time(value: str | datetime) -> str:
    if isinstance(value, datetime):
        return format_time(value)
    if not isinstance(value, str):
        raise InvalidInput(f"time must be an ISO 8601 string or a datetime, not {value!r}")
    try:
        return format_time(datetime.fromisoformat(value.replace("Z", "+00:00")))
    except (ValueError, OverflowError):
        raise InvalidInput(f"time {value!r} is not ISO 8601 (e.g. 2026-11-01T12:00:00Z)") from None
