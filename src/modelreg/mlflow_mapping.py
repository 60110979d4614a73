"""How MLflow's model registry maps onto modelreg's: names, stages, version sources, search
filters and pages, and the facts an MLflow model's files and its run's tags describe.

Pure: no SQL, no HTTP. The MLflow routes (``server/mlflow/registry.py``) check what a client
sends here, and the stores answer with modelreg's own records:

- a registered model is a model; its name must be a modelreg name (lowercase, see refs);
- a model version is an ordinary immutable version, made from files this server holds: a
  logged model (``models:/m-...``) or a folder of a run's artifacts (``runs:/RUN/PATH`` or
  ``mlflow-artifacts:/EXP/RUN/artifacts/PATH``); its source is kept with it, unchanged;
- the stages Staging, Production and Archived are the aliases ``staging``, ``production``
  and ``archived`` (so ``production`` keeps its promotion gates); None is no stage alias.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from modelreg.capture import clean_url
from modelreg.errors import InvalidInput, NotFound
from modelreg.manifest import check_path
from modelreg.refs import (
    LOGGED_MODEL_ID,
    ArtifactLocation,
    check_alias,
    check_name,
    is_uuid,
    parse_artifact_location,
    slug,
)
from modelreg.search_language import Token, tokenize
from modelreg.values import MAX_OFFSET

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

RUN_ID = re.compile(r"[0-9A-Za-z][0-9A-Za-z-]{0,35}")
LOGGED_MODEL = "logged_model"  # the kinds of refs.ArtifactLocation
RUN = "run"


@dataclass(frozen=True)
class Source:
    """The files a model version is made from: those of a logged model or of a run
    (``owner``), under ``folder`` ("" for all); ``experiment`` as an artifact URI named it."""

    kind: str  # LOGGED_MODEL or RUN
    owner: str
    folder: str
    experiment: int | None = None


def not_held(source: str) -> InvalidInput:
    return InvalidInput(
        f"source {source[:300]!r} names no files this server holds: a model version is made"
        " from a logged model (models:/m-...) or a folder of a run's artifacts"
        " (runs:/RUN_ID/PATH) logged to this server, whose files become the version's own."
        " To bring in a model from another MLflow server use `modelreg import`; from local"
        " files, `modelreg register`"
    )


def parse_source(source: Any, model_id: Any = None) -> Source:
    """The logged model or run folder a version's ``source`` names, checked against
    ``model_id`` when the client sends one; a source of any other kind is refused."""
    if not isinstance(source, str) or not source.strip():
        raise InvalidInput("source is required: models:/m-... or runs:/RUN_ID/PATH")
    if model_id is not None and not isinstance(model_id, str):
        raise InvalidInput(f"model_id must be text, not {model_id!r}")
    parsed = _parse_source(source)
    if model_id and (parsed.kind != LOGGED_MODEL or parsed.owner != model_id):
        raise InvalidInput(
            f"model_id {model_id[:100]!r} is not the logged model that source"
            f" {source[:300]!r} names"
        )
    return parsed


def _parse_source(source: str) -> Source:
    parts = urlsplit(source)
    if parts.query or parts.fragment or parts.netloc:
        raise not_held(source)  # another server's URI, or one that names more than a path
    path = parts.path.strip("/")
    if parts.scheme == "mlflow-artifacts":
        try:
            where = parse_artifact_location(path)
        except InvalidInput:
            raise not_held(source) from None
        return Source(where.kind, where.owner_id, where.path, where.experiment_id)
    owner, _, folder = path.partition("/")
    folder = check_path(folder) if folder else ""
    if parts.scheme == "models" and LOGGED_MODEL_ID.fullmatch(owner):
        return Source(LOGGED_MODEL, owner, folder)
    if parts.scheme == "runs" and RUN_ID.fullmatch(owner):
        return Source(RUN, owner, folder)
    raise not_held(source)


def artifact_uri(kind: str, experiment_id: int, owner: str, folder: str = "") -> str:
    """The ``mlflow-artifacts:/`` URI of a folder of a run's or logged model's files."""
    return f"mlflow-artifacts:/{ArtifactLocation(experiment_id, kind, owner, folder)}"


def logged_model_uri(experiment_id: int, model_id: str) -> str:
    """The artifact URI of a logged model's files, as MLflow names it."""
    return artifact_uri(LOGGED_MODEL, experiment_id, model_id)


# -- search filters ----------------------------------------------------------------------------

