"""Checks for the small values a caller hands over: params, metrics, tags, descriptions.

Limits are generous but finite, so that one bad call cannot bloat the database, and each
refusal names the key and the limit.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Mapping
from typing import Any

from modelreg.errors import InvalidInput

MAX_KEY = 250
MAX_PARAM_VALUE = 6000
MAX_TAG_VALUE = 5000
MAX_RUN_TAG_VALUE = 8000  # a run's tags, as MLflow takes them
MAX_EXPERIMENT_TAG_VALUE = 20_000  # an experiment's tags, as MLflow takes them
MAX_DESCRIPTION = 20_000
MAX_ENTRIES = 1000
KEY_PATTERN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-/ ]{0,249}")


@functools.lru_cache(maxsize=16384)
def _is_key(key: str) -> bool:
    """Whether text is a valid key; remembered, as a run logs the same keys at every step."""
    return KEY_PATTERN.fullmatch(key) is not None and key == key.strip()


def check_key(key: Any, *, kind: str) -> str:
    if not isinstance(key, str):
        raise InvalidInput(f"{kind} key must be a string, not {type(key).__name__}")
    if not _is_key(key):
        raise InvalidInput(
            f"{kind} key {key!r} is invalid: use 1-{MAX_KEY} characters from letters, digits,"
            " '_', '.', '-', '/' and inner spaces"
        )
    return key


def _entries(values: Mapping[str, Any] | None, kind: str) -> Mapping[str, Any]:
    if values is None:
        return {}
    if not isinstance(values, Mapping):
        raise InvalidInput(f"{kind}s must be a mapping of key to value")
    if len(values) > MAX_ENTRIES:
        raise InvalidInput(f"at most {MAX_ENTRIES} {kind}s per version, not {len(values)}")
    return values


def param_text(value: Any) -> str:
    """Params are stored as text (numbers are also indexed as numbers for search)."""
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError):
        raise InvalidInput(
            f"value {value!r} is not text, a number, a bool, None or a list or mapping of them"
        ) from None


def param_number(text: str) -> float | None:
    try:
        number = float(text)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def check_params(params: Mapping[str, Any] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in _entries(params, "param").items():
        text = param_text(value)
        if len(text) > MAX_PARAM_VALUE:
            raise InvalidInput(
                f"param {key!r} is {len(text)} characters long; the limit is {MAX_PARAM_VALUE}"
            )
        if "\x00" in text:
            raise InvalidInput(f"param {key!r} contains a NUL character")
        out[check_key(key, kind="param")] = text
    return out


def check_metric(key: Any, value: Any) -> float:
    check_key(key, kind="metric")
    if isinstance(value, bool):
        raise InvalidInput(f"metric {key!r} must be a number, not {value!r}")
    if not isinstance(value, (int, float)):
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise InvalidInput(f"metric {key!r} must be a number, not {value!r}") from None
    number = float(value)
    if not math.isfinite(number):
        raise InvalidInput(f"metric {key!r} must be a finite number, not {number}")
    return number


MAX_STEP = 2**31 - 1  # a metric point's step: a 32-bit integer column on every backend


def check_step(key: str, step: Any) -> int:
    """A metric point's step: a whole number from 0 to MAX_STEP."""
    if isinstance(step, bool) or not isinstance(step, int):
        raise InvalidInput(f"metric {key!r}: step must be a non-negative integer, not {step!r}")
    if not 0 <= step <= MAX_STEP:
        raise InvalidInput(f"metric {key!r}: step must be from 0 to {MAX_STEP}, not {step}")
    return int(step)


def check_metrics(metrics: Mapping[str, Any] | None) -> dict[str, float]:
    return {key: check_metric(key, value) for key, value in _entries(metrics, "metric").items()}


def check_tag(key: Any, value: Any, *, limit: int = MAX_TAG_VALUE) -> tuple[str, str]:
    check_key(key, kind="tag")
    if not isinstance(value, str):
        value = param_text(value)
    if len(value) > limit:
        raise InvalidInput(f"tag {key!r} is {len(value)} characters long; the limit is {limit}")
    if "\x00" in value:
        raise InvalidInput(f"tag {key!r} contains a NUL character")
    return key, value


def check_tags(tags: Mapping[str, Any] | None) -> dict[str, str]:
    return dict(check_tag(key, value) for key, value in _entries(tags, "tag").items())


