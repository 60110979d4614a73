"""What the web UI shows of tracked runs, as plain JSON-ready dicts: the experiments, an
experiment's runs table, one run, and runs side by side.

The runs MLflow clients log and those of modelreg's SDK (experiment 0, "Default") are read
through the one store: ``experiments``, ``runs``, ``tracking_search`` (a runs table is
filtered with MLflow's filter grammar, ``mlflow_filter``, and ordered in SQL), ``artifacts``,
``logged_models`` and ``registry_search``. A metric's history is charted from at most
``CHART_POINTS`` points: a longer one is summed up in buckets (``metric_blocks.series``).
"""

from __future__ import annotations

import dataclasses
import json
import re
import urllib.parse
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection

from modelreg import (
    artifacts,
    experiments,
    logged_models,
    metric_blocks,
    registry_search,
    runs,
    tracking_search,
    versions,
)
from modelreg.compare import rows, with_deltas
from modelreg.errors import InvalidInput, NotFound
from modelreg.local import LocalRegistry
from modelreg.mlflow_filter import RUNS, Clause, OrderKey, parse_filter, stored_times
from modelreg.records import Experiment, TrackedRun
from modelreg.server.mlflow.protocol import ARTIFACTS
from modelreg.timestamps import from_ms
from modelreg.ui.pages import (
    CHART_POINTS,
    MAX_COMPARED,
    PAGE,
    SHOWN_FILES,
    _cursor,
    _paging,
    _start,
    summary,
)
from modelreg.values import check_page

MAX_COLUMNS = 30  # metrics, params and tags each, as columns of a runs table
MAX_CHARTS = 100  # metric histories charted on a run's page or compared
SYSTEM = "mlflow."  # tags MLflow's client sets itself: on the run's page, not as columns
SORTS = ("start_time", "end_time", "run_name", "status", "user_id")
CONTEXT_TAG = "mlflow.data.context"
_RUN_ID = re.compile(r"[0-9A-Za-z][0-9A-Za-z_-]{0,255}")  # MLflow's rule; SDK runs are UUIDs


def check_run_id(run_id: str) -> str:
    if not _RUN_ID.fullmatch(run_id):
        raise InvalidInput(
            f"run id {run_id[:80]!r} is invalid: a run id is letters, digits, '_' and '-'"
        )
    return run_id


def _experiment(e: Experiment, counts: tuple[int, str | None]) -> dict[str, Any]:
    return {**dataclasses.asdict(e), "runs": counts[0], "last_run_at": counts[1]}


def _seconds(start: str | None, end: str | None) -> float | None:
    if not start or not end:
        return None
    try:
        return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()
    except ValueError:
        return None


def _row(r: TrackedRun) -> dict[str, Any]:
    """A run as one row of a table: its record, params, tags and each metric's latest value."""
    return {
        "id": r.id,
        "name": r.name,
        "experiment_id": r.experiment_id,
        "status": r.status,
        "user": r.user,
        "started_at": r.started_at,
        "ended_at": r.ended_at,
        "duration": _seconds(r.started_at, r.ended_at),
        "lifecycle_stage": r.lifecycle_stage,
        "origin": r.origin,
        "params": r.params,
        "metrics": {m.key: m.value for m in r.metrics},
        "tags": r.tags,
    }


def _label(r: TrackedRun) -> str:
    """A run's name in a chart's legend, unique among the runs compared."""
    return f"{r.name or 'run'} ({r.id[:8]})"


# -- experiments -------------------------------------------------------------------------------


def experiments_page(
    reg: LocalRegistry, *, offset: int = 0, after: str | None = None
) -> dict[str, Any]:
    """Every experiment, deleted ones too, newest first, with its number of runs and the
    start of its latest; a page ``after`` another starts where it ended (its ``cursor``)."""
    check_page(PAGE, offset)
    start = _start(after)

    def read(conn: Connection) -> dict[str, Any]:
        found, last = tracking_search.search_experiments(
            conn, view="ALL", limit=PAGE, offset=offset, after=start
        )
        counts = experiments.run_counts(conn, [e.id for e in found])
        return {
            "experiments": [_experiment(e, counts[e.id]) for e in found],
            "page": _paging(offset, len(found), None, more=last is not None, last=_cursor(last)),
        }

    return reg.db.read(read)


def order_key(sort: str, order: str) -> OrderKey:
    """A runs table's column, as the order of a search of runs: ``start_time``, ``end_time``,
    ``run_name``, ``status``, ``user_id``, ``metrics.KEY``, ``params.KEY`` or ``tags.KEY``."""
    if order not in ("asc", "desc"):
        raise InvalidInput(f"order must be 'asc' or 'desc', not {order[:40]!r}")
    kind, dot, key = sort.partition(".")
    if dot and kind in ("metrics", "params", "tags"):
        if not key.strip() or len(key) > 250:
            raise InvalidInput(f"sort {sort[:80]!r} names no {kind[:-1]} key")
        return OrderKey(kind[:-1], key, order == "asc")
    if sort in SORTS:
        return OrderKey("attribute", sort, order == "asc")
    raise InvalidInput(
        f"runs sort by {', '.join(SORTS)}, metrics.KEY, params.KEY or tags.KEY, not {sort[:80]!r}"
    )


