"""The server against its own OpenAPI schema, fuzzed with schemathesis.

Every operation of the schema gets generated requests, valid and invalid, sent over HTTP to a
real server (uvicorn, ``live_server``) whose registry holds a few models, versions, an alias,
a dataset and an evaluation, so that some references resolve. No answer may be a 5xx; each
must match what the schema says (status code, content type, headers, body); what the schema
calls invalid must be refused with a 4xx, and a method a route lacks with a 405 naming the
allowed ones.

Twice over: without auth on SQLite and a directory (every caller is admin), and with auth on
as each role (no token, reader, writer, maintainer, admin), on SQLite and a directory and on
PostgreSQL and S3 (SeaweedFS); MLflow's routes with auth as each role on SQLite and a
directory, and as an admin on PostgreSQL and S3.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)

from live import LiveServer
from modelreg import metric_columns, wire
from modelreg.local import LocalRegistry
from modelreg.server import create_app
from server_kit import CONTENT, DIGEST, Server, make_server, registry_template

__all__ = ["make_server", "registry_template"]  # fixtures

# Not positive_data_acceptance: the schema gives types and lengths, not the grammar of names,
# aliases and references (refs.py is their one parser), so a schema-valid "0" * 200 as a model
# name is rightly refused with a 400.
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
    negative_data_rejection,  # what the schema calls invalid is a 4xx
    unsupported_method,  # a method the route lacks is a 405 with Allow
]


def app_schema() -> dict[str, Any]:
    """The OpenAPI document of the application (it does not depend on the store's content)."""
    with tempfile.TemporaryDirectory() as where:
        registry = LocalRegistry(Path(where) / "reg", actor="schema")
        try:
            document: dict[str, Any] = create_app(registry).openapi()
        finally:
            registry.close()
    return document


if os.environ.get("PYTEST_XDIST_WORKER"):
    # Under pytest-xdist each parametrized test below would pass without running a single
    # operation (schemathesis expands them only in one process): refuse rather than pass.
    raise RuntimeError("run tests/test_server_schema.py without pytest-xdist (-p no:xdist)")

# Loaded when the module is collected, so that each operation is a test of its own; the
# requests go to the live server of each test (base_url). schemathesis.pytest.from_fixture
# would load it from the live server instead, but fails on pytest 9 ('Function' object has no
# attribute '_nodeid', schemathesis 4.32.5).
SCHEMA = app_schema()
# The SDK's binary batches of metric points: fuzzed as the bytes the schema says they are.
schemathesis.serializer.alias(metric_columns.MEDIA_TYPE, "application/octet-stream")
schema = schemathesis.openapi.from_dict(SCHEMA)


def refusing_too_large(loaded: Any) -> None:
    """A body over the server's 16 MiB limit (a fuzzed list of long strings can reach a GB)
    is refused with 413 before it is parsed: that is how invalid data that large is
    rejected."""
    rejection = loaded.config.checks.negative_data_rejection
    rejection.expected_statuses = [*rejection.expected_statuses, "413"]


refusing_too_large(schema)


def populate(reg: LocalRegistry, data: Path) -> None:
    """demo/1 (from the template), demo/2 derived from it, churn/1; production on demo/2;
    demo/1 evaluated on a dataset."""
    entry = {"path": "model.bin", "digest": DIGEST, "size": len(CONTENT)}
    for name, extra in [
        ("demo", {"parents": ["demo/1"], "params": {"C": 0.1}, "metrics": {"accuracy": 0.95}}),
        ("churn", {"tags": {"team": "growth"}, "description": "churn model"}),
    ]:
        reg.commit_version(wire.new_version_from_json(name, {"files": [entry], **extra}))
    reg.set_alias("demo", "production", "demo/2")
    data.write_text("a,b\n1,2\n")
    reg.evaluate("demo/1", data, metrics={"accuracy": 0.91})


@pytest.fixture
def base_url(make_server: Callable[..., Server], tmp_path: Path) -> str:
    server = make_server(auth=False)
    populate(server.registry, tmp_path / "test.csv")
    return server.url


def test_the_fuzzed_schema_is_the_one_the_server_serves(base_url: str) -> None:
    assert httpx.get(base_url + "/openapi.json").json() == SCHEMA


@schema.parametrize()
@settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_operation_answers_as_its_schema_says(case: Any, base_url: str) -> None:
    case.call_and_validate(base_url=base_url, checks=CHECKS)


ROLES = ["anonymous", "reader", "writer", "maintainer", "admin"]
# For the grid of roles and backends: fuzzing only, without schemathesis's coverage phase (its
# boundary cases come to ~30 requests an operation, run above for no auth and below for an
# admin on PostgreSQL and S3).
fuzzed = schemathesis.openapi.from_dict(SCHEMA)
fuzzed.config.phases.coverage.enabled = False
refusing_too_large(fuzzed)


class AuthedStores:
    """A populated store per backend, served with auth on, and a token of each role; made
    once per module, so the fuzzing of every operation and role shares it (and what it
    changed)."""

    def __init__(self, request: pytest.FixtureRequest, where: Path) -> None:
        self.request = request
        self.where = where
        self.made: dict[str, tuple[LocalRegistry, Any, dict[str, str]]] = {}

    def served(self, kind: str) -> tuple[Any, dict[str, str]]:
        if kind not in self.made:
            self.made[kind] = self._make(kind)
        _, app, tokens = self.made[kind]
        return app, tokens

    def _make(self, kind: str) -> tuple[LocalRegistry, Any, dict[str, str]]:
        import io
        import secrets
        import uuid

        if kind == "sqlite_dir":
            registry = LocalRegistry(self.where / "reg", actor="setup")
        else:
            from modelreg.s3 import S3BlobStore

            postgres = self.request.getfixturevalue("postgres")
            bucket, client = self.request.getfixturevalue("s3_bucket")
            blobs = S3BlobStore(bucket, prefix=uuid.uuid4().hex, client=client)
            registry = LocalRegistry(db_url=postgres.new_database(), blobs=blobs, actor="setup")
        registry.blobs.put(io.BytesIO(CONTENT), digest=DIGEST)
        entry = {"path": "model.bin", "digest": DIGEST, "size": len(CONTENT)}
        registry.commit_version(wire.new_version_from_json("demo", {"files": [entry]}))
        populate(registry, self.where / f"{kind}.csv")
        suffix = secrets.token_hex(4)  # a generated token name never revokes one of these
        tokens = {
            role: registry.create_token(f"fuzz-{role}-{suffix}", role=role)["token"]
            for role in ROLES[1:]
        }
        return registry, create_app(registry, auth=True), tokens

    def close(self) -> None:
        for registry, _, _ in self.made.values():
            registry.close()


@pytest.fixture(scope="module")
def authed(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AuthedStores]:
    stores = AuthedStores(request, tmp_path_factory.mktemp("authed"))
    yield stores
    stores.close()


def call_as(case: Any, role: str, served: tuple[Any, dict[str, str]], live: LiveServer) -> None:
    app, tokens = served
    headers = {"Authorization": f"Bearer {tokens[role]}"} if role in tokens else {}
    case.call_and_validate(base_url=live.mount(app), headers=headers, checks=CHECKS)


@fuzzed.exclude(tag="mlflow").parametrize()
@pytest.mark.parametrize("backend", ["sqlite_dir", "postgres_s3"])
@pytest.mark.parametrize("role", ROLES)
@settings(max_examples=5, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_operation_answers_as_its_schema_says_to_each_role(
    case: Any, role: str, backend: str, authed: AuthedStores, live_server: LiveServer
) -> None:
    call_as(case, role, authed.served(backend), live_server)


# MLflow's routes are a face on the same rules and stores as the ones above: each role on
# SQLite and a directory here, an admin on PostgreSQL and S3 below (the stores' own paths are
# fuzzed on both backends above), and each MLflow test file runs the real client on both.
@fuzzed.include(tag="mlflow").parametrize()
@pytest.mark.parametrize("role", ROLES)
@settings(max_examples=5, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_mlflow_operation_answers_as_its_schema_says_to_each_role(
    case: Any, role: str, authed: AuthedStores, live_server: LiveServer
) -> None:
    call_as(case, role, authed.served("sqlite_dir"), live_server)


@schema.parametrize()
@settings(max_examples=5, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_operation_answers_an_admin_on_postgres_and_s3_with_its_boundary_cases(
    case: Any, authed: AuthedStores, live_server: LiveServer
) -> None:
    call_as(case, "admin", authed.served("postgres_s3"), live_server)
