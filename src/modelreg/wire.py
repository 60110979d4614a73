"""The JSON form of what crosses HTTP, both ways, in one place.

The server turns registry objects into JSON with the ``*_to_json`` functions and reads what
clients send with the ``*_from_json`` functions, which check everything as untrusted input
(InvalidInput naming the field). The remote client reads the server's JSON back into the
same objects the embedded registry returns.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Mapping
from typing import Any

from modelreg import capture
from modelreg.dataset_files import check_role
from modelreg.errors import InvalidInput
from modelreg.manifest import FileEntry, check_entries, is_digest
from modelreg.records import (
    AuditEvent,
    Dataset,
    DatasetUse,
    Model,
    NewVersion,
    VerifyResult,
    Version,
)
from modelreg.refs import check_name, parse_ref
from modelreg.values import check_description, check_metrics, check_params, check_tags

MAX_TEXT = 4096  # command lines, host names, URIs
MAX_FILES = 100_000
MAX_DATASETS = 1000
MAX_PARENTS = 1000
MAX_FACTS = 200_000  # characters of code or environment facts, as JSON


def version_to_json(version: Version) -> dict[str, Any]:
    """The one JSON form of a version: the API's, and ``modelreg show --json``'s."""
    return version.to_dict()


def version_from_json(data: Mapping[str, Any], registry: Any = None) -> Version:
    return Version(
        id=data["id"],
        model=data["model"],
        number=data["number"],
        created_at=data["created_at"],
        created_by=data["created_by"],
        description=data["description"],
        manifest_digest=data["manifest_digest"],
        size=data["size"],
        params=dict(data["params"]),
        metrics=dict(data["metrics"]),
        tags=dict(data["tags"]),
        aliases=list(data["aliases"]),
        files=[FileEntry(f["path"], f["digest"], f["size"]) for f in data["files"]],
        datasets=[DatasetUse(**d) for d in data["datasets"]],
        parents=list(data["parents"]),
        run_id=data["run_id"],
        flags=list(data.get("flags", [])),
        lineage=data.get("lineage"),
        _registry=registry,
    )


def model_from_json(data: Mapping[str, Any]) -> Model:
    return Model(**data)


def dataset_from_json(data: Mapping[str, Any]) -> Dataset:
    return Dataset(**{**data, "also_known_as": tuple(data.get("also_known_as", ()))})


def event_from_json(data: Mapping[str, Any]) -> AuditEvent:
    return AuditEvent(**data)


def verify_result_from_json(data: Mapping[str, Any]) -> VerifyResult:
    known = {f.name for f in dataclasses.fields(VerifyResult)}
    return VerifyResult(**{k: v for k, v in data.items() if k in known})  # a newer server's too


# -- what clients send ---------------------------------------------------------------------


def new_version_to_json(new: NewVersion) -> dict[str, Any]:
    return {
        "model": new.model,
        "files": [f.to_dict() for f in new.files],
        "params": new.params,
        "metrics": new.metrics,
        "tags": new.tags,
        "description": new.description,
        "parents": [str(p) for p in new.parents],
        "datasets": [d.to_dict() for d in new.datasets],
        "code": new.code,
        "command": new.command,
        "hostname": new.hostname,
        "environment": None if new.environment is None else new.environment.data,
        "run_id": new.run_id,
    }


def new_version_from_json(name: str, data: Mapping[str, Any]) -> NewVersion:
    """A version to create, as a client described it, every field checked."""
    files = _list(data.get("files"), "files", MAX_FILES)
    entries = []
    for item in files:
        entry = _mapping(item, "a file")
        entries.append(FileEntry(entry.get("path"), entry.get("digest"), entry.get("size")))  # type: ignore[arg-type]
    parents = _list(data.get("parents", []), "parents", MAX_PARENTS)
    env = data.get("environment")
    run_id = data.get("run_id")
    if run_id is not None:
        run_id = check_uuid(run_id, "run_id")
    return NewVersion(
        model=check_name(name),
        files=check_entries(entries),
        params=check_params(data.get("params")),
        metrics=check_metrics(data.get("metrics")),
        tags=check_tags(data.get("tags")),
        description=check_description(data.get("description")),
        parents=[parse_ref(_text(p, "a parent")) for p in parents],
        datasets=[
            dataset_use_from_json(d)
            for d in _list(data.get("datasets", []), "datasets", MAX_DATASETS)
        ],
        code=code_from_json(data.get("code", {})),
        command=_text(data.get("command", ""), "command"),
        hostname=_text(data.get("hostname", ""), "hostname"),
        environment=None if env is None else environment_from_json(env),
        run_id=run_id,
    )


def dataset_use_from_json(data: Any) -> DatasetUse:
    item = _mapping(data, "a dataset")
    digest = item.get("digest")
    if not isinstance(digest, str) or not is_digest(digest):
        raise InvalidInput(f"dataset digest {digest!r} is not a sha256 hex digest")
    for field in ("size", "file_count"):
        value = item.get(field, 0)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise InvalidInput(f"dataset {field} must be a non-negative integer, not {value!r}")
    return DatasetUse(
        name=check_name(item.get("name"), kind="dataset name"),  # type: ignore[arg-type]
        digest=digest,
        uri=_text(item.get("uri", ""), "dataset uri"),
        size=item.get("size", 0),
        file_count=item.get("file_count", 0),
        role=check_role(item.get("role", "train")),
    )


def code_from_json(data: Any) -> dict[str, Any]:
    """Code facts (repository, commit, branch, dirty, the diff's digest and size)."""
    code = dict(_mapping(data, "code"))
    _limit(code, "code")
    for key, value in code.items():
        items = value if isinstance(value, list) else [value]
        if not all(isinstance(v, (str, int, bool, type(None))) for v in items):
            raise InvalidInput(f"code fact {key!r} must be text, a number, a flag or a list")
    digest = code.get("diff_digest")
    if digest is not None and not (isinstance(digest, str) and is_digest(digest)):
        raise InvalidInput(f"code diff_digest {digest!r} is not a sha256 hex digest")
    return code


def environment_from_json(data: Any) -> capture.Environment:
    env = dict(_mapping(data, "environment"))
    _limit(env, "environment")
    return capture.environment(env)


def facts_from_json(data: Any) -> capture.ProcessFacts:
    item = _mapping(data, "facts")
    return capture.ProcessFacts(
        hostname=_text(item.get("hostname", ""), "hostname"),
        user=_text(item.get("user", ""), "user"),
        command=_text(item.get("command", ""), "command"),
    )


def check_uuid(value: Any, label: str) -> str:
    try:
        return str(uuid.UUID(value)) if isinstance(value, str) else _bad_uuid(value, label)
    except ValueError:
        return _bad_uuid(value, label)


def _bad_uuid(value: Any, label: str) -> str:
    raise InvalidInput(f"{label} {str(value)[:80]!r} is not a UUID")


def _mapping(value: Any, label: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise InvalidInput(f"{label} must be a JSON object, not {type(value).__name__}")
    return value


def _list(value: Any, label: str, limit: int) -> list[Any]:
    if not isinstance(value, list):
        raise InvalidInput(f"{label} must be a JSON list, not {type(value).__name__}")
    if len(value) > limit:
        raise InvalidInput(f"{label} holds {len(value)} entries; at most {limit} are allowed")
    return value


def _text(value: Any, label: str) -> str:
    if not isinstance(value, str):
        raise InvalidInput(f"{label} must be text, not {type(value).__name__}")
    if len(value) > MAX_TEXT or "\x00" in value:
        raise InvalidInput(f"{label} is longer than {MAX_TEXT} characters or holds a NUL byte")
    return value


def _limit(value: Mapping[str, Any], label: str) -> None:
    import json

    if len(json.dumps(value)) > MAX_FACTS:
        raise InvalidInput(f"{label} facts are larger than {MAX_FACTS} characters of JSON")
