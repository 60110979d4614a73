"""Markdown for people: model cards, traces and the dataset retirement report, every value
escaped so that it stays in its cell or line. Pure: the CLI renders what a server sent."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

# The backslash is escaped too: a text ending in one would otherwise escape the pipe that
# closes its cell.
_SPECIAL = re.compile(r"([\\`*_\[\]<>|#~])")


def moved(side: Any) -> Any:
    """The version an alias event's before or after side names, if any."""
    return side.get("version") if isinstance(side, dict) else None


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


def retirement_markdown(report: dict[str, Any], *, dry_run: bool) -> str:
    """The impact report as Markdown, for a compliance ticket; every value is escaped."""
    title = "Impact of retiring" if dry_run else "Retirement of"
    # Names, digests and aliases cannot hold a backquote, so code spans are safe for them.
    lines = [f"# {title} dataset `{report['dataset']}`", ""]
    names = list(dict.fromkeys(d["name"] for d in report["datasets"]))
    if len(names) > 1:
        # Retirement is about the bytes: say every name they are recorded under.
        listed = ", ".join(f"`{n}`" for n in names)
        lines += [f"The same bytes are recorded as {listed}: retirement covers every name.", ""]
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


# -- model cards and traces --------------------------------------------------------------------

_HEX = re.compile(r"[0-9a-f]{1,128}")


