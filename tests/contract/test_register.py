"""Registering versions, naming them, reading them back and pulling their files."""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelreg import InvalidInput, NotFound


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_the_sdk_example_registers_promotes_and_deploys(registry, write, tmp_path):
    """The README example works as written, and the deployed files are the registered bytes."""
    write("base.bin", "base v1")
    registry.register("base", "base.bin")
    write("base.bin", "base v2")
    registry.register("base", "base.bin")
    write("model.skops", b"\x00model bytes\xff")
    write("data/train.csv", "x,y\n1,0\n")

    v = registry.register(
        "churn",
        "model.skops",
        params={"C": 0.1},
        metrics={"accuracy": 0.93},
        tags={"team": "growth"},
        datasets=["data/train.csv"],
        parents=["base/2"],
    )

    assert v.ref == f"churn/{v.number}" == "churn/1"
    assert str(uuid.UUID(v.id)) == v.id
    assert v.params == {"C": "0.1"}
    assert v.metrics == {"accuracy": 0.93}
    assert v.tags == {"team": "growth"}
    assert v.parents == ["base/2"]
    assert [(d.name, d.digest, d.role) for d in v.datasets] == [
        ("train.csv", sha256(b"x,y\n1,0\n"), "train")
    ]
    assert [(f.path, f.digest, f.size) for f in v.files] == [
        ("model.skops", sha256(b"\x00model bytes\xff"), 13)
    ]

    registry.set_alias("churn", "production", v.ref)
    deployed = registry.get("churn@production")
    target = deployed.pull(tmp_path / "deploy")

    assert deployed.id == v.id
    assert (target / "model.skops").read_bytes() == b"\x00model bytes\xff"


def test_pull_into_a_relative_directory_writes_every_file(registry, write):
    write("model/weights.bin", b"w" * 1000)
    write("model/config/params.json", "{}")
    v = registry.register("nested", "model")

    registry.pull(v.ref, "deploy/")

    assert Path("deploy/weights.bin").read_bytes() == b"w" * 1000
    assert Path("deploy/config/params.json").read_text() == "{}"


def test_pull_leaves_identical_files_alone_and_refuses_to_clobber_different_ones(
    registry, write, tmp_path
):
    from modelreg import Conflict

    write("model.bin", "weights")
    v = registry.register("m", "model.bin")
    dest = tmp_path / "deploy"
    v.pull(dest)
    v.pull(dest)  # same content already there: nothing to do
    (dest / "model.bin").write_text("edited locally")

    with pytest.raises(Conflict):
        v.pull(dest)
    assert (dest / "model.bin").read_text() == "edited locally"

    v.pull(dest, force=True)
    assert (dest / "model.bin").read_text() == "weights"


def test_pulling_another_version_into_a_folder_replaces_the_one_pulled_there(
    registry, write, tmp_path
):
    """The folder then holds the new version alone: files only the old version held go,
    unless someone changed them; files nobody pulled there stay."""
    import json

    write("v1/model.bin", "weights one")
    write("v1/extra.txt", "only in one")
    write("v1/sub/notes.txt", "only in one, in a folder")
    write("v1/edited.txt", "only in one, then edited")
    one = registry.register("mix", "v1")
    write("v2/model.bin", "weights two")
    two = registry.register("mix", "v2")
    dest = tmp_path / "deploy"
    one.pull(dest)
    (dest / "edited.txt").write_text("changed by hand")
    (dest / "mine.txt").write_text("the user's own")

    two.pull(dest, force=True)

    names = sorted(str(p.relative_to(dest)) for p in dest.rglob("*"))
    assert names == ["edited.txt", "mine.txt", "model.bin", "modelreg.json"]
    assert (dest / "model.bin").read_text() == "weights two"
    assert json.loads((dest / "modelreg.json").read_text())["id"] == two.id

    two.pull(dest)  # the same version again: nothing goes
    assert (dest / "edited.txt").exists()
    assert (dest / "mine.txt").exists()


