"""LocalRegistry: the registry's rules over a SQL store and a blob store.

Everything that changes the registry happens here, in one transaction per change, with its
audit event in the same transaction. The CLI, the server and the UI only call these methods.
"""

from __future__ import annotations

import io
import os
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from modelreg import audit, capture, datasets, schema, search, versions
from modelreg.audit import AuditEvent, VerifyResult
from modelreg.blobs import BlobStore, LocalBlobStore, hash_file
from modelreg.compare import compare
from modelreg.datasets import Dataset, DatasetUse
from modelreg.db import Database, format_time, now
from modelreg.errors import Conflict, IntegrityError, InvalidInput, NotFound
from modelreg.manifest import FileEntry, FilesArg, check_entries, collect_files, manifest_digest
from modelreg.refs import check_alias, check_name, parse_ref
from modelreg.runs import Run, encode
from modelreg.values import (
    check_description,
    check_metrics,
    check_params,
    check_tag,
    check_tags,
    param_number,
)
from modelreg.versions import Model, Version

LEASE_SECONDS = 24 * 3600
DatasetArg = str | os.PathLike[str] | DatasetUse | Mapping[str, Any]


class LocalRegistry:
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
            self.root.mkdir(parents=True, exist_ok=True)
            db_url = db_url or f"sqlite:///{self.root / 'registry.db'}"
            blobs = blobs if blobs is not None else LocalBlobStore(self.root / "blobs")
        if db_url is None or blobs is None:
            raise InvalidInput("give a registry directory, or both a database URL and a blob store")
        self.db = Database(db_url)
        self.blobs: BlobStore = blobs
        self.actor = actor or capture.user()
        lock = self.root / ".migrate.lock" if self.root is not None else None
        self.db.migrate(lock_path=lock)

    def __repr__(self) -> str:
        return f"LocalRegistry({str(self.root or self.db.url)!r})"

    @property
    def uri(self) -> str:
        return str(self.root) if self.root is not None else self.db.url

    def close(self) -> None:
        self.db.dispose()

    def __enter__(self) -> LocalRegistry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _audit(
        self,
        conn: Connection,
        action: str,
        entity_type: str,
        entity_id: str,
        entity: str,
        before: Any = None,
        after: Any = None,
    ) -> None:
        audit.append(
            conn,
            actor=self.actor,
            action=action,
            entity_type=entity_type,
            entity_id=entity_id,
            entity=entity,
            before=before,
            after=after,
        )

    # -- registering ---------------------------------------------------------------------

    def register(
        self,
        name: str,
        files: FilesArg,
        *,
        params: Mapping[str, Any] | None = None,
        metrics: Mapping[str, Any] | None = None,
        tags: Mapping[str, Any] | None = None,
        datasets: Sequence[DatasetArg] | None = None,
        parents: Sequence[str] | None = None,
        description: str | None = None,
        _run: Run | None = None,
    ) -> Version:
        """Register a new immutable version of model ``name`` from local files.

        Everything is checked and hashed before anything is stored; the version becomes
        visible only once all its blobs are stored and its rows are committed.
        """
        check_name(name)
        checked_params = check_params(params)
        checked_metrics = check_metrics(metrics)
        checked_tags = check_tags(tags)
        text = check_description(description)
        parent_refs = [parse_ref(p) for p in (parents or [])]
        uses = [self._dataset_use(d) for d in (datasets or [])]
        if _run is not None:
            uses = [*_run.datasets, *uses]
        local = collect_files(files)
        entries = check_entries(
            FileEntry(path, *hash_file(source)) for path, source in local.items()
        )
        code: dict[str, Any] = {}
        env: dict[str, Any] | None = None
        diff: bytes | None = None
        command = capture.command_line()
        if _run is None:
            code, diff = capture.capture_code()
            env = capture.capture_environment()
        digests = [e.digest for e in entries]
        lease = self._lease(digests)
        try:
            for entry in entries:
                if not self.blobs.exists(entry.digest):
                    with open(local[entry.path], "rb") as f:
                        try:
                            self.blobs.put(f, digest=entry.digest)
                        except IntegrityError:
                            raise IntegrityError(
                                f"file {str(local[entry.path])!r} changed while it was registered"
                            ) from None
                else:
                    self.blobs.put(io.BytesIO(), digest=entry.digest)  # refresh for gc's grace
            if diff is not None:
                code["diff_digest"], code["diff_size"] = self.blobs.put(io.BytesIO(diff))

            def create(conn: Connection) -> str:
                return self._create_version(
                    conn,
                    name,
                    entries,
                    checked_params,
                    checked_metrics,
                    checked_tags,
                    text,
                    parent_refs,
                    uses,
                    code,
                    env,
                    command,
                    _run,
                    lease,
                )

            version_id = self.db.write(create)
            # gc may have judged a re-used blob unreferenced just before our lease landed;
            # the version is committed now, so restore any such blob from the local file.
            for entry in entries:
                if not self.blobs.exists(entry.digest):
                    with open(local[entry.path], "rb") as f:
                        self.blobs.put(f, digest=entry.digest)
        finally:
            self.db.write(lambda conn: self._release(conn, lease))
        return self.get(version_id)

    def _dataset_use(self, item: DatasetArg) -> DatasetUse:
        if isinstance(item, DatasetUse):
            return item
        if isinstance(item, Mapping):
            return datasets.describe(
                item["path"],
                name=item.get("name"),
                role=item.get("role", "train"),
                digest=item.get("digest"),
            )
        return datasets.describe(Path(item))

    def _lease(self, digests: Sequence[str]) -> str:
        lease = str(uuid.uuid4())
        expires = format_time(datetime.now(UTC) + timedelta(seconds=LEASE_SECONDS))
        rows = [{"lease": lease, "digest": d, "expires_at": expires} for d in set(digests)]
        self.db.write(lambda conn: conn.execute(schema.blob_leases.insert(), rows))
        return lease

    @staticmethod
    def _release(conn: Connection, lease: str) -> None:
        conn.execute(schema.blob_leases.delete().where(schema.blob_leases.c.lease == lease))

    def _create_version(
        self,
        conn: Connection,
        name: str,
        entries: list[FileEntry],
        params: dict[str, str],
        metrics: dict[str, float],
        tags: dict[str, str],
        description: str,
        parent_refs: list[Any],
        uses: list[DatasetUse],
        code: dict[str, Any],
        env: dict[str, Any] | None,
        command: str,
        run: Run | None,
        lease: str,
    ) -> str:
        parent_ids = [versions.resolve(conn, ref) for ref in parent_refs]
        model_id = self._ensure_model(conn, name)
        v = schema.versions
        number = 1 + (
            conn.execute(
                sa.select(sa.func.max(v.c.number)).where(v.c.model_id == model_id)
            ).scalar()
            or 0
        )
        version_id = str(uuid.uuid4())
        env_digest = self._ensure_environment(conn, env) if env is not None else None
        conn.execute(
            v.insert().values(
                id=version_id,
                model_id=model_id,
                number=number,
                description=description,
                created_at=now(),
                created_by=self.actor,
                manifest_digest=manifest_digest(entries),
                size=sum(e.size for e in entries),
                file_count=len(entries),
                run_id=run.id if run is not None else None,
                code=encode(code),
                command=command,
                hostname=capture.hostname(),
                environment_digest=env_digest,
            )
        )
        conn.execute(
            schema.version_files.insert(),
            [
                {"version_id": version_id, "path": e.path, "digest": e.digest, "size": e.size}
                for e in entries
            ],
        )
        if params:
            conn.execute(
                schema.version_params.insert(),
                [
                    {
                        "version_id": version_id,
                        "key": k,
                        "value": val,
                        "value_num": param_number(val),
                    }
                    for k, val in params.items()
                ],
            )
        if metrics:
            conn.execute(
                schema.version_metrics.insert(),
                [{"version_id": version_id, "key": k, "value": val} for k, val in metrics.items()],
            )
        if tags:
            conn.execute(
                schema.version_tags.insert(),
                [{"version_id": version_id, "key": k, "value": val} for k, val in tags.items()],
            )
        links = {(datasets.ensure(conn, use), use.role) for use in uses}
        if links:
            conn.execute(
                schema.version_datasets.insert(),
                [
                    {"version_id": version_id, "dataset_id": did, "role": role}
                    for did, role in sorted(links)
                ],
            )
        if parent_ids:
            conn.execute(
                schema.version_parents.insert(),
                [{"version_id": version_id, "parent_id": pid} for pid in dict.fromkeys(parent_ids)],
            )
        self._release(conn, lease)
        ref = f"{name}/{number}"
        self._audit(
            conn,
            "version.create",
            "version",
            version_id,
            ref,
            after={
                "ref": ref,
                "manifest_digest": manifest_digest(entries),
                "files": [e.to_dict() for e in entries],
                "params": params,
                "metrics": metrics,
                "tags": tags,
                "description": description,
                "datasets": [u.to_dict() for u in uses],
                "parents": [str(r) for r in parent_refs],
                "run_id": run.id if run is not None else None,
            },
        )
        return version_id

    def _ensure_model(self, conn: Connection, name: str) -> str:
        m = schema.models
        found = conn.execute(sa.select(m.c.id).where(m.c.name == name)).scalar()
        stamp = now()
        if found is not None:
            conn.execute(m.update().where(m.c.id == found).values(updated_at=stamp))
            return str(found)
        model_id = str(uuid.uuid4())
        conn.execute(
            m.insert().values(
                id=model_id,
                name=name,
                description="",
                created_at=stamp,
                created_by=self.actor,
                updated_at=stamp,
            )
        )
        self._audit(conn, "model.create", "model", model_id, name, after={"name": name})
        return model_id

    @staticmethod
    def _ensure_environment(conn: Connection, env: dict[str, Any]) -> str:
        digest = capture.environment_digest(env)
        e = schema.environments
        if conn.execute(sa.select(e.c.digest).where(e.c.digest == digest)).first() is None:
            conn.execute(e.insert().values(digest=digest, data=encode(env)))
        return digest

    # -- reading -------------------------------------------------------------------------

    def get(self, ref: str, *, at: str | datetime | None = None) -> Version:
        """The version a reference names, with its full lineage.

        ``at`` (an ISO time) resolves an alias to what it pointed at then.
        """
        parsed = parse_ref(ref)
        when = None if at is None else _parse_time(at)

        def read(conn: Connection) -> Version:
            vid = versions.resolve(conn, parsed, at=when)
            version = versions.load(conn, [vid], self)[0]
            version.lineage = self._lineage(conn, version)
            return version

        return self.db.read(read)

    def models(self, *, limit: int | None = None, offset: int = 0) -> list[Model]:
        def read(conn: Connection) -> list[Model]:
            m, v, a = schema.models, schema.versions, schema.aliases
            counts = (
                sa.select(
                    v.c.model_id,
                    sa.func.count().label("n"),
                    sa.func.max(v.c.number).label("latest"),
                )
                .group_by(v.c.model_id)
                .subquery()
            )
            q = (
                sa.select(m, counts.c.n, counts.c.latest)
                .outerjoin(counts, counts.c.model_id == m.c.id)
                .order_by(m.c.name)
                .offset(offset)
            )
            if limit is not None:
                q = q.limit(limit)
            out = {
                r.id: Model(
                    r.id, r.name, r.description, r.created_at, r.updated_at, r.n or 0, r.latest
                )
                for r in conn.execute(q)
            }
            aq = (
                sa.select(a.c.model_id, a.c.alias, v.c.number)
                .join(v, v.c.id == a.c.version_id)
                .where(a.c.model_id.in_(list(out)))
                .order_by(a.c.alias)
            )
            for r in conn.execute(aq):
                out[r.model_id].aliases[r.alias] = r.number
            return list(out.values())

        return self.db.read(read)

    def versions(self, name: str, *, limit: int | None = None, offset: int = 0) -> list[Version]:
        """The versions of a model, newest first."""
        check_name(name)

        def read(conn: Connection) -> list[Version]:
            mid = versions.model_id(conn, name)
            v = schema.versions
            q = sa.select(v.c.id).where(v.c.model_id == mid).order_by(v.c.number.desc())
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
    ) -> list[Version]:
        """Versions matching a filter in the search language (see docs/concepts.md)."""
        query = search.parse(filter)
        if order_by:
            query = search.Query(query.where, search.parse_order_by(order_by), query.limit)
        if limit is not None and not (isinstance(limit, int) and 1 <= limit <= 10_000):
            raise InvalidInput(f"limit must be between 1 and 10000, not {limit!r}")

        def read(conn: Connection) -> list[Version]:
            mid = versions.model_id(conn, check_name(model)) if model is not None else None
            q = search.select_versions(query, model_id=mid, limit=limit, offset=offset)
            return versions.load(conn, list(conn.execute(q).scalars()), self)

        return self.db.read(read)

    def lineage(self, ref: str) -> dict[str, Any]:
        """Run, code, environment, datasets, parents and children of a version."""
        lineage = self.get(ref).lineage
        assert lineage is not None
        return lineage

    def _lineage(self, conn: Connection, version: Version) -> dict[str, Any]:
        row = conn.execute(
            sa.select(schema.versions).where(schema.versions.c.id == version.id)
        ).one()
        code = versions.decode(row.code) or {}
        env_digest = row.environment_digest
        run: dict[str, Any] | None = None
        if row.run_id is not None:
            r = conn.execute(sa.select(schema.runs).where(schema.runs.c.id == row.run_id)).one()
            code = versions.decode(r.code) or {}
            env_digest = r.environment_digest
            run = self._run_dict(conn, r)
        env: dict[str, Any] = {}
        if env_digest is not None:
            data = conn.execute(
                sa.select(schema.environments.c.data).where(
                    schema.environments.c.digest == env_digest
                )
            ).scalar()
            env = versions.decode(data) or {}
        return {
            "version": version.ref,
            "id": version.id,
            "run": run,
            "code": {**code, "command": run["command"] if run else row.command},
            "environment": env,
            "hostname": run["hostname"] if run else row.hostname,
            "datasets": [d.to_dict() for d in version.datasets],
            "parents": version.parents,
            "children": versions.children(conn, version.id),
        }

    @staticmethod
    def _run_dict(conn: Connection, r: Any) -> dict[str, Any]:
        t = schema.run_metrics
        history: dict[str, list[dict[str, Any]]] = {}
        q = sa.select(t).where(t.c.run_id == r.id).order_by(t.c.key, t.c.step, t.c.id)
        for m in conn.execute(q):
            history.setdefault(m.key, []).append(
                {"step": m.step, "value": m.value, "timestamp": m.timestamp}
            )
        return {
            "id": r.id,
            "name": r.name,
            "status": r.status,
            "started_at": r.started_at,
            "ended_at": r.ended_at,
            "hostname": r.hostname,
            "user": r.user,
            "command": r.command,
            "params": versions.decode(r.params),
            "error": r.error,
            "metric_history": history,
        }

    def compare(self, a: str, b: str) -> dict[str, Any]:
        """What changed from version ``a`` to version ``b``."""
        return compare(self.get(a).to_dict(), self.get(b).to_dict())

    def pull(
        self, ref: str, dest: str | os.PathLike[str], *, force: bool = False, progress: Any = None
    ) -> Path:
        """Write a version's files into ``dest``; every file is verified against its digest."""
        from modelreg import transfer

        version = self.get(ref)
        return transfer.pull(self.blobs, version.files, dest, force=force, progress=progress)

    # -- changing what may change ----------------------------------------------------------

    def set_alias(self, name: str, alias: str, ref: str) -> Version:
        """Point ``name@alias`` at a version of the same model."""
        check_name(name)
        check_alias(alias)
        parsed = parse_ref(ref)

        def change(conn: Connection) -> str:
            mid = versions.model_id(conn, name)
            vid = versions.resolve(conn, parsed)
            target = versions.load(conn, [vid])[0]
            if target.model != name:
                raise InvalidInput(f"{ref} is a version of {target.model!r}, not of {name!r}")
            a = schema.aliases
            old = conn.execute(
                sa.select(a.c.version_id).where(a.c.model_id == mid, a.c.alias == alias)
            ).scalar()
            stamp = now()
            if old == vid:
                return vid
            before = None
            if old is None:
                conn.execute(
                    a.insert().values(
                        model_id=mid,
                        alias=alias,
                        version_id=vid,
                        updated_at=stamp,
                        updated_by=self.actor,
                    )
                )
            else:
                before = {"version": versions.load(conn, [old])[0].ref}
                conn.execute(
                    a.update()
                    .where(a.c.model_id == mid, a.c.alias == alias)
                    .values(version_id=vid, updated_at=stamp, updated_by=self.actor)
                )
            conn.execute(
                schema.alias_events.insert().values(
                    model_id=mid, alias=alias, version_id=vid, at=stamp, actor=self.actor
                )
            )
            self._audit(
                conn,
                "alias.set",
                "alias",
                mid,
                f"{name}@{alias}",
                before=before,
                after={"version": target.ref},
            )
            return vid

        return self.get(self.db.write(change))

    def delete_alias(self, name: str, alias: str) -> None:
        check_name(name)
        check_alias(alias)

        def change(conn: Connection) -> None:
            mid = versions.model_id(conn, name)
            a = schema.aliases
            old = conn.execute(
                sa.select(a.c.version_id).where(a.c.model_id == mid, a.c.alias == alias)
            ).scalar()
            if old is None:
                raise NotFound(f"alias {name}@{alias} not found")
            conn.execute(a.delete().where(a.c.model_id == mid, a.c.alias == alias))
            conn.execute(
                schema.alias_events.insert().values(
                    model_id=mid, alias=alias, version_id=None, at=now(), actor=self.actor
                )
            )
            self._audit(
                conn,
                "alias.delete",
                "alias",
                mid,
                f"{name}@{alias}",
                before={"version": versions.load(conn, [old])[0].ref},
            )

        self.db.write(change)

    def alias_history(self, name: str, alias: str) -> list[dict[str, Any]]:
        """Every move of an alias, oldest first; ``version`` is None where it was deleted."""
        check_name(name)
        check_alias(alias)

        def read(conn: Connection) -> list[dict[str, Any]]:
            mid = versions.model_id(conn, name)
            e, v = schema.alias_events, schema.versions
            q = (
                sa.select(e.c.at, e.c.actor, v.c.number)
                .outerjoin(v, v.c.id == e.c.version_id)
                .where(e.c.model_id == mid, e.c.alias == alias)
                .order_by(e.c.at, e.c.id)
            )
            rows = [
                {
                    "at": r.at,
                    "actor": r.actor,
                    "version": None if r.number is None else f"{name}/{r.number}",
                }
                for r in conn.execute(q)
            ]
            if not rows:
                raise NotFound(f"alias {name}@{alias} has no history")
            return rows

        return self.db.read(read)

    def set_tag(self, ref: str, key: str, value: Any) -> None:
        key, text = check_tag(key, value)
        self._change_tag(ref, key, text)

    def delete_tag(self, ref: str, key: str) -> None:
        self._change_tag(ref, key, None)

    def _change_tag(self, ref: str, key: str, value: str | None) -> None:
        parsed = parse_ref(ref)

        def change(conn: Connection) -> None:
            vid = versions.resolve(conn, parsed)
            t = schema.version_tags
            where = (t.c.version_id == vid, t.c.key == key)
            old = conn.execute(sa.select(t.c.value).where(*where)).scalar()
            if old == value:
                return
            if value is None and old is None:
                raise NotFound(f"tag {key!r} not found on {ref}")
            conn.execute(t.delete().where(*where))
            if value is not None:
                conn.execute(t.insert().values(version_id=vid, key=key, value=value))
            label = versions.load(conn, [vid])[0].ref
            self._audit(
                conn,
                "tag.set" if value is not None else "tag.delete",
                "version",
                vid,
                label,
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
            conn.execute(v.update().where(v.c.id == vid).values(description=text))
            label = versions.load(conn, [vid])[0].ref
            self._audit(
                conn,
                "version.describe",
                "version",
                vid,
                label,
                before={"description": old},
                after={"description": text},
            )

        self.db.write(change)

    # -- runs --------------------------------------------------------------------------------

    def start_run(self, name: str | None = None, *, params: Mapping[str, Any] | None = None) -> Run:
        """A training run that captures code, command and environment when entered."""
        return Run(self, name=name, params=params)

    def _start_run(self, run: Run) -> str:
        code, diff = capture.capture_code()
        if diff is not None:
            code["diff_digest"], code["diff_size"] = self.blobs.put(io.BytesIO(diff))
        env = capture.capture_environment()
        run_id = str(uuid.uuid4())

        def create(conn: Connection) -> None:
            conn.execute(
                schema.runs.insert().values(
                    id=run_id,
                    name=run.name,
                    status="running",
                    started_at=now(),
                    hostname=capture.hostname(),
                    user=capture.user(),
                    command=capture.command_line(),
                    code=encode(code),
                    environment_digest=self._ensure_environment(conn, env),
                    params=encode(run.params),
                )
            )
            self._audit(
                conn,
                "run.start",
                "run",
                run_id,
                run.name or run_id,
                after={"name": run.name, "params": run.params, "code": code},
            )

        self.db.write(create)
        return run_id

    def _end_run(self, run: Run, *, error: str | None) -> None:
        assert run.id is not None
        run_id = run.id

        def end(conn: Connection) -> None:
            conn.execute(
                schema.runs.update()
                .where(schema.runs.c.id == run_id)
                .values(status=run.status, ended_at=now(), error=error)
            )
            self._audit(
                conn,
                "run.end",
                "run",
                run_id,
                run.name or run_id,
                after={
                    "status": run.status,
                    "error": error,
                    "metrics": run.metrics,
                    "datasets": [d.to_dict() for d in run.datasets],
                },
            )

        self.db.write(end)

    def _update_run_params(self, run_id: str, params: dict[str, str], new: dict[str, str]) -> None:
        def change(conn: Connection) -> None:
            conn.execute(
                schema.runs.update().where(schema.runs.c.id == run_id).values(params=encode(params))
            )
            self._audit(conn, "run.params", "run", run_id, run_id, after=new)

        self.db.write(change)

    def _log_run_metric(self, run_id: str, key: str, value: float, step: int) -> None:
        self.db.write(
            lambda conn: conn.execute(
                schema.run_metrics.insert().values(
                    run_id=run_id, key=key, value=value, step=step, timestamp=now()
                )
            )
        )

    def _add_run_dataset(self, run_id: str, use: DatasetUse) -> None:
        def change(conn: Connection) -> None:
            did = datasets.ensure(conn, use)
            t = schema.run_datasets
            exists = conn.execute(
                sa.select(t.c.run_id).where(
                    t.c.run_id == run_id, t.c.dataset_id == did, t.c.role == use.role
                )
            ).first()
            if exists is None:
                conn.execute(t.insert().values(run_id=run_id, dataset_id=did, role=use.role))
                self._audit(conn, "run.dataset", "run", run_id, run_id, after=use.to_dict())

        self.db.write(change)

    # -- datasets ------------------------------------------------------------------------------

    def datasets(self) -> list[Dataset]:
        return self.db.read(datasets.list_all)

    def dataset(self, ref: str) -> list[Dataset]:
        """Every recorded version of a dataset: ``NAME`` or ``NAME@DIGEST``."""
        return self.db.read(lambda conn: datasets.find(conn, ref))

    def dataset_models(self, ref: str) -> list[dict[str, Any]]:
        """Every version that used the dataset, and every descendant through parent links."""
        from modelreg import lineage

        return self.db.read(lambda conn: lineage.dataset_dependents(conn, ref))

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
        def read(conn: Connection) -> list[AuditEvent]:
            entity_id = None
            if entity is not None:
                entity_id = versions.resolve(conn, parse_ref(entity))
            return list(
                audit.events(
                    conn,
                    entity_type=entity_type,
                    entity_id=entity_id,
                    actor=actor,
                    action=action,
                    limit=limit,
                    before_seq=before_seq,
                )
            )

        return self.db.read(read)

    def verify_audit(self) -> VerifyResult:
        return self.db.read(audit.verify)

    def fsck(self) -> dict[str, Any]:
        from modelreg import maintenance

        return maintenance.fsck(self)

    def gc(self, *, dry_run: bool = False, grace_seconds: float = 3600) -> dict[str, Any]:
        from modelreg import maintenance

        return maintenance.gc(self, dry_run=dry_run, grace_seconds=grace_seconds)


def _parse_time(value: str | datetime) -> str:
    if isinstance(value, datetime):
        return format_time(value)
    try:
        return format_time(datetime.fromisoformat(value.replace("Z", "+00:00")))
    except ValueError:
        raise InvalidInput(f"time {value!r} is not ISO 8601 (e.g. 2026-11-01T12:00:00Z)") from None


__all__ = ["Conflict", "LocalRegistry"]
