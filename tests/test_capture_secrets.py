"""Secrets on the command line: every reader of a registry sees the command that made a
version, so arguments that look like secrets are recorded masked as ``***``, named (never
shown) in a SecretInCommandWarning; ``MODELREG_COMMAND_REDACTION=keep`` records them as typed.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import modelreg
from modelreg import InvalidInput, SecretInCommandWarning
from modelreg.capture import MASK, REDACTION, redact, secret_arguments
from modelreg.cli import main

GHP = "ghp_" + "a1B2c3D4e5" * 4
HF = "hf_" + "abcdEFGHij" * 4

# (arguments after the script, as recorded when masked, the names the warning gives)
CASES: list[tuple[list[str], list[str], list[str]]] = [
    # options and keys whose name says secret
    (["--password", "hunter2"], ["--password", MASK], ["--password"]),
    (["--password=hunter2"], [f"--password={MASK}"], ["--password"]),
    (["-password=hunter2"], [f"-password={MASK}"], ["-password"]),
    (["token=abc123"], [f"token={MASK}"], ["token="]),
    (["--api-key", "k"], ["--api-key", MASK], ["--api-key"]),
    (["--api_key=k"], [f"--api_key={MASK}"], ["--api_key"]),
    (["--apikey", "k"], ["--apikey", MASK], ["--apikey"]),
    (["--apiKey", "k"], ["--apiKey", MASK], ["--apiKey"]),
    (["--access-key", "k"], ["--access-key", MASK], ["--access-key"]),
    (["--private-key=k"], [f"--private-key={MASK}"], ["--private-key"]),
    (["--client-secret", "k"], ["--client-secret", MASK], ["--client-secret"]),
    (["--credentials", "k"], ["--credentials", MASK], ["--credentials"]),
    (["--auth", "me:pw"], ["--auth", MASK], ["--auth"]),
    (["--pwd", "k"], ["--pwd", MASK], ["--pwd"]),
    (["--hf-token", "k"], ["--hf-token", MASK], ["--hf-token"]),
    (["--authtoken", "k"], ["--authtoken", MASK], ["--authtoken"]),
    (["HF_TOKEN=k"], [f"HF_TOKEN={MASK}"], ["HF_TOKEN="]),
    (["AWS_SECRET_ACCESS_KEY=k"], [f"AWS_SECRET_ACCESS_KEY={MASK}"], ["AWS_SECRET_ACCESS_KEY="]),
    (
        ["access_token=k", "auth_token=k"],
        [f"access_token={MASK}", f"auth_token={MASK}"],
        ["access_token=", "auth_token="],
    ),
    (["api_token=k"], [f"api_token={MASK}"], ["api_token="]),
    (["+db.password=k"], [f"+db.password={MASK}"], ["db.password="]),
    (["db.passwd=k"], [f"db.passwd={MASK}"], ["db.passwd="]),
    (["--set=password=k"], [f"--set=password={MASK}"], ["--set"]),
    # a URL's password: the URL stays, the password goes
    (
        ["DB_URL=postgresql://user:pw@host/db"],
        [f"DB_URL=postgresql://user:{MASK}@host/db"],
        ["DB_URL="],
    ),
    (["postgresql://user:pw@host/db"], [f"postgresql://user:{MASK}@host/db"], ["argument 1"]),
    (["--db", "redis://:s3cret@cache:6379/0"], ["--db", f"redis://:{MASK}@cache:6379/0"], ["--db"]),
    # well-known token shapes, wherever they are
    ([GHP], [MASK], ["argument 1"]),
    ([f"https://{GHP}@github.com/o/r.git"], [f"https://{MASK}@github.com/o/r.git"], ["argument 1"]),
    (["github_pat_" + "x1Y2z3" * 5], [MASK], ["argument 1"]),
    (["--key", "sk-proj-" + "aB3dE6gH9" * 5], ["--key", MASK], ["--key"]),
    (["xoxb-1234-5678-abcdefgh"], [MASK], ["argument 1"]),
    (["--id=AKIAABCDEFGHIJKLMNOP"], [f"--id={MASK}"], ["--id"]),
    ([HF], [MASK], ["argument 1"]),
    (["-H", "Authorization: Bearer eyJhbGciOi.x"], ["-H", f"Authorization: Bearer {MASK}"], ["-H"]),
    # not secrets: counts, tokenizers, authors, where a secret is kept, switches, short flags
    (["--tokenizer", "gpt2"], ["--tokenizer", "gpt2"], []),
    (["--max-tokens", "5"], ["--max-tokens", "5"], []),
    (["--author", "x"], ["--author", "x"], []),
    (["--num_tokens=3"], ["--num_tokens=3"], []),
    (["tokenizer_name=bert"], ["tokenizer_name=bert"], []),
    (["--token-file", "/run/secrets/t"], ["--token-file", "/run/secrets/t"], []),
    (["--password-env", "DB_PASSWORD"], ["--password-env", "DB_PASSWORD"], []),
    (["--auth-type", "basic"], ["--auth-type", "basic"], []),
    (["--no-auth", "data.csv"], ["--no-auth", "data.csv"], []),
    (["--use-auth-token=true"], ["--use-auth-token=true"], []),
    (["--token", "none"], ["--token", "none"], []),
    (["--password", "--verbose"], ["--password", "--verbose"], []),
    (["--password"], ["--password"], []),
    (["-p", "8080"], ["-p", "8080"], []),
    (["--lr", "0.1", "seed=3"], ["--lr", "0.1", "seed=3"], []),
    (["https://user@host/x"], ["https://user@host/x"], []),
    (["http://host:8080/a@b"], ["http://host:8080/a@b"], []),
    (["git@github.com:o/r.git"], ["git@github.com:o/r.git"], []),
    (["sk-learn-experiments-2024-01-01-run-a"], ["sk-learn-experiments-2024-01-01-run-a"], []),
    (["--description", "the Bearer token"], ["--description", "the Bearer token"], []),
]


@pytest.mark.parametrize(("args", "recorded", "names"), CASES, ids=lambda c: repr(c)[:40])
def test_secret_looking_arguments_are_found_and_masked(
    args: list[str], recorded: list[str], names: list[str]
) -> None:
    argv = ["train.py", *args]
    assert redact(argv) == ["train.py", *recorded]
    found = secret_arguments(argv)
    assert list(found.values()) == names
    assert all(argv[i] != recorded[i - 1] for i in found)


@given(st.text(min_size=1).filter(lambda v: not v.startswith("-")))
def test_the_value_of_a_password_option_is_never_recorded(value: str) -> None:
    if value.lower() in ("true", "false", "yes", "no", "none", "null", "0", "1"):
        return
    assert redact(["t.py", "--password", value]) == ["t.py", "--password", MASK]
    assert redact(["t.py", f"--password={value}"]) == ["t.py", f"--password={MASK}"]
    assert secret_arguments(["t.py", "--password", value]) == {2: "--password"}


ARGUMENT = st.one_of(
    st.text(max_size=30),
    st.sampled_from([a for args, _, _ in CASES for a in args]),
    st.builds(lambda k, v: f"{k}={v}", st.sampled_from(["token", "a", "db.password"]), st.text()),
)


@given(st.lists(ARGUMENT, max_size=6))
def test_masking_is_idempotent_and_keeps_every_argument(argv: list[str]) -> None:
    once = redact(argv)
    assert len(once) == len(argv)
    assert redact(once) == once


# -- what a registry records ------------------------------------------------------------------


@pytest.fixture
def argv(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The process's command line, as a training script started with a password has it."""
    line = ["train.py", "--password", "hunter2", "--tokenizer", "gpt2"]
    monkeypatch.setattr(sys, "argv", line)
    monkeypatch.delenv(REDACTION, raising=False)
    return line