class TestFilesArgument:
    """``files`` is a file, a directory, a mapping of manifest path to file, or a list."""

    def test_a_single_file_is_stored_under_its_base_name(self, registry, write):
        write("out/deep/model.bin", "m")
        v = registry.register("m", "out/deep/model.bin")
        assert [f.path for f in v.files] == ["model.bin"]

    def test_a_directory_keeps_paths_relative_to_it(self, registry, write):
        write("model/a.bin", "a")
        write("model/sub/b.bin", "b")
        write("model/sub/deeper/c.txt", "c")
        v = registry.register("m", "model")
        assert [f.path for f in v.files] == ["a.bin", "sub/b.bin", "sub/deeper/c.txt"]
        assert v.size == 3

    def test_a_mapping_names_each_file_in_the_version(self, registry, write):
        a = write("x/one.bin", "1")
        b = write("y/two.bin", "22")
        v = registry.register("m", {"weights/model.bin": a, "config.json": str(b)})
        assert {f.path: f.size for f in v.files} == {"config.json": 2, "weights/model.bin": 1}

    def test_a_list_stores_files_by_name_and_directories_under_their_name(self, registry, write):
        write("model.bin", "m")
        write("tokenizer/vocab.txt", "v")
        write("tokenizer/merges.txt", "mm")
        v = registry.register("m", ["model.bin", "tokenizer"])
        assert [f.path for f in v.files] == [
            "model.bin",
            "tokenizer/merges.txt",
            "tokenizer/vocab.txt",
        ]

    def test_the_files_pulled_are_the_files_registered_in_every_form(
        self, registry, write, tmp_path
    ):
        write("src/a.bin", b"\x01" * 10)
        write("src/b/c.bin", b"\x02" * 20)
        v = registry.register("m", "src")
        dest = v.pull(tmp_path / "out")
        assert (dest / "a.bin").read_bytes() == b"\x01" * 10
        assert (dest / "b" / "c.bin").read_bytes() == b"\x02" * 20


class TestNumbering:
    def test_version_numbers_count_up_from_one_without_gaps(self, registry, write):
        for i in range(5):
            write("m.bin", f"content {i}")
            assert registry.register("churn", "m.bin").number == i + 1
        assert [v.number for v in registry.versions("churn")] == [5, 4, 3, 2, 1]

    def test_each_model_numbers_its_versions_independently(self, registry, write):
        write("m.bin", "x")
        refs = [registry.register(name, "m.bin").ref for name in ("a", "b", "a", "b", "a")]
        assert refs == ["a/1", "b/1", "a/2", "b/2", "a/3"]

    def test_a_refused_registration_does_not_use_up_a_number(self, registry, write):
        write("m.bin", "x")
        registry.register("churn", "m.bin")
        with pytest.raises(NotFound):
            registry.register("churn", "m.bin", parents=["missing/1"])
        assert registry.register("churn", "m.bin").number == 2

    @settings(
        max_examples=10,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture],
    )
    @given(
        st.lists(
            st.tuples(st.sampled_from("abc"), st.sampled_from(["ok", "bad metric", "bad parent"])),
            max_size=6,
        )
    )
    def test_numbers_stay_gapless_whatever_mix_of_models_and_refusals(self, registry, write, steps):
        """Property: after any sequence of registrations, some refused, each model's numbers
        are exactly 1..k in creation order."""
        write("m.bin", "m")
        prefix = f"p{len(registry.models())}-"  # a fresh namespace for each example
        expected: dict[str, int] = {}
        for model, outcome in steps:
            name = prefix + model
            if outcome == "ok":
                assert registry.register(name, "m.bin").number == expected.get(name, 0) + 1
                expected[name] = expected.get(name, 0) + 1
            elif outcome == "bad metric":
                with pytest.raises(InvalidInput):
                    registry.register(name, "m.bin", metrics={"x": float("nan")})
            else:
                with pytest.raises(NotFound):
                    registry.register(name, "m.bin", parents=[f"{prefix}nosuch/1"])
        for name, count in expected.items():
            assert [v.number for v in registry.versions(name)] == list(range(count, 0, -1))
        if not expected:
            registry.register(prefix + "marker", "m.bin")  # keep the next prefix fresh

    def test_every_version_has_its_own_uuid(self, registry, write):
        write("m.bin", "x")
        ids = {registry.register("churn", "m.bin").id for _ in range(3)}
        assert len(ids) == 3
        assert all(str(uuid.UUID(i)) == i for i in ids)


