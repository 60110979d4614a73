"""Names and references: the one parser used by the SDK, the CLI, HTTP paths and the UI.

A reference names one version:

    churn           the latest version of model "churn"
    churn/3         version 3 of "churn"
    churn@production  the version the alias "production" points at
    6f1c...-...     a version UUID
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

from modelreg.errors import InvalidInput
from modelreg.manifest import check_path

NAME_PATTERN = r"[a-z0-9][a-z0-9._-]{0,127}"
_NAME = re.compile(NAME_PATTERN)
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_NUMBER = re.compile(r"[1-9][0-9]{0,17}")


def is_uuid(text: str) -> bool:
    return _UUID.fullmatch(text) is not None


def check_name(name: str, *, kind: str = "model name") -> str:
    """Return ``name`` if it is a valid name, else raise InvalidInput naming the problem."""
    if not isinstance(name, str):
        raise InvalidInput(f"{kind} must be a string, not {type(name).__name__}")
    if not _NAME.fullmatch(name):
        hint = ""
        if name != name.lower() and _NAME.fullmatch(name.lower()):
            hint = f" (names are lowercase: {name.lower()!r})"
        raise InvalidInput(
            f"{kind} {name!r} is invalid{hint}: use 1-128 characters from a-z, 0-9, '.', '_', '-',"
            " starting with a letter or digit"
        )
    if is_uuid(name):
        raise InvalidInput(f"{kind} {name!r} is invalid: a name may not have the form of a UUID")
    return name


_NOT_IN_NAME = re.compile(r"[^a-z0-9._-]+")


def slug(text: str) -> str:
    """The name-shaped form of any text: lowercase, every run of other characters made one
    '-', no leading or trailing punctuation, at most 128 characters ("" if nothing is left)."""
    return _NOT_IN_NAME.sub("-", text.lower()).strip("-._")[:128].rstrip("-._")


def check_alias(alias: str) -> str:
    check_name(alias, kind="alias")
    if alias.isdigit():
        raise InvalidInput(f"alias {alias!r} is invalid: an alias may not be a number")
    if alias == "latest":
        raise InvalidInput("alias 'latest' is reserved: a bare model name means the latest version")
    return alias


@dataclass(frozen=True)
class Ref:
    """A parsed reference. Exactly one of ``number``, ``alias``, ``version_id`` or none is set."""

    model: str | None = None
    number: int | None = None
    alias: str | None = None
    version_id: str | None = None

    def __str__(self) -> str:
        if self.version_id is not None:
            return self.version_id
        if self.number is not None:
            return f"{self.model}/{self.number}"
        if self.alias is not None:
            return f"{self.model}@{self.alias}"
        return str(self.model)

    @property
    def is_latest(self) -> bool:
        return self.version_id is None and self.number is None and self.alias is None


def parse_ref(text: str) -> Ref:
    """Parse a reference; raise InvalidInput naming what is wrong.

    >>> parse_ref("churn/3")
    Ref(model='churn', number=3, alias=None, version_id=None)
    """
    if not isinstance(text, str):
        raise InvalidInput(f"reference must be a string, not {type(text).__name__}")
    text = text.strip()
    if not text:
        raise InvalidInput(
            "reference is empty: expected NAME, NAME/N, NAME@ALIAS or a version UUID"
        )
    if is_uuid(text.lower()):
        return Ref(version_id=str(uuid.UUID(text)))
    if "/" in text:
        name, _, number = text.partition("/")
        check_name(name)
        if not _NUMBER.fullmatch(number):
            raise InvalidInput(
                f"reference {text!r} is invalid: the version after '/' must be a positive number"
            )
        return Ref(model=name, number=int(number))
    if "@" in text:
        name, _, alias = text.partition("@")
        check_name(name)
        check_alias(alias)
        return Ref(model=name, alias=alias)
    return Ref(model=check_name(text, kind="reference"))


def check_deletion_ref(ref: str) -> Ref:
    """``ref`` parsed, when it names one version for good: ``NAME/N`` or a UUID."""
    parsed = parse_ref(ref)
    if parsed.number is None and parsed.version_id is None:
        raise InvalidInput(
            f"name the version to delete as NAME/N or by its UUID, not {ref!r}: a model name"
            " or an alias moves, and a deletion must not"
        )
    return parsed


# -- MLflow's artifact locations ---------------------------------------------------------------

RUN, LOGGED_MODEL, VERSION = "run", "logged_model", "version"  # what holds a location's files
VERSIONS = "versions"  # the root of every version's own files, by version UUID
_EXPERIMENT_ID = re.compile(r"0|[1-9][0-9]{0,17}")
RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,35}")  # an MLflow run's hex id, or a UUID
LOGGED_MODEL_ID = re.compile(r"m-[0-9a-f]{32}")


def is_owner_id(kind: str, text: str) -> bool:
    """Whether ``text`` has the form of the id of a ``kind`` (RUN, LOGGED_MODEL, VERSION)."""
    pattern = {RUN: RUN_ID, LOGGED_MODEL: LOGGED_MODEL_ID, VERSION: _UUID}[kind]
    return pattern.fullmatch(text) is not None


@dataclass(frozen=True)
class ArtifactLocation:
    """A place among the files of a run, a logged model or a version (``kind``): ``path``
    ("" for the root). A run's or logged model's files are filed under experiment
    ``experiment_id`` (None where a URI names none, as ``runs:/RUN/PATH`` and
    ``models:/m-...`` do); a version's are not, and never change.

    ``mlflow-artifacts:/2/<run id>/artifacts/<path>``,
    ``mlflow-artifacts:/2/models/<logged model id>/artifacts/<path>``,
    ``mlflow-artifacts:/versions/<version UUID>/<path>``.
    """

    experiment_id: int | None
    kind: str  # RUN, LOGGED_MODEL or VERSION
    owner_id: str
    path: str

    def __str__(self) -> str:
        if self.kind == VERSION:
            return "/".join(p for p in (VERSIONS, self.owner_id, self.path) if p)
        owner = self.owner_id if self.kind == RUN else f"models/{self.owner_id}"
        return "/".join(p for p in (str(self.experiment_id), owner, "artifacts", self.path) if p)

    @property
    def uri(self) -> str:
        """As MLflow names it: ``mlflow-artifacts:/2/<run id>/artifacts/model``."""
        return f"mlflow-artifacts:/{self}"


def parse_artifact_location(text: str, *, file: bool = False) -> ArtifactLocation:
    """Parse ``<experiment>/<run id>/artifacts[/<path>]``,
    ``<experiment>/models/<model id>/artifacts[/<path>]`` or ``versions/<version UUID>[/<path>]``;
    with ``file``, a path is required. The path is checked as a version's file paths are (no
    '..', not absolute, no empty part).

    >>> parse_artifact_location("2/49b3/artifacts/model/MLmodel")
    ArtifactLocation(experiment_id=2, kind='run', owner_id='49b3', path='model/MLmodel')
    """
    if not isinstance(text, str):
        raise InvalidInput(f"artifact path must be a string, not {type(text).__name__}")
    parts = text.split("/")
    if parts[0] == VERSIONS:
        if len(parts) < 2 or not is_owner_id(VERSION, parts[1]):
            raise InvalidInput(
                f"artifact path {text[:200]!r} is not {VERSIONS}/<version UUID>/<path>"
            )
        return ArtifactLocation(None, VERSION, parts[1], _location_path(parts[2:], file=file))
    kind = LOGGED_MODEL if len(parts) > 1 and parts[1] == "models" else RUN
    head, rest = (parts[:4], parts[4:]) if kind == LOGGED_MODEL else (parts[:3], parts[3:])
    shape_ok = (
        len(head) == (4 if kind == LOGGED_MODEL else 3)
        and _EXPERIMENT_ID.fullmatch(head[0]) is not None
        and is_owner_id(kind, head[-2])
        and head[-1] == "artifacts"
    )
    if not shape_ok:
        raise InvalidInput(
            f"artifact path {text[:200]!r} is not <experiment id>/<run id>/artifacts/<path>,"
            " <experiment id>/models/<logged model id>/artifacts/<path> nor"
            f" {VERSIONS}/<version UUID>/<path>"
        )
    return ArtifactLocation(int(head[0]), kind, head[-2], _location_path(rest, file=file))


def _location_path(parts: list[str], *, file: bool) -> str:
    path = "/".join(parts)
    if path.endswith("/") and not file:
        path = path[:-1]  # a folder may be named with its trailing slash
    return check_path(path) if path or file else ""
