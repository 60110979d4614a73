"""Delivering webhooks: a pass claims each webhook's next events, POSTs them signed to the
address the guard checked (``outbound``), and records every attempt; failures are retried
with exponential backoff until ``MAX_ATTEMPTS``. httpx is imported only here, when a pass
runs: ``import modelreg`` and the CLI's start-up stay light."""

from __future__ import annotations

import functools
import json
import uuid
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from modelreg import schema
from modelreg.db import Database, format_time
from modelreg.errors import InvalidInput
from modelreg.outbound import AllowList, allow_list, allowed_hosts_from_env, check_url, shown_url
from modelreg.webhooks import delivery_id, matches, sign

if TYPE_CHECKING:
    import httpx

MAX_ATTEMPTS = 8
# 30 s, 1, 2, 4, 8, 16, 32 min between the 8 attempts: about an hour, long enough to ride out a
# receiver's restart or deploy (2**attempt seconds would give up after four minutes).
BACKOFF_BASE_SECONDS = 30.0
BACKOFF_CAP_SECONDS = 3600.0
TIMEOUT_SECONDS = 10.0
# Longer than one request can take (connect, write and read each time out after 10 s), so that
# a second delivery worker never sends the event a live worker is sending.
LEASE_SECONDS = 120.0
MAX_EVENTS_PER_PASS = 1000
DELIVERED, RETRYING, FAILED = "delivered", "retrying", "failed"

_hooks = schema.webhooks
_log = schema.webhook_deliveries
_events = schema.audit_events


# -- delivering ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Job:
    webhook_id: str
    url: str
    secret: str
    event: dict[str, Any]
    attempt: int
    lease_id: str


@dataclass(frozen=True)
class _Outcome:
    ok: bool
    status_code: int | None = None
    error: str | None = None


def backoff_seconds(attempt: int) -> float:
    """The wait after failed attempt ``attempt`` (1-based) before the next one."""
    return min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2.0 ** (attempt - 1))


def deliver_pending(
    db: Database,
    *,
    now: Callable[[], datetime] | None = None,
    client: httpx.Client | None = None,
    allowed_hosts: AllowList | Collection[str] | None = None,
) -> dict[str, int]:
    """One delivery pass over every active webhook; returns counts by outcome.

    Takes the Database, not a connection: each event is claimed, sent and recorded in
    transactions of their own, so no transaction stays open during a request. ``now`` and
    ``client`` are for tests and embedding; a given client should not keep connections alive
    (a pooled connection to one address could serve a second host name without checking its
    certificate). Allowed hosts default to ``$MODELREG_WEBHOOK_ALLOW_HOSTS``.
    """
    import httpx

    clock = now or (lambda: datetime.now(UTC))
    allow = allowed_hosts_from_env() if allowed_hosts is None else allow_list(allowed_hosts)
    counts = {"webhooks": 0, DELIVERED: 0, RETRYING: 0, FAILED: 0, "waiting": 0}
    hook_ids = db.read(
        lambda conn: list(
            conn.execute(
                sa.select(_hooks.c.id).where(_hooks.c.active.is_(True)).order_by(_hooks.c.name)
            ).scalars()
        )
    )
    own = client is None
    http = client or httpx.Client(
        follow_redirects=False,
        timeout=TIMEOUT_SECONDS,
        trust_env=False,  # no proxies or .netrc credentials from the environment
        limits=httpx.Limits(max_keepalive_connections=0),
    )
    try:
        for hook_id in hook_ids:
            counts["webhooks"] += 1
            for _ in range(MAX_EVENTS_PER_PASS):
                job = db.write(functools.partial(_claim, hook_id=hook_id, moment=clock()))
                if isinstance(job, str):
                    if job == "backoff":
                        counts["waiting"] += 1
                    break
                outcome = _send(http, job, allow, clock())
                status = db.write(
                    functools.partial(_record, job=job, outcome=outcome, moment=clock())
                )
                counts[status] += 1
                if status == RETRYING:
                    break
    finally:
        if own:
            http.close()
    return counts


