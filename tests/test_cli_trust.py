"""The trust commands, end to end: promotion gates (policy, approve, alias check, set --force,
rollback), signing keys and verified pulls, model cards and traces, and webhooks.

Same harness as tests/test_cli.py: ``modelreg.cli.main`` in-process against a registry in a
temporary directory, with the one-line error contract checked on every failing call.
"""

from __future__ import annotations

import hashlib
import json
import re
import stat
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from modelreg import outbound, webhooks
from test_cli import CLI, write

KEY_ID = r"[0-9a-f]{64}"


@pytest.fixture
def run(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> CLI:
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    for name in ("MODELREG_URI", "FORCE_COLOR", outbound.ALLOW_HOSTS_ENV):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "160")
    act_as(monkeypatch, "alice")
    return CLI(tmp_path / "reg", capsys)


def act_as(monkeypatch: pytest.MonkeyPatch, user: str) -> None:
    """The registry records the login name as the actor (getpass reads these first)."""
    monkeypatch.setenv("LOGNAME", user)
    monkeypatch.setenv("USER", user)


def two_scored_versions(run: CLI) -> None:
    """churn/1 (accuracy 0.9) and churn/2 (0.8), evaluated on the same holdout data."""
    write("model.bin")
    write("holdout.csv", "x,y\n1,0\n")
    for accuracy in ("0.9", "0.8"):
        ref = run.ok("register", "churn", "model.bin").out.split()[0]
        run.ok("evaluate", ref, "--dataset", "holdout.csv", "--metric", f"accuracy={accuracy}")


def holder(run: CLI, alias: str = "production") -> str:
    found: str = run.json("show", f"churn@{alias}")["ref"]
    return found


def test_help_lists_the_trust_commands(run: CLI) -> None:
    out = run.ok("--help").out
    for command in ("approve", "verify", "card", "trace", "policy", "keys", "webhook"):
        assert re.search(rf"^\s+{command}\s", out, re.MULTILINE), command
    groups = {
        "alias": ("rollback", "check"),
        "policy": ("set", "show"),
        "keys": ("create", "trust", "untrust", "list"),
        "webhook": ("add", "list", "remove", "deliver", "deliveries"),
    }
    for group, commands in groups.items():
        listed = run.ok(group).out
        for command in commands:
            assert re.search(rf"^\s+{command}\s", listed, re.MULTILINE), (group, command)
    assert "--sign" in run.ok("register", "--help").out
    pull = run.ok("pull", "--help").out
    assert "--verify-with" in pull
    assert "--verify " in pull
    assert "MODELREG_WEBHOOK_ALLOW_HOSTS" in run.ok("webhook", "add", "--help").out


# -- promotion gates -------------------------------------------------------------------------


def test_a_gate_refuses_a_worse_candidate_with_its_figures(run: CLI) -> None:
    two_scored_versions(run)
    run.ok("policy", "set", "churn", "production", "--metric", "accuracy")
    run.ok("alias", "set", "churn", "production", "churn/1")
    err = run.fails(1, "alias", "set", "churn", "production", "churn/2")
    digest = hashlib.sha256(b"x,y\n1,0\n").hexdigest()[:12]
    assert err == (
        "error: churn@production is protected by gates that churn/2 does not pass: churn/2"
        f" scores accuracy 0.8 on holdout.csv@{digest}, where churn/1 scores 0.9, and the policy"
        " needs 0.9 or more. A maintainer may move it anyway with --force and a --reason.\n"
    )
    assert holder(run) == "churn/1"
    assert run.json("audit", "--action", "alias.override") == []


def test_force_with_a_reason_overrides_and_is_audited(run: CLI) -> None:
    two_scored_versions(run)
    run.ok("policy", "set", "churn", "production", "--metric", "accuracy")
    run.ok("alias", "set", "churn", "production", "churn/1")
    move = ("alias", "set", "churn", "production", "churn/2")
    assert "--reason" in run.fails(2, *move, "--force")
    assert "--reason" in run.fails(2, *move, "--force", "--reason", "  ")
    assert "--force" in run.fails(2, *move, "--reason", "hotfix")
    assert holder(run) == "churn/1"

    out = run.ok(*move, "--force", "--reason", "hotfix for INC-7").out
    assert out == "churn@production -> churn/2\n"
    assert holder(run) == "churn/2"
    [event] = run.json("audit", "--action", "alias.override")
    assert (event["entity"], event["actor"]) == ("churn@production", "alice")
    assert event["after"]["version"] == "churn/2"
    assert event["after"]["reason"] == "hotfix for INC-7"
    assert [c["name"] for c in event["after"]["failed"]] == ["not-worse"]
    table = run.ok("audit", "--action", "alias.override").out
    assert re.search(r"alice\s+alias\.override\s+churn@production", table)


