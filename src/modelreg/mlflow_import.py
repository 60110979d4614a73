"""Import registered models from an MLflow tracking server, over its REST API.

    report = import_mlflow(reg, "http://127.0.0.1:5000", models=["Churn Model"])

Each MLflow model version becomes a modelreg version, in version order: its source run's
params and full metric history are logged to a modelreg run (in timestamp order, with their
steps) and the version is registered inside that run, so lineage links them; its artifacts
are streamed from the server's artifact proxy (``--serve-artifacts``), checked against the
listed sizes, and registered, modelreg hashing every byte. Tags ``mlflow.model_name``,
``mlflow.model_version``, ``mlflow.run_id``, ``mlflow.tracking_uri`` and ``mlflow.source``
keep the way back; a re-run finds imported versions by them and copies only what is new,
then re-syncs the aliases (the MLflow aliases win; an alias MLflow lacks is left alone).

MLflow is never imported: only httpx talks to the server, and only here.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from modelreg.errors import Conflict, IntegrityError, InvalidInput, NotFound
from modelreg.manifest import check_path
from modelreg.refs import check_alias, check_name, slug
from modelreg.values import MAX_TAG_VALUE

if TYPE_CHECKING:
    import httpx

API = "/api/2.0/mlflow"
ARTIFACTS = "/api/2.0/mlflow-artifacts/artifacts"
FORCE_REASON = "imported from MLflow"
TIMEOUT = 60.0
CHUNK = 1 << 20


def canonical_name(name: str, *, kind: str = "model name") -> str:
    """A valid modelreg name for an MLflow name: lowercase, runs of other characters -> '-'.

    >>> canonical_name("Churn Model")
    'churn-model'
    """
    text = slug(name)
    if not text:
        raise InvalidInput(f"MLflow {kind} {name!r} has no characters modelreg can keep")
    return check_name(text, kind=kind)


def metric_batches(
    history: Sequence[dict[str, Any]],
) -> list[tuple[int, dict[str, float]]]:
    """MLflow metric points in (timestamp, step) order, grouped into (step, {key: value})
    batches of consecutive points at one step, each key at most once per batch."""
    points = sorted(
        history, key=lambda m: (int(m.get("timestamp", 0)), int(m.get("step", 0)), m["key"])
    )
    batches: list[tuple[int, dict[str, float]]] = []
    for point in points:
        step = int(point.get("step", 0))
        if not batches or batches[-1][0] != step or point["key"] in batches[-1][1]:
            batches.append((step, {}))
        batches[-1][1][point["key"]] = float(point["value"])
    return batches


def check_tracking_uri(uri: str) -> str:
    """The tracking server's base URL, without a trailing '/'."""
    parts = urlsplit(uri)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InvalidInput(
            f"tracking URI {uri!r} must be the http(s) URL of an MLflow tracking server"
            " (e.g. http://127.0.0.1:5000)"
        )
    return uri.rstrip("/")


