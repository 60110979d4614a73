"""Writing a version's files to disk: only inside the target folder, each verified."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import uuid
import warnings
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol

from modelreg.blobs import copy_hashing, hash_file
from modelreg.errors import Conflict, IntegrityError, InvalidInput, RetiredDataWarning
from modelreg.manifest import FileEntry, check_path
from modelreg.refs import is_uuid

if TYPE_CHECKING:
    from modelreg.versions import Version

Progress = Callable[[int], None]
RETIRED = "data-retired"


class BlobSource(Protocol):
    """Where a pull reads blobs from: a blob store, or a server."""

    def open(self, digest: str) -> BinaryIO: ...


def check_flags(version: Version, *, strict: bool) -> None:
    """Warn about a version flagged data-retired, or with ``strict`` refuse to pull it."""
    if RETIRED not in version.flags:
        return
    message = (
        f"{version.ref} is flagged data-retired: data it depends on was retired"
        f" (see `modelreg card {version.ref}` or dataset impact)"
    )
    if strict:
        raise Conflict(f"{message}; refusing to pull it in strict mode")
    warnings.warn(RetiredDataWarning(message), stacklevel=3)


def marker_of(version: Version, registry: str) -> dict[str, Any]:
    """The identity a pull writes beside the files (``modelreg.json``), for traces."""
    return {
        "id": version.id,
        "ref": version.ref,
        "model": version.model,
        "number": version.number,
        "manifest_digest": version.manifest_digest,
        "registry": registry,
        # What this pull wrote: the next pull of another version into the same folder
        # removes the files this one holds and that one does not, if they are unchanged.
        "files": [{"path": f.path, "digest": f.digest, "size": f.size} for f in version.files],
    }


class Counted:
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
    # Every folder on the way must be a folder (or not exist yet), not a file.
    for parent in reversed(target.relative_to(root).parents[:-1]):
        folder = root / parent
        if folder.exists() and not folder.is_dir():
            raise Conflict(f"{folder} is in the way: {entry.path!r} needs a folder there")
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


def stage_verified(
    store: BlobSource, entry: FileEntry, target: Path, progress: Progress | None = None
) -> Path:
    """Copy a blob into a temporary file beside ``target``; return it once its digest matches."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".{target.name}.modelreg-{secrets.token_hex(4)}"
    try:
        with store.open(entry.digest) as src, open(tmp, "xb") as out:
            digest, _ = copy_hashing(Counted(src, progress) if progress else src, out)
        if digest != entry.digest:
            raise IntegrityError(
                f"stored content of {entry.path!r} does not match its digest {entry.digest}:"
                " the blob is corrupt (run `modelreg fsck`)"
            )
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    return tmp


MARKER = "modelreg.json"
MAX_MARKER_BYTES = 64 * 1024


def marker_name(files: Sequence[FileEntry]) -> str:
    """Where the identity marker goes: ``modelreg.json``, unless the version holds one."""
    return "." + MARKER if any(f.path == MARKER for f in files) else MARKER


def pull(
    store: BlobSource,
    files: Sequence[FileEntry],
    dest: str | os.PathLike[str],
    *,
    force: bool = False,
    progress: Progress | None = None,
    marker: dict[str, Any] | None = None,
    workers: int = 1,
) -> Path:
    """Write ``files`` into ``dest``, then the identity ``marker`` (written last, so its
    presence means the pull completed) for a deployed service to log with predictions.

    Every file is staged and verified first and only then renamed into place, so a failure
    (a corrupt or missing blob, a full disk) leaves no new file behind.
    """
    root = Path(dest)
    if root.exists() and not root.is_dir():
        raise Conflict(f"{root} exists and is not a directory")
    created = not root.exists()
    root.mkdir(parents=True, exist_ok=True)
    root = root.resolve()
    staged: list[tuple[Path, Path]] = []
    try:
        todo = plan(root, files, force=force)
        if workers > 1 and len(todo) > 1:
            # Several files at once (a server's downloads overlap); every one is staged or
            # removed before the error, if any, is raised.
            with ThreadPoolExecutor(max_workers=workers) as pool:
                futures = [
                    (pool.submit(stage_verified, store, entry, target, progress), target)
                    for entry, target in todo
                ]
            errors = [f.exception() for f, _ in futures if f.exception() is not None]
            staged = [(f.result(), t) for f, t in futures if f.exception() is None]
            if errors:
                raise errors[0]  # type: ignore[misc]
        else:
            for entry, target in todo:
                staged.append((stage_verified(store, entry, target, progress), target))
    except BaseException:
        for tmp, _ in staged:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        if created:
            _remove_empty_tree(root)
        raise
    previous = _previous_pull(root, marker)
    if previous is not None:
        # The folder no longer holds that version from here on: its marker goes first.
        previous[0].unlink()
    for tmp, target in staged:
        os.replace(tmp, target)
    if previous is not None:
        for leftover in _leftovers(root, files, previous[1]):
            leftover.unlink()
            _remove_empty_parents(leftover, root)
    if marker is not None:
        target = root / marker_name(files)
        tmp = target.with_name(f".{target.name}.modelreg-{secrets.token_hex(4)}")
        tmp.write_text(json.dumps(marker, indent=2, sort_keys=True) + "\n")
        os.replace(tmp, target)
    return root


