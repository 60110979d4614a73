"""Tampering with the audit log directly in the database is caught by verify, which names
the first bad event; ``modelreg audit verify`` exits 1 saying which."""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest

import modelreg
from modelreg import audit
from modelreg.audit import event_hash

EVENTS = 7


@pytest.fixture
def root(tmp_path, monkeypatch) -> Path:
    """A registry with seven audit events, all of which verify."""
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "reg"
    Path("m.bin").write_text("m")
    with modelreg.connect(path, actor="alice") as reg:
        reg.register("churn", "m.bin")  # 1 model.create, 2 version.create
        reg.register("churn", "m.bin")  # 3
        reg.set_alias("churn", "production", "churn/1")  # 4
        reg.set_alias("churn", "production", "churn/2")  # 5
        reg.set_tag("churn/2", "team", "growth")  # 6
        reg.set_description("churn/2", "shipped")  # 7
        result = reg.db.read(audit.verify)  # checked, but no check recorded
    assert (result.ok, result.events) == (True, EVENTS)
    return path


def sql(root: Path, *statements: tuple[str, tuple]) -> None:
    with closing(sqlite3.connect(root / "registry.db")) as conn, conn:
        for statement, args in statements:
            conn.execute(statement, args)


def row(root: Path, seq: int) -> dict:
    with closing(sqlite3.connect(root / "registry.db")) as conn:
        conn.row_factory = sqlite3.Row
        return dict(conn.execute("SELECT * FROM audit_events WHERE seq = ?", (seq,)).fetchone())


def verify(root: Path, *, full: bool = True):
    with modelreg.connect(root) as reg:
        return reg.verify_audit(full=full)


def test_an_untouched_log_verifies(root):
    assert verify(root).ok


def test_editing_an_events_after_is_caught_at_that_event(root):
    sql(root, ("UPDATE audit_events SET after = ? WHERE seq = 4", ('{"version":"churn/2"}',)))
    result = verify(root)
    assert (result.ok, result.bad_seq) == (False, 4)
    assert "4" in result.reason


@pytest.mark.parametrize("column", ["actor", "action", "entity", "at", "before"])
def test_editing_any_field_is_caught(root, column):
    sql(root, (f"UPDATE audit_events SET {column} = ? WHERE seq = 5", ("forged",)))
    assert (verify(root).ok, verify(root).bad_seq) == (False, 5)


def test_an_edit_with_a_recomputed_hash_is_caught_at_the_next_event(root):
    forged = row(root, 3)
    forged["actor"] = "mallory"
    forged["hash"] = event_hash(forged)
    sql(
        root,
        ("UPDATE audit_events SET actor = ?, hash = ? WHERE seq = 3", ("mallory", forged["hash"])),
    )
    result = verify(root)
    assert (result.ok, result.bad_seq) == (False, 4)


def test_deleting_a_middle_event_is_caught_and_named(root):
    sql(root, ("DELETE FROM audit_events WHERE seq = 4", ()))
    result = verify(root)
    assert (result.ok, result.bad_seq) == (False, 4)
    assert "deleted" in result.reason


def test_deleting_the_last_event_is_caught_by_the_head(root):
    sql(root, ("DELETE FROM audit_events WHERE seq = ?", (EVENTS,)))
    result = verify(root)
    assert (result.ok, result.bad_seq) == (False, EVENTS)


def test_a_forged_event_inserted_in_the_middle_is_caught(root):
    """Shift the later events up by one and slip a well-formed event in at seq 4."""
    before = row(root, 3)
    forged = {
        **row(root, 4),
        "seq": 4,
        "actor": "mallory",
        "after": '{"version":"churn/1"}',
        "prev_hash": before["hash"],
    }
    forged["hash"] = event_hash(forged)
    sql(
        root,
        ("UPDATE audit_events SET seq = seq + 1000 WHERE seq >= 4", ()),
        ("UPDATE audit_events SET seq = seq - 999 WHERE seq >= 1000", ()),
        (
            "INSERT INTO audit_events (seq, at, actor, action, entity_type, entity_id, entity,"
            " before, after, prev_hash, hash) VALUES (:seq, :at, :actor, :action, :entity_type,"
            " :entity_id, :entity, :before, :after, :prev_hash, :hash)",
            forged,
        ),
    )
    result = verify(root)
    assert result.ok is False
    assert result.bad_seq in (4, 5)


def append_forged_event(root: Path) -> int:
    """Append a well-chained event after the last one, without touching the head."""
    last = row(root, EVENTS)
    forged = {**last, "seq": EVENTS + 1, "actor": "mallory", "prev_hash": last["hash"]}
    forged["hash"] = event_hash(forged)
    sql(
        root,
        (
            "INSERT INTO audit_events (seq, at, actor, action, entity_type, entity_id, entity,"
            " before, after, prev_hash, hash) VALUES (:seq, :at, :actor, :action, :entity_type,"
            " :entity_id, :entity, :before, :after, :prev_hash, :hash)",
            forged,
        ),
    )
    return EVENTS + 1