MODELS = "registered models"
VERSIONS = "model versions"
_TEXT_OPS = ("=", "!=", "LIKE", "ILIKE", "IN", "NOT IN")
_TAG_OPS = ("=", "!=", "LIKE", "ILIKE")
_NUMBER_OPS = ("=", "!=", "<", "<=", ">", ">=")
FIELDS: dict[str, dict[str, tuple[str, ...]]] = {
    MODELS: {"name": _TEXT_OPS, "tag": _TAG_OPS},
    VERSIONS: {
        "name": _TEXT_OPS,
        "run_id": _TEXT_OPS,
        "version_number": (*_NUMBER_OPS, "IN", "NOT IN"),
        "tag": _TAG_OPS,
    },
}
IS_PROMPT = "mlflow.prompt.is_prompt"
MAX_CONDITIONS = 50


@dataclass(frozen=True)
class Condition:
    """``field op value``: ``key`` names the tag for ``tag``; a list's ``value`` is a tuple."""

    field: str
    op: str
    value: str | int | tuple[str | int, ...]
    key: str | None = None

    def matches_missing_tag(self) -> bool:
        """MLflow's rule for models without the prompt tag: they are not prompts."""
        return self.key == IS_PROMPT and (
            (self.op == "=" and self.value == "false") or (self.op == "!=" and self.value == "true")
        )


def parse_filter(text: Any, kind: str) -> tuple[Condition, ...]:
    """MLflow's filter of a registry search (``name = 'm' AND tags.team LIKE 'ml%'``): the
    comparisons it joins with AND. Refused, naming what is wrong, when it does not parse or
    compares what ``kind`` (MODELS or VERSIONS) cannot be searched by."""
    if text is None or (isinstance(text, str) and not text.strip()):
        return ()
    if not isinstance(text, str):
        raise InvalidInput(f"filter must be text, not {type(text).__name__}")
    tokens = tokenize(text)
    conditions: list[Condition] = []
    at = 0
    while True:
        condition, at = _condition(tokens, at, kind, text)
        conditions.append(condition)
        if len(conditions) > MAX_CONDITIONS:
            raise InvalidInput(f"a filter may join at most {MAX_CONDITIONS} comparisons")
        if tokens[at].kind == "end":
            return tuple(conditions)
        if _word(tokens[at]) == "OR":
            raise InvalidInput(
                f"filter {text!r}: MLflow's registry search joins comparisons with AND only"
            )
        if _word(tokens[at]) != "AND":
            raise InvalidInput(
                f"filter {text!r}: expected AND or the end at column {tokens[at].column}"
            )
        at += 1


def _word(token: Token) -> str:
    return token.text.upper() if token.kind == "word" else ""


def _condition(tokens: list[Token], at: int, kind: str, text: str) -> tuple[Condition, int]:
    fields = FIELDS[kind]
    token = tokens[at]
    key: str | None = None
    if token.kind == "field":  # tags.`any key`
        prefix, key = token.value
        field = _field_name(prefix, text, fields, kind, tagged=True)
    elif token.kind == "word":
        prefix, dot, rest = token.text.partition(".")
        if dot and prefix.lower() in ("tag", "tags"):
            field, key = "tag", rest
            if not rest and tokens[at + 1].kind == "string":  # tags."any key"
                at, key = at + 1, str(tokens[at + 1].value)
            if not key:
                raise InvalidInput(f"filter {text!r}: a tag is named as tags.KEY")
        else:
            field = _field_name(token.text, text, fields, kind, tagged=False)
    else:
        raise InvalidInput(
            f"filter {text!r}: expected a field such as {', '.join(fields)} at column"
            f" {token.column}"
        )
    at += 1
    op, at = _operator(tokens, at, text)
    allowed = fields[field]
    if op not in allowed:
        raise InvalidInput(
            f"filter {text!r}: {field if field != 'tag' else 'a tag'} takes {', '.join(allowed)},"
            f" not {op}"
        )
    if op in ("IN", "NOT IN"):
        values, at = _values(tokens, at, text, field)
        return Condition(field, op, values, key), at
    value, at = _value(tokens, at, text, field)
    return Condition(field, op, value, key), at


def _field_name(
    name: str, text: str, fields: Mapping[str, tuple[str, ...]], kind: str, *, tagged: bool
) -> str:
    lowered = name.lower()
    if tagged and lowered in ("tag", "tags"):
        return "tag"
    for prefix in ("attributes.", "attribute.", "attr."):
        if lowered.startswith(prefix):
            lowered = lowered[len(prefix) :]
    if lowered in fields and lowered != "tag":
        return lowered
    searchable = ", ".join(f for f in fields if f != "tag")
    raise InvalidInput(
        f"filter {text!r}: {kind} are searched by {searchable} and tags.KEY, not by {name!r}"
    )


