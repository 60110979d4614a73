"""Manifest paths and digests: the rules that keep a pulled version inside its folder."""

from __future__ import annotations

import hashlib
import os
import unicodedata
from pathlib import Path

import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st

from modelreg.errors import InvalidInput
from modelreg.manifest import (
    MAX_PATH_LENGTH,
    FileEntry,
    check_entries,
    check_path,
    collect_files,
    manifest_digest,
)

# A segment: any characters except controls (Unicode category Cc), surrogates, '/', '\\'
# and ':' (a colon second would read as a Windows drive), and never "." or "..".
segment_chars = st.characters(blacklist_categories=("Cc", "Cs"), blacklist_characters="/\\:")
segments = st.text(segment_chars, min_size=1, max_size=12).filter(lambda s: s not in (".", ".."))
valid_paths = st.lists(segments, min_size=1, max_size=6).map("/".join)

digests = st.binary(max_size=8).map(lambda b: hashlib.sha256(b).hexdigest())


@given(valid_paths)
@example("model.bin")
@example("a/b/c.txt")
@example("..a/b..")
@example(".hidden/.x")
@example("with space/ und ümlaut")
def test_every_valid_path_is_accepted_in_nfc_form(path):
    assert check_path(path) == unicodedata.normalize("NFC", path)


@given(valid_paths)
def test_checking_is_idempotent(path):
    once = check_path(path)
    assert check_path(once) == once


def test_a_decomposed_path_is_stored_composed():
    assert check_path("cafe\u0301/mode\u0300le") == "caf\u00e9/mod\u00e8le"


def _bad(path: str, how: str) -> str:
    if how == "absolute":
        return "/" + path
    if how == "parent":
        return path + "/.."
    if how == "leading parent":
        return "../" + path
    if how == "dot":
        return path + "/."
    if how == "empty segment":
        return path.replace("/", "//", 1) if "/" in path else path + "//x"
    if how == "trailing slash":
        return path + "/"
    if how == "backslash":
        return path + "\\x"
    if how == "drive":
        return "C:" + path
    raise AssertionError(how)


@given(
    valid_paths,
    st.sampled_from(
        [
            "absolute",
            "parent",
            "leading parent",
            "dot",
            "empty segment",
            "trailing slash",
            "backslash",
            "drive",
        ]
    ),
)
def test_paths_broken_in_any_way_are_refused(path, how):
    with pytest.raises(InvalidInput):
        check_path(_bad(path, how))


@given(
    valid_paths,
    st.integers(min_value=0, max_value=10),
    st.characters(min_codepoint=0, max_codepoint=31),
)
@example("model.bin", 0, "\x7f")
def test_a_control_character_anywhere_is_refused(path, where, control):
    where = min(where, len(path))
    with pytest.raises(InvalidInput):
        check_path(path[:where] + control + path[where:])


@pytest.mark.parametrize("control", ["\x85", "\x9b"])
def test_c1_control_characters_are_refused_too(control):
    """U+0080-U+009F are control characters (category Cc); U+0085 even ends a line."""
    assert unicodedata.category(control) == "Cc"
    with pytest.raises(InvalidInput):
        check_path(f"model{control}.bin")


def test_a_path_that_cannot_be_encoded_as_utf8_is_refused():
    """A lone surrogate (how Python names a non-UTF-8 file on Linux) cannot be stored."""
    with pytest.raises(InvalidInput):
        check_path("model-\udcff.bin")


@pytest.mark.parametrize("path", ["", ".", "..", "/", "a/", "/a", "a//b", "./a", "a\\b", "C:x"])
def test_short_malformed_paths_are_refused(path):
    with pytest.raises(InvalidInput):
        check_path(path)


def test_the_length_limit_is_inclusive():
    assert check_path("a" * MAX_PATH_LENGTH) == "a" * MAX_PATH_LENGTH
    with pytest.raises(InvalidInput):
        check_path("a" * (MAX_PATH_LENGTH + 1))