class MlflowServer:
    """The few REST calls the import makes; every failure is one message naming the URL."""

    def __init__(self, tracking_uri: str, *, client: httpx.Client | None = None) -> None:
        import httpx

        self.uri = check_tracking_uri(tracking_uri)
        self._http = client or httpx.Client(timeout=TIMEOUT, follow_redirects=True)

    def close(self) -> None:
        self._http.close()

    def _request(self, path: str, params: dict[str, Any]) -> Any:
        import httpx

        url = f"{self.uri}{path}"
        try:
            response = self._http.get(url, params=params)
        except httpx.HTTPError as exc:
            raise InvalidInput(
                f"cannot reach the MLflow tracking server at {url}: {exc or type(exc).__name__}"
            ) from None
        self._check(response, url)
        try:
            return response.json()
        except ValueError:
            raise InvalidInput(f"{url} did not answer with JSON: is it an MLflow server?") from None

    @staticmethod
    def _check(response: httpx.Response, url: str) -> None:
        if response.is_success:
            return
        try:
            body = response.json()
            message = f"{body.get('error_code', '')}: {body.get('message', '')}".strip(": ")
        except ValueError:
            message = response.text[:200].strip()
        text = f"MLflow server answered {response.status_code} for {url}: {message}"
        if response.status_code == 404:
            raise NotFound(text)
        raise InvalidInput(text)

    def get(self, endpoint: str, **params: Any) -> Any:
        return self._request(f"{API}/{endpoint}", params)

    def pages(self, endpoint: str, key: str, **params: Any) -> Iterator[dict[str, Any]]:
        token = None
        while True:
            page = self.get(endpoint, **params, **({"page_token": token} if token else {}))
            yield from page.get(key, [])
            token = page.get("next_page_token")
            if not token:
                return

    def list_files(self, path: str) -> list[tuple[str, int | None]]:
        """Every file under an artifact path, recursively: (path relative to it, size)."""
        found: list[tuple[str, int | None]] = []
        for entry in self._request(ARTIFACTS, {"path": path}).get("files", []):
            name = str(entry.get("path", "")).rsplit("/", 1)[-1]
            if name in ("", ".", "..") or "\\" in name:
                raise InvalidInput(
                    f"{self.uri} listed an artifact named {name!r} under {path!r}: refusing it"
                )
            if entry.get("is_dir"):
                inner = self.list_files(f"{path}/{name}")
                found.extend((f"{name}/{rel}", size) for rel, size in inner)
            else:
                size = entry.get("file_size")
                found.append((name, None if size is None else int(size)))
        return found

    def download(self, path: str, dest: Path) -> tuple[str, int]:
        """Stream one artifact into ``dest``; return its (sha256, size)."""
        import httpx

        url = f"{self.uri}{ARTIFACTS}/{quote(path)}"
        digest, size = hashlib.sha256(), 0
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            with self._http.stream("GET", url) as response:
                if not response.is_success:
                    response.read()
                    self._check(response, url)
                with open(dest, "wb") as out:
                    for chunk in response.iter_bytes(CHUNK):
                        digest.update(chunk)
                        size += len(chunk)
                        out.write(chunk)
        except httpx.HTTPError as exc:
            raise InvalidInput(f"downloading {url} failed: {exc or type(exc).__name__}") from None
        return digest.hexdigest(), size


def artifact_path(uri: str) -> str:
    """The artifact proxy's path for an ``mlflow-artifacts:`` URI.

    >>> artifact_path("mlflow-artifacts://host:5000/1/abc/artifacts/model")
    '1/abc/artifacts/model'
    """
    parts = urlsplit(uri)
    if parts.scheme != "mlflow-artifacts":
        raise InvalidInput(
            f"artifacts at {uri!r} are not served by the tracking server: start it with"
            " --serve-artifacts so that versions live under mlflow-artifacts:/"
        )
    return parts.path.strip("/")


def import_mlflow(
    registry: Any,
    tracking_uri: str,
    models: Sequence[str] | None = None,
    *,
    client: httpx.Client | None = None,
) -> dict[str, Any]:
    """Copy registered models (all, or those named) from an MLflow tracking server.

    Returns a report: ``models`` (MLflow name -> modelreg name), ``imported`` and ``skipped``
    versions, ``aliases`` moved, and ``warnings`` (what could not be carried over).
    """
    server = MlflowServer(tracking_uri, client=client)
    try:
        return _Import(registry, server).run(models)
    finally:
        if client is None:
            server.close()


