"""Web UI pages with 10,000 versions in one model: each page's server-side time.

Target: every page of the web UI renders server-side in under 300 ms (median) with 10,000
versions in one model, for the HTML page and for its JSON twin under ``/api/v1/pages``.

Two embedded registries (``LocalRegistry(dir)``) are built through the public API, the same
way at two sizes: one holding model ``big`` with 10,000 versions, and the baseline, one
holding model ``small`` with 10 versions. Each version has 3 metrics (accuracy, f1, loss), 4
params, 2 tags and one or two files (identical content in every version, so the blob store
keeps one copy); every version was trained on the dataset ``clicks`` at one digest and every
other one also used a second digest of it (role validation). One version in 100 is
registered inside a run that logged 50 steps of the 3 metrics. Versions 2001-3000 form a
parent chain (each the child of the one before), version 100 has 200 children (4001-4200),
the aliases ``staging``, ``production`` and ``shadow`` moved 500, 200 and 40 times, one
version in 50 was evaluated on ``clicks-test`` and one in 100 got a ``reviewed`` tag
afterwards: about 16,000 audit events. ``small`` follows the same plan scaled to 10
versions.

The registries are cached under ``benchmarks/results/ui_pages/`` (ignored by git), keyed by
their shape, and reused when present: the first run builds them (about 30 s here), and reruns
only time the pages (about 50 s in all). ``--rebuild`` builds them again.

Each page is requested in process through ``fastapi.testclient.TestClient`` on the app that
``modelreg server`` runs (``create_app(LocalRegistry(root))``, no auth; the host is
127.0.0.1, since without auth the app answers only loopback names): ``--warmup`` untimed
requests, then ``--requests`` timed ones. The time is the whole request in process: routing,
the page's queries, template rendering and the response. The baseline, in the same run, is
the same page of ``small``.

    .venv/bin/python benchmarks/ui_pages.py [--requests 20] [--warmup 2] [--rebuild]
    .venv/bin/python benchmarks/ui_pages.py --profile       # then cProfile each page over 300 ms
    .venv/bin/python benchmarks/ui_pages.py --only /audit --profile 50   # one page, over 50 ms

It always exits 0: it is a report, not a test.
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import io
import json
import pstats
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from _common import ROOT, emit, figure, header, summary_ms, working_directory

TARGET_MS = 300.0
BENCH = "ui pages"
CACHE = ROOT / "benchmarks" / "results" / "ui_pages"
BUILD_FORMAT = 2  # bump when the way a registry is built changes: the cache is rebuilt
DIGEST_A = hashlib.sha256(b"clicks 2026-01").hexdigest()
DIGEST_B = hashlib.sha256(b"clicks 2026-02").hexdigest()
DIGEST_TEST = hashlib.sha256(b"clicks-test 2026-01").hexdigest()
TRAIN = {"path": "s3://data/clicks/2026-01/", "name": "clicks", "digest": DIGEST_A}
VALIDATION = {
    "path": "s3://data/clicks/2026-02/",
    "name": "clicks",
    "digest": DIGEST_B,
    "role": "validation",
}
TEST = {"path": "s3://data/clicks-test/2026-01/", "name": "clicks-test", "digest": DIGEST_TEST}


@dataclass(frozen=True)
class Shape:
    """How one registry is built; ``n`` below is a version number, counted from 1."""

    model: str
    versions: int
    run_every: int  # n % run_every == run_every - 1: registered in a run
    run_steps: int  # steps of 3 metrics logged in each run
    chain: tuple[int, int]  # first..last: each the child of the one before (first: none)
    hub: int  # a version with many children
    hub_children: tuple[int, int]  # first..last: each a child of hub
    # (alias, every, lag): moved to version n - lag when n % every == 0
    alias_moves: tuple[tuple[str, int, int], ...]
    evaluate_every: int  # evaluated on clicks-test when n % evaluate_every == 0
    review_every: int  # a "reviewed" tag set afterwards when n % review_every == 0

    @property
    def key(self) -> str:
        text = json.dumps({"format": BUILD_FORMAT, **asdict(self)}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:12]


BIG = Shape(
    model="big",
    versions=10_000,
    run_every=100,
    run_steps=50,
    chain=(2001, 3000),
    hub=100,
    hub_children=(4001, 4200),
    alias_moves=(("staging", 20, 0), ("production", 50, 25), ("shadow", 250, 0)),
    evaluate_every=50,
    review_every=100,
)
SMALL = Shape(
    model="small",
    versions=10,
    run_every=5,
    run_steps=50,
    chain=(3, 6),
    hub=1,
    hub_children=(7, 8),
    alias_moves=(("staging", 1, 0), ("production", 2, 1), ("shadow", 5, 0)),
    evaluate_every=5,
    review_every=5,
)


# -- building the registries --------------------------------------------------------------------


def _files(folder: Path) -> tuple[Path, Path]:
    """Two model folders: weights only, and weights with a config (the same bytes each time)."""
    rnd = random.Random(1)
    weights = bytes(rnd.getrandbits(8) for _ in range(4096))
    one, two = folder / "weights-only", folder / "with-config"
    for path in (one, two):
        path.mkdir(parents=True, exist_ok=True)
        (path / "model.bin").write_bytes(weights)
    (two / "config.json").write_text('{"layers": 4, "hidden": 256, "dropout": 0.1}\n')
    return one, two


def _version_facts(shape: Shape, n: int, rnd: random.Random) -> dict[str, Any]:
    """Params, metrics and tags of version n: accuracy drifts up over the versions."""
    accuracy = min(0.995, 0.72 + 0.22 * n / shape.versions + rnd.gauss(0, 0.015))
    return {
        "params": {
            "learning_rate": rnd.choice((0.3, 0.1, 0.03, 0.01, 0.003)),
            "max_depth": rnd.randint(3, 12),
            "n_estimators": rnd.choice((100, 200, 400, 800)),
            "optimizer": rnd.choice(("adam", "sgd", "lbfgs")),
        },
        "metrics": {
            "accuracy": round(accuracy, 5),
            "f1": round(accuracy - rnd.uniform(0.01, 0.05), 5),
            "loss": round(max(0.01, 1.1 - accuracy + rnd.gauss(0, 0.02)), 5),
        },
        "tags": {
            "team": rnd.choice(("growth", "risk", "search")),
            "trigger": rnd.choice(("nightly", "manual", "ci")),
        },
    }


def build(shape: Shape, root: Path, files: tuple[Path, Path]) -> dict[str, Any]:
    """Register the versions of ``shape`` into a new registry at ``root``; return counts and
    the time each part took."""
    from modelreg.local import LocalRegistry

    rnd = random.Random(shape.versions)
    ci = LocalRegistry(root, actor="ci-bot")  # registers every version
    alice = LocalRegistry(root, actor="alice")  # moves the aliases, reviews
    bob = LocalRegistry(root, actor="bob")  # evaluates
    spent = {"register": 0.0, "register in a run": 0.0, "aliases": 0.0, "evaluate": 0.0,
             "tags": 0.0}  # fmt: skip
    clock = time.perf_counter
    start = clock()
    try:
        for n in range(1, shape.versions + 1):
            facts = _version_facts(shape, n, rnd)
            parents: list[str] = []
            if shape.chain[0] < n <= shape.chain[1]:
                parents.append(f"{shape.model}/{n - 1}")
            if shape.hub_children[0] <= n <= shape.hub_children[1]:
                parents.append(f"{shape.model}/{shape.hub}")
            used = [TRAIN, VALIDATION] if n % 2 == 0 else [TRAIN]
            folder = files[n % 2]
            t0 = clock()
            if n % shape.run_every == shape.run_every - 1:
                with ci.start_run(name=f"{shape.model}-train-{n}", params=facts["params"]) as run:
                    for use in used:
                        run.use_dataset(use["path"], name="clicks", role=use.get("role", "train"),
                                        digest=use["digest"])  # fmt: skip
                    final = facts["metrics"]
                    for step in range(shape.run_steps):
                        left = (shape.run_steps - 1 - step) / shape.run_steps
                        run.log_metrics(
                            {
                                "accuracy": round(final["accuracy"] - 0.3 * left, 5),
                                "f1": round(final["f1"] - 0.3 * left, 5),
                                "loss": round(final["loss"] + 0.8 * left, 5),
                            },
                            step=step,
                        )
                    run.register(shape.model, str(folder), tags=facts["tags"], parents=parents)
                spent["register in a run"] += clock() - t0
            else:
                ci.register(
                    shape.model,
                    str(folder),
                    params=facts["params"],
                    metrics=facts["metrics"],
                    tags=facts["tags"],
                    datasets=used,
                    parents=parents,
                    description=f"nightly retrain #{n}" if n % 7 == 0 else None,
                )
                spent["register"] += clock() - t0
            ref = f"{shape.model}/{n}"
            t0 = clock()
            for alias, every, lag in shape.alias_moves:
                if n % every == 0:
                    alice.set_alias(shape.model, alias, f"{shape.model}/{n - lag}")
            spent["aliases"] += clock() - t0
            t0 = clock()
            if n % shape.evaluate_every == 0:
                bob.evaluate(ref, TEST, metrics={"accuracy": facts["metrics"]["accuracy"] - 0.01})
            spent["evaluate"] += clock() - t0
            t0 = clock()
            if n % shape.review_every == 0:
                alice.set_tag(ref, "reviewed", "yes")
            spent["tags"] += clock() - t0
            if n % 1000 == 0:
                rate = n / (clock() - start)
                print(f"    {n} versions of {shape.model}, {rate:.0f} versions/s", flush=True)
        check = ci.verify_audit()
        if not check.ok:
            raise SystemExit(f"the audit chain of the built registry does not verify: {check}")
        events = check.events
    finally:
        for reg in (ci, alice, bob):
            reg.close()
    return {"seconds": clock() - start, "audit_events": events, "parts": spent}


def registry_for(shape: Shape, *, cache: Path, rebuild: bool) -> tuple[Path, dict[str, Any]]:
    """The cached registry of ``shape``, built first when it is missing or stale."""
    home = cache / f"{shape.model}-{shape.key}"
    marker = home / "built.json"
    if marker.exists() and not rebuild:
        done = json.loads(marker.read_text())
        print(
            f"  {shape.model}: reusing {home} (built {done['built_at']} in"
            f" {done['seconds']:.1f} s, {done['audit_events']} audit events)"
        )
        return home / "registry", {**done, "reused": True}
    for stale in cache.glob(f"{shape.model}-*"):  # other shapes, or an unfinished build
        shutil.rmtree(stale, ignore_errors=True)
    home.mkdir(parents=True)
    print(f"  {shape.model}: building {shape.versions} versions in {home}", flush=True)
    # Registering captures the git state of the working directory: work outside any repo.
    with tempfile.TemporaryDirectory(prefix="modelreg-bench-ui-") as tmp:
        files = _files(Path(tmp) / "files")
        with working_directory(Path(tmp)):
            done = build(shape, home / "registry", files)
    done = {**done, "shape": asdict(shape), "built_at": datetime.now(UTC).isoformat()[:19]}
    marker.write_text(json.dumps(done, indent=2))
    parts = ", ".join(f"{k} {v:.1f} s" for k, v in done["parts"].items())
    print(
        f"  {shape.model}: built in {done['seconds']:.1f} s"
        f" ({shape.versions / done['seconds']:.0f} versions/s; {parts});"
        f" {done['audit_events']} audit events"
    )
    return home / "registry", {**done, "reused": False}


# -- the pages --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Page:
    label: str
    path: Callable[[Shape], str]  # the HTML page's path for a shape; the twin is derived


def _twin(path: str) -> str:
    base, sep, query = path.partition("?")
    base = "/models" if base == "/" else base
    return f"/api/v1/pages{base}{sep}{query}"


def _last_page(s: Shape) -> int:
    return (s.versions - 1) // 50 * 50


def _middle(s: Shape) -> int:
    return s.versions // 2


def _in_run(s: Shape) -> int:
    return s.versions // s.run_every * s.run_every - 1


PAGES = [
    Page("/ (models)", lambda s: "/"),
    Page("/?q=metrics.accuracy > 0.9", lambda s: "/?q=metrics.accuracy+%3E+0.9"),
    Page("/models/M (default sort)", lambda s: f"/models/{s.model}"),
    Page("/models/M sorted by accuracy desc",
         lambda s: f"/models/{s.model}?sort=metrics.accuracy&order=desc"),
    Page("/models/M last page", lambda s: f"/models/{s.model}?offset={_last_page(s)}"),
    Page("/models/M/versions/(middle)", lambda s: f"/models/{s.model}/versions/{_middle(s)}"),
    Page("version with many children", lambda s: f"/models/{s.model}/versions/{s.hub}"),
    Page("version with a run history", lambda s: f"/models/{s.model}/versions/{_in_run(s)}"),
    Page("/models/M@production", lambda s: f"/models/{s.model}@production"),
    Page("/compare M/1, M/2, M/3",
         lambda s: f"/compare?v={s.model}/1&v={s.model}/2&v={s.model}/3"),
    Page("/datasets", lambda s: "/datasets"),
    Page("/datasets/clicks (every version uses it)", lambda s: "/datasets/clicks"),
    Page("/audit", lambda s: "/audit"),
    Page("/audit?entity=M/(middle)", lambda s: f"/audit?entity={s.model}/{_middle(s)}"),
    Page("/audit?actor=alice", lambda s: "/audit?actor=alice"),
]  # fmt: skip


def time_get(client: Any, path: str, *, warmup: int, requests: int) -> dict[str, float]:
    """Median and p95 of ``requests`` GETs after ``warmup`` untimed ones, and the body size."""
    size = 0
    for _ in range(warmup):
        response = client.get(path)
        if response.status_code != 200:
            raise SystemExit(f"GET {path}: {response.status_code} {response.text[:300]}")
        size = len(response.content)
    samples = []
    clock = time.perf_counter_ns
    for _ in range(requests):
        start = clock()
        response = client.get(path)
        samples.append((clock() - start) / 1e6)
        if response.status_code != 200:
            raise SystemExit(f"GET {path}: {response.status_code} {response.text[:300]}")
        size = len(response.content)
    return {**summary_ms(samples), "bytes": size}


def profile_get(app: Any, path: str, *, calls: int = 5, top: int = 28) -> None:
    """cProfile of ``calls`` GETs of ``path``, run wholly in this thread.

    TestClient serves the app from another thread, and a sync route runs in a worker
    thread, which cProfile (per thread) would not see. Here the app is called through
    ``httpx.ASGITransport`` on an event loop in this thread, with ``anyio.to_thread.run_sync``
    (how Starlette runs a sync route) calling the function in place.
    """
    import asyncio
    from unittest import mock

    import anyio.to_thread
    import httpx

    async def in_place(func: Callable[..., Any], *args: Any, **_: Any) -> Any:
        return func(*args)

    prof = cProfile.Profile()

    async def run() -> float:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            await client.get(path)
            start = time.perf_counter()
            prof.enable()
            for _ in range(calls):
                response = await client.get(path)
            prof.disable()
            assert response.status_code == 200, response.text[:300]
            return (time.perf_counter() - start) / calls * 1000

    with mock.patch.object(anyio.to_thread, "run_sync", in_place):
        each = asyncio.run(run())
    print(f"  -- cProfile of {calls} x GET {path}: {each:.0f} ms each under the profiler")
    for order, pattern, count in (
        ("cumulative", r"modelreg|jinja2|sqlalchemy/engine|fastapi/(encoders|routing)", top),
        ("tottime", "", 12),
    ):
        out = io.StringIO()
        pstats.Stats(prof, stream=out).sort_stats(order).print_stats(
            *(p for p in (pattern,) if p), count
        )
        print(
            f"     by {order} time{' (modelreg, jinja2, SQLAlchemy, FastAPI)' if pattern else ''}:"
        )
        lines = out.getvalue().splitlines()
        first = next(i for i, line in enumerate(lines) if line.lstrip().startswith("ncalls"))
        for line in lines[first:]:
            if line.strip():
                print(f"     {line[:180]}")


def _size(n: float) -> str:
    return f"{n / 1024:.1f} KiB" if n < 1024 * 1024 else f"{n / 1024 / 1024:.2f} MiB"


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for number, row in enumerate(rows):
        cells = [
            c.rjust(w) if i else c.ljust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  " + "  ".join(cells))
        if number == 0:
            lines.append("  " + "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=20, help="timed requests per page")
    parser.add_argument("--warmup", type=int, default=2, help="untimed requests per page")
    parser.add_argument("--cache", type=Path, default=CACHE, help="where the registries live")
    parser.add_argument("--rebuild", action="store_true", help="build the registries again")
    parser.add_argument("--only", default="", help="only the pages whose label contains this")
    parser.add_argument(
        "--profile",
        type=float,
        nargs="?",
        const=TARGET_MS,
        metavar="MS",
        help="afterwards, cProfile each page of big whose median is over MS (default: the target)",
    )
    args = parser.parse_args()
    header(f"ui pages: each page of the web UI with {BIG.versions:,} versions in one model")

    roots, builds = {}, {}
    for shape in (BIG, SMALL):
        roots[shape.model], builds[shape.model] = registry_for(
            shape, cache=args.cache, rebuild=args.rebuild
        )

    from fastapi.testclient import TestClient

    from modelreg.local import LocalRegistry
    from modelreg.server.app import create_app

    registries = {name: LocalRegistry(root) for name, root in roots.items()}
    clients = {
        name: TestClient(create_app(reg), base_url="http://127.0.0.1")
        for name, reg in registries.items()
    }
    pages = [p for p in PAGES if args.only in p.label or args.only in p.path(BIG)]
    results: list[dict[str, Any]] = []
    try:
        for page in pages:
            row: dict[str, Any] = {"page": page, "path": page.path(BIG)}
            for shape in (BIG, SMALL):
                client, path = clients[shape.model], page.path(shape)
                for kind, url in (("html", path), ("json", _twin(path))):
                    row[shape.model, kind] = time_get(
                        client, url, warmup=args.warmup, requests=args.requests
                    )
            big_html, big_json = row[BIG.model, "html"], row[BIG.model, "json"]
            print(
                f"  {row['path']:<52} HTML p50 {big_html['p50']:8.1f} ms"
                f"  JSON p50 {big_json['p50']:8.1f} ms",
                flush=True,
            )
            results.append(row)

        print()
        print(
            f"  Server-side time of each page in process (TestClient), ms: median and p95 of"
            f" {args.requests} requests after {args.warmup} untimed; PASS when the median is"
            f" under {TARGET_MS:.0f} ms."
        )
        print(
            f"  big: {BIG.versions:,} versions; small (baseline, same run): {SMALL.versions};"
            f" M is the model: big or small."
        )
        rows = [["page (M = big)", "HTML p50", "p95", "size", "JSON p50", "p95", "size",
                 "small HTML", "small JSON", "target", "mark"]]  # fmt: skip
        over = {"html": 0, "json": 0}
        over_pages = []
        for row in results:
            big_html, big_json = row[BIG.model, "html"], row[BIG.model, "json"]
            small_html, small_json = row[SMALL.model, "html"], row[SMALL.model, "json"]
            marks = []
            for kind, timed in (("html", big_html), ("json", big_json)):
                if timed["p50"] > TARGET_MS:
                    over[kind] += 1
                    marks.append(kind.upper())
            if marks:
                over_pages.append(row)
            rows.append(
                [
                    row["path"],
                    f"{big_html['p50']:.1f}",
                    f"{big_html['p95']:.1f}",
                    _size(big_html["bytes"]),
                    f"{big_json['p50']:.1f}",
                    f"{big_json['p95']:.1f}",
                    _size(big_json["bytes"]),
                    f"{small_html['p50']:.1f}",
                    f"{small_json['p50']:.1f}",
                    f"< {TARGET_MS:.0f}",
                    "OVER (" + ", ".join(marks) + ")" if marks else "PASS",
                ]
            )
        print(_table(rows))
        print()
        for name, done in builds.items():
            how = "reused from the cache; built" if done["reused"] else "built"
            print(
                f"  registry {name}: {how} in {done['seconds']:.1f} s,"
                f" {done['audit_events']:,} audit events"
            )
        print(
            f"  pages over {TARGET_MS:.0f} ms: {len(over_pages)} of {len(results)}"
            f" (HTML {over['html']}, JSON twin {over['json']})"
        )
        if args.profile is not None:
            for row in results:
                if max(row[BIG.model, k]["p50"] for k in ("html", "json")) > args.profile:
                    print()
                    profile_get(clients[BIG.model].app, row["path"])
    finally:
        for client in clients.values():
            client.close()
        for reg in registries.values():
            reg.close()

    figures = []
    for row in results:
        for kind in ("html", "json"):
            timed, base = row[BIG.model, kind], row[SMALL.model, kind]
            figures.append(
                figure(
                    BENCH,
                    f"{kind.upper()} {row['path']} p50",
                    timed["p50"],
                    "ms",
                    target=f"< {TARGET_MS:.0f} ms",
                    passed=timed["p50"] < TARGET_MS,
                    baseline=f"{SMALL.model} ({SMALL.versions} versions) p50 {base['p50']:.1f} ms",
                    note=f"p95 {timed['p95']:.1f} ms, {timed['bytes']} bytes, n={args.requests}",
                )
            )
    emit(figures)


if __name__ == "__main__":
    sys.exit(main())