def test_rollback_moves_back_through_the_gates(run: CLI) -> None:
    two_scored_versions(run)
    run.ok("alias", "set", "churn", "staging", "churn/1")
    run.ok("alias", "set", "churn", "staging", "churn/2")
    out = run.ok("alias", "rollback", "churn", "staging").out
    assert out == "churn@staging -> churn/1 (rolled back)\n"
    moves = [e["version"] for e in run.json("alias", "history", "churn", "staging")]
    assert moves == ["churn/1", "churn/2", "churn/1"]

    # production held the better churn/1, then churn/2 by override: going back is allowed.
    run.ok("alias", "set", "churn", "production", "churn/1")
    run.ok("policy", "set", "churn", "production", "--metric", "accuracy")
    run.ok("alias", "set", "churn", "production", "churn/2", "--force", "--reason", "test")
    assert run.ok("alias", "rollback", "churn", "production").out.endswith(
        "churn/1 (rolled back)\n"
    )
    # Rolling back again would put the worse churn/2 back: the gate refuses it.
    err = run.fails(1, "alias", "rollback", "churn", "production")
    assert "churn/2 scores accuracy 0.8 on holdout.csv@" in err
    assert "where churn/1 scores 0.9, and the policy needs 0.9 or more" in err
    assert "--reason" in run.fails(2, "alias", "rollback", "churn", "production", "--force")
    run.ok("alias", "rollback", "churn", "production", "--force", "--reason", "revert the revert")
    assert holder(run) == "churn/2"
    assert len(run.json("audit", "--action", "alias.override")) == 2

    run.ok("register", "fraud", "model.bin")
    run.ok("alias", "set", "fraud", "staging", "fraud/1")
    assert "no previous target" in run.fails(1, "alias", "rollback", "fraud", "staging")


def test_alias_check_prints_every_check_and_exits_1_on_a_failure(run: CLI) -> None:
    two_scored_versions(run)
    run.ok("policy", "set", "churn", "production", "--metric", "accuracy", "--approvals", "1")
    run.ok("alias", "set", "churn", "production", "churn/1", "--force", "--reason", "first")

    result = run("alias", "check", "churn", "production", "churn/2")
    assert result.code == 1
    digest = hashlib.sha256(b"x,y\n1,0\n").hexdigest()[:12]
    scores = f"churn/2 scores accuracy 0.8 on holdout.csv@{digest}"
    assert result.out.splitlines() == [
        "ok      not-data-retired  churn/2 is not flagged data-retired",
        f"ok      evaluated         {scores}",
        f"FAILED  not-worse         {scores}, where churn/1 scores 0.9, and the policy needs 0.9"
        " or more",
        "FAILED  approvals         churn/2 has 0 approvals and the policy needs 1 (each"
        " maintainer approves it with modelreg approve)",
    ]
    assert result.err == (
        "error: churn/2 may not take churn@production: 2 checks failed (not-worse, approvals)\n"
    )
    raw = run("alias", "check", "churn", "production", "churn/2", "--json")
    assert raw.code == 1
    report = json.loads(raw.out)
    assert (report["protected"], report["ok"]) == (True, False)
    assert [(c["name"], c["ok"]) for c in report["checks"]] == [
        ("not-data-retired", True),
        ("evaluated", True),
        ("not-worse", False),
        ("approvals", False),
    ]
    assert holder(run) == "churn/1"  # nothing moved

    run.ok("evaluate", "churn/2", "--dataset", "holdout.csv", "--metric", "accuracy=0.95")
    run.ok("approve", "churn/2", "--alias", "production")
    out = run.ok("alias", "check", "churn", "production", "churn/2").out
    assert "FAILED" not in out
    assert out.endswith("churn/2 may take churn@production\n")
    assert run.json("alias", "check", "churn", "production", "churn/2")["ok"] is True

    out = run.ok("alias", "check", "churn", "staging", "churn/2").out
    assert out == "churn@staging is not protected: any version of churn may take it\n"


