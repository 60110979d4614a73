"""RemoteRegistry: the Registry interface over HTTP, for ``modelreg.connect("http://...")``.

Every method does on the wire what :class:`modelreg.local.LocalRegistry` does in process,
and raises the same exceptions (the server's problem responses are mapped back to their
classes in :func:`modelreg.errors.error_from_wire`). What only the caller can know is done
here: files and datasets are hashed locally, code and environment are captured from this
process, and signatures are made with keys that never leave it.

Uploads send only the blobs the server lacks; downloads verify every file, resume an
interrupted transfer with HTTP Range requests (:mod:`modelreg.remote_blobs`) and fetch several
files at once.
"""

from __future__ import annotations

import base64
import concurrent.futures
import dataclasses
import json
import os
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Unpack
from urllib.parse import quote

import httpx

from modelreg import (
    capture,
    registering,
    search_language,
    signing,
    transfer,
    wire,
)
from modelreg.blobs import hash_file
from modelreg.chunking import CHUNKED_FROM, hash_and_cut
from modelreg.errors import (
    BlobMissing,
    Gone,
    IntegrityError,
    InvalidInput,
    ModelregError,
    NotFound,
)
from modelreg.governance_records import (
    Card,
    DatasetImpact,
    DependentVersion,
    Evaluation,
    Leaderboard,
    MetricTrend,
    Trace,
)
from modelreg.manifest import FileEntry, check_entries, manifest_digest
from modelreg.records import (
    AliasMove,
    AuditEvent,
    Comparison,
    Dataset,
    DatasetArg,
    Deletion,
    FsckReport,
    GcReport,
    Model,
    NewTokenInfo,
    NewVersion,
    NewWebhookInfo,
    PolicyInfo,
    PromotionCheck,
    Recipe,
    RepackReport,
    Reproduction,
    SignatureAdded,
    SignatureCheck,
    TokenInfo,
    TrustedKey,
    VerifyResult,
    Version,
    VersionLineage,
    WebhookDelivery,
    WebhookInfo,
)
from modelreg.refs import check_alias, check_deletion_ref, check_name, parse_ref
from modelreg.remote_blobs import FETCHES, RemoteBlobs, chunks, error_of, upload_chunked
from modelreg.remote_runs import RemoteRuns
from modelreg.run import Run
from modelreg.values import (
    check_before,
    check_deletion_reason,
    check_description,
    check_grace,
    check_metrics,
    check_page,
    check_reason,
    check_tag,
)

if TYPE_CHECKING:
    from modelreg.options import DraftOptions, PolicyOptions, ReproduceOptions, WebhookOptions

PAGE = 1000
TRANSFERS = 4  # files moved at once