def check_text(value: Any, *, what: str, limit: int) -> str:
    """Text of 1 to ``limit`` characters without NUL, such as a name an MLflow client gives
    an experiment or a run; the refusal names ``what``."""
    if not isinstance(value, str):
        raise InvalidInput(f"{what} must be text, not {type(value).__name__}")
    if not value.strip():
        raise InvalidInput(f"{what} must not be empty")
    if len(value) > limit:
        raise InvalidInput(f"{what} is {len(value)} characters long; the limit is {limit}")
    if "\x00" in value:
        raise InvalidInput(f"{what} contains a NUL character")
    return value


def check_description(text: Any) -> str:
    if text is None:
        return ""
    if not isinstance(text, str):
        raise InvalidInput(f"description must be text, not {type(text).__name__}")
    if len(text) > MAX_DESCRIPTION:
        raise InvalidInput(
            f"description is {len(text)} characters long; the limit is {MAX_DESCRIPTION}"
        )
    if "\x00" in text:
        raise InvalidInput("description contains a NUL character")
    return text


def parse_assignment(text: str, *, kind: str) -> tuple[str, str]:
    """Split a CLI ``K=V`` option; the error names the option that lacks its '='."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise InvalidInput(f"--{kind} {text!r} must have the form KEY=VALUE")
    return key, value


MAX_PAGE = 10_000
MAX_OFFSET = 1_000_000_000  # with the page, within a 32-bit integer on every backend


def check_page(limit: Any, offset: Any) -> tuple[int | None, int]:
    """A listing's page: ``limit`` between 1 and MAX_PAGE (or None), ``offset`` 0 or more."""
    if limit is not None and (
        isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE
    ):
        raise InvalidInput(f"limit must be a whole number between 1 and {MAX_PAGE}, not {limit!r}")
    if isinstance(offset, bool) or not isinstance(offset, int) or not 0 <= offset <= MAX_OFFSET:
        raise InvalidInput(
            f"offset must be a whole number from 0 to {MAX_OFFSET:,}, not {offset!r}"
        )
    return limit, offset


MAX_NUMBER = 2**31 - 1  # a version number is a 32-bit integer column on every backend


def check_before(before: Any) -> int | None:
    """A versions listing's cursor: a version number (1 to 2**31 - 1), or None."""
    if before is not None and (
        isinstance(before, bool) or not isinstance(before, int) or not 1 <= before <= MAX_NUMBER
    ):
        raise InvalidInput(f"before must be a version number (1 or more), not {before!r}")
    return before


MAX_GRACE = 10**9  # seconds, about 31 years: gc's grace period, embedded and over HTTP alike


def check_grace(seconds: Any) -> float:
    """gc's grace period: a finite number of seconds from 0 to MAX_GRACE."""
    if (
        isinstance(seconds, bool)
        or not isinstance(seconds, (int, float))
        or not math.isfinite(seconds)
    ):
        raise InvalidInput(f"grace period must be a number of seconds, not {seconds!r}")
    if not 0 <= seconds <= MAX_GRACE:
        raise InvalidInput(
            f"grace period must be 0 to {MAX_GRACE:,} seconds (about 31 years), not {seconds}"
        )
    return float(seconds)


MAX_REASON = 2000


def check_reason(
    reason: Any, *, what: str = "a retirement", example: str = "the erasure request it answers"
) -> str:
    """The reason stripped, at most MAX_REASON characters of text (tabs and newlines but no
    other control character); ``what`` needs one."""
    if reason is not None and not isinstance(reason, str):
        raise InvalidInput(f"a reason is text, not {type(reason).__name__}")
    if not isinstance(reason, str) or not reason.strip():
        raise InvalidInput(f"{what} needs a reason (e.g. {example})")
    text = reason.strip()
    if len(text) > MAX_REASON:
        raise InvalidInput(f"reason is {len(text)} characters long; the limit is {MAX_REASON}")
    bad = next((c for c in text if (c < " " and c not in "\t\n") or c == "\x7f"), None)
    if bad is not None:
        raise InvalidInput(f"reason contains the control character {bad!r}")
    return text


def check_deletion_reason(reason: Any) -> str:
    return check_reason(reason, what="deleting a version", example="the erasure request it answers")
