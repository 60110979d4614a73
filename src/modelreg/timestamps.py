"""The one form of a time the registry stores and shows: fixed-width UTC with microseconds,
``2026-12-07T02:04:11.000000Z``, so that text order is time order on every database."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from modelreg.errors import InvalidInput


def now() -> str:
    """The current time as the fixed-width UTC string stored in every timestamp column."""
    return format_time(datetime.now(UTC))


def format_time(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MAX_MS = 253402300799999  # 9999-12-31T23:59:59.999Z
_WHOLE = re.compile(r"-?[0-9]+")


def to_ms(stamp: str | None) -> int | None:
    """A stored time (``2026-12-07T02:04:11.000000Z``) as milliseconds since the epoch."""
    if stamp is None:
        return None
    moment = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    return (moment - _EPOCH) // timedelta(milliseconds=1)


def check_ms(value: Any, field: str) -> int:
    """Milliseconds since the epoch (as MLflow sends times, and as the client stamps metric
    points), checked: a value that is not a whole number of milliseconds in years 1970-9999
    is refused, naming ``field``."""
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, str) and _WHOLE.fullmatch(value.strip()):
            value = int(value)
        else:
            raise InvalidInput(f"{field} must be milliseconds since the epoch, not {value!r}")
    if not 0 <= value <= MAX_MS:
        raise InvalidInput(f"{field} must be milliseconds from 1970 to 9999, not {value}")
    return int(value)


def from_ms(value: Any, field: str) -> str:
    """Milliseconds since the epoch, checked by ``check_ms``, as a stored time."""
    seconds, millis = divmod(check_ms(value, field), 1000)
    moment = datetime.fromtimestamp(seconds, UTC).replace(microsecond=millis * 1000)
    return format_time(moment)


def now_ms() -> int:
    """The current time in milliseconds since the epoch."""
    return time.time_ns() // 1_000_000