class RemoteRegistry(RemoteRuns):
    """A registry served by ``modelreg server`` at ``url``.

    ``token`` (default ``$MODELREG_TOKEN``) is sent as a bearer token; ``actor`` names the
    caller in the audit log when the server runs without auth (with auth, the token does).
    """

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        actor: str | None = None,
        timeout: float = 60.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        token = token if token is not None else os.environ.get("MODELREG_TOKEN")
        self.actor = actor or capture.user()
        headers = {"User-Agent": "modelreg", "X-Modelreg-Actor": self.actor}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._http = httpx.Client(
            base_url=self.url,
            headers=headers,
            timeout=httpx.Timeout(timeout, connect=10.0),
            transport=transport,
            limits=httpx.Limits(max_connections=TRANSFERS * (FETCHES + 1)),
        )
        self.blobs = RemoteBlobs(self)
        self._columns = True  # metric points go as columns until the server refuses them

    def __repr__(self) -> str:
        return f"RemoteRegistry({self.url!r})"

    @property
    def uri(self) -> str:
        return self.url

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> RemoteRegistry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the wire ------------------------------------------------------------------------

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        if "json" in kwargs:
            # NaN and infinities are sent as JSON's common extension, so that the server
            # refuses them with the same error the embedded registry gives.
            kwargs["content"] = json.dumps(kwargs.pop("json"))
            kwargs["headers"] = {"Content-Type": "application/json"}
        try:
            response = self._http.request(method, "/api/v1" + path, **kwargs)
        except httpx.TransportError as exc:
            raise ModelregError(f"cannot reach the registry at {self.url}: {exc}") from None
        if response.is_error:
            error = error_of(response)
            if isinstance(error, NotFound) and not isinstance(error, Gone):
                error.message = f"{error.message} in the registry at {self.url}"
                error.args = (error.message,)
            raise error
        return response

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        return self._send(method, path, **kwargs).json()

    def _pages(
        self,
        path: str,
        params: dict[str, Any],
        limit: int | None,
        offset: int,
        cursor: tuple[str, str] | None = None,
    ) -> Any:
        """Every item of a paginated listing from ``offset``, up to ``limit``.

        With ``cursor`` (a query parameter and the item field it takes), each page after the
        first starts past the last item read, so that items added or deleted meanwhile shift
        nothing. Without one, pages go by offset; an item registered while they are read
        shifts the later ones down, and one already read (the same ``id``) is not listed
        twice.
        """
        check_page(limit, offset)
        items: list[Any] = []
        seen: set[Any] = set()
        read = 0
        while limit is None or len(items) < limit:
            size = PAGE if limit is None else min(PAGE, limit - len(items))
            asked = {**params, "limit": size, "offset": offset + read}
            if cursor is not None and items:
                asked.update({"offset": 0, cursor[0]: items[-1][cursor[1]]})
            page = self._call("GET", path, params=asked)
            read += len(page)
            before = len(items)
            for item in page:
                key = item.get("id") if isinstance(item, dict) else None
                if key is None or key not in seen:
                    seen.add(key)
                    items.append(item)
            if len(page) < size:
                break
            if cursor is not None and len(items) == before:
                raise ModelregError(
                    f"the registry at {self.url} answered {path} with a page already read: it"
                    f" does not page by {cursor[0]}= (an older modelreg server: upgrade it)"
                )
        return items[:limit]

    def _version(self, data: Mapping[str, Any]) -> Version:
        return wire.version_from_json(data, self)

    # -- registering ---------------------------------------------------------------------

    def register(
        self,
        name: str,
        files: Any,
        *,
        progress: Callable[[int], None] | None = None,
        _run: Run | None = None,
        **options: Unpack[DraftOptions],
    ) -> Version:
        """Register a version: files are hashed here, only the blobs the server lacks are
        uploaded, then the version is created from the manifest (see LocalRegistry.register).
        """
        with registering.prepare(name, files, run=_run, **options) as draft:
            # Refuse before uploading anything; a signed version names its parents as they
            # are now, so that no alias is resolved again between signing and creating.
            found = [self.get(str(p), lineage=False) for p in draft.parents]
            parents = [parse_ref(v.ref) for v in found]
            # a large file goes up as chunks, kept as deltas from the first parent's file at
            # the same path where that is smaller
            bases = {f.path: f.digest for f in found[0].files} if found else {}
            # a large file is cut into chunks in the same pass that hashes it
            cut: dict[str, list[Any]] = {}
            entries = check_entries(
                FileEntry(path, *self._hash(source, cut)) for path, source in draft.local.items()
            )
            new = draft.new_version(entries)
            if draft.signer is not None:
                new = dataclasses.replace(new, parents=parents)
            uploads: dict[str, Any] = {
                e.digest: (draft.local[e.path], cut[e.digest])
                if e.digest in cut
                else draft.local[e.path]
                for e in entries
            }
            base_of = {e.digest: bases[e.path] for e in entries if e.path in bases}
            if draft.diff is not None:
                digest, size = _digest_of(draft.diff)
                new.code["diff_digest"], new.code["diff_size"] = digest, size
                uploads[digest] = draft.diff
            self._upload(uploads, progress, bases=base_of)
            try:
                return self.commit_version(new, signer=draft.signer)
            except BlobMissing:
                # gc collected a blob the server reported held (it had no grace period left,
                # or was run without one) before the version named it: send what it lacks.
                self._upload(uploads, progress, bases=base_of)
                return self.commit_version(new, signer=draft.signer)

    def commit_version(
        self,
        new: NewVersion,
        *,
        signer: Any = None,
        restore: Any = None,
        signed_by: str | None = None,
    ) -> Version:
        """Create a version from blobs the server holds; with ``signer``, sign it here
        (the key never leaves this process) and attach the signature."""
        key = signing.private_key(signer) if signer is not None else None
        body = wire.new_version_to_json(new)
        del body["model"]  # it is in the path
        body["signed_by"] = signing.key_id(key.public_key()) if key is not None else signed_by
        if key is not None:
            # Signed before it exists: the server gives the document the version will have,
            # and creates it with the signature in one transaction (signed, or not at all).
            document = self.draft_signing_document(new)
            body["public_key"] = signing.public_pem(key.public_key())
            body["signature"] = signing.sign(key, document)
        return self._version(self._call("POST", f"/models/{_seg(new.model)}/versions", json=body))

    def draft_signing_document(self, new: NewVersion) -> bytes:
        """The canonical document the server says version ``new`` will have, checked to be
        of this version before anything signs it."""
        body = wire.new_version_to_json(new)
        del body["model"]
        path = f"/models/{_seg(new.model)}/versions/signing-document"
        document = base64.b64decode(self._call("POST", path, json=body)["document"])
        _check_document(document, new)
        return document

    def _upload(
        self,
        sources: Mapping[str, Any],
        progress: Any = None,
        *,
        bases: Mapping[str, str] | None = None,
    ) -> None:
        """Upload the blobs among ``sources`` (digest -> file or bytes) the server lacks;
        ``progress`` is called with the size of each chunk sent. A large file goes as
        chunks, with ``bases`` naming the parent's file it may be stored as a delta from."""
        if not sources:
            return
        missing = self._call("POST", "/blobs/missing", json={"digests": list(sources)})
        todo = missing["missing"]
        bases = bases or {}
        if len(todo) <= 1:
            for digest in todo:
                self._put_blob(digest, sources[digest], progress, bases.get(digest))
            return
        with concurrent.futures.ThreadPoolExecutor(max_workers=TRANSFERS) as pool:
            sent = [
                pool.submit(self._put_blob, d, sources[d], progress, bases.get(d)) for d in todo
            ]
            for future in sent:
                future.result()

    @staticmethod
    def _hash(source: Path, cut: dict[str, list[Any]]) -> tuple[str, int]:
        """(sha256, size) of a file; a large one's chunks are kept in ``cut``."""
        if os.path.getsize(source) < CHUNKED_FROM:
            return hash_file(source)
        with open(source, "rb") as f:
            digest, size, cut[digest] = hash_and_cut(f)
        return digest, size

    def _put_blob(
        self,
        digest: str,
        source: Path | bytes | tuple[Path, list[Any]],
        progress: Any = None,
        base: str | None = None,
    ) -> None:
        if isinstance(source, tuple):  # a large file, and its chunks
            upload_chunked(self, digest, Path(source[0]), source[1], base, progress)
            return
        if isinstance(source, bytes):
            self._send("PUT", f"/blobs/{digest}", content=source)
            return
        with open(source, "rb") as f:
            # A stated length, not chunked encoding: the server reads the body without
            # parsing chunk headers, and refuses a body that is longer or shorter.
            size = os.fstat(f.fileno()).st_size
            self._send(
                "PUT",
                f"/blobs/{digest}",
                content=chunks(f, size, progress),
                headers={"Content-Length": str(size)},
            )

    def _put_diff(self, diff: bytes) -> tuple[str, int]:
        digest, size = _digest_of(diff)
        self._upload({digest: diff})
        return digest, size

    # -- reading -------------------------------------------------------------------------

    def get(self, ref: str, *, at: Any = None, lineage: bool = True) -> Version:
        parsed = parse_ref(ref)
        if at is not None and not isinstance(at, (str, datetime)):
            raise InvalidInput(f"time must be an ISO 8601 string or a datetime, not {at!r}")
        params = {} if at is None else {"at": at if isinstance(at, str) else at.isoformat()}
        if not lineage:
            params["lineage"] = "false"
        return self._version(self._call("GET", f"/versions/{_path(str(parsed))}", params=params))

    def models(
        self, *, limit: int | None = None, offset: int = 0, after: str | None = None
    ) -> list[Model]:
        params = {} if after is None else {"after": check_name(after)}
        found = self._pages("/models", params, limit, offset, cursor=("after", "name"))
        return [wire.model_from_json(m) for m in found]

    def versions(
        self,
        name: str,
        *,
        limit: int | None = None,
        offset: int = 0,
        before: int | None = None,
    ) -> list[Version]:
        params = {} if check_before(before) is None else {"before": before}
        found = self._pages(
            f"/models/{_seg(name)}/versions", params, limit, offset, cursor=("before", "number")
        )
        return [self._version(v) for v in found]

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
        if limit is None and isinstance(filter, str) and isinstance(order_by, (str, type(None))):
            limit = search_language.parse_search(
                filter, order_by
            ).limit  # a "limit N" in the filter
        params = {"filter": filter}
        if model is not None:
            params["model"] = model
        if order_by is not None:
            params["order_by"] = order_by
        if after is not None:
            params["after"] = after
        pages = self._pages("/search", params, limit, offset, cursor=("after", "id"))
        return [self._version(v) for v in pages]

    def compare(self, a: str, b: str) -> Comparison:
        result: Comparison = self._call("GET", "/compare", params={"a": a, "b": b})
        return result

    def lineage(self, ref: str) -> VersionLineage:
        found = self.get(ref).lineage
        assert found is not None
        return found

    def pull(
        self,
        ref: str,
        dest: str | os.PathLike[str],
        *,
        force: bool = False,
        strict: bool = False,
        progress: Any = None,
        verify_with: Any = None,
        verify: bool = False,
    ) -> Path:
        """Download a version's files into ``dest``, several at once, each verified against
        its digest before it is moved into place (see LocalRegistry.pull)."""
        found = self.get(ref, lineage=False)
        if verify_with is not None or verify:
            checked = self.verify(found.id, public_key=verify_with)
            if not checked["ok"]:
                raise IntegrityError(
                    f"{found.ref} failed signature verification: {checked['reason']}"
                )
        transfer.check_flags(found, strict=strict)
        self.blobs.sizes.update({f.digest: f.size for f in found.files})
        return transfer.pull(
            self.blobs,
            found.files,
            dest,
            force=force,
            progress=progress,
            marker=transfer.marker_of(found, self.uri),
            workers=TRANSFERS,
        )

    def reproduce(self, ref: str, **options: Unpack[ReproduceOptions]) -> Recipe | Reproduction:
        from modelreg import reproduce

        return reproduce.recreate(self, ref, **options)

    # -- changing what may change ----------------------------------------------------------

    def set_alias(
        self, name: str, alias: str, ref: str, *, force: bool = False, reason: str | None = None
    ) -> Version:
        body = {"ref": ref, "force": force, "reason": reason}
        path = f"/models/{_seg(name)}/aliases/{_alias(alias)}"
        return self._version(self._call("PUT", path, json=body))

    def delete_alias(self, name: str, alias: str) -> None:
        self._call("DELETE", f"/models/{_seg(name)}/aliases/{_alias(alias)}")

    def alias_history(self, name: str, alias: str) -> list[AliasMove]:
        found: list[AliasMove] = self._call(
            "GET", f"/models/{_seg(name)}/aliases/{_alias(alias)}/history"
        )
        return found

    def rollback_alias(
        self, name: str, alias: str, *, force: bool = False, reason: str | None = None
    ) -> Version:
        path = f"/models/{_seg(name)}/aliases/{_alias(alias)}/rollback"
        return self._version(self._call("POST", path, json={"force": force, "reason": reason}))

    def set_policy(self, name: str, alias: str, **options: Unpack[PolicyOptions]) -> PolicyInfo:
        path = f"/models/{_seg(name)}/aliases/{_alias(alias)}/policy"
        result: PolicyInfo = self._call("PUT", path, json=options)
        return result

    def policy(self, name: str, alias: str) -> PolicyInfo | None:
        path = f"/models/{_seg(name)}/aliases/{_alias(alias)}/policy"
        result: PolicyInfo | None = self._call("GET", path)["policy"]
        return result

    def approve(self, ref: str, *, alias: str) -> list[str]:
        found: list[str] = self._call("POST", "/approvals", json={"ref": ref, "alias": alias})[
            "approved_by"
        ]
        return found

    def check_promotion(self, name: str, alias: str, ref: str) -> PromotionCheck:
        path = f"/models/{_seg(name)}/aliases/{_alias(alias)}/check"
        result: PromotionCheck = self._call("GET", path, params={"ref": ref})
        return result

    def set_tag(self, ref: str, key: str, value: Any) -> None:
        # Checked here as the embedded registry checks it: a value is sent as its text.
        key, text = check_tag(key, value)
        self._call("PUT", "/tags", json={"ref": ref, "key": key, "value": text})

    def delete_tag(self, ref: str, key: str) -> None:
        self._call("DELETE", "/tags", params={"ref": ref, "key": key})

    def set_description(self, ref: str, description: str) -> None:
        body = {"ref": ref, "description": check_description(description)}
        self._call("PUT", "/description", json=body)

    # -- runs ------------------------------------------------------------------------------

    def load(
        self, ref: str, *, trust: bool = False, dest: str | os.PathLike[str] | None = None
    ) -> Any:
        """The model object ``ref`` names on this server, downloaded and verified against its
        digests (see modelreg.flavors.loading.load); files that run code when loaded need
        ``trust=True``."""
        from modelreg.flavors.loading import load

        return load(ref, registry=self, trust=trust, dest=dest)

    def start_run(self, name: str | None = None, *, params: Mapping[str, Any] | None = None) -> Run:
        """A training run recorded on the server; code and environment are this process's."""
        return Run(self, name=name, params=params)

    # -- datasets, retirement, evaluations ------------------------------------------------------

    def datasets(self) -> list[Dataset]:
        return [wire.dataset_from_json(d) for d in self._call("GET", "/datasets")]

    def dataset(self, ref: str) -> list[Dataset]:
        found = self._call("GET", "/dataset", params={"ref": _text(ref, "dataset reference")})
        return [wire.dataset_from_json(d) for d in found]

    def dataset_models(self, ref: str) -> list[DependentVersion]:
        params = {"ref": _text(ref, "dataset reference")}
        found: list[DependentVersion] = self._call("GET", "/dataset/models", params=params)
        return found

    def dataset_impact(self, ref: str) -> DatasetImpact:
        params = {"ref": _text(ref, "dataset reference")}
        found: DatasetImpact = self._call("GET", "/dataset/impact", params=params)
        return found

    def retire_dataset(self, ref: str, *, reason: str, dry_run: bool = False) -> DatasetImpact:
        body = {
            "ref": _text(ref, "dataset reference"),
            "reason": check_reason(reason),
            "dry_run": dry_run,
        }
        found: DatasetImpact = self._call("POST", "/dataset/retire", json=body)
        return found

    def delete_version(self, ref: str, *, reason: str) -> Deletion:
        path = f"/versions/{_path(str(check_deletion_ref(ref)))}"
        found: Deletion = self._call(
            "DELETE", path, params={"reason": check_deletion_reason(reason)}
        )
        return found

    def evaluate(self, ref: str, dataset: DatasetArg, *, metrics: Mapping[str, Any]) -> Evaluation:
        """Record a version's metrics on a dataset, hashed here from the data."""
        parse_ref(ref)
        use = registering.dataset_use(dataset, role="test")
        body = {"ref": ref, "dataset": use.to_dict(), "metrics": check_metrics(metrics)}
        found: Evaluation = self._call("POST", "/evaluations", json=body)
        return found

    def evaluations(self, ref: str) -> list[Evaluation]:
        found: list[Evaluation] = self._call("GET", "/evaluations", params={"ref": ref})
        return found

    def leaderboard(
        self, name: str, *, dataset: str, metric: str, higher_is_better: bool = True
    ) -> Leaderboard:
        params = {
            "dataset": _text(dataset, "dataset"),
            "metric": _text(metric, "metric"),
            "higher_is_better": higher_is_better,
        }
        found: Leaderboard = self._call("GET", f"/models/{_seg(name)}/leaderboard", params=params)
        return found

    def metric_trend(self, name: str, *, dataset: str, metric: str) -> MetricTrend:
        params = {"dataset": _text(dataset, "dataset"), "metric": _text(metric, "metric")}
        found: MetricTrend = self._call("GET", f"/models/{_seg(name)}/trend", params=params)
        return found

    # -- cards, traces and signatures ----------------------------------------------------------

    def card(self, ref: str) -> Card:
        found: Card = self._call("GET", "/card", params={"ref": ref})
        return found

    def trace(self, target: Any) -> Trace:
        """Trace a deployed version: its UUID, or the modelreg.json (or folder) pull wrote."""
        version_id, marker = transfer.trace_target(target)
        found: Trace = self._call("POST", "/trace", json={"id": version_id, "marker": marker})
        return found

    def verify(self, ref: str, *, public_key: Any = None) -> SignatureCheck:
        pem = None if public_key is None else signing.public_pem(signing.public_key(public_key))
        found: SignatureCheck = self._call("POST", "/verify", json={"ref": ref, "public_key": pem})
        return found

    def signing_document(self, ref: str) -> bytes:
        import base64

        data = self._call("GET", "/signing-document", params={"ref": ref})
        return base64.b64decode(data["document"])

    def attach_signature(self, ref: str, public_key: Any, signature: str) -> SignatureAdded:
        pem = signing.public_pem(signing.public_key(public_key))
        body = {"ref": ref, "public_key": pem, "signature": signature}
        found: SignatureAdded = self._call("POST", "/signatures", json=body)
        return found

    def trust_key(self, name: str, public_key: Any) -> TrustedKey:
        pem = signing.public_pem(signing.public_key(public_key))
        found: TrustedKey = self._call(
            "PUT", f"/keys/{_seg(name, 'key name')}", json={"public_key": pem}
        )
        return found

    def untrust_key(self, name: str) -> TrustedKey:
        found: TrustedKey = self._call("DELETE", f"/keys/{_seg(name, 'key name')}")
        return found

    def trusted_keys(self) -> list[TrustedKey]:
        found: list[TrustedKey] = self._call("GET", "/keys")
        return found

    # -- audit, tokens, webhooks, maintenance --------------------------------------------------

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
        filters = {
            "entity_type": entity_type,
            "entity": entity,
            "actor": actor,
            "action": action,
            "limit": limit,
            "before_seq": before_seq,
        }
        for label in ("entity_type", "entity", "actor", "action"):
            _text(filters.get(label), label)
        for label in ("limit", "before_seq"):
            value = filters.get(label)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise InvalidInput(f"{label} must be a whole number, not {value!r}")
        params = {k: v for k, v in filters.items() if v is not None}
        return [wire.event_from_json(e) for e in self._call("GET", "/audit", params=params)]

    def verify_audit(self, *, full: bool = False) -> VerifyResult:
        params = {"full": "true"} if full else None
        return wire.verify_result_from_json(self._call("GET", "/audit/verify", params=params))

    def create_token(self, name: str, *, role: str = "reader") -> NewTokenInfo:
        found: NewTokenInfo = self._call("POST", "/tokens", json={"name": name, "role": role})
        return found

    def tokens(self) -> list[TokenInfo]:
        found: list[TokenInfo] = self._call("GET", "/tokens")
        return found

    def revoke_token(self, name: str) -> TokenInfo:
        found: TokenInfo = self._call("DELETE", f"/tokens/{_seg(name, 'token name')}")
        return found

    def add_webhook(self, name: str, url: str, **options: Unpack[WebhookOptions]) -> NewWebhookInfo:
        body: dict[str, Any] = {"name": name, "url": url, **options}
        if "actions" in options:
            body["actions"] = list(options["actions"])
        found: NewWebhookInfo = self._call("POST", "/webhooks", json=body)
        return found

    def webhooks(self) -> list[WebhookInfo]:
        found: list[WebhookInfo] = self._call("GET", "/webhooks")
        return found

    def remove_webhook(self, name: str) -> WebhookInfo:
        found: WebhookInfo = self._call("DELETE", f"/webhooks/{_seg(name, 'webhook name')}")
        return found

    def webhook_deliveries(
        self, name: str | None = None, *, limit: int = 100
    ) -> list[WebhookDelivery]:
        params: dict[str, Any] = {"limit": limit}
        if name is not None:
            params["name"] = name
        found: list[WebhookDelivery] = self._call("GET", "/webhook-deliveries", params=params)
        return found

    def deliver_webhooks(self) -> dict[str, int]:
        found: dict[str, int] = self._call("POST", "/webhook-deliveries")
        return found

    def fsck(self) -> FsckReport:
        found: FsckReport = self._call("GET", "/fsck")
        return found

    def gc(self, *, dry_run: bool = False, grace_seconds: float = 3600) -> GcReport:
        body = {"dry_run": dry_run, "grace_seconds": check_grace(grace_seconds)}
        found: GcReport = self._call("POST", "/gc", json=body)
        return found

    def repack(self, *, dry_run: bool = False) -> RepackReport:
        found: RepackReport = self._call("POST", "/repack", json={"dry_run": dry_run})
        return found


