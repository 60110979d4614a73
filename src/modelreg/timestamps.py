"""The one form of a time the registry stores and shows: fixed-width UTC with microseconds,
``2026-12-07T02:04:11.000000Z``, so that text order is time order on every database."""

from __future__ import annotations

from datetime import UTC, datetime


def now() -> str:
    """The current time as the fixed-width UTC string stored in every timestamp column."""
    return format_time(datetime.now(UTC))


def format_time(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