def _digest(value: Any) -> str:
    return f"`{value}`" if isinstance(value, str) and _HEX.fullmatch(value) else escape(value)


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Cells must already be escaped; an empty table is a line saying so."""
    if not rows:
        return ["_none_"]
    lines = ["| " + " | ".join(headers) + " |", "|" + " --- |" * len(headers)]
    lines += ["| " + " | ".join(cell or " " for cell in row) + " |" for row in rows]
    return lines


def _fields(pairs: Sequence[tuple[str, str]]) -> list[str]:
    return _table(["field", "value"], [(name, value) for name, value in pairs])


def _values(values: dict[str, Any], header: str = "value") -> list[str]:
    return _table(["key", header], [(escape(k), escape(v)) for k, v in values.items()])


def _section(title: str, body: list[str]) -> list[str]:
    return ["", f"## {title}", "", *body]


def _retired_cell(d: dict[str, Any]) -> str:
    if not d.get("retired"):
        return "no"
    return f"yes, {escape(d['retired_at'])}: {escape(d['reason'])}"


def _forced_cell(override: dict[str, Any] | None) -> str:
    if not override:
        return "no"
    return f"yes, by {escape(override['by'])}, because: {escape(override['reason'])}"


def _forced_line(move: dict[str, Any]) -> str:
    """A forced move in full: who, when, the reason given, what failed, who had approved."""
    override = move["override"]
    failed = "; ".join(str(c.get("detail") or c.get("name")) for c in override["failed"])
    approvers = ", ".join(override["approvers"]) or "nobody"
    return (
        f"- {escape(move['at'])}: {escape(override['by'])} moved @{escape(move['alias'])} from"
        f" {escape(move['from'])} to {escape(move['to'])}, because: {escape(override['reason'])}."
        f" Failed: {escape(failed or None)}. Approved by: {escape(approvers)}."
    )


def _code_rows(code: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        (escape(k), _digest(v) if k.endswith(("digest", "commit")) else escape(v))
        for k, v in sorted(code.items())
    ]


def _audit_change(event: dict[str, Any]) -> str:
    before, after = event["before"], event["after"]
    if event["action"] == "alias.override":
        failed = ", ".join(str(c.get("name")) for c in after.get("failed", []))
        return (
            f"forced onto {escape(moved(after))} past failed {escape(failed or None)},"
            f" because: {escape(after.get('reason'))}"
        )
    if event["action"].startswith("alias."):
        return f"{escape(moved(before))} -> {escape(moved(after))}"
    if event["action"] == "version.create":
        return f"registered, manifest {_digest(after.get('manifest_digest'))}"
    if event["action"] == "evaluation.create":
        metrics = ", ".join(f"{k}={v}" for k, v in after.get("metrics", {}).items())
        dataset = after.get("dataset", {})
        return (
            f"on {escape(dataset.get('name'))} {_digest(dataset.get('digest'))}: {escape(metrics)}"
        )
    if event["action"] == "dataset.retire":
        return f"retired {escape(event['entity'])}: {escape(after.get('reason'))}"
    shown = " -> ".join(json.dumps(side, sort_keys=True) for side in (before, after) if side)
    return escape(shown if len(shown) <= 200 else shown[:199] + "…")


def card_markdown(card: dict[str, Any]) -> str:
    """The card as Markdown: one heading per section, tables where rows repeat."""
    ident, reg, run = card["identity"], card["registration"], card["run"]
    out = [f"# Model card: {escape(ident['ref'])}"]
    out += _section(
        "Identity",
        _fields(
            [
                ("version", escape(ident["ref"])),
                ("id", escape(ident["id"])),
                ("model", escape(ident["model"])),
                ("number", escape(ident["number"])),
                ("description", escape(ident["description"] or None)),
                ("manifest digest", _digest(ident["manifest_digest"])),
                ("files", f"{ident['file_count']} ({ident['size']} bytes)"),
                *[(f"tag {escape(k)}", escape(v)) for k, v in ident["tags"].items()],
            ]
        ),
    )
    registration = [
        ("registered by", escape(reg["created_by"])),
        ("registered at", escape(reg["created_at"])),
        ("host", escape(reg["hostname"])),
    ]
    if run is not None:
        registration += [
            ("run", f"{escape(run['name'] or None)} ({escape(run['id'])})"),
            ("run status", escape(run["status"])),
            ("run started", escape(run["started_at"])),
            ("run ended", escape(run["ended_at"])),
            ("run user", escape(run["user"])),
            *[(f"run param {escape(k)}", escape(v)) for k, v in sorted(run["params"].items())],
        ]
    out += _section("Registration", _fields(registration))
    current = card["aliases"]["current"]
    history = card["aliases"]["history"]
    forced = [m for m in history if m.get("override")]
    out += _section(
        "Aliases",
        [
            "Currently: " + (", ".join(escape(f"@{a}") for a in current) or "_none_"),
            "",
            *_table(
                ["alias", "at", "by", "from", "to", "forced past failing gates"],
                [
                    [escape(m[k]) for k in ("alias", "at", "actor", "from", "to")]
                    + [_forced_cell(m.get("override"))]
                    for m in history
                ],
            ),
            *(["", "Moves forced past failing gates:", ""] if forced else []),
            *[_forced_line(m) for m in forced],
        ],
    )
    out += _section("Params", _values(card["params"]))
    out += _section("Metrics", _values(card["metrics"]))
    out += _section(
        "Evaluations",
        _table(
            ["at", "by", "dataset", "digest", "metrics", "dataset retired"],
            [
                [
                    escape(e["created_at"]),
                    escape(e["created_by"]),
                    escape(e["dataset"]["name"]),
                    _digest(e["dataset"]["digest"]),
                    escape(", ".join(f"{k}={v}" for k, v in e["metrics"].items())),
                    _retired_cell(e["dataset"]),
                ]
                for e in card["evaluations"]
            ],
        ),
    )
    out += _section("Datasets", _dataset_table(card["datasets"]))
    out += _section("Code", _fields(_code_rows(card["code"])))
    env = dict(card["environment"])
    packages = env.pop("packages", None) or {}
    out += _section(
        "Environment",
        [
            *_fields(
                [(escape(k), _digest(v) if k == "digest" else escape(v)) for k, v in env.items()]
            ),
            "",
            f"Installed packages ({len(packages)}):",
            "",
            *_table(
                ["package", "version"],
                [(escape(k), escape(v)) for k, v in sorted(packages.items())],
            ),
        ],
    )
    out += _section(
        "Parents and children",
        _table(
            ["relation", "version"],
            [("parent", escape(p)) for p in card["parents"]]
            + [("child", escape(c)) for c in card["children"]],
        ),
    )
    out += _section(
        "Status flags",
        _table(
            ["flag", "raised at", "because"],
            [
                [
                    escape(f["flag"]),
                    escape(f["raised_at"]),
                    "-"
                    if f["source"] is None
                    else f"dataset {escape(f['source']['dataset'])}"
                    f" {_digest(f['source']['digest'])} retired: {escape(f['source']['reason'])}",
                ]
                for f in card["flags"]
            ],
        ),
    )
    signature = card["signature"]
    out += _section(
        "Signature",
        [
            f"Status: **{escape(signature['status'])}** (stored signatures; the card does not"
            " verify them)",
            "",
            *_table(
                ["key id", "algorithm", "signed at", "signed by"],
                [
                    [
                        _digest(s["key_id"]),
                        escape(s["algorithm"]),
                        escape(s["created_at"]),
                        escape(s["created_by"]),
                    ]
                    for s in signature["signatures"]
                ],
            ),
        ],
    )
    out += _section(
        "Audit events",
        _table(
            ["seq", "at", "actor", "action", "entity", "change"],
            [
                [
                    escape(e["seq"]),
                    escape(e["at"]),
                    escape(e["actor"]),
                    escape(e["action"]),
                    escape(e["entity"]),
                    _audit_change(e),
                ]
                for e in card["audit"]
            ],
        ),
    )
    out += _section(
        "Files",
        _table(
            ["path", "digest", "size"],
            [(escape(f["path"]), _digest(f["digest"]), escape(f["size"])) for f in card["files"]],
        ),
    )
    return "\n".join(out) + "\n"


def _dataset_table(found: Sequence[dict[str, Any]]) -> list[str]:
    return _table(
        ["name", "role", "digest", "uri", "retired"],
        [
            [
                escape(d["name"]),
                escape(d["role"]),
                _digest(d["digest"]),
                escape(d["uri"]),
                _retired_cell(d),
            ]
            for d in found
        ],
    )


def trace_markdown(found: dict[str, Any]) -> str:
    """A trace as Markdown: the version, every dataset that fed it, and each generation."""
    target = found["lineage"]
    marker = found["marker"]
    out = [f"# Trace of {escape(found['version'])}"]
    fields = [
        ("version", escape(found["version"])),
        ("id", escape(found["id"])),
        ("manifest digest", _digest(found["manifest_digest"])),
        ("flags", escape(", ".join(found["flags"]) or None)),
    ]
    if found.get("deleted"):
        gone = found["deleted"]
        fields.append(("deleted", escape(f"{gone['at']} by {gone['by']}: {gone['reason']}")))
    if marker is not None:
        fields.append(("read from", escape(marker["path"])))
    out += _section("Version", _fields(fields))
    out += _section(
        "Datasets that fed it",
        _table(
            ["name", "digest", "uri", "used by", "retired"],
            [
                [
                    escape(d["name"]),
                    _digest(d["digest"]),
                    escape(d["uri"]),
                    escape(", ".join(f"{u['version']} ({u['role']})" for u in d["used_by"])),
                    _retired_cell(d),
                ]
                for d in found["datasets"]
            ],
        ),
    )
    generations = [
        {**target, "depth": 0, "version": found["version"], "deleted": found.get("deleted")},
        *found["ancestors"],
    ]
    out += _section(
        "Generations",
        _table(
            ["depth", "version", "parents", "commit", "dirty", "environment digest"],
            [
                [
                    escape(g["depth"]),
                    escape(g["version"] + (" (deleted)" if g.get("deleted") else "")),
                    escape(", ".join(g["parents"]) or None),
                    _digest(g["code"].get("commit")),
                    escape(g["code"].get("dirty")),
                    _digest(g["environment_digest"]),
                ]
                for g in generations
            ],
        ),
    )
    out += _section("Code of this version", _fields(_code_rows(target["code"])))
    return "\n".join(out) + "\n"
