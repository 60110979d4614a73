"""Where a registry is, and ``connect``, the one way in: a directory is an embedded registry,
an ``http(s)://`` URL a server, a database URL that database."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

from modelreg.errors import InvalidInput
from modelreg.registry import SCRATCH_REGISTRY, Registry

DEFAULT_HOME = "~/.modelreg"


def default_uri() -> str:
    return os.environ.get("MODELREG_URI") or str(Path(DEFAULT_HOME).expanduser())


def connect(uri: str | os.PathLike[str] | None = None, *, actor: str | None = None) -> Registry:
    """Open a registry.

    With no argument: ``$MODELREG_URI``, else ``~/.modelreg`` (created on first use). A
    directory is an embedded registry (SQLite and blobs inside it); an ``http(s)://`` URL
    is a ``modelreg server``, reached with the token in ``$MODELREG_TOKEN``. A database URL
    (``postgresql://...``, ``sqlite:///...``) opens that database directly, with the blob
    store in ``$MODELREG_BLOBS`` (a directory or ``s3://bucket/prefix``); without it, only
    what needs no blobs works (tokens, search, audit).

    During ``modelreg reproduce --run`` (``$MODELREG_SCRATCH_REGISTRY`` set), every call
    opens the re-run's scratch registry, saying so on stderr when it was given another.

    >>> reg = connect("/tmp/my-registry")  # doctest: +SKIP
    """
    target = str(uri) if uri is not None else default_uri()
    scratch = os.environ.get(SCRATCH_REGISTRY)
    if scratch and target != scratch:
        from modelreg.capture import redact

        shown = redact([target])[0]  # a URL's password is not printed
        print(
            f"modelreg: reproducing: connect({shown!r}) opens the scratch registry {scratch}"
            " instead, so that the re-run writes into no real registry",
            file=sys.stderr,
        )
        target = scratch
    if not target.strip():
        raise InvalidInput("registry location is empty")
    if target[:8].lower().startswith(("http://", "https://")):
        from modelreg.remote import RemoteRegistry

        return RemoteRegistry(target, actor=actor)
    from modelreg import backends
    from modelreg.local import LocalRegistry

    if backends.is_database_url(target):
        url = backends.database_url(target)
        blobs = os.environ.get("MODELREG_BLOBS")
        store = backends.blob_store(blobs) if blobs else backends.MissingBlobStore(url)
        return LocalRegistry(db_url=url, blobs=store, actor=actor)
    scheme = _SCHEME.match(target)
    if scheme and scheme[1].lower() != "file":
        # A mistyped URL (htp://, ftp://) must not become a folder named after it.
        raise InvalidInput(
            f"registry {target!r} has an unknown scheme {scheme[1]!r}: give a directory,"
            " http(s):// for a server, or a postgresql:// or sqlite:/// database URL"
        )
    return LocalRegistry(target.removeprefix("file://"), actor=actor)


_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")
