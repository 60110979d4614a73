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
