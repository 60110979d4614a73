"""The semantic difference between two versions, as a pure function of their dicts."""

from __future__ import annotations

from typing import Any

from modelreg.records import Comparison, DatasetChange, MappingDiff, MetricChange


def _mapping_diff(a: dict[str, Any], b: dict[str, Any]) -> MappingDiff:
    return {
        "changed": {k: [a[k], b[k]] for k in sorted(a.keys() & b.keys()) if a[k] != b[k]},
        "added": {k: b[k] for k in sorted(b.keys() - a.keys())},
        "removed": {k: a[k] for k in sorted(a.keys() - b.keys())},
    }


def compare(a: dict[str, Any], b: dict[str, Any]) -> Comparison:
    """Diff two ``Version.to_dict()`` results that carry ``lineage``."""
    la, lb = a.get("lineage") or {}, b.get("lineage") or {}
    metrics: dict[str, MetricChange] = {}
    for key in sorted(a["metrics"].keys() | b["metrics"].keys()):
        va, vb = a["metrics"].get(key), b["metrics"].get(key)
        delta = vb - va if va is not None and vb is not None else None
        metrics[key] = {"a": va, "b": vb, "delta": delta}
    da = {(d["role"], d["name"]): d["digest"] for d in la.get("datasets", [])}
    db = {(d["role"], d["name"]): d["digest"] for d in lb.get("datasets", [])}
    datasets: list[DatasetChange] = [
        {"role": role, "name": name, "a": da.get((role, name)), "b": db.get((role, name))}
        for role, name in sorted(da.keys() | db.keys())
        if da.get((role, name)) != db.get((role, name))
    ]
    fa = {f["path"]: f["digest"] for f in a["files"]}
    fb = {f["path"]: f["digest"] for f in b["files"]}
    ca, cb = la.get("code") or {}, lb.get("code") or {}
    ea, eb = la.get("environment") or {}, lb.get("environment") or {}
    return {
        "a": a["ref"],
        "b": b["ref"],
        "same_content": a["manifest_digest"] == b["manifest_digest"],
        "params": _mapping_diff(a["params"], b["params"]),
        "metrics": metrics,
        "tags": _mapping_diff(a["tags"], b["tags"]),
        "datasets": datasets,
        "code": {
            "a": ca.get("commit"),
            "b": cb.get("commit"),
            "changed": (ca.get("repository"), ca.get("commit"), ca.get("diff_digest"))
            != (cb.get("repository"), cb.get("commit"), cb.get("diff_digest")),
        },
        "environment": {
            "python": [ea.get("python"), eb.get("python")]
            if ea.get("python") != eb.get("python")
            else None,
            "platform": [ea.get("platform"), eb.get("platform")]
            if ea.get("platform") != eb.get("platform")
            else None,
            "packages": _mapping_diff(ea.get("packages") or {}, eb.get("packages") or {}),
        },
        "files": {
            "added": sorted(fb.keys() - fa.keys()),
            "removed": sorted(fa.keys() - fb.keys()),
            "changed": sorted(p for p in fa.keys() & fb.keys() if fa[p] != fb[p]),
        },
        "parents": {"a": la.get("parents", []), "b": lb.get("parents", [])},
    }


def rows(values: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mappings side by side: a row per key, with each mapping's value (None where it has
    none) and whether they differ."""
    keys = sorted(set().union(*values))
    out = []
    for key in keys:
        cells = [v.get(key) for v in values]
        out.append({"key": key, "values": cells, "changed": len(set(map(repr, cells))) > 1})
    return out


def with_deltas(metric_rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Metric rows (from ``rows``) with each value's delta from the first, as ``deltas``."""
    for row in metric_rows:
        first = row["values"][0]
        row["deltas"] = [
            None if first is None or value is None else value - first for value in row["values"]
        ]
    return metric_rows


def side_by_side(versions: list[dict[str, Any]]) -> dict[str, Any]:
    """Two or more ``Version.to_dict()`` results with ``lineage``, as rows of one table: each
    row holds one value per version and says whether they differ. Metric rows carry each
    version's delta from the first."""
    lineages = [v.get("lineage") or {} for v in versions]
    metrics = with_deltas(rows([v["metrics"] for v in versions]))
    datasets = [
        {f"{d['role']}: {d['name']}": d["digest"] for d in lin.get("datasets", [])}
        for lin in lineages
    ]
    environments = [lin.get("environment") or {} for lin in lineages]
    packages = rows([env.get("packages") or {} for env in environments])
    code = [lin.get("code") or {} for lin in lineages]
    return {
        "versions": [v["ref"] for v in versions],
        "params": rows([v["params"] for v in versions]),
        "metrics": metrics,
        "tags": rows([v["tags"] for v in versions]),
        "datasets": rows(datasets),
        "code": rows(
            [{k: c.get(k) for k in ("repository", "commit", "branch", "dirty")} for c in code]
        ),
        "environment": rows(
            [{k: env.get(k) for k in ("python", "platform")} for env in environments]
        ),
        "packages": [row for row in packages if row["changed"]],
        # Only the files that differ: two versions of a 100,000-file model share most.
        "files": [
            row
            for row in rows([{f["path"]: f["digest"] for f in v["files"]} for v in versions])
            if row["changed"]
        ],
    }
