"""The core issue's CLI commands, unchanged, against a server: ``--registry http://...``.

Each test of test_cli.py that drives the CLI alone (not the registry's files) runs again
here with the registry behind a real HTTP server on SQLite and a directory.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

import test_cli
from live import LiveServer
from modelreg.cli import versions as cli_versions
from modelreg.local import LocalRegistry
from modelreg.server import create_app
from test_cli import CLI

CORE: list[Callable[[CLI], None]] = [
    test_cli.test_register_prints_ref_and_uuid_and_show_json_has_every_field,
    test_cli.test_register_one_directory_or_several_paths,
    test_cli.test_models_and_versions_as_tables_and_json,
    test_cli.test_show_prints_a_readable_summary,
    test_cli.test_empty_registry_listings,
    test_cli.test_pull_writes_verified_files_and_refuses_to_overwrite_without_force,
    test_cli.test_pull_into_a_path_that_is_a_file_is_a_one_line_error,
    test_cli.test_alias_set_history_delete_and_show_at,
    test_cli.test_alias_must_point_at_a_version_of_the_same_model,
    test_cli.test_tags_and_description,
    test_cli.test_deleting_a_missing_tag_fails,
    test_cli.test_search,
    test_cli.test_compare,
]


@pytest.fixture
def remote_run(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    live_server: LiveServer,
) -> CLI:
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.delenv("MODELREG_URI", raising=False)
    monkeypatch.delenv("MODELREG_TOKEN", raising=False)
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "160")
    store = LocalRegistry(tmp_path / "server-reg")
    url = live_server.mount(create_app(store))
    return CLI(url, capsys)  # type: ignore[arg-type]


@pytest.mark.parametrize("scenario", CORE, ids=[fn.__name__.removeprefix("test_") for fn in CORE])
def test_the_cli_works_unchanged_against_a_server(
    scenario: Callable[[CLI], None], remote_run: CLI
) -> None:
    scenario(remote_run)


def test_register_and_pull_show_progress_bars_against_a_server(
    remote_run: CLI, monkeypatch: pytest.MonkeyPatch
) -> None:
    test_cli.test_register_shows_a_progress_bar_for_large_files(remote_run, monkeypatch)
    monkeypatch.setattr(cli_versions, "PROGRESS_THRESHOLD", 1000)
    result = remote_run.ok("pull", "big", "-o", "out")
    assert "pulling big/1" in result.err
    assert Path("out/model.bin").read_bytes() == Path("model.bin").read_bytes()