def _operator(tokens: list[Token], at: int, text: str) -> tuple[str, int]:
    token = tokens[at]
    if token.kind == "op":
        return {"==": "=", "<>": "!="}.get(token.text, token.text), at + 1
    word = _word(token)
    if word in ("LIKE", "ILIKE", "IN"):
        return word, at + 1
    if word == "NOT" and _word(tokens[at + 1]) == "IN":
        return "NOT IN", at + 2
    raise InvalidInput(
        f"filter {text!r}: expected a comparison (=, !=, <, >, LIKE, ILIKE, IN) at column"
        f" {token.column}"
    )


def _value(tokens: list[Token], at: int, text: str, field: str) -> tuple[str | int, int]:
    token = tokens[at]
    if field == "version_number":
        number = token.value if token.kind == "number" else None
        if token.kind == "string" and str(token.value).strip().isdigit():
            number = int(str(token.value))
        if not isinstance(number, int) or isinstance(number, bool):
            raise InvalidInput(
                f"filter {text!r}: version_number is compared with a whole number, at column"
                f" {token.column}"
            )
        return number, at + 1
    if token.kind == "string":
        return str(token.value), at + 1
    raise InvalidInput(
        f"filter {text!r}: {field if field != 'tag' else 'a tag'} is compared with a quoted"
        f" string, at column {token.column}"
    )


def _values(
    tokens: list[Token], at: int, text: str, field: str
) -> tuple[tuple[str | int, ...], int]:
    if tokens[at].kind != "(":
        raise InvalidInput(
            f"filter {text!r}: IN takes a list in parentheses, at column {tokens[at].column}"
        )
    values: list[str | int] = []
    at += 1
    while True:
        value, at = _value(tokens, at, text, field)
        values.append(value)
        if tokens[at].kind == ")":
            return tuple(values), at + 1
        if tokens[at].kind != ",":
            raise InvalidInput(
                f"filter {text!r}: expected ',' or ')' at column {tokens[at].column}"
            )
        at += 1


# -- ordering and pages ------------------------------------------------------------------------

ORDER_KEYS: dict[str, dict[str, str]] = {
    MODELS: {
        "name": "name",
        "timestamp": "creation_timestamp",
        "creation_timestamp": "creation_timestamp",
        "last_updated_timestamp": "last_updated_timestamp",
    },
    VERSIONS: {
        "name": "name",
        "version_number": "version_number",
        "creation_timestamp": "creation_timestamp",
        "last_updated_timestamp": "last_updated_timestamp",
    },
}


@dataclass(frozen=True)
class Order:
    key: str
    descending: bool


def parse_order_by(items: Sequence[Any] | None, kind: str) -> tuple[Order, ...]:
    """MLflow's ``order_by`` clauses (``["name ASC", "version_number DESC"]``)."""
    keys = ORDER_KEYS[kind]
    found: list[Order] = []
    for item in items or ():
        if not isinstance(item, str) or not item.strip():
            raise InvalidInput(f"order_by clause {item!r} is empty: use KEY [ASC|DESC]")
        words = item.split()
        key = words[0].strip("`").lower()
        for prefix in ("attributes.", "attribute.", "attr."):
            key = key.removeprefix(prefix)
        direction = words[1].upper() if len(words) == 2 else "ASC"
        if len(words) > 2 or key not in keys or direction not in ("ASC", "DESC"):
            raise InvalidInput(
                f"order_by clause {item!r} is invalid: {kind} are ordered by"
                f" {', '.join(sorted(set(keys.values())))}, each with ASC or DESC"
            )
        found.append(Order(keys[key], direction == "DESC"))
    return tuple(found)


MAX_RESULTS = {MODELS: 1000, VERSIONS: 10_000}
DEFAULT_RESULTS = {MODELS: 100, VERSIONS: 10_000}


def check_max_results(value: Any, kind: str) -> int:
    if value is None:
        return DEFAULT_RESULTS[kind]
    limit = MAX_RESULTS[kind]
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= limit:
        raise InvalidInput(
            f"max_results must be a whole number from 1 to {limit} for {kind}, not {value!r}"
        )
    return value


def page_token(offset: int) -> str:
    """The token of the page that starts ``offset`` results in."""
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


def page_offset(token: Any) -> int:
    """Where the page a ``page_token`` names starts (0 without one)."""
    if token is None or token == "":
        return 0
    try:
        data = json.loads(base64.urlsafe_b64decode(str(token).encode()))
        offset = data["offset"]
    except (ValueError, TypeError, KeyError, binascii.Error, UnicodeError):
        offset = None
    if isinstance(offset, bool) or not isinstance(offset, int) or not 0 <= offset <= MAX_OFFSET:
        raise InvalidInput(
            "page_token is invalid: pass the next_page_token of the page before, unchanged"
        )
    return offset


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
        "mlflow_model_id": model_id,
    }
    return {key: value for key, value in code.items() if value is not None}
