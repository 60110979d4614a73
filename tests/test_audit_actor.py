"""The embedded registry records, as the actor of each change, who connected."""

from __future__ import annotations

import modelreg


def test_the_actor_is_who_connected(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "m.bin").write_bytes(b"m")
    with modelreg.connect(tmp_path / "reg", actor="alice") as alice:
        alice.register("churn", "m.bin")
    with modelreg.connect(tmp_path / "reg") as anyone:
        assert {e.actor for e in anyone.audit()} == {"alice"}
