"""Tampering with a signed version behind the registry's back: an edited record fails the
signature, because verification recomputes the signed document from the stored rows; an
edited blob still matches the signature but fails the pull's digest check. Either way the
pull raises IntegrityError and writes no file."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

import modelreg
from modelreg import IntegrityError
from modelreg.signing import create_keys


@pytest.fixture
def signed(tmp_path, monkeypatch) -> dict[str, Path | str]:
    """A registry holding churn/1, signed; its root, key paths, version id and file digest."""
    monkeypatch.chdir(tmp_path)
    Path("data.csv").write_text("id,y\n1,0\n")
    Path("model.bin").write_text("weights")
    private, public = tmp_path / "release.key", tmp_path / "release.pub"
    create_keys(private, public)
    root = tmp_path / "reg"
    with modelreg.connect(root, actor="alice") as reg:
        v = reg.register(
            "churn",
            "model.bin",
            params={"C": "0.1"},
            metrics={"accuracy": 0.9},
            datasets=["data.csv"],
            sign=private,
        )
        assert reg.verify(v.ref, public_key=public)["ok"]
    return {
        "root": root,
        "private": private,
        "public": public,
        "id": v.id,
        "digest": v.files[0].digest,
    }


def sql(root: Path, statement: str, *args: object) -> None:
    with closing(sqlite3.connect(root / "registry.db")) as conn, conn:
        assert conn.execute(statement, args).rowcount == 1


def check_refused(signed: dict, dest: Path, match: str) -> None:
    with modelreg.connect(signed["root"]) as reg:
        result = reg.verify("churn/1", public_key=signed["public"])
        assert not result["ok"]
        assert match in result["reason"]
        with pytest.raises(IntegrityError, match=r"churn/1 failed signature verification"):
            reg.pull("churn/1", dest, verify_with=signed["public"])
    assert not dest.exists() or not any(dest.iterdir())


OTHER_DIGEST = "0" * 64

TAMPERING = {
    "file digest": ("UPDATE version_files SET digest = ? WHERE version_id = ?", OTHER_DIGEST),
    "file size": ("UPDATE version_files SET size = ? WHERE version_id = ?", 8),
    "param value": ("UPDATE version_params SET value = ? WHERE version_id = ?", "10"),
    "metric value": ("UPDATE version_metrics SET value = ? WHERE version_id = ?", 0.99),
    "manifest digest": ("UPDATE versions SET manifest_digest = ? WHERE id = ?", OTHER_DIGEST),
    "environment": ("UPDATE versions SET environment_digest = ? WHERE id = ?", None),
}


@pytest.mark.parametrize("what", TAMPERING)
def test_an_edited_record_fails_the_signature_and_the_pull(signed, tmp_path, what):
    statement, value = TAMPERING[what]
    sql(signed["root"], statement, value, signed["id"])
    check_refused(signed, tmp_path / "out", "differ from what was signed")


def test_a_swapped_dataset_fails_the_signature(signed, tmp_path):
    Path("other.csv").write_text("id,y\n2,1\n")
    with modelreg.connect(signed["root"]) as reg:
        reg.register("unrelated", "model.bin", datasets=["other.csv"])
    sql(
        signed["root"],
        "UPDATE version_datasets SET dataset_id ="
        " (SELECT id FROM datasets WHERE name = 'other.csv') WHERE version_id = ?",
        signed["id"],
    )
    check_refused(signed, tmp_path / "out", "differ from what was signed")


def test_an_edited_signature_fails(signed, tmp_path):
    with closing(sqlite3.connect(signed["root"] / "registry.db")) as conn:
        (text,) = conn.execute("SELECT signature FROM version_signatures").fetchone()
    forged = ("B" if text[0] == "A" else "A") + text[1:]
    sql(signed["root"], "UPDATE version_signatures SET signature = ?", forged)
    check_refused(signed, tmp_path / "out", "does not match")


def test_an_edited_blob_matches_the_signature_but_fails_the_pull(signed, tmp_path):
    digest = signed["digest"]
    (signed["root"] / "blobs" / "sha256" / digest[:2] / digest).write_text("tampered")
    dest = tmp_path / "out"
    with modelreg.connect(signed["root"]) as reg:
        assert reg.verify("churn/1", public_key=signed["public"])["ok"]
        with pytest.raises(IntegrityError, match="does not match its digest"):
            reg.pull("churn/1", dest, verify_with=signed["public"])
    assert not (dest / "model.bin").exists()
    assert not dest.exists() or [p.name for p in dest.iterdir()] == []


def test_a_trusted_key_swapped_in_the_database_does_not_vouch_for_the_version(signed, tmp_path):
    """Trust checks the key itself: a row whose key id names the signer but whose public key
    is another key verifies nothing."""
    other = tmp_path / "other.pub"
    create_keys(tmp_path / "other.key", other)
    with modelreg.connect(signed["root"]) as reg:
        reg.trust_key("release", signed["public"])
        assert reg.verify("churn/1")["ok"]
    sql(signed["root"], "UPDATE trusted_keys SET public_key = ?", other.read_text())
    with modelreg.connect(signed["root"]) as reg:
        result = reg.verify("churn/1")
        assert not result["ok"]
        assert "not signed by any trusted key" in result["reason"]
        with pytest.raises(IntegrityError):
            reg.pull("churn/1", tmp_path / "out", verify=True)
    assert not (tmp_path / "out").exists()