def test_policy_set_and_show(run: CLI) -> None:
    two_scored_versions(run)
    assert run.json("policy", "show", "churn", "production") == {
        "protected": True,
        "block_retired": True,
        "metric": None,
        "dataset": None,
        "higher_is_better": True,
        "min_margin": 0.0,
        "approvals": 0,
        "overrides": "allowed",
    }
    assert run.ok("policy", "show", "churn", "production").out == (
        "churn@production is protected: a version must be\n  not flagged data-retired\n"
        "A maintainer may override failing gates (--force with a reason).\n"
    )
    assert run.json("policy", "show", "churn", "staging") is None
    assert "is not protected" in run.ok("policy", "show", "churn", "staging").out

    out = run.ok(
        "policy",
        "set",
        "churn",
        "staging",
        "--metric",
        "loss",
        "--dataset",
        "holdout.csv",
        "--lower-is-better",
        "--min-margin",
        "0.01",
        "--approvals",
        "2",
        "--allow-retired",
    ).out
    assert out == (
        "churn@staging is protected: a version must be\n"
        "  better by at least 0.01 than the current version in loss, evaluated on holdout.csv"
        " (lower is better)\n"
        "  approved by 2 different people\n"
        "A maintainer may override failing gates (--force with a reason).\n"
    )
    assert run.json("policy", "show", "churn", "staging") == {
        "protected": True,
        "block_retired": False,
        "metric": "loss",
        "dataset": "holdout.csv",
        "higher_is_better": False,
        "min_margin": 0.01,
        "approvals": 2,
        "overrides": "allowed",
    }
    [event] = run.json("audit", "--action", "policy.set")
    assert event["entity"] == "churn@staging"

    out = run.ok("policy", "set", "churn", "production", "--unprotect").out
    assert out == "churn@production is not protected: any version of the model may take it\n"
    assert run.json("policy", "show", "churn", "production") is None
    run.ok("dataset", "retire", "holdout.csv", "--reason", "withdrawn")
    run.ok("alias", "set", "churn", "production", "churn/2")  # flagged, but no gate now


def test_a_policy_can_forbid_overrides_or_ask_for_another_approval(
    run: CLI, monkeypatch: pytest.MonkeyPatch
) -> None:
    two_scored_versions(run)
    run.ok("alias", "set", "churn", "production", "churn/1")
    out = run.ok(
        "policy", "set", "churn", "production", "--metric", "accuracy", "--overrides", "forbidden"
    ).out
    assert out.endswith("No one may override failing gates.\n")
    force = ("alias", "set", "churn", "production", "churn/2", "--force", "--reason", "now")
    assert "--force is refused: the policy forbids overrides" in run.fails(1, *force)
    out = run.ok(
        "policy", "set", "churn", "production", "--metric", "accuracy", "--overrides", "approved"
    ).out
    assert out.endswith("once someone else has approved the version for it.\n")
    assert "someone other than alice has approved churn/2" in run.fails(1, *force)
    act_as(monkeypatch, "bob")
    run.ok("approve", "churn/2", "--alias", "production")
    act_as(monkeypatch, "alice")
    run.ok(*force)
    assert holder(run) == "churn/2"
    err = run.fails(2, "policy", "set", "churn", "production", "--overrides", "never")
    assert "overrides must be one of allowed, forbidden, approved, not 'never'" in err


def test_approve_records_each_person_once(run: CLI, monkeypatch: pytest.MonkeyPatch) -> None:
    two_scored_versions(run)
    run.ok("policy", "set", "churn", "production", "--approvals", "2")
    out = run.ok("approve", "churn/2", "--alias", "production").out
    assert out == "churn/2 is approved for production by 1 person: alice\n"
    err = run.fails(1, "approve", "churn/2", "--alias", "production")
    assert "alice has already approved churn/2" in err
    assert "churn/2 has 1 approval (alice) and the policy needs 2" in run.fails(
        1, "alias", "set", "churn", "production", "churn/2"
    )
    act_as(monkeypatch, "bob")
    out = run.ok("approve", "churn/2", "--alias", "production").out
    assert out == "churn/2 is approved for production by 2 people: alice, bob\n"
    assert run.ok("alias", "set", "churn", "production", "churn/2").out.endswith("churn/2\n")
    assert [e["actor"] for e in run.json("audit", "--action", "approval.create")] == [
        "bob",
        "alice",
    ]


