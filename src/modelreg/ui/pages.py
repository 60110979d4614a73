"""What each page of the web UI shows, as plain JSON-ready dicts.

The HTML page renders one of these, and its JSON twin (the same path under
``/api/v1/pages``) returns it as it is. Every listing is a page of at most ``PAGE`` rows, so
a model with 10,000 versions renders as fast as one with ten.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy.engine import Connection

from modelreg import aliases, evaluations, keyset, search_language, versions
from modelreg import datasets as datasets_
from modelreg.compare import side_by_side
from modelreg.errors import InvalidInput, NotFound
from modelreg.local import LocalRegistry
from modelreg.mlflow_filter import page_start, page_token
from modelreg.refs import check_name, parse_ref
from modelreg.values import check_key, check_page
from modelreg.versions import Version

PAGE = 50
GRAPH_NEIGHBOURS = 25  # parents or children drawn in a lineage graph; the rest are listed
SHOWN_FILES = 500
SHOWN_DIFF = 200_000  # characters of an uncommitted diff shown on a version's page
MAX_COMPARED = 8
SORTS = ("number", "created_at")
CHART_POINTS = 1000  # per metric chart; more versions are summed up in buckets


def summary(v: Version) -> dict[str, Any]:
    """A version as one row of a table."""
    return {
        "ref": v.ref,
        "id": v.id,
        "model": v.model,
        "number": v.number,
        "created_at": v.created_at,
        "created_by": v.created_by,
        "description": v.description,
        "aliases": v.aliases,
        "params": v.params,
        "metrics": v.metrics,
        "tags": v.tags,
        "flags": v.flags,
        "size": v.size,
    }


def _paging(
    offset: int,
    shown: int,
    total: int | None,
    more: bool | None = None,
    last: str | None = None,
) -> dict[str, Any]:
    """A page's place in its list. ``last`` is the id of its last row, where the list pages
    by cursor: the next page's link carries it (``after``) beside the offset it shows, and is
    read from it, as fast at the millionth row as at the first."""
    if more is None:
        more = total is not None and offset + shown < total
    return {
        "offset": offset,
        "size": PAGE,
        "total": total,
        "previous": max(0, offset - PAGE) if offset > 0 else None,
        "next": offset + PAGE if more else None,
        "after": last if more else None,
    }


# A cursor longer than this (a page ending on a run with a long tag it is sorted by) is left
# out of the link, which then goes by offset.
MAX_CURSOR = 4096


def _cursor(last: tuple[Any, ...] | None) -> str | None:
    """The ``after`` of the page that follows one whose last row sorts by ``last``."""
    if last is None:
        return None
    token = page_token(0, last)
    return token if len(token) <= MAX_CURSOR else None


def _start(after: str | None) -> tuple[Any, ...] | None:
    """The sort values a page's ``after`` names (None without one)."""
    if not after:
        return None
    values = page_start(after)[1]
    if values is None:
        raise InvalidInput(keyset.REFUSED)
    return values


def models(
    reg: LocalRegistry, *, q: str = "", offset: int = 0, after: str | None = None
) -> dict[str, Any]:
    """Every model, a page at a time; with ``q`` (the search language) the versions that
    match it instead, newest first unless ``q`` ends with its own ``order by``, and no more
    than its own ``limit``. A page starts ``after`` the last model (its name) or version
    (its id) of the page before (``offset`` then only says where it is)."""
    check_page(PAGE, offset)
    if q:
        query = search_language.parse(q)
        size = PAGE + 1 if query.limit is None else min(PAGE + 1, query.limit - offset)
        order = None if query.order else "created_at desc"
        start = {"after": after} if after else {"offset": offset}
        found = reg.search(q, order_by=order, limit=size, **start) if size > 0 else []
        shown = found[:PAGE]
        return {
            "query": q,
            "results": [summary(v) for v in shown],
            "page": _paging(
                offset,
                len(shown),
                None,
                more=len(found) > PAGE,
                last=shown[-1].id if shown else None,
            ),
        }

    def read(conn: Connection) -> dict[str, Any]:
        total = versions.count_models(conn)
        start = 0 if after else offset
        found = versions.list_models(conn, limit=PAGE + 1, offset=start, after=after)
        shown = found[:PAGE]
        last = shown[-1].name if shown else None
        return {
            "query": "",
            "models": [m.to_dict() for m in shown],
            "page": _paging(offset, len(shown), total, more=len(found) > PAGE, last=last),
        }

    # The examples come from a search of their own, after the page's read: a request holds
    # one database connection at a time.
    return {**reg.db.read(read), "examples": search_examples(reg)}