class _Import:
    def __init__(self, registry: Any, server: MlflowServer) -> None:
        self.registry = registry
        self.server = server
        self._deleted: dict[int, str] = {}  # of the model being imported: see _imported
        self.report: dict[str, Any] = {
            "tracking_uri": server.uri,
            "models": {},
            "imported": [],
            "skipped": [],
            "aliases": [],
            "warnings": [],
        }

    def run(self, names: Sequence[str] | None) -> dict[str, Any]:
        if names:
            found = [
                self.server.get("registered-models/get", name=n)["registered_model"]
                for n in dict.fromkeys(names)
            ]
        else:
            found = list(
                self.server.pages("registered-models/search", "registered_models", max_results=100)
            )
        targets: dict[str, str] = {}
        for model in found:
            target = canonical_name(model["name"])
            if target in targets:
                raise Conflict(
                    f"MLflow models {targets[target]!r} and {model['name']!r} would both become"
                    f" modelreg model {target!r}; import them one at a time with --model and"
                    " rename one in MLflow first"
                )
            targets[target] = model["name"]
            self.report["models"][model["name"]] = target
        for model in found:
            self._model(model, self.report["models"][model["name"]])
        return self.report

    def _imported(self, name: str, original: str) -> dict[int, Any]:
        """Versions of ``name`` already imported from MLflow model ``original``, by number."""
        try:
            count = next(m.version_count for m in self.registry.models() if m.name == name)
        except StopIteration:
            return {}
        by_number: dict[int, Any] = {}
        others = 0
        for version in self._search(name, ""):
            source = version.tags.get("mlflow.model_name")
            if source == original:
                by_number[int(version.tags["mlflow.model_version"])] = version
            elif source is not None:
                others += 1
        self._deleted = self._deleted_imports(name, original)
        if others or (count and not by_number and not self._deleted):
            raise Conflict(
                f"modelreg model {name!r} already exists and was not imported from MLflow model"
                f" {original!r}; refusing to mix their versions"
            )
        return by_number

    def _deleted_imports(self, name: str, original: str) -> dict[int, str]:
        """{MLflow version number: ref} of versions of ``name`` imported from ``original``
        and deleted since: they are not imported again. Read from the audit log, which keeps
        each deleted version's creation with its tags."""
        found: dict[int, str] = {}
        before: int | None = None
        while True:
            page = self.registry.audit(
                entity_type="version", action="version.delete", limit=500, before_seq=before
            )
            for event in page:
                if not event.entity.startswith(f"{name}/"):
                    continue
                created = self.registry.audit(entity=event.entity, action="version.create")
                tags = (created[-1].after or {}).get("tags", {}) if created else {}
                if tags.get("mlflow.model_name") == original and "mlflow.model_version" in tags:
                    found[int(tags["mlflow.model_version"])] = event.entity
            if len(page) < 500:
                return found
            before = page[-1].seq

    def _search(self, name: str, where: str) -> Iterator[Any]:
        offset = 0
        while True:
            page = self.registry.search(where, model=name, limit=1000, offset=offset)
            yield from page
            if len(page) < 1000:
                return
            offset += len(page)

    def _model(self, model: dict[str, Any], name: str) -> None:
        original = model["name"]
        done = self._imported(name, original)
        found = self.server.pages(
            "model-versions/search", "model_versions", filter=f"name={_quote(original)}"
        )
        for mv in sorted(found, key=lambda v: int(v["version"])):
            number = int(mv["version"])
            if number in self._deleted:
                self.report["skipped"].append(
                    {
                        "model": original,
                        "mlflow_version": number,
                        "version": self._deleted[number],
                        "deleted": True,
                    }
                )
                continue
            if number in done:
                previous = done[number].tags.get("mlflow.run_id", "")
                if previous != mv.get("run_id", "") and previous:
                    raise Conflict(
                        f"{done[number].ref} was imported from version {number} of {original!r}"
                        f" with run {previous}, but {self.server.uri} has run {mv.get('run_id')}:"
                        " is this another MLflow server?"
                    )
                self.report["skipped"].append(
                    {"model": original, "mlflow_version": number, "version": done[number].ref}
                )
                continue
            if mv.get("status", "READY") != "READY":
                self.report["warnings"].append(
                    f"{original} version {number} is {mv['status']}, not READY: not imported"
                )
                continue
            done[number] = self._version(model, name, mv)
        self._aliases(model, name, done)

    def _version(self, model: dict[str, Any], name: str, mv: dict[str, Any]) -> Any:
        original, number = model["name"], int(mv["version"])
        run_id = mv.get("run_id") or ""
        tags = {t["key"]: t["value"] for t in mv.get("tags", [])}
        for t in model.get("tags", []):
            tags[f"mlflow.model_tag.{t['key']}"] = t["value"]
        if model.get("description"):
            tags["mlflow.model_description"] = model["description"][:MAX_TAG_VALUE]
        tags.update(
            {
                "mlflow.model_name": original,
                "mlflow.model_version": str(number),
                "mlflow.tracking_uri": self.server.uri,
                "mlflow.source": mv.get("source", ""),
            }
        )
        if run_id:
            tags["mlflow.run_id"] = run_id
        description = mv.get("description") or ""
        location = self.server.get(
            "model-versions/get-download-uri", name=original, version=str(number)
        ).get("artifact_uri") or mv.get("source", "")
        with tempfile.TemporaryDirectory(prefix="modelreg-mlflow-") as folder:
            digests = self._download(artifact_path(location), Path(folder), f"{original}/{number}")
            run = self._run(run_id) if run_id else None
            if run is None:
                version = self.registry.register(name, folder, tags=tags, description=description)
            else:
                info, params, history = run
                with self.registry.start_run(name=info.get("run_name"), params=params) as mr:
                    for step, values in metric_batches(history):
                        mr.log_metrics(values, step)
                    version = mr.register(name, folder, tags=tags, description=description)
        stored = {f.path: f.digest for f in version.files}
        if stored != digests:
            raise IntegrityError(
                f"{version.ref}: the stored files differ from those downloaded from"
                f" {self.server.uri} for {original} version {number}"
            )
        self.report["imported"].append(
            {
                "model": original,
                "mlflow_version": number,
                "version": version.ref,
                "run_id": run_id or None,
                "files": len(digests),
                "size": version.size,
            }
        )
        return version

    def _download(self, path: str, folder: Path, label: str) -> dict[str, str]:
        files = self.server.list_files(path)
        if not files:  # the location may be one file rather than a directory
            leaf = path.rsplit("/", 1)[-1]
            files, path = [(leaf, None)], path.rsplit("/", 1)[0]
        digests: dict[str, str] = {}
        for rel, expected in files:
            check_path(rel)  # the server names the files: none may land outside the folder
            digest, size = self.server.download(f"{path}/{rel}", folder / rel)
            if expected is not None and size != expected:
                raise IntegrityError(
                    f"{label}: artifact {rel!r} is listed as {expected} bytes but {size} arrived"
                    f" from {self.server.uri}"
                )
            digests[rel] = digest
        return digests

    def _run(self, run_id: str) -> tuple[dict[str, Any], dict[str, str], list[dict[str, Any]]]:
        found = self.server.get("runs/get", run_id=run_id)["run"]
        data = found.get("data", {})
        params = {p["key"]: p["value"] for p in data.get("params", [])}
        history: list[dict[str, Any]] = []
        for key in sorted({m["key"] for m in data.get("metrics", [])}):
            history.extend(
                self.server.pages(
                    "metrics/get-history",
                    "metrics",
                    run_id=run_id,
                    metric_key=key,
                    max_results=25000,
                )
            )
        return found.get("info", {}), params, history

    def _aliases(self, model: dict[str, Any], name: str, done: dict[int, Any]) -> None:
        current = {m.name: m.aliases for m in self.registry.models() if m.name == name}
        held: dict[str, int] = current.get(name, {})
        for entry in sorted(model.get("aliases", []), key=lambda a: a["alias"]):
            alias = canonical_name(entry["alias"], kind="alias")
            number = int(entry["version"])
            try:
                check_alias(alias)
            except InvalidInput as exc:
                self.report["warnings"].append(f"{model['name']}@{entry['alias']}: {exc}")
                continue
            if number not in done:
                why = (
                    f"imported as {self._deleted[number]}, since deleted"
                    if number in self._deleted
                    else "not imported"
                )
                self.report["warnings"].append(
                    f"{model['name']}@{entry['alias']} points at version {number}, {why}"
                )
                continue
            target = done[number]
            if held.get(alias) == target.number:
                continue
            # Not a promotion: MLflow already decided. Gates that fail are overridden,
            # and the override is audited with this reason.
            protected = self.registry.policy(name, alias) is not None
            self.registry.set_alias(
                name,
                alias,
                target.ref,
                force=protected,
                reason=FORCE_REASON if protected else None,
            )
            before = held.get(alias)
            self.report["aliases"].append(
                {
                    "alias": f"{name}@{alias}",
                    "from": None if before is None else f"{name}/{before}",
                    "to": target.ref,
                    "protected": protected,
                }
            )


def _quote(text: str) -> str:
    """A string literal of MLflow's search filter."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"
