"""The server against its own OpenAPI schema, fuzzed with schemathesis.

Every operation of the schema gets generated requests, valid and invalid, sent over HTTP to a
real server (uvicorn, ``live_server``) whose registry holds a few models, versions, an alias,
a dataset and an evaluation, so that some references resolve. No answer may be a 5xx; each
must match what the schema says (status code, content type, headers, body); what the schema
calls invalid must be refused with a 4xx, and a method a route lacks with a 405 naming the
allowed ones.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
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

from modelreg import wire
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


# Loaded when the module is collected, so that each operation is a test of its own; the
# requests go to the live server of each test (base_url). schemathesis.pytest.from_fixture
# would load it from the live server instead, but fails on pytest 9 ('Function' object has no
# attribute '_nodeid', schemathesis 4.32.5).
SCHEMA = app_schema()
schema = schemathesis.openapi.from_dict(SCHEMA)


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