# Shown where the registry holds no version with a metric to draw an example from.
GENERIC_EXAMPLES = [
    "metrics.accuracy > 0.9 and tags.team = 'growth'",
    "name like 'churn%' order by metrics.accuracy desc limit 5",
]
_PLAIN_KEY = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]*")


def search_examples(reg: LocalRegistry) -> list[str]:
    """Two searches that match this registry's newest version that has a metric: one on a
    metric (and a tag), one ordered by the metric; generic ones for an empty registry."""
    found = reg.search("", order_by="created_at desc", limit=5)
    latest = next((v for v in found if v.metrics), None)
    if latest is None:
        return list(GENERIC_EXAMPLES)
    key, value = sorted(latest.metrics.items())[0]
    metric = f"metrics.{_quoted_key(key)}"
    where = f"{metric} >= {_round_down(value):g}"
    tags = [(k, t) for k, t in sorted(latest.tags.items()) if "'" not in t and len(t) <= 40]
    if tags:
        where += f" and tags.{_quoted_key(tags[0][0])} = '{tags[0][1]}'"
    return [where, f"name = '{latest.model}' order by {metric} desc limit 5"]


def _quoted_key(key: str) -> str:
    return key if _PLAIN_KEY.fullmatch(key) else f"`{key}`"


def _round_down(value: float) -> float:
    """``value`` cut to two significant digits, towards minus infinity: 0.9824 -> 0.98."""
    if value == 0 or not math.isfinite(value):
        return 0.0
    step = 10.0 ** (math.floor(math.log10(abs(value))) - 1)
    cut = round(math.floor(value / step) * step, 12)
    return cut if cut <= value else round(cut - step, 12)  # floating point rounded it up


def model(
    reg: LocalRegistry,
    name: str,
    *,
    sort: str = "number",
    order: str = "desc",
    offset: int = 0,
    after: str | None = None,
) -> dict[str, Any]:
    """A model's versions in a sortable table, its metrics across versions, its aliases' moves.

    ``sort`` is ``number``, ``created_at``, ``metrics.KEY`` or ``params.KEY``; a page of
    versions starts ``after`` the last version of the page before, when given.
    """
    check_name(name)
    check_page(PAGE, offset)
    if order not in ("asc", "desc"):
        raise InvalidInput(f"order must be 'asc' or 'desc', not {order[:40]!r}")
    column = sort
    if sort.startswith(("metrics.", "params.")):
        kind, _, key = sort.partition(".")
        check_key(key, kind=kind[:-1])  # no backquote in a key: it cannot end the quoting
        column = f"{kind}.`{key}`"
    elif sort not in SORTS:
        raise InvalidInput(
            f"a model's versions sort by number, created_at, metrics.KEY or params.KEY,"
            f" not {sort[:80]!r}"
        )
    start = {"after": after} if after else {"offset": offset}
    rows = reg.search("", model=name, order_by=f"{column} {order}", limit=PAGE + 1, **start)
    more, rows = len(rows) > PAGE, rows[:PAGE]

    def read(conn: Connection) -> dict[str, Any]:
        found = versions.get_model(conn, name)
        series = versions.metric_series(conn, found.id, max_points=CHART_POINTS)
        return {
            "model": found.to_dict(),
            "sort": sort,
            "order": order,
            "versions": [summary(v) for v in rows],
            "metric_keys": sorted(series),
            "param_keys": sorted({k for v in rows for k in v.params}),
            "series": series,
            "alias_history": _with_overrides(
                conn, name, aliases.model_history(conn, name, limit=PAGE)
            ),
            "page": _paging(
                offset, len(rows), found.version_count, more, rows[-1].id if rows else None
            ),
        }

    return reg.db.read(read)