@pytest.mark.parametrize(
    ("code", "args", "mentions"),
    [
        (2, ["policy", "set", "churn", "production", "--min-margin", "0.1"], "--metric"),
        (2, ["policy", "set", "churn", "production", "--lower-is-better"], "--metric"),
        (2, ["policy", "set", "churn", "production", "--dataset", "holdout"], "--metric"),
        (2, ["policy", "set", "churn", "production", "--min-margin", "-1"], "--min-margin"),
        (
            2,
            ["policy", "set", "churn", "production", "--metric", "a", "--min-margin", "nan"],
            "--min-margin",
        ),
        (
            2,
            ["policy", "set", "churn", "production", "--metric", "a", "--min-margin", "inf"],
            "not a finite number",
        ),
        (2, ["policy", "set", "churn", "production", "--approvals", "21"], "approvals"),
        (2, ["policy", "set", "churn", "production", "--metric", "b@d"], "b@d"),
        (2, ["policy", "set", "churn", "production", "--unprotect", "--approvals", "1"], "--unp"),
        (2, ["policy", "set", "Churn", "production"], "Churn"),
        (2, ["policy", "show", "churn", "latest"], "latest"),
        (1, ["policy", "show", "nope", "production"], "nope"),
        (2, ["approve", "churn/1"], "--alias"),
        (1, ["approve", "churn/9", "--alias", "production"], "churn/9"),
        (2, ["alias", "check", "churn", "production", "Churn/1"], "Churn"),
        (1, ["alias", "check", "churn", "production", "churn/9"], "churn/9"),
        (2, ["alias", "rollback", "churn", "production", "--reason", "why"], "--force"),
        (1, ["alias", "rollback", "churn", "production"], "no previous target"),
    ],
)
def test_gate_errors_are_one_line_with_the_right_exit_code(
    run: CLI, code: int, args: list[str], mentions: str
) -> None:
    two_scored_versions(run)
    result = run(*args)
    assert result.code == code, result
    assert mentions in result.err
    assert result.out == ""


# -- keys and signatures ---------------------------------------------------------------------


def test_keys_create_writes_a_pair_and_never_overwrites_one(run: CLI) -> None:
    out = run.ok("keys", "create").out
    assert re.fullmatch(
        rf"created signing key {KEY_ID}\n"
        r"private key: modelreg-signing\.key \(keep it secret.*\)\n"
        r"public key:  modelreg-signing\.pub\n",
        out,
    )
    assert stat.S_IMODE(Path("modelreg-signing.key").stat().st_mode) == 0o600
    assert "BEGIN PUBLIC KEY" in Path("modelreg-signing.pub").read_text()
    before = Path("modelreg-signing.key").read_bytes()
    assert "already exists" in run.fails(1, "keys", "create")
    assert Path("modelreg-signing.key").read_bytes() == before

    out = run.ok("keys", "create", "--private", "k/release.key", "--public", "k/release.pub").out
    assert "k/release.key" in out
    assert "k/release.pub" in out
    assert Path("k/release.pub").exists()
    assert not run.registry.exists()  # keys are files; the registry is not involved


def test_keys_trust_list_and_untrust(run: CLI) -> None:
    key_id = run.ok("keys", "create").out.split()[3]
    assert "no trusted keys" in run.ok("keys", "list").out
    assert run.ok("keys", "trust", "release", "modelreg-signing.pub").out == (
        f"trusted release: key {key_id}\n"
    )
    [listed] = run.json("keys", "list")
    assert (listed["name"], listed["key_id"], listed["added_by"]) == ("release", key_id, "alice")
    assert listed["public_key"] == Path("modelreg-signing.pub").read_text()
    assert re.search(rf"release\s+{key_id[:16]}\s", run.ok("keys", "list").out)
    assert "already trusted" in run.fails(1, "keys", "trust", "again", "modelreg-signing.pub")

    assert run.ok("keys", "untrust", "release").out == f"untrusted release: key {key_id}\n"
    assert run.json("keys", "list") == []
    assert "release" in run.fails(1, "keys", "untrust", "release")
    assert [e["action"] for e in run.json("audit")][:2] == ["key.untrust", "key.trust"]


