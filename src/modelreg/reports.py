"""Markdown for people: model cards' cells and the dataset retirement report, every value
escaped so that it stays in its cell or line. Pure: the CLI renders a report the server sent."""

from __future__ import annotations

import json
import re
from typing import Any

_SPECIAL = re.compile(r"([\\`*_\[\]<>|#~])")


def escape(value: Any) -> str:
    """Any value as Markdown text that stays inside one table cell or one line.

    Markdown punctuation is backslash-escaped (pipes included) and line breaks become
    ``<br>``, so ``a | b\\n# x`` can neither split a cell, end a row nor start a heading.
    """
    if value is None:
        return "-"
    if isinstance(value, bool):
        text = "yes" if value else "no"
    elif isinstance(value, str):
        text = value
    elif isinstance(value, (int, float)):
        text = str(value)
    else:
        text = json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)
    return "<br>".join(_SPECIAL.sub(r"\\\1", line) for line in text.splitlines())


def markdown(report: dict[str, Any], *, dry_run: bool) -> str:
    """The impact report as Markdown, for a compliance ticket; every value is escaped."""
    title = "Impact of retiring" if dry_run else "Retirement of"
    # Names, digests and aliases cannot hold a backquote, so code spans are safe for them.
    lines = [f"# {title} dataset `{report['dataset']}`", ""]
    lines += ["## Dataset versions", "", "| name | digest | uri | retired | reason |"]
    lines += ["| --- | --- | --- | --- | --- |"]
    for d in report["datasets"]:
        when = d["retired_at"] or ("would be retired" if dry_run else "no")
        cells = [d["name"], d["digest"], d["uri"], when, d["reason"] or ""]
        lines.append("| " + " | ".join(escape(c) for c in cells) + " |")
    lines += ["", f"## Affected versions ({len(report['versions'])})", ""]
    if report["versions"]:
        lines += ["| version | relation | uses | via |", "| --- | --- | --- | --- |"]
    else:
        lines.append("- none")
    for v in report["versions"]:
        cells = [v["version"], v["relation"], ", ".join(v["uses"]), v["via"] or ""]
        lines.append("| " + " | ".join(escape(c) for c in cells) + " |")
    lines += ["", f"## Aliases on affected versions ({len(report['aliases'])})", ""]
    lines += [f"- `{a['alias']}` -> {a['version']}" for a in report["aliases"]] or ["- none"]
    gone = report.get("deleted_versions", [])
    if gone:
        lines += ["", f"## Deleted versions that depended on it ({len(gone)})", ""]
        lines += [GC_NOTE, "", "| version | relation | uses | via | deleted |"]
        lines += ["| --- | --- | --- | --- | --- |"]
        for v in gone:
            cells = [v["version"], v["relation"], ", ".join(v["uses"]), v["via"] or ""]
            lines.append("| " + " | ".join(escape(c) for c in [*cells, v["deleted_at"]]) + " |")
    return "\n".join(lines) + "\n"


GC_NOTE = (
    "Their files stay in the blob store until `modelreg gc` removes the blobs no other"
    " version references (after its grace period)."
)