def _previous_pull(root: Path, marker: dict[str, Any] | None) -> tuple[Path, dict[str, Any]] | None:
    """The marker an earlier pull of another version left in ``root``, and what it says."""
    if marker is None:
        return None
    for name in ("." + MARKER, MARKER):  # a version that holds a modelreg.json uses .modelreg.json
        path = root / name
        if path.is_symlink() or not path.is_file():
            continue
        try:
            found = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None  # not a marker modelreg wrote: leave the folder's files alone
        if not isinstance(found, dict) or "id" not in found or "manifest_digest" not in found:
            return None
        return None if found["id"] == marker.get("id") else (path, found)
    return None


def _leftovers(root: Path, files: Sequence[FileEntry], previous: dict[str, Any]) -> list[Path]:
    """The files the earlier pull wrote that this version does not hold and that nobody
    changed since (same size and digest): removed, so the folder holds one version."""
    holds = {f.path for f in files}
    found = []
    listed = previous.get("files")
    for item in listed if isinstance(listed, list) else []:
        try:
            path, digest, size = check_path(item["path"]), str(item["digest"]), int(item["size"])
        except (InvalidInput, KeyError, TypeError, ValueError):
            continue
        target = root / path
        if path in holds or target.is_symlink() or not target.is_file():
            continue
        if root not in target.resolve().parents:
            continue
        if target.stat().st_size == size and hash_file(target)[0] == digest:
            found.append(target)
    return found


def _remove_empty_parents(path: Path, root: Path) -> None:
    for folder in path.parents:
        if folder == root or root not in folder.parents:
            return
        try:
            folder.rmdir()
        except OSError:
            return


def _remove_empty_tree(root: Path) -> None:
    """Remove the folders a failed pull created, if they hold nothing."""
    for folder in sorted((p for p in root.rglob("*") if p.is_dir()), reverse=True):
        with contextlib.suppress(OSError):
            folder.rmdir()
    with contextlib.suppress(OSError):
        root.rmdir()


# -- tracing a deployed copy back to its version -------------------------------------------


def trace_target(
    target: str | os.PathLike[str] | Mapping[str, Any],
) -> tuple[str, dict[str, Any] | None]:
    """The version id to trace and the marker it came from (None for a bare UUID).

    ``target`` is a version UUID, a ``modelreg.json`` file, a directory a version was
    pulled into, or the content of such a file (as a remote client sends it).
    """
    if isinstance(target, Mapping):
        found = target.get("id")
        if not isinstance(found, str) or not is_uuid(found.strip().lower()):
            raise InvalidInput(f"a {MARKER} marker holds the version UUID as 'id'")
        return str(uuid.UUID(found.strip())), dict(target)
    if isinstance(target, str) and is_uuid(target.strip().lower()):
        return str(uuid.UUID(target.strip())), None
    if not isinstance(target, (str, os.PathLike)) or not os.fspath(target).strip():
        raise InvalidInput(
            f"trace needs a version UUID or the path of a {MARKER} file, not {target!r}"
        )
    path = Path(target)
    if path.is_dir():
        path = _marker_in(path)
    elif not path.is_file():
        raise InvalidInput(
            f"{os.fspath(target)!r} is neither a version UUID nor a {MARKER} file or a"
            " directory holding one"
        )
    marker = read_marker(path)
    return marker["id"], marker


def _marker_in(directory: Path) -> Path:
    # pull writes .modelreg.json only when the version holds its own modelreg.json (which
    # may even be another version's marker, registered along with the files): prefer it.
    for name in ("." + MARKER, MARKER):
        if (directory / name).is_file():
            return directory / name
    raise InvalidInput(f"no {MARKER} in {str(directory)!r}: is it a directory made by pull?")


def read_marker(path: Path) -> dict[str, Any]:
    """A ``modelreg.json`` written by pull, checked; ``path`` is added to what it holds."""
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_MARKER_BYTES + 1)
        if len(data) > MAX_MARKER_BYTES:
            raise InvalidInput(f"{str(path)!r} is too large to be a {MARKER} file")
        marker = json.loads(data.decode("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise InvalidInput(f"cannot read {str(path)!r} as a {MARKER} file: {reason}") from None
    found = marker.get("id") if isinstance(marker, dict) else None
    if not isinstance(found, str) or not is_uuid(found.strip().lower()):
        raise InvalidInput(f"{str(path)!r} is not a {MARKER} file: it holds no version UUID")
    assert isinstance(marker, dict)
    return {**marker, "id": str(uuid.UUID(found.strip())), "path": str(path.resolve())}