def test_a_signed_version_pulls_verified(run: CLI) -> None:
    run.ok("keys", "create")
    write("model.bin")
    ref, version_id = run.ok(
        "register", "churn", "model.bin", "--sign", "modelreg-signing.key"
    ).out.split()
    assert ref == "churn/1"

    out = run.ok("pull", "churn/1", "-o", "by-key", "--verify-with", "modelreg-signing.pub").out
    assert out.endswith(
        "churn/1: 1 file in " + str(Path("by-key").resolve()) + ", signature verified\n"
    )
    assert Path("by-key/model.bin").read_text() == "content\n"

    assert "trusts no keys" in run.fails(1, "pull", "churn/1", "-o", "by-trust", "--verify")
    assert not Path("by-trust").exists()
    key_id = run.ok("keys", "trust", "release", "modelreg-signing.pub").out.split()[-1]
    out = run.ok("pull", "churn/1", "-o", "by-trust", "--verify").out
    assert out.endswith("signature verified\n")
    assert Path("by-trust/model.bin").exists()

    assert run.ok("verify", "churn/1").out == (
        f"churn/1: signature ok, key {key_id} (trusted as release)\n"
    )
    assert run.ok("verify", version_id, "--key", "modelreg-signing.pub").out == (
        f"churn/1: signature ok, key {key_id}\n"
    )
    assert run.json("verify", "churn/1") == {
        "version": "churn/1",
        "ok": True,
        "key_id": key_id,
        "reason": "",
    }


def test_an_unsigned_version_is_refused_and_nothing_is_written(run: CLI) -> None:
    run.ok("keys", "create")
    run.ok("keys", "trust", "release", "modelreg-signing.pub")
    write("model.bin")
    run.ok("register", "churn", "model.bin")
    err = run.fails(1, "pull", "churn/1", "-o", "out", "--verify")
    assert err == "error: churn/1 failed signature verification: churn/1 is not signed\n"
    assert not Path("out").exists()
    run.fails(1, "pull", "churn/1", "--verify-with", "modelreg-signing.pub")
    assert not Path("churn-1").exists()

    assert "churn/1 is not signed" in run.fails(1, "verify", "churn/1")
    result = run("verify", "churn/1", "--json")
    assert result.code == 1
    assert json.loads(result.out)["ok"] is False

    run.ok("keys", "create", "--private", "other.key", "--public", "other.pub")
    run.ok("register", "churn", "model.bin", "--sign", "other.key")
    assert "is not signed by key" in run.fails(
        1, "verify", "churn/2", "--key", "modelreg-signing.pub"
    )
    assert "not signed by any trusted key" in run.fails(1, "pull", "churn/2", "-o", "o", "--verify")
    assert not Path("o").exists()


@pytest.mark.parametrize(
    ("args", "mentions"),
    [
        (["register", "churn", "model.bin", "--sign", "modelreg-signing.pub"], "not a PEM private"),
        (["register", "churn", "model.bin", "--sign", "missing.key"], "missing.key"),
        (["pull", "churn/1", "--verify-with", "modelreg-signing.key"], "public key"),
        (["pull", "churn/1", "--verify", "--verify-with", "x.pub"], "cannot be combined"),
        (["verify", "churn/1", "--key", "missing.pub"], "missing.pub"),
        (["verify", "Churn/1"], "Churn"),
        (["keys", "trust", "release", "modelreg-signing.key"], "public key"),
        (["keys", "trust", "Bad Name", "modelreg-signing.pub"], "key name"),
        (["keys", "untrust", "Bad Name"], "key name"),
    ],
)
def test_malformed_keys_are_usage_errors_and_create_no_registry(
    run: CLI, args: list[str], mentions: str
) -> None:
    run.ok("keys", "create")
    write("model.bin")
    result = run(*args)
    assert result.code == 2, result
    assert mentions in result.err
    assert not run.registry.exists()


# -- cards and traces ------------------------------------------------------------------------


def test_card_as_markdown_and_json(run: CLI) -> None:
    write("model.bin")
    write("train.csv", "x,y\n1,0\n")
    run.ok("register", "churn", "model.bin", "--dataset", "train.csv", "--metric", "auc=0.8")
    run.ok("alias", "set", "churn", "production", "churn/1")
    markdown = run.ok("card", "churn@production").out
    assert markdown.startswith("# Model card: churn/1\n")
    for heading in ("Registration", "Aliases", "Metrics", "Datasets", "Signature", "Audit events"):
        assert f"\n## {heading}\n" in markdown, heading
    card = json.loads(run.ok("card", "churn/1", "--format", "json").out)
    assert card["identity"]["ref"] == "churn/1"
    assert card["metrics"] == {"auc": 0.8}
    assert "--format 'html'" in run.fails(2, "card", "churn/1", "--format", "html")
    assert "churn/9" in run.fails(1, "card", "churn/9")


