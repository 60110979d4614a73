"""How the package is put together: migrations that match the tables, dependencies that point
one way, an interface that covers the embedded registry."""

from __future__ import annotations

import ast
import sys
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from modelreg import db, metric_blocks, runs, schema, versions

SRC = Path(__file__).resolve().parents[1] / "src" / "modelreg"


def test_a_new_database_is_created_by_running_the_migrations(tmp_path: Path) -> None:
    database = db.Database(f"sqlite:///{tmp_path / 'r.db'}")
    assert database.current_revision() is None
    database.migrate()
    assert database.current_revision() == db.HEAD_REVISION
    with database.engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), schema.metadata)
        head = conn.execute(sa.select(schema.audit_head)).one()
    assert diffs == [], f"migrations and schema.py disagree: {diffs}"
    assert (head.seq, head.hash) == (0, "0" * 64)
    database.dispose()


def test_head_revision_constant_matches_the_newest_migration(tmp_path: Path) -> None:
    database = db.Database(f"sqlite:///{tmp_path / 'r.db'}")
    script = ScriptDirectory.from_config(db.alembic_config(database.engine))
    assert script.get_current_head() == db.HEAD_REVISION
    database.dispose()


def test_migrating_twice_is_a_no_op(tmp_path: Path) -> None:
    database = db.Database(f"sqlite:///{tmp_path / 'r.db'}")
    database.migrate(lock_path=tmp_path / "lock")
    database.migrate(lock_path=tmp_path / "lock")
    assert database.current_revision() == db.HEAD_REVISION
    database.dispose()


# The faces: they may import HTTP and CLI libraries. Every other module is a rule or a store
# and is held to the one-way rule below; a new module is covered without being listed.
FACES = {
    "cli": "the CLI (Typer, rich): the package that assembles it, one module per noun, helpers",
    "remote": "the HTTP client (httpx)",
    "remote_blobs": "the HTTP client's transfers (httpx)",
    "mlflow_import": "reads an MLflow tracking server over its REST API (httpx)",
    "webhook_delivery": "the sender of webhook deliveries (httpx, behind outbound's SSRF guard)",
}
STORE_MODULES = sorted(p.stem for p in SRC.glob("*.py") if p.stem not in ("__init__", *FACES))
CLI_MODULES = sorted(p.stem for p in (SRC / "cli").glob("*.py"))


def _is_module(name: str) -> bool:
    """Whether ``modelreg.a.b`` names a module or a package of the source tree."""
    root, *parts = name.split(".")
    path = SRC.joinpath(*parts)
    if root != "modelreg":
        return False
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _imports(module: str) -> set[str]:
    """The modules ``module`` imports, by absolute name; it is a path under src/modelreg
    without ``.py``: ``db``, ``server/app``, ``cli/versions``, ``cli/__init__``.

    ``from modelreg.cli import render`` imports the module ``modelreg.cli.render``, while
    ``from modelreg.cli import app`` and ``from modelreg import cli`` import ``modelreg.cli``;
    relative imports are resolved against the module's package.
    """
    package = ["modelreg", *module.split("/")[:-1]]
    tree = ast.parse((SRC / f"{module}.py").read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) + 1 - node.level] if node.level else []
            source = ".".join([*base, *([node.module] if node.module else [])])
            for alias in node.names:
                name = f"{source}.{alias.name}"
                found.add(name if _is_module(name) else source)
    return found


def test_every_face_is_a_module_or_a_package() -> None:
    """A face that moved (``cli.py`` into ``cli/``) still names what it exempts; a stale name
    would leave its successor out of every check here."""
    for face in FACES:
        assert _is_module(f"modelreg.{face}"), f"FACES names modelreg.{face}, which is gone"
    assert {"__init__", "support", "render", "versions"} <= set(CLI_MODULES)


def test_dependencies_point_one_way() -> None:
    """The rules and stores never import the CLI, HTTP libraries or UI code."""
    forbidden = ("modelreg.cli", "typer", "click", "rich", "httpx", "fastapi", "starlette")
    for module in STORE_MODULES:
        bad = {name for name in _imports(module) if name.startswith(forbidden)}
        assert not bad, f"modelreg.{module} imports {sorted(bad)}"