def test_a_forged_event_appended_at_the_end_is_caught(root):
    append_forged_event(root)
    assert verify(root).ok is False


def test_a_forged_event_appended_at_the_end_is_named(root):
    """verify names the forged event and does not call it a deletion."""
    seq = append_forged_event(root)
    result = verify(root)
    assert result.bad_seq == seq
    assert "deleted" not in result.reason


def modelreg_cli(*args: str) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("modelreg")
    return subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=60)


def test_the_cli_reports_a_good_log_and_exits_0(root):
    done = modelreg_cli("--registry", str(root), "audit", "verify")
    assert done.returncode == 0, done.stderr
    assert str(EVENTS) in done.stdout


def test_the_cli_exits_1_naming_the_bad_event_in_one_line(root):
    sql(root, ("UPDATE audit_events SET after = ? WHERE seq = 3", ('{"forged":true}',)))
    done = modelreg_cli("--registry", str(root), "audit", "verify")
    assert done.returncode == 1
    output = (done.stdout + done.stderr).strip()
    assert len(output.splitlines()) == 1, output
    assert re.search(r"\b3\b", output), output


def test_the_cli_json_output_names_the_bad_event(root):
    sql(root, ("DELETE FROM audit_events WHERE seq = 2", ()))
    done = modelreg_cli("--registry", str(root), "audit", "verify", "--json")
    assert done.returncode == 1
    report = json.loads(done.stdout)
    assert (report["ok"], report["bad_seq"]) == (False, 2)


# -- checking from the last sound event -------------------------------------------------------


def test_a_check_walks_only_the_events_after_the_last_sound_one(root):
    assert (verify(root, full=False).since, verify(root, full=False).since) == (0, EVENTS)
    with modelreg.connect(root, actor="alice") as reg:
        reg.set_tag("churn/2", "stage", "live")  # 8
        reg.set_tag("churn/2", "stage", "retired")  # 9
    result = verify(root, full=False)
    assert (result.ok, result.events, result.since) == (True, EVENTS + 2, EVENTS)


def test_an_edit_after_the_last_sound_event_is_caught_without_a_full_check(root):
    verify(root, full=False)
    with modelreg.connect(root, actor="alice") as reg:
        reg.set_tag("churn/2", "stage", "live")  # 8
    sql(root, ("UPDATE audit_events SET actor = 'mallory' WHERE seq = 8", ()))
    result = verify(root, full=False)
    assert (result.ok, result.bad_seq, result.since) == (False, 8, EVENTS)


def test_an_old_edit_that_left_later_hashes_alone_takes_a_full_check(root):
    """The trade made for speed, as `audit verify --help` says: only --full re-hashes it."""
    verify(root, full=False)
    sql(root, ("UPDATE audit_events SET actor = 'mallory' WHERE seq = 3", ()))
    assert verify(root, full=False).ok
    assert (verify(root).ok, verify(root).bad_seq) == (False, 3)


def test_a_chain_rewritten_through_the_last_sound_event_is_caught(root):
    """Re-hashing every event from an edited one to the head leaves a chain a full check
    finds whole; the recorded hash of the last sound event no longer matches."""
    verify(root, full=False)
    prev = row(root, 3)["hash"]
    for seq in range(4, EVENTS + 1):
        forged = {**row(root, seq), "prev_hash": prev}
        if seq == 4:
            forged["actor"] = "mallory"
        forged["hash"] = prev = event_hash(forged)
        sql(root, ("UPDATE audit_events SET actor = ?, prev_hash = ?, hash = ? WHERE seq = ?",
                   (forged["actor"], forged["prev_hash"], forged["hash"], seq)))  # fmt: skip
    sql(root, ("UPDATE audit_head SET hash = ? WHERE id = 1", (prev,)))
    for full in (False, True):
        result = verify(root, full=full)
        assert (result.ok, result.bad_seq) == (False, EVENTS)
        assert "rewritten" in result.reason
    sql(root, ("DELETE FROM audit_checked", ()))  # without the record, the chain looks whole
    assert verify(root).ok


def test_the_cli_checks_every_event_with_full(root):
    assert verify(root, full=False).ok
    sql(root, ("UPDATE audit_events SET after = ? WHERE seq = 3", ('{"forged":true}',)))
    assert modelreg_cli("--registry", str(root), "audit", "verify").returncode == 0
    done = modelreg_cli("--registry", str(root), "audit", "verify", "--full")
    assert done.returncode == 1
    assert re.search(r"\b3\b", done.stdout + done.stderr)


def test_a_check_by_someone_who_may_only_read_still_answers(root, monkeypatch):
    """Recording where the next check starts is a write; refused, the check still answers."""
    import sqlalchemy as sa

    with modelreg.connect(root) as reg:

        def refused(fn):
            raise sa.exc.OperationalError("UPDATE audit_checked", {}, Exception("read-only"))

        monkeypatch.setattr(reg.db, "write", refused)
        result = reg.verify_audit()
        assert (result.ok, result.events) == (True, EVENTS)
        monkeypatch.undo()
        assert reg.verify_audit().since == 0  # nothing was recorded