def test_trace_by_uuid_and_by_the_pulled_directory(run: CLI) -> None:
    write("model.bin")
    write("train.csv", "x,y\n1,0\n")
    run.ok("register", "churn", "model.bin", "--dataset", "train.csv")
    version_id = run.ok("register", "churn", "model.bin", "--parent", "churn/1").out.split()[1]
    run.ok("pull", "churn/2", "-o", "deployed")

    by_dir = run.ok("trace", "deployed").out
    assert by_dir.startswith("# Trace of churn/2\n")
    assert "train.csv" in by_dir
    assert "churn/1" in by_dir
    by_id = json.loads(run.ok("trace", version_id, "--format", "json").out)
    assert (by_id["id"], by_id["version"], by_id["marker"]) == (version_id, "churn/2", None)
    by_file = json.loads(run.ok("trace", "deployed/modelreg.json", "--format", "json").out)
    assert by_file["marker"]["ref"] == "churn/2"
    assert [d["name"] for d in by_file["datasets"]] == ["train.csv"]

    assert "neither a version UUID" in run.fails(2, "trace", "nowhere")
    assert "modelreg.json" in run.fails(2, "trace", ".")
    missing = "00000000-0000-4000-8000-000000000000"
    assert missing in run.fails(1, "trace", missing)


# -- webhooks --------------------------------------------------------------------------------


