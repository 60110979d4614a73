"""Model cards and traces: what an auditor asks about one version, in one document.

A card (:func:`build`) gathers everything the registry holds about a version: identity, who
registered it and when, aliases with the moves that involved it, params, metrics,
evaluations, datasets with their retirement status, code, environment, parents and
children, status flags, stored signatures and its audit events. A trace (:func:`trace`)
starts from the UUID a deployed service logs (read from the ``modelreg.json`` that ``pull``
writes) and follows parent links to the first generation, so that every dataset that fed
the model, directly or through a parent, is listed. :func:`markdown` and
:func:`trace_markdown` render them; every value from the registry is escaped, so no
description or name can break a table or start a heading.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from modelreg import aliases, audit, evaluations, lineage, schema, versions
from modelreg.audit import AuditEvent
from modelreg.errors import IntegrityError, NotFound
from modelreg.reports import escape as escape
from modelreg.transfer import MARKER
from modelreg.versions import Version

AUDIT_PAGE = 500
SIGNED, UNSIGNED = "signed", "unsigned"


# -- building a card -----------------------------------------------------------------------


def build(conn: Connection, version_id: str) -> dict[str, Any]:
    """Everything recorded about one version, section by section (see the module doc)."""
    version = _load(conn, version_id)
    found = lineage.of_version(conn, version)
    evaluated = evaluations.of_version(conn, version.id)
    retired = _retirements(
        conn,
        {d.digest for d in version.datasets} | {e["dataset"]["digest"] for e in evaluated},
    )
    return {
        "identity": {
            "id": version.id,
            "ref": version.ref,
            "model": version.model,
            "number": version.number,
            "description": version.description,
            "manifest_digest": version.manifest_digest,
            "size": version.size,
            "file_count": len(version.files),
            "tags": version.tags,
        },
        "registration": {
            "created_by": version.created_by,
            "created_at": version.created_at,
            "hostname": found["hostname"],
        },
        "run": found["run"],
        "aliases": {"current": version.aliases, "history": _alias_moves(conn, version)},
        "params": version.params,
        "metrics": version.metrics,
        "evaluations": [
            {**e, "dataset": {**e["dataset"], **_retirement(retired, e["dataset"])}}
            for e in evaluated
        ],
        "datasets": [{**d, **_retirement(retired, d)} for d in found["datasets"]],
        "code": found["code"],
        "environment": {"digest": found["environment_digest"], **found["environment"]},
        "parents": found["parents"],
        "children": found["children"],
        "flags": _flags(conn, version.id),
        # As stored: verifying the signatures is signing.py's job, not the card's.
        "signature": {
            "status": SIGNED if found["signatures"] else UNSIGNED,
            "signatures": found["signatures"],
        },
        "audit": [e.to_dict() for e in _audit_events(conn, version)],
        "files": [f.to_dict() for f in version.files],
    }


def _load(conn: Connection, version_id: str) -> Version:
    found = versions.load(conn, [version_id])
    if not found:
        raise NotFound(f"version {version_id} not found")
    return found[0]


def _retirements(conn: Connection, digests: set[str]) -> dict[str, Any]:
    """The first retirement of the data with each of these digests, under whatever name:
    retiring data retires the same bytes whatever they are called (see retirement.py)."""
    if not digests:
        return {}
    r, d = schema.dataset_retirements, schema.datasets
    q = (
        sa.select(d.c.digest, r.c.reason, r.c.retired_at, r.c.retired_by)
        .join(r, r.c.dataset_id == d.c.id)
        .where(d.c.digest.in_(sorted(digests)))
        .order_by(r.c.retired_at.desc(), r.c.id.desc())
    )
    return {row.digest: row for row in conn.execute(q)}  # the oldest is written last


def _retirement(retired: dict[str, Any], dataset: dict[str, Any]) -> dict[str, Any]:
    row = retired.get(dataset["digest"])
    return {
        "retired": row is not None,
        "retired_at": None if row is None else row.retired_at,
        "retired_by": None if row is None else row.retired_by,
        "reason": None if row is None else row.reason,
    }


def _alias_moves(conn: Connection, version: Version) -> list[dict[str, Any]]:
    """Each move of an alias onto or away from this version (a deletion moves it to None)."""
    e = schema.alias_events
    names = conn.execute(
        sa.select(e.c.alias).where(e.c.version_id == version.id).distinct().order_by(e.c.alias)
    ).scalars()
    moves = []
    for alias in names:
        previous = None
        for entry in aliases.history(conn, version.model, alias):
            if version.ref in (previous, entry["version"]):
                moves.append(
                    {
                        "alias": alias,
                        "at": entry["at"],
                        "actor": entry["actor"],
                        "from": previous,
                        "to": entry["version"],
                    }
                )
            previous = entry["version"]
    return sorted(moves, key=lambda m: (m["at"], m["alias"]))


def _flags(conn: Connection, version_id: str) -> list[dict[str, Any]]:
    """Status flags with what raised them (today: a dataset retirement)."""
    f, r, d = schema.version_flags, schema.dataset_retirements, schema.datasets
    q = (
        sa.select(
            f.c.flag,
            f.c.created_at,
            r.c.reason,
            r.c.retired_at,
            r.c.retired_by,
            d.c.name,
            d.c.digest,
        )
        .outerjoin(r, r.c.id == f.c.source_id)
        .outerjoin(d, d.c.id == r.c.dataset_id)
        .where(f.c.version_id == version_id)
        .order_by(f.c.created_at, f.c.flag, d.c.name)
    )
    return [
        {
            "flag": row.flag,
            "raised_at": row.created_at,
            "source": None
            if row.name is None
            else {
                "dataset": row.name,
                "digest": row.digest,
                "reason": row.reason,
                "retired_at": row.retired_at,
                "retired_by": row.retired_by,
            },
        }
        for row in conn.execute(q)
    ]


def _all_events(conn: Connection, **filters: Any) -> Iterator[AuditEvent]:
    before: int | None = None
    while True:
        page = list(audit.events(conn, limit=AUDIT_PAGE, before_seq=before, **filters))
        yield from page
        if len(page) < AUDIT_PAGE:
            return
        before = page[-1].seq


def _moved(side: Any) -> Any:
    return side.get("version") if isinstance(side, dict) else None


def _audit_events(conn: Connection, version: Version) -> list[AuditEvent]:
    """The version's own events, the alias moves onto or away from it and the retirements
    that flagged it; oldest first."""
    found = {e.seq: e for e in _all_events(conn, entity=version.id)}
    # Alias events name the model's id as their entity; keep those that involve this version.
    model_id = versions.model_id(conn, version.model)
    for event in _all_events(conn, entity_type="alias", entity=model_id):
        if version.ref in (_moved(event.before), _moved(event.after)):
            found[event.seq] = event
    for event in _all_events(conn, action="dataset.retire"):
        if isinstance(event.after, dict) and version.ref in event.after.get("flagged", []):
            found[event.seq] = event
    return [found[seq] for seq in sorted(found)]


# -- tracing a deployed version --------------------------------------------------------------


def trace(
    conn: Connection, version_id: str, *, marker: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The version's full lineage, and each ancestor's through parent links, nearest first.

    A deleted version is traced too (a prediction it made still needs its lineage), with
    ``deleted`` saying when, by whom and why; so is each deleted ancestor.

    ``datasets`` lists every dataset version that fed the model, directly or through any
    ancestor, with who used it and whether it is retired. A ``marker`` whose manifest digest
    differs from the registry's is refused: the files or the marker are not what was pulled.
    """
    version = _load(conn, version_id)
    expected = None if marker is None else marker.get("manifest_digest")
    if expected is not None and expected != version.manifest_digest:
        raise IntegrityError(
            f"{marker['path'] if marker else MARKER} gives manifest digest {expected!r} for"
            f" {version.ref}, but the registry holds {version.manifest_digest}"
        )
    depths = _ancestors(conn, version.id)
    found = versions.load(conn, list(depths))
    ancestors = sorted(found, key=lambda v: (depths[v.id], v.model, v.number))
    generations = [
        (depths.get(v.id, 0), v, lineage.of_version(conn, v)) for v in [version, *ancestors]
    ]
    digests = {d["digest"] for _, _, facts in generations for d in facts["datasets"]}
    retired = _retirements(conn, digests)
    fed: dict[tuple[str, str], dict[str, Any]] = {}
    for depth, v, facts in generations:
        for d in facts["datasets"]:
            key = (d["name"], d["digest"])
            entry = fed.setdefault(
                key,
                {
                    **{k: d[k] for k in ("name", "digest", "uri", "size", "file_count")},
                    **_retirement(retired, d),
                    "used_by": [],
                },
            )
            entry["used_by"].append({"version": v.ref, "role": d["role"], "depth": depth})
    target = generations[0][2]
    deleted = versions.deletions(conn, [v.id for _, v, _ in generations])
    return {
        "id": version.id,
        "version": version.ref,
        "manifest_digest": version.manifest_digest,
        "marker": marker,
        "flags": version.flags,
        "deleted": deleted.get(version.id),
        "lineage": target,
        "ancestors": [
            {
                "version": v.ref,
                "id": v.id,
                "depth": depth,
                "created_at": v.created_at,
                "created_by": v.created_by,
                "manifest_digest": v.manifest_digest,
                "parents": facts["parents"],
                "datasets": facts["datasets"],
                "code": facts["code"],
                "environment_digest": facts["environment_digest"],
                "hostname": facts["hostname"],
                "run_id": v.run_id,
                "flags": v.flags,
                "deleted": deleted.get(v.id),
            }
            for depth, v, facts in generations[1:]
        ],
        "datasets": [fed[key] for key in sorted(fed)],
    }