def _with_overrides(
    conn: Connection, name: str, moves: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Each alias move with ``override``: who forced it past failing gates and why, or None."""
    forced = aliases.overrides(conn, name)
    return [{**move, "override": forced.get((move["alias"], move["at"]))} for move in moves]


def version(reg: LocalRegistry, ref: str) -> dict[str, Any]:
    """Everything about one version: what it holds, what made it, and its lineage graph."""
    v = reg.get(ref)
    lin: Mapping[str, Any] = v.lineage or {}
    evals = reg.db.read(lambda conn: evaluations.of_version(conn, v.id))
    code = dict(lin.get("code") or {})
    diff = None
    if code.get("diff_digest"):
        try:
            with reg.blobs.open(str(code["diff_digest"])) as f:
                raw = f.read(SHOWN_DIFF + 1)
        except NotFound:  # the store lost it: the page says so (and fsck reports it)
            code["diff_missing"] = True
        else:
            diff = raw[:SHOWN_DIFF].decode("utf-8", "replace")
            code["diff_truncated"] = len(raw) > SHOWN_DIFF
    files = [f.to_dict() for f in v.files]
    run = lin.get("run")
    return {
        "version": {**summary(v), "manifest_digest": v.manifest_digest},
        "files": files[:SHOWN_FILES],
        "file_count": len(files),
        "code": code,
        "diff": diff,
        "environment": lin.get("environment") or {},
        "hostname": lin.get("hostname"),
        "datasets": lin.get("datasets") or [],
        "run": run,
        "evaluations": evals,
        "parents": lin.get("parents") or [],
        "children": lin.get("children") or [],
        "signatures": lin.get("signatures") or [],
        "graph": _graph(v, lin, evals),
    }


def _graph(
    v: Version, lin: Mapping[str, Any], evals: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    """Nodes and edges: datasets -> run -> this version -> children, parents above."""
    nodes: list[dict[str, Any]] = []
    edges: list[dict[str, Any]] = []
    me = f"version:{v.ref}"
    nodes.append({"id": me, "kind": "this", "label": v.ref, "href": version_href(v.ref)})
    run = lin.get("run")
    into = me
    if run is not None:
        into = f"run:{run['id']}"
        href = f"/runs/{run['id']}"
        nodes.append({"id": into, "kind": "run", "label": f"run {run['name']}", "href": href})
        edges.append({"source": into, "target": me})
    used = [(d, into) for d in lin.get("datasets") or []]
    used += [({**e["dataset"], "role": "evaluation"}, me) for e in evals]
    for d, target in used:
        node = f"dataset:{d['name']}@{d['digest']}"
        if node not in {n["id"] for n in nodes}:
            label = f"{d['name']}\n{d['digest'][:12]}"
            href = f"/datasets/{d['name']}#{d['digest']}"
            nodes.append({"id": node, "kind": "dataset", "label": label, "href": href})
        edges.append({"source": node, "target": target, "label": d["role"]})
    for ref in (lin.get("parents") or [])[:GRAPH_NEIGHBOURS]:
        nodes.append({"id": f"version:{ref}", "kind": "parent", "label": ref,
                      "href": version_href(ref)})  # fmt: skip
        edges.append({"source": f"version:{ref}", "target": me, "label": "parent"})
    for ref in (lin.get("children") or [])[:GRAPH_NEIGHBOURS]:
        nodes.append({"id": f"version:{ref}", "kind": "child", "label": ref,
                      "href": version_href(ref)})  # fmt: skip
        edges.append({"source": me, "target": f"version:{ref}", "label": "child"})
    return {"nodes": nodes, "edges": edges}


def version_href(ref: str) -> str:
    name, _, number = ref.rpartition("/")
    return f"/models/{name}/versions/{number}"


def compare(reg: LocalRegistry, refs: list[str]) -> dict[str, Any]:
    """Two or more versions side by side, with their run's metric histories per key."""
    if not 2 <= len(refs) <= MAX_COMPARED:
        raise InvalidInput(f"compare takes 2 to {MAX_COMPARED} versions, not {len(refs)}")
    found = [reg.get(ref) for ref in refs]
    seen: dict[str, str] = {}
    for ref, v in zip(refs, found, strict=True):
        if v.id in seen:
            raise InvalidInput(f"{ref} and {seen[v.id]} are the same version: compare others")
        seen[v.id] = ref
    table = side_by_side([v.to_dict() for v in found])
    changed_files = table["files"]
    table["files"] = changed_files[:SHOWN_FILES]
    table["files_changed"] = len(changed_files)
    histories: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for v in found:
        lineage: Mapping[str, Any] = v.lineage or {}
        run = lineage.get("run") or {}
        for key, points in (run.get("metric_history") or {}).items():
            histories.setdefault(key, {})[v.ref] = [
                {"step": p["step"], "value": p["value"]} for p in points
            ]
    return {**table, "histories": dict(sorted(histories.items()))}


def datasets(reg: LocalRegistry, *, offset: int = 0, after: str | None = None) -> dict[str, Any]:
    """Every recorded dataset version, by name, with the other names of its bytes and how
    many model versions used them (under any name); a page ``after`` another starts where
    it ended."""
    check_page(PAGE, offset)
    start = _start(after)

    def read(conn: Connection) -> dict[str, Any]:
        shown, last = datasets_.page(conn, limit=PAGE, offset=offset, after=start)
        used = datasets_.users(conn, [d.id for d in shown])
        return {
            "datasets": [{**d.to_dict(), "used_by": used.get(d.id, 0)} for d in shown],
            "page": _paging(
                offset, len(shown), datasets_.count(conn), more=last is not None, last=_cursor(last)
            ),
        }

    return reg.db.read(read)


def dataset(reg: LocalRegistry, name: str, *, offset: int = 0) -> dict[str, Any]:
    """A dataset's recorded versions and every model version that used its bytes (under
    this name or any other they are recorded under), directly or as a descendant of one
    that did: what retiring it would flag."""
    check_name(name, kind="dataset name")
    check_page(PAGE, offset)
    found = reg.dataset(name)
    if not found:
        raise NotFound(f"dataset {name!r} not found")
    dependents = reg.dataset_models(name)
    shown = dependents[offset : offset + PAGE]
    return {
        "name": name,
        "also_known_as": sorted({other for d in found for other in d.also_known_as}),
        "versions": [d.to_dict() for d in found],
        "dependents": shown,
        "direct": sum(1 for d in dependents if d["relation"] == "direct"),
        "descendants": sum(1 for d in dependents if d["relation"] == "descendant"),
        "page": _paging(offset, len(shown), len(dependents)),
    }


def audit(
    reg: LocalRegistry,
    *,
    entity: str = "",
    actor: str = "",
    before: int | None = None,
    verify: bool = True,
) -> dict[str, Any]:
    """The audit log, newest first, filtered by entity and actor, and whether its chain of
    hashes verifies (the HTML page leaves that to a request of its own after it loads: the
    check re-hashes every event)."""
    events = reg.audit(
        entity=entity or None, actor=actor or None, limit=PAGE + 1, before_seq=before
    )
    shown = events[:PAGE]
    return {
        "entity": entity,
        "actor": actor,
        "events": [e.to_dict() for e in shown],
        "before": before,
        "next_before": shown[-1].seq if len(events) > PAGE else None,
        "verify": reg.verify_audit().to_dict() if verify else None,
    }


def resolve_path(ref_path: str) -> tuple[str, str]:
    """What a ``/models/...`` path names: ``("model", name)``, ``("version", ref)``.

    ``churn`` is the model; ``churn/versions/3`` and ``churn@production`` are versions.
    """
    name, sep, rest = ref_path.partition("/versions/")
    if sep:
        if not (rest.isascii() and rest.isdigit()):
            raise InvalidInput(f"a version number is a whole number, not {rest[:40]!r}")
        parsed = parse_ref(f"{name}/{rest}")
        return "version", f"{parsed.model}/{parsed.number}"
    if "@" in ref_path:
        parsed = parse_ref(ref_path)
        return "version", f"{parsed.model}@{parsed.alias}"
    return "model", check_name(ref_path)