def _digest_of(data: bytes) -> tuple[str, int]:
    import hashlib

    return hashlib.sha256(data).hexdigest(), len(data)


def _seg(text: str, kind: str = "model name") -> str:
    """A name as one path segment, checked here as the server would, so that a malformed
    one is refused with the same error rather than missing the route."""
    check_name(text, kind=kind)
    return quote(text, safe="")


def _alias(text: str) -> str:
    return quote(check_alias(text), safe="")


def _check_document(document: bytes, new: NewVersion) -> None:
    """Sign only a document of this version: the server's answer is checked, not trusted."""
    try:
        found = json.loads(document)
    except ValueError:
        found = None
    expected = {
        "model": new.model,
        "files": [f.to_dict() for f in sorted(new.files, key=lambda f: f.path)],
        "manifest_digest": manifest_digest(new.files),
        "params": dict(new.params),
        "metrics": dict(new.metrics),
    }
    for field, value in expected.items():
        if not isinstance(found, dict) or found.get(field) != value:
            raise IntegrityError(
                f"the server's signing document does not hold this version's {field}: not"
                " signed, nothing created"
            )


def _text(value: Any, label: str) -> Any:
    if value is not None and not isinstance(value, str):
        raise InvalidInput(f"{label} must be text, not {value!r}")
    return value


def _path(ref: str) -> str:
    return quote(ref, safe="/@")