@dataclass
class Receiver:
    url: str
    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """An HTTP endpoint on 127.0.0.1 that records every POST and answers 204."""
    found = Receiver("")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            found.requests.append((dict(self.headers), body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    found.url = f"http://127.0.0.1:{server.server_port}/hooks/modelreg"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield found
    server.shutdown()
    server.server_close()
    thread.join()


def test_webhook_urls_to_private_hosts_are_refused(run: CLI) -> None:
    err = run.fails(1, "webhook", "add", "ci", "http://10.0.0.1/")
    assert "must use https" in err
    assert "MODELREG_WEBHOOK_ALLOW_HOSTS" in err
    err = run.fails(1, "webhook", "add", "ci", "https://10.0.0.1/")
    assert "10.0.0.1 is a private address" in err
    assert "MODELREG_WEBHOOK_ALLOW_HOSTS" in err
    assert run.json("webhook", "list") == []


def test_webhook_add_list_deliver_and_remove(
    run: CLI, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(outbound.ALLOW_HOSTS_ENV, "127.0.0.1")
    write("model.bin")
    run.ok("register", "churn", "model.bin")
    out = run.ok("webhook", "add", "ci", receiver.url, "--action", "alias.").out
    first, second, note = out.splitlines()
    assert first == f"added webhook ci: {receiver.url} (alias.)"
    secret = second.removeprefix("secret: ")
    assert len(secret) >= 16
    assert "will not be shown again" in note

    [listed] = run.json("webhook", "list")
    origin = receiver.url.removesuffix("/hooks/modelreg")
    # The path may carry a token: listings show the origin only.
    assert (listed["name"], listed["url"], listed["actions"]) == ("ci", f"{origin}/…", ["alias."])
    assert listed["pending"] == 0
    text = run.ok("webhook", "list").out
    assert re.search(r"ci\s+http://127\.0\.0\.1:\d+/…\s+alias\.\s+0\s", text)
    assert "hooks/modelreg" not in text
    for shown in (text, run.ok("webhook", "list", "--json").out, run.ok("audit", "--json").out):
        assert secret not in shown
    assert "no delivery attempts" in run.ok("webhook", "deliveries").out

    run.ok("tag", "set", "churn/1", "team", "growth")  # not an alias event: not delivered
    run.ok("alias", "set", "churn", "staging", "churn/1")
    assert run.json("webhook", "list")[0]["pending"] == 1
    out = run.ok("webhook", "deliver").out
    assert out == "1 webhook: 1 delivered, 0 to retry, 0 failed, 0 waiting for a retry\n"
    [(headers, body)] = receiver.requests
    assert headers["X-Modelreg-Event"] == "alias.set"
    assert json.loads(body)["entity"] == "churn@staging"
    timestamp, signature = headers["X-Modelreg-Timestamp"], headers["X-Modelreg-Signature"]
    assert webhooks.verify_signature(secret, timestamp, body, signature)
    assert run.json("webhook", "deliver")["delivered"] == 0

    [delivery] = run.json("webhook", "deliveries", "ci")
    assert (delivery["webhook"], delivery["action"], delivery["attempt"]) == ("ci", "alias.set", 1)
    assert (delivery["status"], delivery["status_code"]) == ("delivered", 204)
    assert delivery["delivery"] == headers["X-Modelreg-Delivery"]
    table = run.ok("webhook", "deliveries", "--limit", "5").out
    assert re.search(r"ci\s+\d+ alias\.set\s+1\s+delivered\s+HTTP 204", table)

    run.ok("alias", "set", "churn", "production", "churn/1")
    out = run.ok("webhook", "remove", "ci").out
    assert out == f"removed webhook ci ({origin}/…); 1 undelivered event dropped\n"
    assert "no webhooks" in run.ok("webhook", "list").out
    assert "no webhook is named 'ci'" in run.fails(1, "webhook", "deliveries", "ci")
    assert "no webhook is named 'ci'" in run.fails(1, "webhook", "remove", "ci")
    assert [e["action"] for e in run.json("audit", "--action", "webhook.remove")] == [
        "webhook.remove"
    ]


def test_a_refused_delivery_is_retried_and_logged(
    run: CLI, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(outbound.ALLOW_HOSTS_ENV, "127.0.0.1")
    write("model.bin")
    run.ok("register", "churn", "model.bin")
    run.ok("webhook", "add", "ci", receiver.url, "--secret", "s" * 32)
    run.ok("alias", "set", "churn", "staging", "churn/1")
    # The URL is checked again before each connection: without the allow list, no request.
    monkeypatch.delenv(outbound.ALLOW_HOSTS_ENV)
    assert run.json("webhook", "deliver")["retrying"] == 1
    assert receiver.requests == []
    [delivery] = run.json("webhook", "deliveries")
    assert delivery["status"] == "retrying"
    assert "MODELREG_WEBHOOK_ALLOW_HOSTS" in delivery["error"]
    table = run.ok("webhook", "deliveries").out
    assert re.search(r"ci\s+\d+ alias\.set\s+1\s+retrying\s+refused before connecting", table)
    assert re.search(r"next\s+attempt", table)


@pytest.mark.parametrize(
    ("code", "args", "mentions"),
    [
        (2, ["webhook", "add", "Bad Name", "https://example.com/"], "webhook name"),
        (2, ["webhook", "add", "ci", "https://example.com/", "--action", "Alias"], "Alias"),
        (2, ["webhook", "add", "ci", "https://example.com/", "--secret", "short"], "secret"),
        (1, ["webhook", "add", "ci", "ftp://example.com/"], "https"),
        (1, ["webhook", "add", "ci", "https://user:pw@example.com/"], "credentials"),
        (1, ["webhook", "add", "ci", "http://localhost/"], "MODELREG_WEBHOOK_ALLOW_HOSTS"),
        (2, ["webhook", "deliveries", "--limit", "0"], "--limit"),
        (2, ["webhook", "deliveries", "Bad Name"], "webhook name"),
        (1, ["webhook", "remove", "nope"], "nope"),
    ],
)
def test_webhook_errors_are_one_line_with_the_right_exit_code(
    run: CLI, code: int, args: list[str], mentions: str
) -> None:
    result = run(*args)
    assert result.code == code, result
    assert mentions in result.err
    assert result.out == ""


def test_tables_fit_a_narrow_terminal(
    run: CLI, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(outbound.ALLOW_HOSTS_ENV, "127.0.0.1")
    write("model.bin")
    run.ok("register", "churn", "model.bin")
    run.ok("keys", "create")
    run.ok("keys", "trust", "release", "modelreg-signing.pub")
    run.ok("webhook", "add", "ci", receiver.url)
    run.ok("alias", "set", "churn", "staging", "churn/1")
    run.ok("webhook", "deliver")
    monkeypatch.setenv("COLUMNS", "48")
    for args in (["keys", "list"], ["webhook", "list"], ["webhook", "deliveries"]):
        out = run.ok(*args).out
        widest = max(len(line.rstrip()) for line in out.splitlines())
        assert widest <= 48, (args, out)