def test_nfc_normalisation_never_makes_a_path_longer_than_the_limit():
    """Some characters grow under NFC (U+0958 becomes two code points)."""
    grows = "\u0958"
    assert len(unicodedata.normalize("NFC", grows)) == 2
    path = grows * (MAX_PATH_LENGTH // 2 + 1)
    try:
        checked = check_path(path)
    except InvalidInput:
        return
    assert len(checked) <= MAX_PATH_LENGTH


def test_non_strings_are_refused():
    with pytest.raises(InvalidInput):
        check_path(b"model.bin")  # type: ignore[arg-type]


entries_lists = st.dictionaries(
    valid_paths, st.tuples(digests, st.integers(0, 10**12)), min_size=1, max_size=8
)


@given(entries_lists, st.randoms(use_true_random=False))
def test_the_manifest_digest_does_not_depend_on_order(mapping, rnd):
    entries = [FileEntry(p, d, s) for p, (d, s) in mapping.items()]
    shuffled = list(entries)
    rnd.shuffle(shuffled)
    assert manifest_digest(entries) == manifest_digest(shuffled)


@given(entries_lists, st.data())
def test_the_manifest_digest_changes_with_any_path_digest_or_size(mapping, data):
    entries = [FileEntry(p, d, s) for p, (d, s) in mapping.items()]
    i = data.draw(st.integers(0, len(entries) - 1))
    e = entries[i]
    field = data.draw(st.sampled_from(["path", "digest", "size"]))
    if field == "path":
        new_path = data.draw(valid_paths)
        assume(new_path not in mapping)
        changed = FileEntry(new_path, e.digest, e.size)
    elif field == "digest":
        changed = FileEntry(e.path, hashlib.sha256(e.digest.encode()).hexdigest(), e.size)
    else:
        changed = FileEntry(e.path, e.digest, e.size + 1)
    assert manifest_digest([*entries[:i], changed, *entries[i + 1 :]]) != manifest_digest(entries)


def test_check_entries_sorts_and_normalises():
    d = hashlib.sha256(b"").hexdigest()
    checked = check_entries(
        [FileEntry("b", d, 0), FileEntry("cafe\u0301", d, 0), FileEntry("a", d, 0)]
    )
    assert [e.path for e in checked] == ["a", "b", "caf\u00e9"]


@pytest.mark.parametrize(
    "paths",
    [
        ["caf\u00e9", "cafe\u0301"],
        ["a", "a"],
        ["a", "a/b"],
        ["x/a", "x/a/b/c"],
    ],
)
def test_check_entries_refuses_duplicates_and_file_directory_clashes(paths):
    d = hashlib.sha256(b"").hexdigest()
    with pytest.raises(InvalidInput):
        check_entries([FileEntry(p, d, 0) for p in paths])


def test_check_entries_refuses_bad_digests_sizes_and_empty_manifests():
    d = hashlib.sha256(b"").hexdigest()
    for entries in (
        [FileEntry("a", "0" * 63, 0)],
        [FileEntry("a", d.upper(), 0)],
        [FileEntry("a", d, -1)],
        [],
    ):
        with pytest.raises(InvalidInput):
            check_entries(entries)


class TestCollectFiles:
    def test_a_file_a_directory_a_mapping_and_a_list(self, tmp_path):
        (tmp_path / "dir" / "sub").mkdir(parents=True)
        (tmp_path / "dir" / "a.bin").write_bytes(b"a")
        (tmp_path / "dir" / "sub" / "b.bin").write_bytes(b"b")
        single = tmp_path / "model.bin"
        single.write_bytes(b"m")

        assert collect_files(single) == {"model.bin": single}
        assert collect_files(str(tmp_path / "dir")) == {
            "a.bin": tmp_path / "dir" / "a.bin",
            "sub/b.bin": tmp_path / "dir" / "sub" / "b.bin",
        }
        assert collect_files({"x/y.bin": single}) == {"x/y.bin": single}
        assert set(collect_files([single, tmp_path / "dir"])) == {
            "model.bin",
            "dir/a.bin",
            "dir/sub/b.bin",
        }

    def test_mapping_keys_that_are_equal_after_nfc_normalisation_are_refused(self, tmp_path):
        one, two = tmp_path / "one", tmp_path / "two"
        one.write_bytes(b"1")
        two.write_bytes(b"2")
        with pytest.raises(InvalidInput):
            collect_files({"caf\u00e9": one, "cafe\u0301": two})

    def test_directory_entries_that_are_equal_after_nfc_normalisation_are_refused(self, tmp_path):
        folder = tmp_path / "model"
        folder.mkdir()
        (folder / "caf\u00e9").write_bytes(b"composed")
        (folder / "cafe\u0301").write_bytes(b"decomposed")
        assert len(os.listdir(folder)) == 2
        with pytest.raises(InvalidInput):
            collect_files(folder)

    def test_an_empty_path_is_refused_rather_than_meaning_the_current_directory(
        self, tmp_path, monkeypatch
    ):
        monkeypatch.chdir(tmp_path)
        Path("something.bin").write_bytes(b"x")
        with pytest.raises(InvalidInput):
            collect_files("")

    @pytest.mark.parametrize("files", [[], "missing.bin", ["missing.bin"], {"a": "missing.bin"}])
    def test_nothing_or_missing_files_are_refused(self, tmp_path, monkeypatch, files):
        monkeypatch.chdir(tmp_path)
        with pytest.raises(InvalidInput):
            collect_files(files)