def run_filter(text: str) -> tuple[Clause, ...]:
    """A runs table's filter, in MLflow's grammar (times in milliseconds since the epoch)."""
    return stored_times(parse_filter(text, RUNS), RUNS, lambda ms: from_ms(ms, "time"))


def experiment(
    reg: LocalRegistry,
    experiment_id: str,
    *,
    q: str = "",
    sort: str = "start_time",
    order: str = "desc",
    offset: int = 0,
    after: str | None = None,
    tolerant: bool = False,
) -> dict[str, Any]:
    """An experiment and a page of its runs, filtered by ``q`` (MLflow's filter grammar) and
    ordered by ``sort``. A deleted experiment shows all its runs; an active one those not
    deleted. With ``tolerant``, a filter that cannot be searched gives its message as
    ``error`` and no runs (the HTML page shows it by the search box), not an error."""
    number = tracking_search.experiment_number(experiment_id)
    check_page(PAGE, offset)
    key = order_key(sort, order)
    start = _start(after)

    def search(
        conn: Connection, found: Experiment
    ) -> tuple[list[TrackedRun], tuple[Any, ...] | None]:
        view = "ACTIVE_ONLY" if found.lifecycle_stage == "active" else "ALL"
        ids, last = tracking_search.search_runs(
            conn,
            experiment_ids=[number],
            clauses=run_filter(q),
            order=[key],
            view=view,
            limit=PAGE,
            offset=offset,
            after=start,
        )
        return runs.load_tracked_many(conn, ids), last

    def read(conn: Connection) -> dict[str, Any]:
        found = experiments.get(conn, number)
        counts = experiments.run_counts(conn, [number])[number]
        error = None
        try:
            shown, last = search(conn, found)
        except InvalidInput as exc:
            if not tolerant:
                raise
            error, shown, last = exc.message, [], None
        metric_keys = sorted({m.key for r in shown for m in r.metrics})
        param_keys = sorted({k for r in shown for k in r.params})
        tag_keys = sorted({k for r in shown for k in r.tags if not k.startswith(SYSTEM)})
        every = (metric_keys, param_keys, tag_keys)
        return {
            "experiment": _experiment(found, counts),
            "query": q,
            "error": error,
            "sort": sort,
            "order": order,
            "runs": [_row(r) for r in shown],
            "metric_keys": metric_keys[:MAX_COLUMNS],
            "param_keys": param_keys[:MAX_COLUMNS],
            "tag_keys": tag_keys[:MAX_COLUMNS],
            "hidden_columns": sum(max(0, len(keys) - MAX_COLUMNS) for keys in every),
            "page": _paging(offset, len(shown), None, more=last is not None, last=_cursor(last)),
        }

    return reg.db.read(read)


# -- a run -------------------------------------------------------------------------------------


def run(reg: LocalRegistry, run_id: str) -> dict[str, Any]:
    """Everything about one run: its record, where it came from, params, metrics and their
    histories, tags, datasets, artifacts, logged models and the versions registered from it."""
    check_run_id(run_id)

    def read(conn: Connection) -> dict[str, Any]:
        found = runs.load_tracked(conn, run_id)
        facts = runs.record(conn, run_id, history=False)
        home = experiments.get(conn, found.experiment_id)
        files = artifacts.files(conn, run_id)
        made_by = Clause("attribute", "source_run_id", "=", run_id)
        models, _ = logged_models.search(
            conn, [found.experiment_id], [made_by], [], offset=0, limit=PAGE
        )
        ids, _ = registry_search.search_versions(
            conn, [Clause("attribute", "run_id", "=", run_id)], [], offset=0, limit=PAGE
        )
        series = metric_blocks.series(conn, run_id, max_points=CHART_POINTS)
        return {
            "run": {
                **_row(found),
                "hostname": facts["hostname"],
                "command": facts["command"],
                "error": facts["error"],
            },
            "experiment": {
                "id": home.id,
                "name": home.name,
                "lifecycle_stage": home.lifecycle_stage,
            },
            "source": _source(found, facts),
            "metrics": [dataclasses.asdict(m) for m in sorted(found.metrics, key=lambda m: m.key)],
            "tags": {k: v for k, v in found.tags.items() if not k.startswith(SYSTEM)},
            "system_tags": {k: v for k, v in found.tags.items() if k.startswith(SYSTEM)},
            "datasets": _datasets(found, runs.datasets_of(conn, run_id)),
            "artifacts": [
                {**f.to_dict(), "href": _artifact_href(found, f.path)} for f in files[:SHOWN_FILES]
            ],
            "artifact_count": len(files),
            "logged_models": [
                {
                    "id": m.id,
                    "name": m.name,
                    "status": m.status,
                    "model_type": m.model_type,
                    "created_at": m.created_at,
                    "versions": [f"{name}/{number}" for name, number in m.registrations],
                }
                for m in models
            ],
            "versions": [summary(v) for v in versions.load(conn, ids)],
            "chart_keys": sorted(series)[:MAX_CHARTS],
            "charts_hidden": max(0, len(series) - MAX_CHARTS),
            "series": {k: series[k] for k in sorted(series)[:MAX_CHARTS]},
        }

    return reg.db.read(read)


