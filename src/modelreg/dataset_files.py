"""A dataset described from its data: a name, a role, and a digest computed from the bytes.

A file's digest is the sha256 of its bytes; a directory's is the digest of its manifest
(relative path, sha256 and size of every file), so renaming or changing any file changes it.
Pure: the client hashes here and the store (``datasets``) records what it gets.
"""

from __future__ import annotations

import re
from pathlib import Path

from modelreg.blobs import hash_file
from modelreg.errors import InvalidInput
from modelreg.manifest import FileEntry, is_digest, manifest_digest
from modelreg.records import DatasetUse
from modelreg.refs import check_name, slug

ROLES = ("train", "validation", "test")


def check_role(role: str) -> str:
    if role not in ROLES:
        raise InvalidInput(f"dataset role {role!r} is invalid: use one of {', '.join(ROLES)}")
    return role


def default_name(path: Path) -> str:
    return check_name(slug(path.name) or "dataset", kind="dataset name")


def describe(
    path_or_uri: str | Path,
    *,
    name: str | None = None,
    role: str = "train",
    digest: str | None = None,
) -> DatasetUse:
    """Hash a local file or directory (streaming), or take a remote URI with its digest."""
    check_role(role)
    text = str(path_or_uri)
    if "://" in text and not text.startswith("file://"):
        if digest is None or not is_digest(digest):
            raise InvalidInput(
                f"dataset {text!r} is not a local path: pass its sha256 digest to record it"
            )
        label = name or text.rstrip("/").rsplit("/", 1)[-1]
        return DatasetUse(check_name(label, kind="dataset name"), digest, text, 0, 0, role)
    path = Path(text.removeprefix("file://"))
    if path.is_file():
        found, size = hash_file(path)
        count = 1
    elif path.is_dir():
        entries = []
        for item in sorted(path.rglob("*")):
            if item.is_file():
                item_digest, item_size = hash_file(item)
                entries.append(FileEntry(item.relative_to(path).as_posix(), item_digest, item_size))
        if not entries:
            raise InvalidInput(f"dataset directory {text!r} holds no files")
        found = manifest_digest(entries)
        size = sum(e.size for e in entries)
        count = len(entries)
    else:
        raise InvalidInput(f"dataset path {text!r} does not exist")
    if digest is not None and digest != found:
        raise InvalidInput(f"dataset {text!r} has digest {found}, not the expected {digest}")
    label = check_name(name, kind="dataset name") if name else default_name(path)
    return DatasetUse(label, found, path.resolve().as_uri(), size, count, role)


def parse_cli_dataset(spec: str) -> tuple[str, str | None, str]:
    """Parse ``PATH[,role=R][,name=N]`` into (path, name, role)."""
    path, *options = spec.split(",")
    name: str | None = None
    role = "train"
    for option in options:
        key, sep, value = option.partition("=")
        if not sep or key not in ("role", "name"):
            raise InvalidInput(
                f"--dataset {spec!r}: options are role=R and name=N, separated by commas"
            )
        if key == "role":
            role = check_role(value)
        else:
            name = check_name(value, kind="dataset name")
    if not path:
        raise InvalidInput(f"--dataset {spec!r} has no path")
    return path, name, role


def parse_ref(text: str) -> tuple[str, str | None]:
    """``NAME`` or ``NAME@DIGEST`` (a digest prefix of 8 or more hex digits is enough)."""
    if not isinstance(text, str):
        raise InvalidInput(f"dataset reference must be text, not {text!r}")
    name, at, digest = text.partition("@")
    check_name(name, kind="dataset name")
    if at and not digest:
        raise InvalidInput(f"dataset reference {text!r}: give a digest after '@', or no '@'")
    if digest and not (re.fullmatch(r"[0-9a-f]{8,64}", digest) or MLFLOW_DIGEST.fullmatch(digest)):
        raise InvalidInput(
            f"dataset reference {text!r}: the part after '@' must be 8 to 64 lowercase hex"
            " digits of the data's sha256 (a prefix is enough), or mlflow:DIGEST for a"
            " dataset an MLflow client logged"
        )
    return name, digest or None


# The digest of a dataset an MLflow client logged (MLflow's own, not a sha256, at most 36
# characters), stored with this prefix: it never equals or starts a sha256's hex digits.
MLFLOW_DIGEST = re.compile(r"mlflow:[^\s@]{1,36}")