def _ancestors(conn: Connection, version_id: str) -> dict[str, int]:
    """{ancestor id: generations back}, the shortest distance where paths join again."""
    p = schema.version_parents
    depths: dict[str, int] = {version_id: 0}
    frontier = [version_id]
    while frontier:
        q = sa.select(p.c.version_id, p.c.parent_id).where(p.c.version_id.in_(frontier))
        found = {row.parent_id: depths[row.version_id] + 1 for row in conn.execute(q)}
        frontier = [pid for pid in found if pid not in depths]
        depths.update({pid: found[pid] for pid in frontier})
    del depths[version_id]
    return depths


# -- Markdown ------------------------------------------------------------------------------------

# The backslash is escaped too: a text ending in one would otherwise escape the pipe that
# closes its cell.
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


def _code_rows(code: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        (escape(k), _digest(v) if k.endswith(("digest", "commit")) else escape(v))
        for k, v in sorted(code.items())
    ]


def _audit_change(event: dict[str, Any]) -> str:
    before, after = event["before"], event["after"]
    if event["action"].startswith("alias."):
        return f"{escape(_moved(before))} -> {escape(_moved(after))}"
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


def markdown(card: dict[str, Any]) -> str:
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
    out += _section(
        "Aliases",
        [
            "Currently: " + (", ".join(escape(f"@{a}") for a in current) or "_none_"),
            "",
            *_table(
                ["alias", "at", "by", "from", "to"],
                [
                    [escape(m[k]) for k in ("alias", "at", "actor", "from", "to")]
                    for m in card["aliases"]["history"]
                ],
            ),
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
