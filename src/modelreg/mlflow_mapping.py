"""How MLflow's model registry maps onto modelreg's: names, stages, version sources, and the
facts an MLflow model's files and its run's tags describe. (Its searches are parsed by
``mlflow_filter``, with every other MLflow search.)

Pure: no SQL, no HTTP. The MLflow routes (``server/mlflow/registry.py``) check what a client
sends here, and the stores answer with modelreg's own records:

- a registered model is a model; its name must be a modelreg name (lowercase, see refs);
- a model version is an ordinary immutable version, made from files this server holds: a
  logged model (``models:/m-...``), a folder of a run's artifacts (``runs:/RUN/PATH`` or
  ``mlflow-artifacts:/EXP/RUN/artifacts/PATH``) or another version's files
  (``mlflow-artifacts:/versions/UUID``, where MLflow's client loads a version from); its
  source is kept with it, unchanged;
- the stages Staging, Production and Archived are the aliases ``staging``, ``production``
  and ``archived`` (so ``production`` keeps its promotion gates); None is no stage alias.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

from modelreg.capture import clean_url
from modelreg.errors import InvalidInput, NotFound
from modelreg.manifest import check_path
from modelreg.refs import (
    LOGGED_MODEL,
    RUN,
    ArtifactLocation,
    check_alias,
    check_name,
    is_owner_id,
    is_uuid,
    parse_artifact_location,
    slug,
)

# -- names -------------------------------------------------------------------------------------

_RULE = (
    "modelreg names are 1-128 characters from a-z, 0-9, '.', '_', '-', starting with a letter"
    " or digit (lowercase: a name is part of every reference, NAME/N and NAME@ALIAS)"
)


def suggested_name(name: str) -> str | None:
    """The modelreg name closest to ``name`` (its lowercase or slug form), if there is one."""
    for candidate in (name.lower(), slug(name)):
        try:
            return check_name(candidate)
        except InvalidInput:
            continue
    return None


def check_model_name(name: Any, *, field: str = "name") -> str:
    """A registered model's name as MLflow sends it, refused unless it is a modelreg name;
    the refusal states modelreg's rule and the name to use instead."""
    if not isinstance(name, str) or not name:
        raise InvalidInput(f"{field} is required: the registered model's name")
    try:
        return check_name(name)
    except InvalidInput:
        pass
    if is_uuid(name.lower()):
        raise InvalidInput(
            f"registered model name {name!r} is not a modelreg name: a name may not have the"
            " form of a UUID (a UUID names a version)"
        )
    instead = suggested_name(name)
    raise InvalidInput(
        f"registered model name {name!r} is not a modelreg name: {_RULE}"
        + (f"; use {instead!r}" if instead else "")
    )


def lookup_name(name: Any) -> str:
    """A name to look a registered model up by: one that cannot be a modelreg name is not
    found, with the rule and the name it may have been registered under."""
    if not isinstance(name, str) or not name:
        raise InvalidInput("name is required: the registered model's name")
    try:
        return check_name(name)
    except InvalidInput:
        instead = suggested_name(name)
        raise NotFound(
            f"registered model {name!r} not found: {_RULE}"
            + (f"; did you mean {instead!r}?" if instead else "")
        ) from None


def lookup_alias(alias: Any) -> str:
    """An alias to look a version up by; one that cannot be a modelreg alias is not found."""
    if not isinstance(alias, str) or not alias:
        raise InvalidInput("alias is required")
    try:
        return check_alias(alias)
    except InvalidInput as exc:
        raise NotFound(f"alias {alias!r} not found: {exc.message}") from None


_NUMBER = re.compile(r"[1-9][0-9]{0,9}")


def version_number(version: Any) -> int:
    """MLflow's version (a string such as ``"3"``) as a number."""
    text = str(version).strip() if isinstance(version, (str, int)) else ""
    if isinstance(version, bool) or not _NUMBER.fullmatch(text) or int(text) > 2**31 - 1:
        raise InvalidInput(f"version must be a version number such as '3', not {version!r}")
    return int(text)


# -- stages ------------------------------------------------------------------------------------

NO_STAGE = "None"
STAGE_ALIASES = {"Staging": "staging", "Production": "production", "Archived": "archived"}
STAGES = (NO_STAGE, *STAGE_ALIASES)
ACTIVE_STAGES = ("Staging", "Production")  # those whose holders archive_existing_versions moves
_BY_LOWER = {stage.lower(): stage for stage in STAGES}


def canonical_stage(stage: Any) -> str:
    """A stage as MLflow spells it (``production`` -> ``Production``); others are refused."""
    found = _BY_LOWER.get(stage.strip().lower()) if isinstance(stage, str) else None
    if found is None:
        raise InvalidInput(
            f"stage {stage!r} is invalid: use one of {', '.join(STAGES)} (modelreg keeps"
            " Staging, Production and Archived as the aliases staging, production, archived)"
        )
    return found


def stage_of(aliases: Iterable[str]) -> str:
    """The stage a version is in, from its aliases: the highest stage alias it holds."""
    held = set(aliases)
    for stage in ("Production", "Staging", "Archived"):
        if STAGE_ALIASES[stage] in held:
            return stage
    return NO_STAGE


# -- sources -----------------------------------------------------------------------------------

_SCHEMES = {"runs": RUN, "models": LOGGED_MODEL}


def not_held(source: str) -> InvalidInput:
    return InvalidInput(
        f"source {source[:300]!r} names no files this server holds: a model version is made"
        " from a logged model (models:/m-...) or a folder of a run's artifacts"
        " (runs:/RUN_ID/PATH) logged to this server, whose files become the version's own."
        " To bring in a model from another MLflow server use `modelreg import`; from local"
        " files, `modelreg register`"
    )


