"""Signatures in the store: a version signed in the transaction that creates it, a signature
made elsewhere attached once it verifies, checks against trusted keys, and the trusted keys.

The keys and the canonical document they sign are in ``signing`` (pure: the client signs
there without loading SQL).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from modelreg import audit, lineage, schema
from modelreg.db import now
from modelreg.errors import Conflict, InvalidInput, NotFound
from modelreg.records import SignatureAdded, SignatureCheck, TrustedKey
from modelreg.refs import check_name
from modelreg.signing import (
    ALGORITHM,
    canonical_document,
    digest_of,
    key_id,
    public_from_pem,
    public_pem,
    sign,
    verify,
)

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )

    from modelreg.records import Version


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
        "document_digest": digest_of(document),
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
) -> SignatureAdded:
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
        "document_digest": digest_of(document),
        "created_at": now(),
        "created_by": actor,
    }
    conn.execute(_sig.insert(), row)
    return {"version": version.ref, "key_id": kid}


def check(conn: Connection, version: Version, key: Ed25519PublicKey | None) -> SignatureCheck:
    """Verify a stored version's signature by ``key``, or by any trusted key when None.

    The document is recomputed from the stored records, so an edited row fails. Returns
    ``{"version", "ok", "key_id", "reason"}``; ``reason`` says why it failed.
    """
    ref = version.ref

    def result(ok: bool, kid: str | None, reason: str = "") -> SignatureCheck:
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
        if row.document_digest != digest_of(document):
            why += ": the version's files, params, metrics or lineage differ from what was signed"
        failures.append(result(False, kid, why))
    if failures:
        return failures[0]
    if key is not None:
        return result(False, None, f"{ref} is not signed by key {key_id(key)[:16]}")
    signers = ", ".join(kid[:16] for kid in sorted(signatures))
    return result(False, None, f"{ref} is not signed by any trusted key (signed by {signers})")


# -- trusted keys ------------------------------------------------------------------------------


def _trusted_dict(row: Any) -> TrustedKey:
    return {
        "name": row.name,
        "key_id": row.key_id,
        "public_key": row.public_key,
        "added_at": row.added_at,
        "added_by": row.added_by,
    }


def trust(conn: Connection, name: str, key: Ed25519PublicKey, *, actor: str) -> TrustedKey:
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
    return {
        "name": row["name"],
        "key_id": row["key_id"],
        "public_key": row["public_key"],
        "added_at": row["added_at"],
        "added_by": row["added_by"],
    }


def untrust(conn: Connection, name: str, *, actor: str) -> TrustedKey:
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


def trusted(conn: Connection) -> list[TrustedKey]:
    """The trusted keys, by name."""
    return [_trusted_dict(r) for r in conn.execute(sa.select(_trusted).order_by(_trusted.c.name))]
