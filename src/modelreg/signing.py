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

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from modelreg import audit, lineage, schema
from modelreg.db import now
from modelreg.errors import Conflict, InvalidInput, NotFound
from modelreg.refs import check_name

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )

    from modelreg.versions import Version

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


def _digest(document: bytes) -> str:
    return hashlib.sha256(document).hexdigest()


# -- stored signatures -------------------------------------------------------------------------

_sig, _trusted = schema.version_signatures, schema.trusted_keys


def add(
    conn: Connection, version: Version, key: Ed25519PrivateKey, *, actor: str
) -> dict[str, Any]:
    """Sign a version being created; call in the transaction that creates it, after its rows
    are written, so that the code and environment are read the way verification reads them."""
    document = canonical_document(version, lineage.of_version(conn, version))
    row = {
        "version_id": version.id,
        "key_id": key_id(key.public_key()),
        "algorithm": ALGORITHM,
        "signature": sign(key, document),
        "document_digest": _digest(document),
        "created_at": now(),
        "created_by": actor,
    }
    conn.execute(_sig.insert(), row)
    return row


def document_of(conn: Connection, version: Version) -> bytes:
    """The canonical document a signature of ``version`` covers, from its stored records."""
    return canonical_document(version, lineage.of_version(conn, version))


def attach(
    conn: Connection, version: Version, key: Ed25519PublicKey, signature: str, *, actor: str
) -> dict[str, Any]:
    """Store a signature made elsewhere (a remote client signs with a key the server never
    sees); refused unless it verifies against the version's records now."""
    document = document_of(conn, version)
    kid = key_id(key)
    if not verify(key, document, signature):
        raise InvalidInput(f"the signature by key {kid[:16]} does not match {version.ref}")
    q = sa.select(_sig.c.key_id).where(_sig.c.version_id == version.id, _sig.c.key_id == kid)
    if conn.execute(q).first() is not None:
        raise Conflict(f"{version.ref} already holds a signature by key {kid[:16]}")
    row = {
        "version_id": version.id,
        "key_id": kid,
        "algorithm": ALGORITHM,
        "signature": signature,
        "document_digest": _digest(document),
        "created_at": now(),
        "created_by": actor,
    }
    conn.execute(_sig.insert(), row)
    return {"version": version.ref, "key_id": kid}


def check(conn: Connection, version: Version, key: Ed25519PublicKey | None) -> dict[str, Any]:
    """Verify a stored version's signature by ``key``, or by any trusted key when None.

    The document is recomputed from the stored records, so an edited row fails. Returns
    ``{"version", "ok", "key_id", "reason"}``; ``reason`` says why it failed.
    """
    ref = version.ref

    def result(ok: bool, kid: str | None, reason: str = "") -> dict[str, Any]:
        return {"version": ref, "ok": ok, "key_id": kid, "reason": reason}

    q = sa.select(_sig).where(_sig.c.version_id == version.id)
    signatures = {r.key_id: r for r in conn.execute(q)}
    if not signatures:
        return result(False, None, f"{ref} is not signed")
    if key is not None:
        keys = [key]
    else:
        # The key id is recomputed from each trusted key, never read from its row.
        keys = [
            public_from_pem(r.public_key.encode(), f"trusted key {r.name!r}")
            for r in conn.execute(sa.select(_trusted).order_by(_trusted.c.name))
        ]
        if not keys:
            return result(False, None, "no public key was given and the registry trusts no keys")
    document = canonical_document(version, lineage.of_version(conn, version))
    failures = []
    for candidate in keys:
        kid = key_id(candidate)
        row = signatures.get(kid)
        if row is None:
            continue
        if verify(candidate, document, row.signature):
            return result(True, kid)
        why = f"the signature by key {kid[:16]} does not match"
        if row.document_digest != _digest(document):
            why += ": the version's files, params, metrics or lineage differ from what was signed"
        failures.append(result(False, kid, why))
    if failures:
        return failures[0]
    if key is not None:
        return result(False, None, f"{ref} is not signed by key {key_id(key)[:16]}")
    signers = ", ".join(kid[:16] for kid in sorted(signatures))
    return result(False, None, f"{ref} is not signed by any trusted key (signed by {signers})")


# -- trusted keys ------------------------------------------------------------------------------


def _trusted_dict(row: Any) -> dict[str, Any]:
    return {
        "name": row.name,
        "key_id": row.key_id,
        "public_key": row.public_key,
        "added_at": row.added_at,
        "added_by": row.added_by,
    }


def trust(conn: Connection, name: str, key: Ed25519PublicKey, *, actor: str) -> dict[str, Any]:
    """Add a public key to the registry's trusted keys under ``name`` (audited)."""
    check_name(name, kind="key name")
    kid = key_id(key)
    for column, value, what in ((_trusted.c.name, name, "name"), (_trusted.c.key_id, kid, "key")):
        found = conn.execute(sa.select(_trusted.c.name).where(column == value)).scalar()
        if found is not None:
            raise Conflict(f"the {what} is already trusted as {found!r}")
    row = {
        "key_id": kid,
        "name": name,
        "public_key": public_pem(key),
        "added_at": now(),
        "added_by": actor,
    }
    conn.execute(_trusted.insert(), row)
    audit.append(
        conn,
        actor=actor,
        action="key.trust",
        entity_type="key",
        entity_id=kid,
        entity=name,
        after={"name": name, "key_id": kid},
    )
    return {k: row[k] for k in ("name", "key_id", "public_key", "added_at", "added_by")}


def untrust(conn: Connection, name: str, *, actor: str) -> dict[str, Any]:
    """Remove a trusted key (audited); versions it signed no longer verify by trust alone."""
    check_name(name, kind="key name")
    row = conn.execute(sa.select(_trusted).where(_trusted.c.name == name)).first()
    if row is None:
        raise NotFound(f"no trusted key is named {name!r}")
    conn.execute(_trusted.delete().where(_trusted.c.key_id == row.key_id))
    audit.append(
        conn,
        actor=actor,
        action="key.untrust",
        entity_type="key",
        entity_id=row.key_id,
        entity=name,
        before={"name": name, "key_id": row.key_id},
    )
    return _trusted_dict(row)


def trusted(conn: Connection) -> list[dict[str, Any]]:
    """The trusted keys, by name."""
    return [_trusted_dict(r) for r in conn.execute(sa.select(_trusted).order_by(_trusted.c.name))]
