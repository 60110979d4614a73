"""File manifests: which relative paths a version holds, with their sha256 digest and size.

The rules for paths are strict because a manifest is later written to someone's disk: relative
POSIX paths only, no ``..``, no absolute paths, no backslashes, no control characters,
NFC-normalised, no duplicates, and no path that is also a directory of another path.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import unicodedata
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from typing_extensions import TypedDict  # pydantic reads it on Python 3.11 (responses)

from modelreg.errors import InvalidInput

MAX_PATH_LENGTH = 1024
MAX_FILES = 100_000


class FileInfo(TypedDict):
    """A file of a version as results show it."""

    path: str
    digest: str
    size: int


@dataclass(frozen=True)
class FileEntry:
    path: str
    digest: str
    size: int

    def to_dict(self) -> FileInfo:
        return {"path": self.path, "digest": self.digest, "size": self.size}


def check_path(path: str) -> str:
    """Return the canonical form of a manifest path or raise InvalidInput saying why not."""
    if not isinstance(path, str):
        raise InvalidInput(f"file path must be a string, not {type(path).__name__}")
    shown = repr(path)
    if not path:
        raise InvalidInput("file path is empty")
    if any(ord(ch) < 32 or 127 <= ord(ch) < 160 for ch in path):
        raise InvalidInput(f"file path {shown} contains a control character")
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput(f"file path {shown} cannot be encoded as UTF-8") from None
    path = unicodedata.normalize("NFC", path)
    if len(path) > MAX_PATH_LENGTH:
        raise InvalidInput(f"file path is longer than {MAX_PATH_LENGTH} characters: {shown[:80]}…")
    if "\\" in path:
        raise InvalidInput(f"file path {shown} contains a backslash: use '/' between parts")
    if path.startswith("/") or (len(path) > 1 and path[1] == ":"):
        raise InvalidInput(f"file path {shown} is absolute: paths are relative to the version")
    parts = path.split("/")
    for part in parts:
        if part in ("", ".", ".."):
            raise InvalidInput(
                f"file path {shown} has an empty, '.' or '..' segment: use a plain relative path"
            )
    return path


def check_entries(entries: Iterable[FileEntry]) -> list[FileEntry]:
    """Validate a whole manifest: canonical paths, digests, no duplicates, no file/dir clash."""
    seen: dict[str, FileEntry] = {}
    for entry in entries:
        path = check_path(entry.path)
        if path in seen:
            raise InvalidInput(f"file path {path!r} appears twice in the manifest")
        if not isinstance(entry.digest, str) or not is_digest(entry.digest):
            raise InvalidInput(f"file {path!r}: digest {entry.digest!r} is not a sha256 hex digest")
        if not isinstance(entry.size, int) or entry.size < 0:
            raise InvalidInput(f"file {path!r}: size must be a non-negative integer")
        seen[path] = FileEntry(path, entry.digest, entry.size)
    check_layout(seen)
    return sorted(seen.values(), key=lambda e: e.path)


def check_layout(paths: Collection[str]) -> None:
    """A manifest's canonical paths: at least one, not too many, none both file and directory."""
    if not paths:
        raise InvalidInput("a version needs at least one file")
    if len(paths) > MAX_FILES:
        raise InvalidInput(f"a version may hold at most {MAX_FILES} files, not {len(paths)}")
    for path in paths:
        parent = path
        while "/" in parent:
            parent = parent.rsplit("/", 1)[0]
            if parent in paths:
                raise InvalidInput(f"file path {parent!r} is both a file and a directory")


_DIGEST = re.compile(r"[0-9a-f]{64}")


def is_digest(text: str) -> bool:
    return _DIGEST.fullmatch(text) is not None


def manifest_digest(entries: Iterable[FileEntry]) -> str:
    """The digest that names a version's content: sha256 of the canonical manifest JSON."""
    canonical = [e.to_dict() for e in sorted(entries, key=lambda e: e.path)]
    data = json.dumps(canonical, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(data).hexdigest()


FilesArg = (
    str | os.PathLike[str] | Mapping[str, str | os.PathLike[str]] | Sequence[str | os.PathLike[str]]
)


def collect_files(files: FilesArg) -> dict[str, Path]:
    """Turn what a caller passes as ``files`` into {manifest path: local file}, checked.

    ``files`` is a file (stored under its base name), a directory (its files, recursively,
    relative to it), a mapping of manifest path to local file, or a list of files and
    directories (each stored under its base name).
    """
    found = _collect(files)
    check_layout(found)
    return found


def _collect(files: FilesArg) -> dict[str, Path]:
    out: dict[str, Path] = {}
    if isinstance(files, Mapping):
        for name, local in files.items():
            path = Path(local)
            if not path.is_file():
                raise InvalidInput(
                    f"file {str(local)!r} for {name!r} does not exist or is not a file"
                )
            _add(out, {check_path(name): path})
        return out
    if isinstance(files, (str, os.PathLike)):
        if not os.fspath(files):
            raise InvalidInput("no files given: the path is empty")
        root = Path(files)
        if root.is_dir():
            out.update(_walk(root, prefix=""))
            return out
        return _add(out, _single(root))
    if not isinstance(files, Sequence) or isinstance(files, bytes):
        raise InvalidInput(
            "files must be a path, a directory, a list of them or a mapping of name to path,"
            f" not {type(files).__name__}"
        )
    if not files:
        raise InvalidInput("no files given")
    for item in files:
        if not os.fspath(item):
            raise InvalidInput("no files given: a path in the list is empty")
        root = Path(item)
        if root.is_dir():
            for name, path in _walk(root, prefix=root.resolve().name + "/").items():
                _add(out, {name: path})
        else:
            _add(out, _single(root))
    return out


def _single(path: Path) -> dict[str, Path]:
    if not path.is_file():
        raise InvalidInput(f"path {str(path)!r} does not exist or is not a file")
    return {check_path(path.name): path}


def _walk(root: Path, *, prefix: str) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for path in sorted(root.rglob("*")):
        if path.is_file():
            _add(found, {check_path(prefix + path.relative_to(root).as_posix()): path})
    if not found:
        raise InvalidInput(f"directory {str(root)!r} holds no files")
    return found


def _add(out: dict[str, Path], more: dict[str, Path]) -> dict[str, Path]:
    for name, path in more.items():
        if name in out:
            raise InvalidInput(f"two files would be stored as {name!r}: {out[name]} and {path}")
        out[name] = path
    return out