MASKED = shlex.join(["train.py", "--password", MASK, "--tokenizer", "gpt2"])


def test_registering_records_the_command_masked_and_warns(
    registry: Any, argv: list[str], write: Any
) -> None:
    write("m.bin", "m")
    with pytest.warns(SecretInCommandWarning) as caught:
        v = registry.register("churn", "m.bin")
    [warning] = caught
    message = str(warning.message)
    assert "(--password)" in message
    assert "masked" in message
    assert REDACTION in message
    assert "hunter2" not in message
    assert warning.filename == __file__  # it points at the line that registered
    lineage = registry.lineage(v.ref)
    assert lineage["code"]["command"] == MASKED
    assert "hunter2" not in repr(lineage)


def test_keep_records_the_command_as_typed_and_still_warns(
    registry: Any, argv: list[str], write: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(REDACTION, "keep")
    write("m.bin", "m")
    with pytest.warns(SecretInCommandWarning, match=r"\(--password\) are recorded as typed"):
        v = registry.register("churn", "m.bin")
    assert registry.lineage(v.ref)["code"]["command"] == shlex.join(argv)


def test_a_run_records_the_command_masked_and_warns_once(
    registry: Any, argv: list[str], write: Any
) -> None:
    write("m.bin", "m")
    with (
        pytest.warns(SecretInCommandWarning, match="--password") as caught,
        registry.start_run(name="nightly") as run,
    ):
        v = run.register("churn", "m.bin")
    assert len(caught) == 1  # the run warned; registering in it does not again
    assert caught[0].filename == __file__
    lineage = registry.lineage(v.ref)
    assert lineage["run"]["command"] == MASKED
    assert lineage["code"]["command"] == MASKED
    assert "hunter2" not in repr(lineage)


def test_a_command_without_secrets_is_recorded_without_a_warning(
    registry: Any, write: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    line = ["train.py", "--tokenizer", "gpt2", "--max-tokens", "5", "lr=0.1"]
    monkeypatch.setattr(sys, "argv", line)
    write("m.bin", "m")
    v = registry.register("churn", "m.bin")  # any warning fails the test (filterwarnings)
    assert registry.lineage(v.ref)["code"]["command"] == shlex.join(line)


def test_an_unknown_redaction_setting_is_refused_before_anything_is_stored(
    registry: Any, argv: list[str], write: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(REDACTION, "unmasked")
    write("m.bin", "m")
    expected = rf"{REDACTION}='unmasked' is not a valid setting: use mask .* or keep"
    with pytest.raises(InvalidInput, match=expected):
        registry.register("churn", "m.bin")
    with pytest.raises(InvalidInput, match=expected), registry.start_run():
        pass
    assert registry.models() == []
    assert registry.search("") == []


def test_the_cli_prints_the_warning_as_one_line(
    tmp_path: Path, workdir: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    (workdir / "m.bin").write_bytes(b"m")
    # The command line as the shell gave it; main() gets a local registry instead of the
    # PostgreSQL URL, so that the test needs no database.
    url = "postgresql://me:hunter2@db.internal/registry"
    monkeypatch.setattr(sys, "argv", ["modelreg", "--registry", url, "register", "c", "m.bin"])
    monkeypatch.delenv(REDACTION, raising=False)
    assert main(["--registry", str(tmp_path / "reg"), "register", "c", "m.bin"]) == 0
    err = capsys.readouterr().err
    assert err.startswith("warning: secret-looking arguments on the command line (--registry)")
    assert len(err.splitlines()) == 1
    assert "hunter2" not in err
    with modelreg.connect(tmp_path / "reg") as reg:
        command = reg.lineage("c/1")["code"]["command"]
    assert shlex.split(command)[2] == f"postgresql://me:{MASK}@db.internal/registry"


def test_reproduce_refuses_to_run_a_masked_command(
    git_repo: Path, tmp_path: Path, argv: list[str], write: Any, capsys: Any
) -> None:
    write("out/m.bin", "m")
    with modelreg.connect(tmp_path / "reg") as reg:
        with pytest.warns(SecretInCommandWarning), reg.start_run() as run:
            run.register("churn", "out/m.bin")
        recipe = reg.reproduce("churn/1", to=tmp_path / "recipe")
        assert recipe["masked"] == ["--password"]
        script = (tmp_path / "recipe" / "reproduce.sh").read_text()
        assert f"# Recorded with --password masked as {MASK}" in script
        work = tmp_path / "w"
        with pytest.raises(InvalidInput, match=r"--password masked as .*give the secret"):
            reg.reproduce("churn/1", run=True, workdir=work)
    assert (work / "recipe" / "reproduce.sh").exists()
    assert not (work / "code").exists()  # nothing was cloned, installed or run
    code = main(["--registry", str(tmp_path / "reg"), "reproduce", "churn/1", "--to", "r"])
    assert code == 0
    err = capsys.readouterr().err
    assert err == (
        f"warning: the command was recorded with --password masked as {MASK}: give the secret"
        " again in reproduce.sh before running it\n"
    )