def test_the_cli_modules_never_import_the_package_that_assembles_them() -> None:
    """``cli/__init__.py`` creates the app and mounts each noun module's Typer groups by
    explicit calls. The noun modules and their shared helpers never import it: nothing
    registers by import side effect, and there is no cycle. (``__main__`` is the entry point
    of ``python -m modelreg.cli``, like the console script: it runs the assembly.)"""
    for module in CLI_MODULES:
        if module not in ("__init__", "__main__"):
            imported = _imports(f"cli/{module}")
            assert "modelreg.cli" not in imported, f"modelreg.cli.{module} imports modelreg.cli"


def test_the_server_and_the_client_sit_on_the_rules_not_on_each_other() -> None:
    """The server never imports the CLI or the client; the client never imports the server
    or the embedded registry (it speaks HTTP only)."""
    for path in sorted((SRC / "server").glob("*.py")):
        bad = {n for n in _imports(f"server/{path.stem}") if n.startswith(("modelreg.cli",
               "modelreg.remote", "typer", "rich"))}  # fmt: skip
        assert not bad, f"modelreg.server.{path.stem} imports {sorted(bad)}"
    for module in ("remote", "remote_blobs"):
        bad = {n for n in _imports(module) if n.startswith(("modelreg.server", "modelreg.local",
               "modelreg.db", "fastapi"))}  # fmt: skip
        assert not bad, f"modelreg.{module} imports {sorted(bad)}"


@pytest.mark.parametrize(
    "module",
    ["modelreg.remote", "modelreg.registering", "modelreg.search_language", "modelreg.records",
     "modelreg.run", "modelreg.wire", "modelreg.signing", "modelreg.reports"],
)  # fmt: skip
def test_the_client_and_the_pure_rules_load_no_sql(module: str) -> None:
    """Records and pure rules sit below the SQL modules: the HTTP client, the registering
    path and the search language's parser work without SQLAlchemy."""
    import subprocess

    sql = ("sqlalchemy", "modelreg.db", "modelreg.schema")
    code = f"import sys, {module}; print(sorted(m for m in sys.modules if m.startswith({sql})))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_importing_the_package_stays_light() -> None:
    """`import modelreg` must not pull in SQLAlchemy: the CLI starts fast."""
    code = "import sys, modelreg; print('sqlalchemy' in sys.modules)"
    import subprocess

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


STARTUP_PROBE = """
import sys
from modelreg.cli import main
code = main({args!r})
print("LOADED", sorted({{m.split(".")[0] for m in sys.modules}} & {heavy!r}), code)
"""


def _loaded_by(args: list[str], heavy: set[str], registry: Path) -> str:
    import os
    import subprocess

    env = os.environ | {"MODELREG_URI": str(registry)}
    code = STARTUP_PROBE.format(args=args, heavy=heavy)
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    return out.stdout.splitlines()[-1]


def test_commands_load_only_what_they_use(tmp_path: Path) -> None:
    """``modelreg --help`` loads no database, server or validation library; a read command
    on a registry whose schema is current loads SQLAlchemy but neither Alembic (the schema
    check is one query: ``Database.current_revision``) nor anything of the server, the HTTP
    client, S3, pydantic (``cli.support.PlainValues``) or numpy (metric points, chunks)."""
    import modelreg

    registry = tmp_path / "reg"
    reg = modelreg.connect(registry)
    (tmp_path / "model.bin").write_bytes(b"weights")
    reg.register("m", tmp_path / "model.bin", metrics={"accuracy": 0.9})
    reg.close()
    server = {"fastapi", "starlette", "uvicorn", "jinja2", "httpx", "boto3", "botocore"}
    heavy = {"sqlalchemy", "alembic", "pydantic", "numpy", *server}
    assert _loaded_by(["--help"], heavy, registry) == "LOADED [] 0"
    for args in (["models"], ["show", "m/1"], ["versions", "m"], ["search", "--limit", "5"]):
        assert _loaded_by(args, heavy, registry) == "LOADED ['sqlalchemy'] 0", args
    # A registry behind the newest schema is still migrated, with Alembic.
    new = tmp_path / "new"
    assert _loaded_by(["models"], heavy, new) == "LOADED ['alembic', 'sqlalchemy'] 0"
    database = db.Database(f"sqlite:///{new / 'registry.db'}")
    assert database.current_revision() == db.HEAD_REVISION
    database.dispose()