def _source(r: TrackedRun, facts: dict[str, Any]) -> dict[str, Any]:
    """Where a run came from: MLflow's ``mlflow.source.*`` tags, else what modelreg's SDK
    captured (its command line, host and git facts)."""
    code = facts.get("code") or {}
    tags = r.tags
    return {
        "name": tags.get("mlflow.source.name") or facts["command"],
        "type": tags.get("mlflow.source.type", ""),
        "entry_point": tags.get("mlflow.project.entryPoint", ""),
        "repository": code.get("repository") or tags.get("mlflow.source.git.repoURL", ""),
        "commit": code.get("commit") or tags.get("mlflow.source.git.commit", ""),
        "branch": code.get("branch") or tags.get("mlflow.source.git.branch", ""),
        "dirty": bool(code.get("dirty")),
        "hostname": facts["hostname"],
    }


def _datasets(r: TrackedRun, used: list[Any]) -> list[dict[str, Any]]:
    """A run's inputs as its client logged them (name, digest, role, source), each with the
    name of the modelreg dataset it became (for a link to that dataset's page).

    ``r.inputs`` and ``used`` are the same rows, in the same order (by dataset name, role).
    """
    paired = len(used) == len(r.inputs)
    out = []
    for i, given in enumerate(r.inputs):
        use = used[i] if paired else None
        out.append(
            {
                "name": given.name,
                "digest": given.digest,
                "role": given.tags.get(CONTEXT_TAG) or (use.role if use else ""),
                "source_type": given.source_type,
                "source": _source_text(given.source),
                "dataset": use.name if use else None,
            }
        )
    return out


def _source_text(source: str) -> str:
    """A dataset's source as MLflow logs it (JSON text): its URI when it names one."""
    try:
        parsed = json.loads(source)
    except ValueError:
        return source[:500]
    if isinstance(parsed, dict):
        for key in ("uri", "url", "path", "table_name"):
            if isinstance(parsed.get(key), str):
                return str(parsed[key])
    return source[:500]


def _artifact_href(r: TrackedRun, path: str) -> str:
    """A run's file through MLflow's artifact route (a download, never rendered)."""
    return f"{ARTIFACTS}/{r.experiment_id}/{r.id}/artifacts/{urllib.parse.quote(path)}"


# -- runs side by side -------------------------------------------------------------------------


def compare_runs(reg: LocalRegistry, ids: list[str]) -> dict[str, Any]:
    """Two to eight runs side by side: their params, metrics (latest values, with each run's
    delta from the first) and tags in rows that say whether they differ, and each metric's
    histories overlaid, one chart per key."""
    if not 2 <= len(ids) <= MAX_COMPARED:
        raise InvalidInput(f"compare takes 2 to {MAX_COMPARED} runs, not {len(ids)}")
    for run_id in ids:
        check_run_id(run_id)
    if len(set(ids)) < len(ids):
        twice = next(i for i in ids if ids.count(i) > 1)
        raise InvalidInput(f"run {twice} is given twice: compare it with others")

    def read(conn: Connection) -> tuple[list[TrackedRun], list[dict[str, dict[str, Any]]]]:
        found = runs.load_tracked_many(conn, ids)
        held = {r.id for r in found}
        for run_id in ids:
            if run_id not in held:
                raise NotFound(f"run {run_id!r} not found")
        series = [metric_blocks.series(conn, r.id, max_points=CHART_POINTS) for r in found]
        return found, series

    found, series = reg.db.read(read)
    histories: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for r, by_key in zip(found, series, strict=True):
        for key, s in by_key.items():
            histories.setdefault(key, {})[_label(r)] = [
                {"step": step, "value": value}
                for step, value in zip(s["step"], s["value"], strict=True)
            ]
    keys = sorted(histories)
    return {
        "runs": [
            {"id": r.id, "name": r.name, "label": _label(r), "experiment_id": r.experiment_id}
            for r in found
        ],
        "attributes": rows(
            [
                {
                    "experiment": str(r.experiment_id),
                    "status": r.status,
                    "user": r.user,
                    "started_at": r.started_at,
                    "duration (s)": _seconds(r.started_at, r.ended_at),
                }
                for r in found
            ]
        ),
        "params": rows([r.params for r in found]),
        "metrics": with_deltas(rows([{m.key: m.value for m in r.metrics} for r in found])),
        "tags": rows(
            [{k: v for k, v in r.tags.items() if not k.startswith(SYSTEM)} for r in found]
        ),
        "histories": {k: histories[k] for k in keys[:MAX_CHARTS]},
        "charts_hidden": max(0, len(keys) - MAX_CHARTS),
    }
