"""Signed versions: Ed25519 signatures over a version's canonical document.

A signature covers what a version is made of, which never changes: its files and their
digests, params, registered metrics, datasets, parents, code and environment. It leaves out
the version's id and number, so a client can sign before the registry assigns them, and
everything that may change (tags, aliases, description, flags). Verification recomputes the
document from the stored records, never from what the signer sent, so an edited row fails it;
a pull then checks every file against its digest, so an edited blob fails too.

    from modelreg import signing
    signing.create_keys("release.key", "release.pub")
    reg.register("churn", "model.bin", sign="release.key")
    reg.verify("churn/1", public_key="release.pub")  # {"ok": True, "key_id": ..., ...}

``cryptography`` is imported inside the functions that use it, so ``import modelreg`` and the
CLI's start-up do not pay for it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

from modelreg.errors import InvalidInput

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )

    from modelreg.records import Version

    PrivateKeyArg: TypeAlias = str | os.PathLike[str] | Ed25519PrivateKey
    PublicKeyArg: TypeAlias = str | os.PathLike[str] | Ed25519PublicKey
else:  # cryptography is imported lazily; annotations that name these still evaluate
    PrivateKeyArg = PublicKeyArg = Any

ALGORITHM = "ed25519"
# Names what the signed bytes are, so a signature over a document can never be taken for a
# signature over some other JSON the same key signed.
FORMAT = "modelreg.version-signature/1"


# -- keys ------------------------------------------------------------------------------------


def create_keys(private_path: str | os.PathLike[str], public_path: str | os.PathLike[str]) -> str:
    """Write a new Ed25519 key pair as PEM files (the private one readable by its owner only)
    and return its key id. Existing files are never overwritten."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    private, public = Path(private_path), Path(public_path)
    if private.absolute() == public.absolute():
        raise InvalidInput("the private and the public key need two different files")
    for path in (private, public):
        if path.exists() or path.is_symlink():
            raise InvalidInput(f"{path} already exists: refusing to overwrite a key file")
    key = Ed25519PrivateKey.generate()
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    _write_new(private, private_pem, 0o600)
    try:
        _write_new(public, public_pem, 0o644)
    except BaseException:
        private.unlink(missing_ok=True)
        raise
    return key_id(key.public_key())


def _write_new(path: Path, data: bytes, mode: int) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # O_EXCL: a file that appeared since the check above is not overwritten either.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError:
        raise InvalidInput(f"{path} already exists: refusing to overwrite a key file") from None
    except OSError as exc:
        raise InvalidInput(f"cannot write key file {path}: {exc.strerror}") from None
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def _read(path: str | os.PathLike[str], kind: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise InvalidInput(f"cannot read {kind} {os.fspath(path)!r}: {exc.strerror}") from None


def load_private(path: str | os.PathLike[str]) -> Ed25519PrivateKey:
    """An Ed25519 private key from an unencrypted PEM file."""
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    data = _read(path, "private key")
    shown = repr(os.fspath(path))
    try:
        key = load_pem_private_key(data, password=None)
    except TypeError:
        raise InvalidInput(
            f"private key {shown} is encrypted: modelreg reads unencrypted PEM keys"
            " (protect the file with mode 0600 instead)"
        ) from None
    except (ValueError, UnsupportedAlgorithm):
        hint = " (it holds a public key: sign with the private one)" if b"PUBLIC" in data else ""
        raise InvalidInput(f"{shown} is not a PEM private key{hint}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise InvalidInput(f"private key {shown} is not an Ed25519 key")
    return key


def load_public(path: str | os.PathLike[str]) -> Ed25519PublicKey:
    """An Ed25519 public key from a PEM file."""
    return public_from_pem(_read(path, "public key"), repr(os.fspath(path)))


def public_from_pem(data: bytes, shown: str) -> Ed25519PublicKey:
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    try:
        key = load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm):
        hint = " (it holds a private key: give the public one)" if b"PRIVATE" in data else ""
        raise InvalidInput(f"{shown} is not a PEM public key{hint}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise InvalidInput(f"public key {shown} is not an Ed25519 key")
    return key


def private_key(value: PrivateKeyArg) -> Ed25519PrivateKey:
    """A private key given as a key object or the path of its PEM file."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    if isinstance(value, Ed25519PrivateKey):
        return value
    if isinstance(value, (str, os.PathLike)) and os.fspath(value):
        return load_private(value)
    raise InvalidInput(f"a signing key must be an Ed25519 private key or a path, not {value!r}")


def public_key(value: PublicKeyArg) -> Ed25519PublicKey:
    """A public key given as a key object or the path of its PEM file."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    if isinstance(value, Ed25519PublicKey):
        return value
    if isinstance(value, (str, os.PathLike)) and os.fspath(value):
        return load_public(value)
    raise InvalidInput(f"a public key must be an Ed25519 public key or a path, not {value!r}")


def key_id(key: Ed25519PublicKey) -> str:
    """sha256 hex of the raw 32-byte public key."""
    from cryptography.hazmat.primitives import serialization

    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


def public_pem(key: Ed25519PublicKey) -> str:
    from cryptography.hazmat.primitives import serialization

    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")


# -- the signed document -----------------------------------------------------------------------


def canonical_document(version: Version, lineage: Mapping[str, Any]) -> bytes:
    """The bytes a signature covers: canonical JSON (sorted keys, no spaces) of what the version
    is made of. ``lineage`` supplies ``code`` and ``environment_digest`` as
    :func:`modelreg.lineage.of_version` reports them (the run's, for a version made in a run)."""
    code = lineage.get("code") or {}
    uses = {(d.name, d.digest, d.role) for d in version.datasets}
    document = {
        "format": FORMAT,
        "model": version.model,
        "files": [f.to_dict() for f in sorted(version.files, key=lambda f: f.path)],
        "manifest_digest": version.manifest_digest,
        "params": dict(version.params),
        "metrics": dict(version.metrics),
        "datasets": [{"name": n, "digest": d, "role": r} for n, d, r in sorted(uses)],
        "parents": sorted(version.parents),
        "code": {
            "repository": code.get("repository"),
            "commit": code.get("commit"),
            "diff_digest": code.get("diff_digest"),
        },
        "environment_digest": lineage.get("environment_digest"),
    }
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return text.encode("utf-8")


def sign(key: Ed25519PrivateKey, document: bytes) -> str:
    """The base64 Ed25519 signature of ``document``."""
    return base64.b64encode(key.sign(document)).decode("ascii")


def verify(key: Ed25519PublicKey, document: bytes, signature: str) -> bool:
    """True when ``signature`` (base64) is ``key``'s signature of ``document``."""
    from cryptography.exceptions import InvalidSignature

    try:
        raw = base64.b64decode(signature, validate=True)
        key.verify(raw, document)
    except (InvalidSignature, binascii.Error, ValueError):
        return False
    return True


def digest_of(document: bytes) -> str:
    return hashlib.sha256(document).hexdigest()