def _claim(conn: Connection, hook_id: str, moment: datetime) -> _Job | str:
    """Lease the webhook's next due event, or say why there is none (idle, backoff, busy)."""
    stamp = format_time(moment)
    hook = (
        conn.execute(sa.select(_hooks).where(_hooks.c.id == hook_id).with_for_update())
        .mappings()
        .first()
    )
    if hook is None or not hook["active"]:
        return "gone"
    if hook["lease_until"] is not None and hook["lease_until"] > stamp:
        return "busy"
    cursor = hook["cursor_seq"]
    last = (
        conn.execute(
            sa.select(_log).where(_log.c.webhook_id == hook_id).order_by(_log.c.id.desc()).limit(1)
        )
        .mappings()
        .first()
    )
    if last is not None and last["status"] == RETRYING and last["event_seq"] > cursor:
        if last["next_attempt_at"] > stamp:
            return "backoff"
        attempt = last["attempt"] + 1
        query = sa.select(_events).where(_events.c.seq == last["event_seq"])
    else:
        attempt = 1
        # The head first: an event committed after it is left for the next claim, never
        # skipped by moving the cursor past it.
        head = conn.execute(sa.select(schema.audit_head.c.seq)).scalar_one()
        query = (
            sa.select(_events)
            .where(_events.c.seq > cursor, _events.c.seq <= head)
            .where(matches(json.loads(hook["actions"])))
            .order_by(_events.c.seq)
            .limit(1)
        )
        if conn.execute(query).first() is None:
            if head > cursor:
                conn.execute(_hooks.update().where(_hooks.c.id == hook_id).values(cursor_seq=head))
            return "idle"
    row = conn.execute(query).mappings().one()
    lease = str(uuid.uuid4())
    until = format_time(moment + timedelta(seconds=LEASE_SECONDS))
    conn.execute(
        _hooks.update().where(_hooks.c.id == hook_id).values(lease_id=lease, lease_until=until)
    )
    return _Job(hook_id, hook["url"], hook["secret"], _event_body(row), attempt, lease)


def _event_body(row: Any) -> dict[str, Any]:
    return {
        "seq": row["seq"],
        "at": row["at"],
        "actor": row["actor"],
        "action": row["action"],
        "entity_type": row["entity_type"],
        "entity_id": row["entity_id"],
        "entity": row["entity"],
        "before": None if row["before"] is None else json.loads(row["before"]),
        "after": None if row["after"] is None else json.loads(row["after"]),
        "hash": row["hash"],
    }


def _send(http: httpx.Client, job: _Job, allow: AllowList, moment: datetime) -> _Outcome:
    import httpx

    from modelreg import __version__

    try:
        # Checked again now, and the request goes to the address just checked.
        url, headers, extensions = check_url(job.url, allowed_hosts=allow).pinned()
    except InvalidInput as exc:  # the log is read by many: keep a token in the URL out of it
        reason = str(exc).replace(job.url, shown_url(job.url))
        return _Outcome(False, error=f"refused before connecting: {reason}")
    body = json.dumps(job.event, sort_keys=True, separators=(",", ":")).encode()
    timestamp = str(int(moment.timestamp()))
    headers |= {
        "Content-Type": "application/json",
        "User-Agent": f"modelreg-webhooks/{__version__}",
        "X-Modelreg-Event": job.event["action"],
        "X-Modelreg-Delivery": delivery_id(job.webhook_id, job.event["seq"]),
        "X-Modelreg-Timestamp": timestamp,
        "X-Modelreg-Signature": sign(job.secret, timestamp, body),
    }
    http.cookies.clear()  # nothing one receiver sets is sent to another
    try:
        with http.stream(
            "POST",
            url,
            content=body,
            headers=headers,
            extensions=extensions,
            follow_redirects=False,
        ) as response:
            code = response.status_code  # the body is never read
            location = response.headers.get("location", "")
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        return _Outcome(False, error=_short(f"{type(exc).__name__}: {exc}"))
    if 200 <= code < 300:
        return _Outcome(True, code)
    if 300 <= code < 400:
        return _Outcome(False, code, _short(f"HTTP {code}: redirect to {location!r} not followed"))
    return _Outcome(False, code, f"HTTP {code}")


def _short(text: str, limit: int = 500) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _record(conn: Connection, job: _Job, outcome: _Outcome, moment: datetime) -> str:
    """Log one attempt; a delivered or finally failed event moves the cursor past it."""
    if outcome.ok:
        status, retry_at = DELIVERED, None
    elif job.attempt >= MAX_ATTEMPTS:
        status, retry_at = FAILED, None
    else:
        status = RETRYING
        retry_at = format_time(moment + timedelta(seconds=backoff_seconds(job.attempt)))
    exists = conn.execute(sa.select(_hooks.c.id).where(_hooks.c.id == job.webhook_id)).first()
    if exists is None:  # removed while the request was in flight
        return status
    seq = job.event["seq"]
    conn.execute(
        _log.insert().values(
            webhook_id=job.webhook_id,
            event_seq=seq,
            action=job.event["action"],
            attempt=job.attempt,
            status=status,
            status_code=outcome.status_code,
            error=outcome.error,
            at=format_time(moment),
            next_attempt_at=retry_at,
        )
    )
    if status != RETRYING:
        conn.execute(
            _hooks.update()
            .where(_hooks.c.id == job.webhook_id, _hooks.c.cursor_seq < seq)
            .values(cursor_seq=seq)
        )
    conn.execute(
        _hooks.update()
        .where(_hooks.c.id == job.webhook_id, _hooks.c.lease_id == job.lease_id)
        .values(lease_id=None, lease_until=None)
    )
    return status
