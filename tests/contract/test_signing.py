"""Signed versions: a version signed with an Ed25519 key at registration verifies by its
public key or by the registry's trusted keys; a pull that asks for verification refuses an
unsigned version, or one signed by another key, before it writes any file."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from modelreg import Conflict, IntegrityError, InvalidInput, NotFound
from modelreg.signing import create_keys, load_private, load_public


@pytest.fixture
def keys(tmp_path: Path) -> dict[str, Path | str]:
    """A key pair in ``tmp_path/keys``: paths ``private`` and ``public``, and its ``key_id``."""
    private, public = tmp_path / "keys" / "release.key", tmp_path / "keys" / "release.pub"
    kid = create_keys(private, public)
    return {"private": private, "public": public, "key_id": kid}


@pytest.fixture
def other_keys(tmp_path: Path) -> dict[str, Path | str]:
    private, public = tmp_path / "keys" / "other.key", tmp_path / "keys" / "other.pub"
    return {"private": private, "public": public, "key_id": create_keys(private, public)}


def nothing_written(dest: Path) -> bool:
    return not dest.exists() or not any(dest.iterdir())


def test_a_signed_version_verifies_with_its_public_key(registry, write, keys):
    write("model.bin", "weights")
    v = registry.register("churn", "model.bin", params={"C": 0.1}, sign=keys["private"])

    result = registry.verify(v.ref, public_key=keys["public"])

    assert (result["ok"], result["key_id"], result["reason"]) == (True, keys["key_id"], "")
    assert len(keys["key_id"]) == 64
    [signature] = registry.lineage(v.ref)["signatures"]
    assert signature["key_id"] == keys["key_id"]
    assert signature["algorithm"] == "ed25519"
    assert registry.audit(action="version.create")[0].after["signed_by"] == keys["key_id"]


def test_a_key_object_works_as_well_as_a_key_file(registry, write, keys):
    write("model.bin", "weights")
    v = registry.register("churn", "model.bin", sign=load_private(keys["private"]))
    assert registry.verify(v.ref, public_key=load_public(keys["public"]))["ok"]


def test_a_signed_version_pulls_with_verification(registry, write, keys, tmp_path):
    write("model.bin", "weights")
    v = registry.register("churn", "model.bin", sign=keys["private"])

    registry.pull(v.ref, tmp_path / "out", verify_with=keys["public"])
    registry.get(v.ref).pull(tmp_path / "again", verify_with=keys["public"])

    assert (tmp_path / "out" / "model.bin").read_text() == "weights"
    assert (tmp_path / "again" / "model.bin").read_text() == "weights"


def test_trusted_keys_verify_without_naming_a_key(registry, write, keys, tmp_path):
    write("model.bin", "weights")
    v = registry.register("churn", "model.bin", sign=keys["private"])
    added = registry.trust_key("release", keys["public"])

    assert added["key_id"] == keys["key_id"]
    assert [(k["name"], k["key_id"]) for k in registry.trusted_keys()] == [
        ("release", keys["key_id"])
    ]
    assert registry.verify(v.ref) == {
        "version": v.ref,
        "ok": True,
        "key_id": keys["key_id"],
        "reason": "",
    }
    registry.pull(v.ref, tmp_path / "out", verify=True)
    assert (tmp_path / "out" / "model.bin").read_text() == "weights"


def test_trusting_and_untrusting_keys_is_audited(registry, write, keys, tmp_path):
    write("model.bin", "weights")
    v = registry.register("churn", "model.bin", sign=keys["private"])
    registry.trust_key("release", keys["public"])
    registry.untrust_key("release")

    assert registry.trusted_keys() == []
    assert not registry.verify(v.ref)["ok"]
    with pytest.raises(IntegrityError, match="churn/1"):
        registry.pull(v.ref, tmp_path / "out", verify=True)
    assert nothing_written(tmp_path / "out")
    trusted, untrusted = registry.audit(action="key.trust"), registry.audit(action="key.untrust")
    assert trusted[0].entity == untrusted[0].entity == "release"
    assert trusted[0].after == {"name": "release", "key_id": keys["key_id"]}
    assert untrusted[0].before == {"name": "release", "key_id": keys["key_id"]}
    assert registry.verify_audit().ok


def test_a_key_is_trusted_once_under_one_name(registry, keys):
    registry.trust_key("release", keys["public"])
    with pytest.raises(Conflict):
        registry.trust_key("release-again", keys["public"])
    with pytest.raises(NotFound):
        registry.untrust_key("nobody")
    with pytest.raises(InvalidInput):
        registry.trust_key("Release Key", keys["public"])
    assert [k["name"] for k in registry.trusted_keys()] == ["release"]


def test_an_unsigned_version_fails_and_is_not_pulled(registry, write, keys, tmp_path):
    write("model.bin", "weights")
    v = registry.register("churn", "model.bin")
    registry.trust_key("release", keys["public"])

    result = registry.verify(v.ref, public_key=keys["public"])
    assert (result["ok"], result["key_id"]) == (False, None)
    assert "not signed" in result["reason"]
    assert not registry.verify(v.ref)["ok"]
    assert registry.lineage(v.ref)["signatures"] == []
    for options in ({"verify": True}, {"verify_with": keys["public"]}):
        with pytest.raises(IntegrityError, match=r"churn/1.*not signed"):
            registry.pull(v.ref, tmp_path / "out", **options)
        assert nothing_written(tmp_path / "out")


def test_without_trusted_keys_nothing_verifies_by_trust(registry, write, keys):
    write("model.bin", "weights")
    v = registry.register("churn", "model.bin", sign=keys["private"])
    result = registry.verify(v.ref)
    assert not result["ok"]
    assert "trusts no keys" in result["reason"]


def test_a_different_key_fails(registry, write, keys, other_keys, tmp_path):
    write("model.bin", "weights")
    v = registry.register("churn", "model.bin", sign=keys["private"])
    registry.trust_key("other", other_keys["public"])

    result = registry.verify(v.ref, public_key=other_keys["public"])
    assert not result["ok"]
    assert other_keys["key_id"][:16] in result["reason"]
    assert "not signed by any trusted key" in registry.verify(v.ref)["reason"]
    with pytest.raises(IntegrityError, match="churn/1"):
        registry.pull(v.ref, tmp_path / "out", verify_with=other_keys["public"])
    assert nothing_written(tmp_path / "out")


def test_what_may_change_does_not_break_the_signature(registry, write, keys):
    write("model.bin", "weights")
    v = registry.register("churn", "model.bin", tags={"team": "growth"}, sign=keys["private"])
    registry.set_tag(v.ref, "team", "risk")
    registry.set_description(v.ref, "shipped on Monday")
    registry.set_alias("churn", "staging", v.ref)
    assert registry.verify("churn@staging", public_key=keys["public"])["ok"]


def test_a_version_made_in_a_run_with_data_and_parents_verifies(registry, write, keys):
    write("data/train.csv", "id,y\n1,0\n")
    write("model.bin", "weights")
    base = registry.register("base", "model.bin")
    with registry.start_run(name="nightly", params={"lr": 0.1}) as run:
        run.use_dataset("data/train.csv")
        run.log_metric("loss", 0.5)
        v = run.register(
            "churn",
            "model.bin",
            metrics={"accuracy": 0.91},
            datasets=[{"path": "data/train.csv", "role": "validation"}],
            parents=[base.ref],
            sign=keys["private"],
        )
    assert registry.verify(v.ref, public_key=keys["public"])["ok"]


def test_a_version_from_a_dirty_git_checkout_verifies(registry, git_repo, write, keys):
    write("train.py", "print('tweaked')\n")
    write("out/model.bin", "weights")
    v = registry.register("churn", "out/model.bin", sign=keys["private"])
    assert registry.lineage(v.ref)["code"]["diff_digest"]
    assert registry.verify(v.ref, public_key=keys["public"])["ok"]


@pytest.mark.parametrize("bad", ["missing", "public", "garbage", "empty"])
def test_a_bad_signing_key_stores_nothing(registry, write, keys, tmp_path, snapshot, bad):
    write("fresh.bin", "bytes nobody else stores")
    (tmp_path / "garbage.key").write_text("not a key\n")
    key = {
        "missing": tmp_path / "missing.key",
        "public": keys["public"],
        "garbage": tmp_path / "garbage.key",
        "empty": "",
    }[bad]
    before = snapshot()
    with pytest.raises(InvalidInput):
        registry.register("churn", "fresh.bin", sign=key)
    assert snapshot() == before


def test_a_bad_verification_key_is_invalid_input(registry, write, keys, tmp_path):
    write("model.bin", "weights")
    v = registry.register("churn", "model.bin", sign=keys["private"])
    with pytest.raises(InvalidInput):
        registry.verify(v.ref, public_key=tmp_path / "missing.pub")
    with pytest.raises(InvalidInput, match="private key"):
        registry.pull(v.ref, tmp_path / "out", verify_with=keys["private"])
    assert nothing_written(tmp_path / "out")


def test_creating_keys_refuses_to_overwrite(keys):
    private, public = keys["private"], keys["public"]
    before = private.read_bytes(), public.read_bytes()
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    with pytest.raises(InvalidInput, match="already exists"):
        create_keys(private, public.with_name("new.pub"))
    with pytest.raises(InvalidInput, match="already exists"):
        create_keys(private.with_name("new.key"), public)
    assert (private.read_bytes(), public.read_bytes()) == before
    assert not private.with_name("new.key").exists()
    assert not public.with_name("new.pub").exists()