def parse_source(source: Any, model_id: Any = None) -> ArtifactLocation:
    """The files a version's ``source`` names (a logged model, a run's folder, or a version's
    files; ``experiment_id`` only where the URI names one), checked against ``model_id`` when
    the client sends one; a source of any other kind is refused."""
    if not isinstance(source, str) or not source.strip():
        raise InvalidInput("source is required: models:/m-... or runs:/RUN_ID/PATH")
    if model_id is not None and not isinstance(model_id, str):
        raise InvalidInput(f"model_id must be text, not {model_id!r}")
    parsed = _parse_source(source)
    if model_id and (parsed.kind != LOGGED_MODEL or parsed.owner_id != model_id):
        raise InvalidInput(
            f"model_id {model_id[:100]!r} is not the logged model that source"
            f" {source[:300]!r} names"
        )
    return parsed


def _parse_source(source: str) -> ArtifactLocation:
    parts = urlsplit(source)
    if parts.query or parts.fragment or parts.netloc:
        raise not_held(source)  # another server's URI, or one that names more than a path
    path = parts.path.strip("/")
    if parts.scheme == "mlflow-artifacts":
        try:
            return parse_artifact_location(path)
        except InvalidInput:
            raise not_held(source) from None
    owner, _, folder = path.partition("/")
    kind = _SCHEMES.get(parts.scheme)
    if kind is None or not is_owner_id(kind, owner):
        raise not_held(source)
    return ArtifactLocation(None, kind, owner, check_path(folder) if folder else "")


# -- what an MLflow model's files and its run's tags describe ------------------------------------

ENVIRONMENT_FILES = ("MLmodel", "python_env.yaml", "requirements.txt")
MAX_ENVIRONMENT_FILE = 1 << 20  # larger ones are not read: they describe no environment
_PIN = re.compile(r"([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?\s*==\s*([^\s;#]+)")


def _scalar(text: str, pattern: str) -> str | None:
    found = re.search(pattern, text, re.MULTILINE)
    return found.group(1).strip().strip("'\"") if found else None


def _flavors(mlmodel: str) -> list[str]:
    """The flavor names of an MLmodel file: the keys one level under ``flavors:``."""
    names: list[str] = []
    inside = False
    for line in mlmodel.splitlines():
        if line.startswith("flavors:"):
            inside = True
        elif inside and line and not line[0].isspace():
            break
        elif inside and (found := re.fullmatch(r"  ([A-Za-z0-9_.-]+):\s*", line)):
            names.append(found.group(1))
    return names


def _list_under(text: str, key: str) -> list[str]:
    """The items of a top-level YAML list (``key:`` then ``- item`` lines)."""
    items: list[str] = []
    inside = False
    for line in text.splitlines():
        if line.startswith(f"{key}:"):
            inside = True
        elif inside and line.startswith("- "):
            items.append(line[2:].strip().strip("'\""))
        elif inside and line.strip():
            break
    return items


def environment_facts(texts: Mapping[str, str]) -> dict[str, Any] | None:
    """The environment an MLflow model's files describe (``MLmodel``, ``python_env.yaml``,
    ``requirements.txt``, by path in the model's folder): Python, pinned packages, the
    requirements as written, MLflow's version and the flavors. None without those files."""
    described = [name for name in ENVIRONMENT_FILES if name in texts]
    if not described:
        return None
    mlmodel = texts.get("MLmodel", "")
    python_env = texts.get("python_env.yaml", "")
    requirements = [
        line.strip()
        for line in texts.get("requirements.txt", "").splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    packages: dict[str, str] = {}
    for line in requirements:
        if found := _PIN.fullmatch(line.split(";")[0].strip()):
            packages[re.sub(r"[-_.]+", "-", found.group(1)).lower()] = found.group(2)
    facts: dict[str, Any] = {
        "python": _scalar(python_env, r"^python:\s*(\S+)")
        or _scalar(mlmodel, r"^\s+python_version:\s*(\S+)"),
        "packages": packages,
        "requirements": requirements,
        "build_dependencies": _list_under(python_env, "build_dependencies"),
        "mlflow_version": _scalar(mlmodel, r"^mlflow_version:\s*(\S+)"),
        "flavors": _flavors(mlmodel),
        "described_by": described,
    }
    return facts


def code_facts(run_tags: Mapping[str, str], *, source: str, model_id: str | None) -> dict[str, Any]:
    """A version's code facts from its run's ``mlflow.source.*`` tags (repository, commit,
    branch, entry point), with the MLflow source it was made from, kept unchanged."""
    repository = run_tags.get("mlflow.source.git.repoURL") or run_tags.get("mlflow.gitRepoURL")
    code: dict[str, Any] = {
        "repository": clean_url(repository) if repository else None,
        "commit": run_tags.get("mlflow.source.git.commit"),
        "branch": run_tags.get("mlflow.source.git.branch"),
        "entry_point": run_tags.get("mlflow.source.name"),
        "source_type": run_tags.get("mlflow.source.type"),
        "mlflow_source": source,
        MODEL_ID_FACT: model_id,
    }
    return {key: value for key, value in code.items() if value is not None}


MODEL_ID_FACT = "mlflow_model_id"


def logged_model_of(code: Mapping[str, Any]) -> str | None:
    """The logged model a version's code facts say it was registered from, if any."""
    found = code.get(MODEL_ID_FACT)
    return found if isinstance(found, str) and is_owner_id(LOGGED_MODEL, found) else None
