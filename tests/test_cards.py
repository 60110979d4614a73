"""Cards below the contract: Markdown escaping as a property, and stored signatures."""

from __future__ import annotations

import re
from pathlib import Path

from hypothesis import example, given
from hypothesis import strategies as st

import modelreg
from modelreg import reports, schema

# The characters that matter to Markdown tables and line structure find edge cases faster.
markdownish = st.text(alphabet="ab|\\#`*_[]<>~ \n\r\x0b\x1c\u2028-é", max_size=40)


def unescape(text: str) -> str:
    return re.sub(r"\\(.)|<br>", lambda m: m.group(1) or "\n", text)


def cell_count(row: str) -> int:
    return len(re.findall(r"(?<!\\)(?:\\\\)*\|", row)) - 1


@given(markdownish)
@example("a | b\n# not a heading")
@example("ends in a backslash \\")
@example("<br>")
def test_escaped_text_stays_in_one_cell_and_round_trips(text: str) -> None:
    escaped = reports.escape(text)
    assert len(escaped.splitlines()) <= 1
    assert cell_count(f"| {escaped} |") == 1
    assert not escaped.startswith("#")
    assert unescape(escaped) == "\n".join(text.splitlines())


def test_a_card_reports_stored_signatures_as_stored(tmp_path: Path) -> None:
    (tmp_path / "m.bin").write_text("m")
    with modelreg.connect(tmp_path / "reg", actor="tester") as reg:
        version = reg.register("churn", tmp_path / "m.bin")
        row = {
            "version_id": version.id,
            "key_id": "ab" * 32,
            "algorithm": "ed25519",
            "signature": "c2lnbmF0dXJl",
            "document_digest": "cd" * 32,
            "created_at": "2026-11-01T12:00:00.000000Z",
            "created_by": "release-bot",
        }
        reg.db.write(lambda conn: conn.execute(schema.version_signatures.insert().values(row)))
        card = reg.card(version.ref)
    assert card["signature"] == {
        "status": "signed",
        "signatures": [
            {
                "key_id": "ab" * 32,
                "algorithm": "ed25519",
                "created_at": "2026-11-01T12:00:00.000000Z",
                "created_by": "release-bot",
            }
        ],
    }
    text = reports.card_markdown(card)
    assert "**signed**" in text
    assert "release-bot" in text