class TestReferences:
    """A version is named by NAME (latest), NAME/N, NAME@ALIAS or its UUID."""

    @pytest.fixture
    def versions(self, registry, write):
        made = []
        for i in range(3):
            write("m.bin", f"version {i}")
            made.append(registry.register("churn", "m.bin"))
        registry.set_alias("churn", "production", "churn/2")
        return made

    def test_every_kind_of_reference_names_the_same_version(self, registry, versions):
        second = versions[1]
        for ref in ("churn/2", "churn@production", second.id, second.id.upper()):
            assert registry.get(ref).id == second.id, ref

    def test_a_bare_name_means_the_latest_version(self, registry, versions, write):
        assert registry.get("churn").id == versions[2].id
        write("m.bin", "newest")
        newest = registry.register("churn", "m.bin")
        assert registry.get("churn").id == newest.id

    def test_get_returns_what_register_returned(self, registry, versions):
        for v in versions:
            got = registry.get(v.ref)
            assert (got.id, got.ref, got.manifest_digest, got.files, got.created_at) == (
                v.id,
                v.ref,
                v.manifest_digest,
                v.files,
                v.created_at,
            )

    @pytest.mark.parametrize(
        "ref",
        [
            "nosuchmodel",
            "nosuchmodel/1",
            "churn/4",
            "churn/999999999",
            "churn@staging",
            "nosuchmodel@production",
            "00000000-0000-4000-8000-000000000000",
        ],
    )
    def test_a_reference_to_nothing_raises_not_found(self, registry, versions, ref):
        with pytest.raises(NotFound):
            registry.get(ref)

    def test_listing_versions_of_an_unknown_model_raises_not_found(self, registry):
        with pytest.raises(NotFound):
            registry.versions("nosuchmodel")

    def test_models_lists_each_model_with_its_count_latest_and_aliases(self, registry, versions):
        (model,) = registry.models()
        assert (model.name, model.version_count, model.latest, model.aliases) == (
            "churn",
            3,
            3,
            {"production": 2},
        )

    def test_versions_are_listed_newest_first_and_page(self, registry, versions):
        assert [v.number for v in registry.versions("churn")] == [3, 2, 1]
        assert [v.number for v in registry.versions("churn", limit=1, offset=1)] == [2]


class TestContent:
    """What a version holds never changes, and identical bytes are stored once."""

    def test_reregistering_identical_content_makes_a_new_version_with_the_same_digest(
        self, registry, write
    ):
        write("model/a.bin", "a")
        write("model/b.bin", "b")
        first = registry.register("churn", "model")
        second = registry.register("churn", "model")
        assert second.number == first.number + 1
        assert second.id != first.id
        assert second.manifest_digest == first.manifest_digest

    def test_identical_bytes_are_stored_once(self, registry, backend, write):
        write("model/a.bin", "shared bytes")
        write("model/b.bin", "shared bytes")
        registry.register("one", "model")
        blobs = backend.blob_digests()
        registry.register("two", {"x.bin": "model/a.bin"})
        assert backend.blob_digests() == blobs == {sha256(b"shared bytes")}

    def test_the_manifest_digest_depends_on_paths_and_bytes_only(self, registry, write):
        write("p/a.bin", "a")
        write("q/a.bin", "a")
        write("r/a.bin", "different")
        assert (
            registry.register("m", "p").manifest_digest
            == registry.register("n", "q").manifest_digest
        )
        assert registry.register("m", "r").manifest_digest != registry.get("m/1").manifest_digest
        assert (
            registry.register("m", {"b.bin": "p/a.bin"}).manifest_digest
            != registry.get("m/1").manifest_digest
        )

    def test_changing_the_local_file_later_does_not_change_the_version(
        self, registry, write, tmp_path
    ):
        path = write("model.bin", "original")
        v = registry.register("m", "model.bin")
        path.write_text("overwritten after registering")
        dest = registry.get(v.ref).pull(tmp_path / "out")
        assert (dest / "model.bin").read_text() == "original"
        assert registry.get(v.ref).manifest_digest == v.manifest_digest


def test_a_pulled_version_carries_its_identity_for_the_service_that_deploys_it(
    registry, write, tmp_path
):
    """modelreg.json names the version, so a service can log the UUID with each prediction."""
    import json

    write("model.bin", "weights")
    v = registry.register("churn", "model.bin")
    out = registry.pull(v.ref, tmp_path / "deploy")
    marker = json.loads((out / "modelreg.json").read_text())
    assert (marker["id"], marker["ref"], marker["manifest_digest"]) == (
        v.id,
        "churn/1",
        v.manifest_digest,
    )


def test_a_version_that_holds_its_own_modelreg_json_keeps_it(registry, write, tmp_path):
    import json

    write("pkg/modelreg.json", '{"mine": true}')
    write("pkg/model.bin", "weights")
    v = registry.register("churn", "pkg")
    out = registry.pull(v.ref, tmp_path / "deploy")
    assert json.loads((out / "modelreg.json").read_text()) == {"mine": True}
    assert json.loads((out / ".modelreg.json").read_text())["id"] == v.id
