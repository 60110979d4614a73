"""The rules that map MLflow's model registry onto modelreg's, checked without a server: its
filter grammar and page tokens, the sources a version may be made from, stages as aliases and
the environment an MLflow model describes. The same rules driven by MLflow's client are in
test_mlflow_registry.py."""

from __future__ import annotations

import re
import uuid

import pytest

from mlflow_kit import FILES
from modelreg import mlflow_mapping as mapping
from modelreg import registry_search
from modelreg.errors import InvalidInput
from modelreg.mlflow_filter import (
    MODEL_VERSIONS,
    REGISTERED_MODELS,
    Clause,
    OrderKey,
    page_offset,
    page_token,
    parse_filter,
    parse_order_by,
)
from modelreg.refs import ArtifactLocation


def test_registry_filters_are_mlflows_grammar_joined_by_and() -> None:
    """The registry's searches are parsed by the one MLflow filter parser, with their own
    grammars: models by name and tags, versions also by run id and number."""
    parsed = parse_filter(
        "name='m2' AND tag.`mlflow.prompt.is_prompt` != 'true' and tags.\"my key\" ILIKE 'a%'",
        REGISTERED_MODELS,
    )
    assert parsed == (
        Clause("attribute", "name", "=", "m2"),
        Clause("tag", "mlflow.prompt.is_prompt", "!=", "true"),
        Clause("tag", "my key", "ILIKE", "a%"),
    )
    assert registry_search.matches_missing_tag(parsed[1])  # a model without it is no prompt
    assert not registry_search.matches_missing_tag(parsed[2])
    versions = parse_filter(
        "run_id IN ('a', 'b') AND version_number >= 2 AND attributes.name != \"x\""
        " AND version_number = '3' AND version_number NOT IN (1, '4') AND name LIKE 'c%'",
        MODEL_VERSIONS,
    )
    assert versions == (
        Clause("attribute", "run_id", "IN", ("a", "b")),
        Clause("attribute", "version_number", ">=", 2),
        Clause("attribute", "name", "!=", "x"),
        Clause("attribute", "version_number", "=", 3),
        Clause("attribute", "version_number", "NOT IN", (1, 4)),
        Clause("attribute", "name", "LIKE", "c%"),
    )
    assert parse_filter("  ", MODEL_VERSIONS) == ()
    assert parse_order_by(["name ASC", "attributes.`timestamp` DESC"], REGISTERED_MODELS) == (
        OrderKey("attribute", "name"),
        OrderKey("attribute", "creation_timestamp", ascending=False),
    )
    assert parse_order_by(["attributes.version_number DESC"], MODEL_VERSIONS) == (
        OrderKey("attribute", "version_number", ascending=False),
    )
    for bad, words in [
        ("name = 'a' OR name = 'b'", "AND only"),
        ("run_id = 'a'", "searched by name and tags.KEY"),  # not a field of models
        ("name < 'a'", "name takes =, !=, LIKE, ILIKE, IN, NOT IN"),
        ("tags.team IN ('a')", "tags.team takes =, !=, LIKE, ILIKE, not IN"),
        ("tags.team IS NULL", "tags.team takes =, !=, LIKE, ILIKE, not IS NULL"),
        ("metrics.acc > 1", "unknown entity 'metrics'"),
        ("name = 'a' AND", "expected a field"),
        ("name = 'unclosed", "closing '"),
        (" AND ".join(["name = 'a'"] * 51), "at most 50 comparisons"),
    ]:
        with pytest.raises(InvalidInput, match=re.escape(words)):
            parse_filter(bad, REGISTERED_MODELS)
    for bad, words in [
        ("version_number = 2.5", "version_number is compared with a whole number"),
        ("version_number = 'two'", "version_number is compared with a whole number"),
        ("version_number IN ('1', 'x')", "version_number is compared with a whole number"),
        ("source = 'x'", "searched by name, run_id, version_number and tags.KEY"),
    ]:
        with pytest.raises(InvalidInput, match=re.escape(words)):
            parse_filter(bad, MODEL_VERSIONS)
    for order, words in [
        (["tags.team"], "unknown entity 'tags'"),
        (["size"], "ordered by creation_timestamp, last_updated_timestamp, name"),
        (["name sideways"], "ASC, DESC"),
    ]:
        with pytest.raises(InvalidInput, match=re.escape(words)):
            parse_order_by(order, REGISTERED_MODELS)


def test_sources_name_a_logged_model_a_run_folder_or_a_version_and_nothing_else() -> None:
    model_id = "m-" + "0" * 32
    version_id = str(uuid.uuid4())
    assert mapping.parse_source(f"models:/{model_id}", model_id) == ArtifactLocation(
        None, "logged_model", model_id, ""
    )
    assert mapping.parse_source("runs:/abc123/model/sub") == ArtifactLocation(
        None, "run", "abc123", "model/sub"
    )
    assert mapping.parse_source("mlflow-artifacts:/4/abc123/artifacts/model") == (
        ArtifactLocation(4, "run", "abc123", "model")
    )
    assert mapping.parse_source(f"mlflow-artifacts:/4/models/{model_id}/artifacts") == (
        ArtifactLocation(4, "logged_model", model_id, "")
    )
    assert mapping.parse_source(f"mlflow-artifacts:/versions/{version_id}") == (
        ArtifactLocation(None, "version", version_id, "")
    )
    foreign_sources = [
        "s3://b/k", "file:///m", "gs://b/k", "models:/churn/3", "hdfs:/m", "runs://host/abc/m",
        "mlflow-artifacts://host/4/abc/artifacts/m", "mlflow-artifacts:/versions/3",
    ]  # fmt: skip
    for foreign in foreign_sources:
        with pytest.raises(InvalidInput, match="modelreg import"):
            mapping.parse_source(foreign)
    with pytest.raises(InvalidInput, match="model_id"):
        mapping.parse_source("runs:/abc123/model", model_id)


def test_stages_map_to_aliases_and_back() -> None:
    assert mapping.canonical_stage("production") == "Production"
    assert mapping.canonical_stage("NONE") == "None"
    with pytest.raises(InvalidInput, match="Staging, Production, Archived"):
        mapping.canonical_stage("Live")
    assert mapping.stage_of(["champion", "staging", "production"]) == "Production"
    assert mapping.stage_of(["archived"]) == "Archived"
    assert mapping.stage_of(["champion"]) == "None"


def test_the_environment_an_mlflow_model_describes() -> None:
    texts = {name: data.decode() for name, data in FILES.items() if name != "model.skops"}
    facts = mapping.environment_facts(texts)
    assert facts == {
        "python": "3.11.7",
        "packages": {"mlflow": "3.17.2", "scikit-learn": "1.9.1"},
        "requirements": ["mlflow==3.17.2", "scikit-learn==1.9.1", "cloudpickle"],
        "build_dependencies": ["pip==23.2.1"],
        "mlflow_version": "3.17.2",
        "flavors": ["python_function", "sklearn"],
        "described_by": ["MLmodel", "python_env.yaml", "requirements.txt"],
    }
    assert mapping.environment_facts({"model.bin": ""}) is None


def test_a_page_token_names_where_the_next_page_starts() -> None:
    assert page_offset(page_token(200)) == 200
    assert page_offset(None) == page_offset("") == 0
    for bad in ("not-a-token", page_token(-1)):
        with pytest.raises(InvalidInput, match="page_token"):
            page_offset(bad)
