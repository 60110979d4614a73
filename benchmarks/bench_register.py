"""Benchmark 1: register 1,000 versions (10 params, 5 metrics, 3 tags, one distinct 1 KB file).

Target: >= 500 versions/s, embedded, with the working directory outside any git repository
(``register`` captures the git state of the working directory, which costs git subprocesses).
The same figure is also reported from inside a git repository (clean, then with one
uncommitted change), for honesty.

Baseline in the same run: the same number of versions written as raw SQLite inserts of the
equivalent rows (version, file, 10 params, 5 metrics, 3 tags, model touch, audit event and
audit head) through the sqlite3 module, one transaction per version, same pragmas.

    .venv/bin/python benchmarks/bench_register.py [--count 1000] [--git-count 1000] [--profile]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from _common import (
    ROOT,
    emit,
    figure,
    header,
    in_git_repository,
    profiled,
    temp_dir,
    working_directory,
)

import modelreg

TARGET = 500.0
BENCH = "1 register"


def make_files(folder: Path, count: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        path = folder / f"model-{i:05d}.bin"
        path.write_bytes(f"{i:08d}".encode() + os.urandom(1016))
        paths.append(path)
    return paths


def version_values(i: int) -> tuple[dict[str, Any], dict[str, float], dict[str, str]]:
    params: dict[str, Any] = {f"p{j}": (i * 10 + j) / 7 for j in range(7)}
    params.update({"solver": "lbfgs", "penalty": "l2", "class_weight": "balanced"})
    metrics = {k: ((i * 37 + n) % 1000) / 1000 for n, k in enumerate(METRICS)}
    tags = {"team": "growth", "stage": f"exp-{i % 10}", "owner": "bench"}
    return params, metrics, tags


METRICS = ("accuracy", "f1", "precision", "recall", "auc")


def register_many(registry_dir: Path, files: list[Path], *, profile: bool = False) -> float:
    """Register one version per file into a fresh registry; return versions per second."""
    reg = modelreg.connect(registry_dir)
    try:
        with profiled(profile):
            start = time.perf_counter()
            for i, path in enumerate(files):
                params, metrics, tags = version_values(i)
                reg.register("churn", path, params=params, metrics=metrics, tags=tags)
            elapsed = time.perf_counter() - start
        latest = reg.get("churn")
        assert latest.number == len(files), latest.number
    finally:
        reg.close()
    return len(files) / elapsed


def raw_sqlite_baseline(db_path: Path, count: int) -> float:
    """The same rows through sqlite3, one BEGIN IMMEDIATE ... COMMIT per version."""
    conn = sqlite3.connect(db_path, isolation_level=None)
    for pragma in ("busy_timeout = 60000", "journal_mode = WAL", "synchronous = NORMAL"):
        conn.execute(f"PRAGMA {pragma}")
    conn.execute("PRAGMA foreign_keys = ON")
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    model_id = str(uuid.uuid4())
    conn.execute(
        "INSERT INTO models (id, name, description, created_at, created_by, updated_at)"
        " VALUES (?, 'churn', '', ?, 'bench', ?)",
        (model_id, stamp, stamp),
    )
    start = time.perf_counter()
    for i in range(count):
        params, metrics, tags = version_values(i)
        vid = str(uuid.uuid4())
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        digest = hashlib.sha256(vid.encode()).hexdigest()
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("SELECT id FROM models WHERE name = 'churn'").fetchone()
        conn.execute("UPDATE models SET updated_at = ? WHERE id = ?", (now, model_id))
        conn.execute("SELECT max(number) FROM versions WHERE model_id = ?", (model_id,)).fetchone()
        conn.execute(
            "INSERT INTO versions (id, model_id, number, description, created_at, created_by,"
            " manifest_digest, size, file_count, code, command, hostname)"
            " VALUES (?, ?, ?, '', ?, 'bench', ?, 1024, 1, '{}', 'bench', 'host')",
            (vid, model_id, i + 1, now, digest),
        )
        conn.execute(
            "INSERT INTO version_files (version_id, path, digest, size) VALUES (?, ?, ?, 1024)",
            (vid, f"model-{i:05d}.bin", digest),
        )
        conn.executemany(
            "INSERT INTO version_params (version_id, key, value, value_num) VALUES (?, ?, ?, ?)",
            [(vid, k, str(v), v if isinstance(v, float) else None) for k, v in params.items()],
        )
        conn.executemany(
            "INSERT INTO version_metrics (version_id, key, value) VALUES (?, ?, ?)",
            [(vid, k, v) for k, v in metrics.items()],
        )
        conn.executemany(
            "INSERT INTO version_tags (version_id, key, value) VALUES (?, ?, ?)",
            [(vid, k, v) for k, v in tags.items()],
        )
        seq, prev = conn.execute("SELECT seq, hash FROM audit_head WHERE id = 1").fetchone()
        after = json.dumps({"params": params, "metrics": metrics, "tags": tags})
        event_hash = hashlib.sha256((prev + after).encode()).hexdigest()
        conn.execute(
            "INSERT INTO audit_events (seq, at, actor, action, entity_type, entity_id, entity,"
            " after, prev_hash, hash) VALUES (?, ?, 'bench', 'version.create', 'version', ?, ?,"
            " ?, ?, ?)",
            (seq + 1, now, vid, f"churn/{i + 1}", after, prev, event_hash),
        )
        conn.execute("UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1", (seq + 1, event_hash))
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - start
    conn.close()
    return count / elapsed


def core_baseline(registry_dir: Path, count: int) -> float:
    """The same rows through SQLAlchemy Core with statements built once, via ``Database.write``.

    This is the floor for the registry's own stack (engine, pragmas, BEGIN IMMEDIATE, one
    transaction per version) without its checks, blob writes, lease and read-back.
    """
    import sqlalchemy as sa

    from modelreg import schema

    reg = modelreg.connect(registry_dir)
    m, v, head = schema.models, schema.versions, schema.audit_head
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    model_id = str(uuid.uuid4())
    row = dict(description="", created_at=stamp, created_by="bench", updated_at=stamp)
    reg.db.write(lambda conn: conn.execute(m.insert(), [{"id": model_id, "name": "churn", **row}]))
    find_model = sa.select(m.c.id).where(m.c.name == "churn")
    touch_model = m.update().where(m.c.id == sa.bindparam("mid"))
    max_number = sa.select(sa.func.max(v.c.number)).where(v.c.model_id == sa.bindparam("mid"))
    read_head = sa.select(head.c.seq, head.c.hash).where(head.c.id == 1)
    write_head = head.update().where(head.c.id == 1)
    inserts = {t: t.insert() for t in schema.metadata.sorted_tables}

    def create(i: int) -> None:
        params, metrics, tags = version_values(i)
        vid = str(uuid.uuid4())
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        digest = hashlib.sha256(vid.encode()).hexdigest()

        def write(conn: sa.Connection) -> None:
            conn.execute(find_model).scalar()
            conn.execute(touch_model, {"mid": model_id, "updated_at": now})
            number = (conn.execute(max_number, {"mid": model_id}).scalar() or 0) + 1
            conn.execute(
                inserts[v],
                {
                    "id": vid, "model_id": model_id, "number": number, "description": "",
                    "created_at": now, "created_by": "bench", "manifest_digest": digest,
                    "size": 1024, "file_count": 1, "code": "{}", "command": "bench",
                    "hostname": "host",
                },
            )  # fmt: skip
            conn.execute(
                inserts[schema.version_files],
                {"version_id": vid, "path": f"model-{i:05d}.bin", "digest": digest, "size": 1024},
            )
            conn.execute(
                inserts[schema.version_params],
                [
                    {"version_id": vid, "key": k, "value": str(x),
                     "value_num": x if isinstance(x, float) else None}
                    for k, x in params.items()
                ],
            )  # fmt: skip
            conn.execute(
                inserts[schema.version_metrics],
                [{"version_id": vid, "key": k, "value": x} for k, x in metrics.items()],
            )
            conn.execute(
                inserts[schema.version_tags],
                [{"version_id": vid, "key": k, "value": x} for k, x in tags.items()],
            )
            seq, prev = conn.execute(read_head).one()
            after = json.dumps({"params": params, "metrics": metrics, "tags": tags})
            event_hash = hashlib.sha256((prev + after).encode()).hexdigest()
            conn.execute(
                inserts[schema.audit_events],
                {
                    "seq": seq + 1, "at": now, "actor": "bench", "action": "version.create",
                    "entity_type": "version", "entity_id": vid, "entity": f"churn/{number}",
                    "after": after, "prev_hash": prev, "hash": event_hash,
                },
            )  # fmt: skip
            conn.execute(write_head, {"seq": seq + 1, "hash": event_hash})

        reg.db.write(write)

    try:
        start = time.perf_counter()
        for i in range(count):
            create(i)
        elapsed = time.perf_counter() - start
    finally:
        reg.close()
    return count / elapsed


def make_git_repository(folder: Path) -> None:
    """A repository holding a committed copy of this project's source tree."""
    shutil.copytree(ROOT / "src", folder / "src", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", folder / "pyproject.toml")
    git = ["git", "-C", str(folder), "-c", "user.name=bench", "-c", "user.email=bench@example"]
    subprocess.run(["git", "init", "-q", str(folder)], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "snapshot"], check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--git-count", type=int, default=None, help="default: --count")
    parser.add_argument("--profile", action="store_true", help="cProfile the outside-git run")
    args = parser.parse_args()
    count = args.count
    git_count = args.git_count or count
    header(f"benchmark 1: register {count} versions (10 params, 5 metrics, 3 tags, 1 KB file)")
    figures = []
    with temp_dir("register") as tmp:
        files = make_files(tmp / "files", max(count, git_count))
        cwd = tmp / "cwd"
        cwd.mkdir()
        assert not in_git_repository(cwd), f"{cwd} is inside a git repository"
        print(f"  working directory {cwd}: outside any git repository, so no git capture")
        with working_directory(cwd):
            rate = register_many(tmp / "reg-outside", files[:count], profile=args.profile)
        print(f"  register, cwd outside git:                {rate:8.1f} versions/s")

        # The baseline writes into a schema made by the registry's own migrations.
        modelreg.connect(tmp / "reg-baseline").close()
        base = raw_sqlite_baseline(tmp / "reg-baseline" / "registry.db", count)
        print(f"  baseline, raw sqlite3 inserts:            {base:8.1f} versions/s")
        print(f"  overhead factor vs raw sqlite3:           {base / rate:8.1f}x")
        core = core_baseline(tmp / "reg-core", count)
        print(f"  SQLAlchemy Core, same rows (for context): {core:8.1f} versions/s")
        figures.append(
            figure(
                BENCH,
                f"register {count} versions, cwd outside git",
                rate,
                "versions/s",
                target=f">= {TARGET:.0f}",
                passed=rate >= TARGET,
                baseline=f"raw sqlite3 {base:.0f}/s ({base / rate:.1f}x faster)",
                note=f"SQLAlchemy Core, same rows: {core:.0f}/s",
            )
        )

        repo = tmp / "repo"
        make_git_repository(repo)
        with working_directory(repo):
            clean = register_many(tmp / "reg-git-clean", files[:git_count])
            print(f"  register, cwd in a clean git repository:  {clean:8.1f} versions/s")
            with open(repo / "src" / "modelreg" / "schema.py", "a") as f:
                f.write("\n# an uncommitted change\n")
            dirty = register_many(tmp / "reg-git-dirty", files[:git_count])
            print(f"  register, cwd in a git repo, 1 change:    {dirty:8.1f} versions/s")
        for label, value in (("clean", clean), ("one uncommitted change", dirty)):
            figures.append(
                figure(
                    BENCH,
                    f"register {git_count} versions, cwd in git repo ({label})",
                    value,
                    "versions/s",
                    target=f"(info; target applies outside git: >= {TARGET:.0f})",
                    passed=None,
                    baseline=f"raw sqlite3 {base:.0f}/s",
                )
            )
    emit(figures)


if __name__ == "__main__":
    main()
