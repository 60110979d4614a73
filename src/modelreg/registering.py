"""What registering a version does on the caller's side, shared by both implementations.

``prepare`` turns a ``register`` call into a :class:`Draft`: every argument checked, the
files collected (a model object saved by its flavor first), the datasets hashed, and the code
and environment captured from the current directory, with nothing stored yet. The embedded
registry then copies the files into its blob store while hashing them; the remote client
hashes them, uploads the missing ones and sends the manifest. Either way the version is
created in one transaction by :meth:`LocalRegistry.commit_version`.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelreg import capture, dataset_files, flavors, signing
from modelreg.errors import InvalidInput
from modelreg.manifest import FileEntry, FilesArg, collect_files
from modelreg.records import DatasetArg, DatasetUse, NewVersion
from modelreg.refs import Ref, check_name, parse_ref
from modelreg.values import check_description, check_metrics, check_params, check_tags

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from modelreg.run import Run


@dataclass
class Draft:
    """A version checked and captured on the caller's side, before any byte is stored."""

    name: str
    local: dict[str, Path]
    params: dict[str, str]
    metrics: dict[str, float]
    tags: dict[str, str]
    description: str
    parents: list[Ref]
    datasets: list[DatasetUse]
    code: dict[str, Any]
    diff: bytes | None
    command: str
    environment: capture.Environment | None
    run_id: str | None
    signer: Ed25519PrivateKey | None

    def new_version(self, entries: list[FileEntry]) -> NewVersion:
        """The version to create, once ``entries`` (and the diff, if any) are stored."""
        return NewVersion(
            model=self.name,
            files=entries,
            params=self.params,
            metrics=self.metrics,
            tags=self.tags,
            description=self.description,
            parents=self.parents,
            datasets=self.datasets,
            code=self.code,
            command=self.command,
            hostname=capture.hostname(),
            environment=self.environment,
            run_id=self.run_id,
        )


@contextlib.contextmanager
def prepare(
    name: str,
    files: FilesArg | Any,
    *,
    params: Mapping[str, Any] | None = None,
    metrics: Mapping[str, Any] | None = None,
    tags: Mapping[str, Any] | None = None,
    datasets: Sequence[DatasetArg] | None = None,
    parents: Sequence[str] | None = None,
    description: str | None = None,
    sign: signing.PrivateKeyArg | None = None,
    input_example: Any = None,
    flavor: str | None = None,
    run: Run | None = None,
) -> Iterator[Draft]:
    """Check a ``register`` call and capture what it records; a model object is saved by
    its flavor into a temporary folder that lives as long as the draft.

    Each argument is checked once, here, before a model object is saved or a file is read:
    this is the SDK's boundary (the server checks the version again at its own, once).
    """
    capture.redaction()  # a bad setting fails before a model is saved
    model_object = flavors.is_model_object(files)
    if not model_object and (input_example is not None or flavor not in (None, "files")):
        raise InvalidInput(
            "input_example= and flavor= describe a model object; files are registered as"
            " they are (save the model with its flavor, or pass the object itself)"
        )
    check_name(name)
    checked_params = check_params(params)
    checked_metrics = check_metrics(metrics)
    checked_tags = check_tags(tags)
    text = check_description(description)
    if isinstance(parents, str) or isinstance(datasets, (str, os.PathLike)):
        raise InvalidInput("parents and datasets are lists: wrap a single one in [ ]")
    parent_refs = [parse_ref(p) for p in (parents or [])]
    signer = signing.private_key(sign) if sign is not None else None
    uses = [dataset_use(d) for d in (datasets or [])]
    if run is not None:
        uses = [*run.datasets, *uses]
    code: dict[str, Any] = {}
    env: capture.Environment | None = None
    diff: bytes | None = None
    if run is None:
        code, diff = capture.capture_code()
        env = capture.capture_environment()
    # Inside a run, the run has warned about secrets in the command line already.
    command = capture.recorded_command(warn=run is None)
    with contextlib.ExitStack() as stack:
        if model_object:
            folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="modelreg-save-"))
            flavors.save(files, Path(folder), flavor=flavor, input_example=input_example)
            files = folder
        yield Draft(
            name=name,
            local=collect_files(files),
            params=checked_params,
            metrics=checked_metrics,
            tags=checked_tags,
            description=text,
            parents=parent_refs,
            datasets=uses,
            code=code,
            diff=diff,
            command=command,
            environment=env,
            run_id=run.id if run is not None else None,
            signer=signer,
        )


def dataset_use(item: DatasetArg, *, role: str = "train") -> DatasetUse:
    """A dataset argument (a path or URI, a mapping, a described use) as a hashed use."""
    if isinstance(item, DatasetUse):
        return item
    if isinstance(item, Mapping):
        if "path" not in item:
            raise InvalidInput(f"dataset {dict(item)!r} has no 'path'")
        unknown = set(item) - {"path", "name", "role", "digest"}
        if unknown:
            raise InvalidInput(f"dataset {dict(item)!r}: unknown keys {sorted(unknown)}")
        return dataset_files.describe(
            _dataset_path(item["path"]),
            name=item.get("name"),
            role=item.get("role", role),
            digest=item.get("digest"),
        )
    return dataset_files.describe(_dataset_path(item), role=role)


def _dataset_path(value: Any) -> str:
    if not isinstance(value, (str, os.PathLike)) or not os.fspath(value):
        raise InvalidInput(f"a dataset must be a path, a URI or a mapping, not {value!r}")
    return os.fspath(value)