def test_a_command_run_in_process_leaves_the_garbage_collector_as_it_was(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The CLI sets the objects it made opening a registry aside from the collector while a
    command runs (``cli.support.Session``); a caller running commands in its own process,
    as these tests do, gets them back, and the collector on, when each command ends."""
    import gc

    from modelreg.cli import main

    assert gc.isenabled()
    assert gc.get_freeze_count() == 0
    assert main(["--registry", str(tmp_path / "reg"), "models"]) == 0
    assert main(["--registry", str(tmp_path / "reg"), "show", "nope"]) == 1
    assert gc.isenabled()
    assert gc.get_freeze_count() == 0
    capsys.readouterr()


def test_the_cli_checks_plain_values_as_typer_does() -> None:
    """``PlainValues`` spares pydantic only where Typer's own check would return the value it
    was given: for every parameter of every command, both give the same value or the same
    error, on values as the command line and the defaults give them."""
    import typer
    from typer._click.exceptions import BadParameter
    from typer._coercion import build_runtime_param

    from modelreg.cli import app
    from modelreg.cli.support import PlainValues

    def outcome(check: Any, param: object, value: object) -> object:
        try:
            return check.coerce(value, param=param, ctx=ctx)
        except BadParameter as exc:
            return ("error", exc.format_message())

    values = [None, "", "churn/3", "7", "0", "-1", "1e3", "x", 3, 0, (), ("a", "b"), ["a"], True]
    root = typer.main.get_command(app)
    ctx = typer.Context(root)
    commands = [root, *root.commands.values()]
    for group in [c for c in commands if hasattr(c, "commands")]:
        commands += list(group.commands.values())
    checked = 0
    for command in commands:
        for param in [*command.params, command.get_help_option(ctx)]:
            if param is None:
                continue
            typers = build_runtime_param(param.type_descriptor)
            for value in values:
                ours = outcome(PlainValues(), param, value)
                assert ours == outcome(typers, param, value), (command.name, param.name, value)
                checked += 1
    assert checked > 1000


def test_a_registry_made_by_an_older_release_is_upgraded_in_place(tmp_path: Path) -> None:
    """A database at the first revision, with data, is migrated to the newest on connect."""
    from alembic import command

    import modelreg

    database = db.Database(f"sqlite:///{tmp_path / 'reg' / 'registry.db'}")
    (tmp_path / "reg").mkdir()
    command.upgrade(db.alembic_config(database.engine), "0001")
    with database.engine.begin() as conn:
        conn.execute(
            schema.models.insert().values(
                id="m1", name="old", description="", created_at="2026-01-01T00:00:00.000000Z",
                created_by="someone", updated_at="2026-01-01T00:00:00.000000Z",
            )
        )  # fmt: skip
    database.dispose()
    with modelreg.connect(tmp_path / "reg") as reg:
        assert [m.name for m in reg.models()] == ["old"]
        assert reg.db.current_revision() == db.HEAD_REVISION


def test_the_newest_migration_downgrades_and_upgrades_again_with_the_data(tmp_path: Path) -> None:
    """0007 adds the deletion columns in place, and drops them without copying versions."""
    from alembic import command

    import modelreg

    write_file = tmp_path / "model.bin"
    write_file.write_bytes(b"model")

    with modelreg.connect(tmp_path / "reg") as reg:
        reg.register("m", write_file)
        reg.register("m", write_file)
        reg.delete_version("m/1", reason="erasure")
        command.downgrade(db.alembic_config(reg.db.engine), "0006")
        assert reg.db.current_revision() == "0006"
    with modelreg.connect(tmp_path / "reg") as reg:
        assert reg.db.current_revision() == db.HEAD_REVISION
        assert [v.ref for v in reg.versions("m")] == ["m/2", "m/1"]  # 0006 had no deletions
        assert reg.verify_audit().ok


def test_the_model_summaries_are_filled_in_by_their_migrations_and_kept_by_writes(
    tmp_path: Path,
) -> None:
    """0011 counts each model's live versions onto its row, 0012 their metrics into buckets;
    registering and deleting keep both."""
    from alembic import command

    import modelreg
    from modelreg import metric_summary

    write_file = tmp_path / "model.bin"
    write_file.write_bytes(b"model")
    with modelreg.connect(tmp_path / "reg") as reg:
        for n in range(3):
            reg.register("m", write_file, metrics={"auc": n / 10})
        reg.register("other", write_file)
        reg.delete_version("m/3", reason="erasure")
        command.downgrade(db.alembic_config(reg.db.engine), "0010")
    with modelreg.connect(tmp_path / "reg") as reg:  # upgraded again: the backfills
        summary = {m.name: (m.version_count, m.latest) for m in reg.models()}
        assert summary == {"m": (2, 2), "other": (1, 1)}
        model_id = reg.models()[0].id
        buckets = reg.db.read(lambda conn: metric_summary.series(conn, model_id, 10))
        assert {k: buckets["auc"][k] for k in ("number", "min", "max")} == {
            "number": [1], "min": [0.0], "max": [0.1]
        }  # fmt: skip
        reg.delete_version("m/2", reason="erasure")  # the latest goes: the one before is latest
        reg.register("other", write_file)
        summary = {m.name: (m.version_count, m.latest) for m in reg.models()}
        assert summary == {"m": (1, 1), "other": (2, 2)}
        reg.delete_version("m/1", reason="erasure")
        (m,) = [m for m in reg.models() if m.name == "m"]
        assert (m.version_count, m.latest) == (0, None)
        assert m.updated_at >= reg.get("other/2").created_at  # a deletion is an update


def test_a_populated_registry_at_the_oldest_schema_is_upgraded_with_its_summaries(
    tmp_path: Path,
) -> None:
    """Versions, metrics, aliases and audit events written under schema 0001 come through
    every migration: counts, charts, searches and the audit chain as if made today."""
    from alembic import command

    import modelreg

    weights = tmp_path / "m.bin"
    with modelreg.connect(tmp_path / "reg", actor="alice") as reg:
        for i in range(12):
            weights.write_bytes(b"w%d" % i)
            name = "churn" if i % 3 else "fraud"
            reg.register(name, weights, metrics={"auc": i / 20}, params={"lr": i / 10})
        reg.set_alias("churn", "production", "churn/2")
        command.downgrade(db.alembic_config(reg.db.engine), "0001")
        assert reg.db.current_revision() == "0001"
    with modelreg.connect(tmp_path / "reg") as reg:
        assert reg.db.current_revision() == db.HEAD_REVISION
        listed = {m.name: (m.version_count, m.latest, m.aliases) for m in reg.models()}
        assert listed == {"churn": (8, 8, {"production": 2}), "fraud": (4, 4, {})}
        found = reg.search("metrics.auc > 0.4", order_by="metrics.auc desc")
        assert [v.ref for v in found] == ["churn/8", "churn/7", "fraud/4"]
        churn = reg.models()[0].id
        chart = reg.db.read(lambda conn: versions.metric_series(conn, churn, max_points=1))
        assert (chart["auc"]["bucket"], chart["auc"]["max"]) == (10, [0.55])
        assert reg.verify_audit(full=True).ok


def test_run_metric_rows_of_schema_0014_move_into_blocks(tmp_path: Path) -> None:
    """Migration 0015 reads ``run_metrics`` back as blocks (and 0015's downgrade writes the
    rows again): histories, latest points, counts and charts as if logged today."""
    from alembic import command

    import modelreg

    t0 = 1_800_000_000_000
    points = [("loss", 1 / (i + 1), i, t0 + i) for i in range(40)]
    with modelreg.connect(tmp_path / "reg", actor="alice") as reg:
        with reg.start_run(name="fit") as run:
            reg.record_run_metrics(run.id, [*points[:25], ("acc", 0.5, 3, t0)])
            reg.record_run_metrics(run.id, [*points[25:], ("acc", 0.7, 3, t0 + 1)])
            for start in range(0, 250_001, 100_000):  # moved back as blocks of 100,000
                steps = range(start, min(start + 100_000, 250_001))
                reg.record_run_metrics(run.id, [("long", s % 7, s, t0 + s) for s in steps])
        command.downgrade(db.alembic_config(reg.db.engine), "0014")
        rows = reg.db.read(lambda conn: conn.execute(sa.text("SELECT count(*) FROM run_metrics")))
        assert rows.scalar_one() == 42 + 250_001
    with modelreg.connect(tmp_path / "reg") as reg:
        assert reg.db.current_revision() == db.HEAD_REVISION
        history = reg.db.read(lambda conn: runs.metric_history(conn, run.id, "loss"))
        assert [(p.step, p.value) for p in history] == [(s, v) for _, v, s, _ in points]
        tracked = reg.db.read(lambda conn: runs.load_tracked(conn, run.id))
        assert [(m.key, m.step, m.value) for m in tracked.metrics] == [
            ("acc", 3, 0.7),
            ("long", 250_000, 250_000 % 7),
            ("loss", 39, 1 / 40),
        ]
        drawn = reg.db.read(lambda conn: metric_blocks.series(conn, run.id, max_points=4))
        assert (drawn["loss"]["points"], drawn["loss"]["bucket"]) == (40, 10)
        assert drawn["loss"]["max"] == [1.0, 1 / 11, 1 / 21, 1 / 31]
        counted = sa.select(schema.metric_latest.c.key, schema.metric_latest.c.count)
        assert dict(reg.db.read(lambda conn: conn.execute(counted).all())) == {
            "acc": 2,
            "loss": 40,
            "long": 250_001,
        }
        blocks = sa.select(schema.metric_blocks.c.count).where(schema.metric_blocks.c.key == "long")
        assert reg.db.read(lambda conn: conn.execute(blocks).scalars().all()) == [
            100_000, 100_000, 50_001]  # fmt: skip
        page = reg.db.read(
            lambda conn: runs.metric_history(conn, run.id, "long", limit=3, offset=199_999)
        )
        assert [(p.step, p.value) for p in page] == [(199_999, 199_999 % 7), (200_000, 200_000 % 7),
                                                     (200_001, 200_001 % 7)]  # fmt: skip
        long = reg.db.read(lambda conn: metric_blocks.series(conn, run.id, max_points=1000))
        assert (long["long"]["bucket"], long["long"]["step"][0]) == (251, 0)
        assert 251 <= long["long"]["step"][1] < 251 + 16  # read from entries of 16 points
        assert len(long["long"]["step"]) <= 1000


def test_the_registry_interface_names_every_public_method_of_the_embedded_registry() -> None:
    """The remote client implements ``Registry``; whatever the embedded one offers, it must."""
    import inspect

    from modelreg.local import LocalRegistry
    from modelreg.registry import Registry

    public = {name for name, _ in inspect.getmembers(LocalRegistry) if not name.startswith("_")}
    declared = {name for name in dir(Registry) if not name.startswith("_")}
    assert public - declared == set(), "add these to the Registry protocol"


def test_routers_and_the_web_ui_never_import_the_app_that_assembles_them() -> None:
    """``server/app.py`` imports the routers and the UI; what they share is in ``auth`` and
    ``problems``. Importing a router does not assemble the application."""
    import subprocess

    parts = [f"server/{p.stem}" for p in (SRC / "server").glob("*.py") if p.stem[0] != "_"]
    parts.remove("server/app")
    parts += [f"ui/{p.stem}" for p in (SRC / "ui").glob("*.py")]
    for module in parts:
        assert "modelreg.server.app" not in _imports(module), f"modelreg.{module} imports app"
    code = "import sys, modelreg.server.api; print('modelreg.server.app' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
