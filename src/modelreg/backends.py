"""Storage named by a string: the blob store and the database of a registry that is not one
directory (a team server on PostgreSQL and S3, or a tool run against the same two).

    >>> blob_store("/srv/modelreg/blobs")  # doctest: +SKIP
    LocalBlobStore('/srv/modelreg/blobs')
    >>> database_url("postgres://reg@db.internal/registry")
    'postgresql+psycopg://reg@db.internal/registry'

``s3://bucket/prefix`` reaches the endpoint in ``$MODELREG_S3_ENDPOINT`` (else
``$AWS_ENDPOINT_URL``, else AWS itself); region and credentials come from the usual
``AWS_*`` variables and files, the region defaulting to us-east-1.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import BinaryIO, NoReturn

from modelreg.blobs import BlobStore, LocalBlobStore
from modelreg.db import normalise_url, safe_url
from modelreg.errors import InvalidInput

DATABASE_SCHEMES = ("postgresql://", "postgres://", "postgresql+psycopg://", "sqlite://")


def is_database_url(spec: str) -> bool:
    """True for the URLs ``database_url`` accepts as they are (not a file path)."""
    return spec.startswith(DATABASE_SCHEMES)


def database_url(spec: str | os.PathLike[str]) -> str:
    """A SQLAlchemy URL from a PostgreSQL or SQLite URL, or from the path of a SQLite file.

    PostgreSQL URLs are normalised to the psycopg 3 driver; a path becomes
    ``sqlite:////absolute/path``.
    """
    text = os.fspath(spec)
    if not isinstance(text, str) or not text.strip():
        raise InvalidInput("the database location is empty")
    if is_database_url(text):
        return normalise_url(text)
    if "://" in text:
        raise InvalidInput(
            f"{safe_url(text)!r} is not a database modelreg can use: give a postgresql:// URL,"
            " a sqlite:/// URL or the path of a SQLite file"
        )
    path = Path(text).expanduser().resolve()
    if path.is_dir():
        raise InvalidInput(
            f"{str(path)!r} is a directory: give the SQLite file itself (an embedded registry"
            " keeps it in registry.db)"
        )
    return f"sqlite:///{path}"


def blob_store(spec: str | os.PathLike[str]) -> BlobStore:
    """The blob store at a directory path or at ``s3://bucket[/prefix]``."""
    text = os.fspath(spec)
    if not isinstance(text, str) or not text.strip():
        raise InvalidInput("the blob store location is empty")
    if text.startswith("s3://"):
        return _s3_store(text)
    if "://" in text and not text.startswith("file://"):
        raise InvalidInput(
            f"{text!r} is not a blob store modelreg can use: give a directory or s3://bucket/prefix"
        )
    path = Path(text.removeprefix("file://")).expanduser().resolve()
    if path.exists() and not path.is_dir():
        raise InvalidInput(f"blob store location {str(path)!r} is not a directory")
    return LocalBlobStore(path)


def _s3_store(spec: str) -> BlobStore:
    from modelreg.s3 import S3BlobStore

    bucket, _, prefix = spec.removeprefix("s3://").partition("/")
    if not bucket:
        raise InvalidInput(f"{spec!r} names no bucket: give s3://bucket or s3://bucket/prefix")
    endpoint = os.environ.get("MODELREG_S3_ENDPOINT") or os.environ.get("AWS_ENDPOINT_URL")
    return S3BlobStore(bucket, prefix, endpoint_url=endpoint or None)


class MissingBlobStore:
    """The blob store of a registry opened by its database URL alone: any use says how to
    give one. Whatever needs only the database (tokens, search, audit) still works."""

    def __init__(self, db_url: str) -> None:
        self.db_url = db_url

    def __repr__(self) -> str:
        return f"MissingBlobStore({safe_url(self.db_url)!r})"

    def _refuse(self) -> NoReturn:
        raise InvalidInput(
            f"the registry at {safe_url(self.db_url)} was opened by its database URL without"
            " a blob store: set MODELREG_BLOBS to its directory or s3://bucket/prefix"
        )

    def put(self, stream: BinaryIO, *, digest: str | None = None) -> tuple[str, int]:
        self._refuse()

    def open(self, digest: str, *, offset: int = 0) -> BinaryIO:
        self._refuse()

    def exists(self, digest: str) -> bool:
        self._refuse()

    def refresh(self, digest: str) -> bool:
        self._refuse()

    def size(self, digest: str) -> int:
        self._refuse()

    def modified(self, digest: str) -> float:
        self._refuse()

    def delete(self, digest: str) -> None:
        self._refuse()

    def __iter__(self) -> Iterator[str]:
        self._refuse()

    def check(self) -> None:
        self._refuse()

    def put_pack(self, name: str, parts: Sequence[bytes]) -> None:
        self._refuse()

    def read_pack(self, name: str, start: int, length: int) -> bytes:
        self._refuse()

    def delete_pack(self, name: str) -> None:
        self._refuse()

    def packs(self) -> Iterator[tuple[str, float]]:
        self._refuse()
