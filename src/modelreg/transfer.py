"""Writing a version's files to disk: only inside the target folder, each verified."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, BinaryIO

from modelreg.blobs import BlobStore, copy_hashing, hash_file
from modelreg.errors import Conflict, IntegrityError, InvalidInput
from modelreg.manifest import FileEntry, check_path

Progress = Callable[[int], None]


class _Counted:
    """A reader that reports how many bytes went through it."""

    def __init__(self, stream: BinaryIO, progress: Progress) -> None:
        self._stream = stream
        self._progress = progress

    def read(self, size: int = -1) -> bytes:
        chunk = self._stream.read(size)
        self._progress(len(chunk))
        return chunk


def _target(root: Path, entry: FileEntry) -> Path:
    check_path(entry.path)
    target = root / entry.path
    # A symlink inside root must not carry a write elsewhere.
    resolved_parent = target.parent.resolve()
    if resolved_parent != root and root not in resolved_parent.parents:
        raise InvalidInput(f"file {entry.path!r} would be written outside {root}")
    return target


def plan(root: Path, files: Sequence[FileEntry], *, force: bool) -> list[tuple[FileEntry, Path]]:
    """Return the files still to write; refuse before writing anything if one would clobber."""
    todo = []
    clashes = []
    for entry in files:
        target = _target(root, entry)
        if target.is_symlink() or (target.exists() and not target.is_file()):
            raise Conflict(f"{target} exists and is not a regular file")
        if target.exists():
            if target.stat().st_size == entry.size and hash_file(target)[0] == entry.digest:
                continue
            if not force:
                clashes.append(str(target))
                continue
        todo.append((entry, target))
    if clashes:
        shown = ", ".join(clashes[:5]) + (" …" if len(clashes) > 5 else "")
        raise Conflict(f"refusing to overwrite files that differ (use --force): {shown}")
    return todo


def write_verified(
    store: BlobStore, entry: FileEntry, target: Path, progress: Progress | None = None
) -> None:
    """Copy a blob to ``target`` through a temporary file; rename only when the digest matches."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".{target.name}.modelreg-{secrets.token_hex(4)}"
    try:
        with store.open(entry.digest) as src, open(tmp, "xb") as out:
            digest, _ = copy_hashing(_Counted(src, progress) if progress else src, out)
        if digest != entry.digest:
            raise IntegrityError(
                f"stored content of {entry.path!r} does not match its digest {entry.digest}:"
                " the blob is corrupt (run `modelreg fsck`)"
            )
        os.replace(tmp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


MARKER = "modelreg.json"


def marker_name(files: Sequence[FileEntry]) -> str:
    """Where the identity marker goes: ``modelreg.json``, unless the version holds one."""
    return "." + MARKER if any(f.path == MARKER for f in files) else MARKER


def pull(
    store: BlobStore,
    files: Sequence[FileEntry],
    dest: str | os.PathLike[str],
    *,
    force: bool = False,
    progress: Progress | None = None,
    marker: dict[str, Any] | None = None,
) -> Path:
    """Write ``files`` into ``dest``, then the identity ``marker`` (written last, so its
    presence means the pull completed) for a deployed service to log with predictions."""
    root = Path(dest)
    root.mkdir(parents=True, exist_ok=True)
    root = root.resolve()
    for entry, target in plan(root, files, force=force):
        write_verified(store, entry, target, progress)
    if marker is not None:
        target = root / marker_name(files)
        tmp = target.with_name(f".{target.name}.modelreg-{secrets.token_hex(4)}")
        tmp.write_text(json.dumps(marker, indent=2, sort_keys=True) + "\n")
        os.replace(tmp, target)
    return root
