"""Webhooks: registry events delivered over HTTP to CI/CD systems, signed and retried.

The audit log is the event stream. A webhook keeps a cursor (the last audit event it handled)
and a delivery pass sends the events after it that match its actions, oldest first, one at a
time: a change and its event are committed together, so nothing costs more at write time and no
event can be lost between the two. A new webhook starts at the current end of the log.

    hook = reg.add_webhook("ci", "https://ci.example.com/hooks/modelreg", actions=["alias."])
    hook["secret"]          # shown once: the receiver checks signatures with it
    reg.deliver_webhooks()  # one pass; run it from a timer (cron, systemd) or a server loop

Each event is POSTed as JSON (the audit event: seq, at, actor, action, entity_type, entity_id,
entity, before, after, hash) with ``X-Modelreg-Event`` (the action), ``X-Modelreg-Delivery``
(the same id for every attempt of one event to one webhook, so a receiver can drop repeats),
``X-Modelreg-Timestamp`` (Unix seconds) and ``X-Modelreg-Signature``: ``sha256=`` and the hex
HMAC-SHA256, keyed by the webhook's secret, of ``f"{timestamp}."`` followed by the body (see
:func:`verify_signature`). A 2xx answer delivers the event; anything else, a redirect included
(redirects are never followed), is retried with exponential backoff, and after
``MAX_ATTEMPTS`` the event is marked ``failed`` and the webhook moves on to the next one.

Server-side request forgery: a URL must be https, carry no credentials or fragment, and every
address its host resolves to must be public. A host listed in ``MODELREG_WEBHOOK_ALLOW_HOSTS``
(comma-separated names, IP addresses or networks) may use http and private addresses. The URL
is checked when the webhook is added and again right before each connection, and the request
goes to the address just checked (with the name in ``Host`` and in TLS SNI), so a DNS answer
that changes in between cannot reach a private address.

httpx is imported only when delivering: ``import modelreg`` and the CLI's start-up stay light.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import ipaddress
import json
import os
import re
import secrets
import socket
import uuid
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeAlias
from urllib.parse import urlsplit

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from modelreg import audit, schema
from modelreg.db import Database, format_time, now
from modelreg.errors import Conflict, InvalidInput, NotFound
from modelreg.refs import check_name

if TYPE_CHECKING:
    import httpx

IPAddress: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork: TypeAlias = ipaddress.IPv4Network | ipaddress.IPv6Network

ALLOW_HOSTS_ENV = "MODELREG_WEBHOOK_ALLOW_HOSTS"
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
MAX_URL_LENGTH = 2048

DELIVERED, RETRYING, FAILED = "delivered", "retrying", "failed"

_ACTION = re.compile(r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*\.?")
# NAT64 prefixes (RFC 6052, RFC 8215): the last 32 bits are an IPv4 address reached through it.
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))

_LOOPBACK = "a loopback address"
_LINK_LOCAL = "a link-local address (where cloud metadata services answer)"
_PRIVATE = "a private address"
_MULTICAST = "a multicast address"
_DOCUMENTATION = "a documentation address"
_RESERVED = "a reserved or non-routable address"
# The IANA special-purpose address registries (RFC 6890 and later), written out rather than
# taken from ipaddress: Python 3.11's is_global holds for 3fff::/20, 5f00::/16, fec0::/10 and
# IPv4-compatible addresses, and its tables change from one Python version to the next.
# Outside these ranges IPv4 is public, and IPv6 only in global unicast (2000::/3). First match
# wins. Ranges IANA marks partly globally reachable (192.0.0.0/24, 2001::/23) are refused
# whole: no webhook receiver lives there.
_SPECIAL: tuple[tuple[IPNetwork, str], ...] = tuple(
    (ipaddress.ip_network(network), reason)
    for network, reason in [
        ("0.0.0.0/32", "the unspecified address"),
        ("0.0.0.0/8", f"{_RESERVED} (this network)"),
        ("10.0.0.0/8", _PRIVATE),
        ("100.64.0.0/10", f"{_RESERVED} (shared address space for carrier-grade NAT)"),
        ("127.0.0.0/8", _LOOPBACK),
        ("169.254.0.0/16", _LINK_LOCAL),
        ("172.16.0.0/12", _PRIVATE),
        ("192.0.0.0/24", f"{_RESERVED} (IETF protocol assignments)"),
        ("192.0.2.0/24", _DOCUMENTATION),
        ("192.31.196.0/24", f"{_RESERVED} (AS112)"),
        ("192.52.193.0/24", f"{_RESERVED} (AMT relay anycast)"),
        ("192.88.99.0/24", f"{_RESERVED} (6to4 relay anycast)"),
        ("192.168.0.0/16", _PRIVATE),
        ("192.175.48.0/24", f"{_RESERVED} (AS112)"),
        ("198.18.0.0/15", f"{_RESERVED} (benchmarking)"),
        ("198.51.100.0/24", _DOCUMENTATION),
        ("203.0.113.0/24", _DOCUMENTATION),
        ("224.0.0.0/4", _MULTICAST),
        ("240.0.0.0/4", f"{_RESERVED} (future use and broadcast)"),
        ("::/128", "the unspecified address"),
        ("::1/128", _LOOPBACK),
        # Deprecated by RFC 4291, yet some stacks and proxies still send it to the IPv4 address
        # inside: ::a9fe:a9fe could reach the metadata service.
        ("::/96", "an IPv4-compatible IPv6 address (deprecated; it embeds {ipv4})"),
        ("100::/64", f"{_RESERVED} (discard-only)"),
        ("5f00::/16", f"{_RESERVED} (SRv6 segment identifiers)"),
        ("fc00::/7", f"{_PRIVATE} (unique local)"),
        ("fe80::/10", _LINK_LOCAL),
        ("fec0::/10", f"{_PRIVATE} (deprecated site-local)"),
        ("ff00::/8", _MULTICAST),
        ("2001::/23", f"{_RESERVED} (IETF protocol assignments: Teredo, benchmarking, ORCHID)"),
        ("2001:db8::/32", _DOCUMENTATION),
        ("3fff::/20", _DOCUMENTATION),
    ]
)
_GLOBAL_UNICAST = ipaddress.ip_network("2000::/3")

_hooks = schema.webhooks
_log = schema.webhook_deliveries
_events = schema.audit_events


# -- signatures ------------------------------------------------------------------------------


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The ``X-Modelreg-Signature`` value: HMAC-SHA256 over ``f"{timestamp}."`` + body."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"sha256={digest.hexdigest()}"


def verify_signature(
    secret: str,
    timestamp: str,
    body: bytes,
    signature: str,
    *,
    tolerance_seconds: float = 300,
    at: datetime | None = None,
) -> bool:
    """What a receiver checks: the signature matches and the timestamp is recent (no replay)."""
    try:
        sent = float(timestamp)
    except ValueError:
        return False
    moment = (at or datetime.now(UTC)).timestamp()
    if abs(moment - sent) > tolerance_seconds:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), signature)


# -- URL checks (server-side request forgery) --------------------------------------------------


@dataclass(frozen=True)
class AllowList:
    """Hosts that may use http and private addresses: names, IP addresses and networks."""

    names: frozenset[str] = frozenset()
    networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def parse(cls, entries: Collection[str]) -> AllowList:
        names: set[str] = set()
        networks: list[IPNetwork] = []
        for raw in entries:
            entry = _normal_host(raw)
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
                continue
            except ValueError:
                pass
            if not re.fullmatch(r"[a-z0-9_.-]+", entry):
                raise InvalidInput(
                    f"{ALLOW_HOSTS_ENV} entry {raw.strip()!r} is not a host name, an IP address"
                    " or a network (e.g. ci.internal, 10.0.0.5, 10.1.0.0/16)"
                )
            names.add(entry)
        return cls(frozenset(names), tuple(networks))

    def allows_host(self, host: str) -> bool:
        if host in self.names:
            return True
        literal = _ip_literal(host)
        return literal is not None and self.allows_address(literal)

    def allows_address(self, address: IPAddress) -> bool:
        return any(address in network for network in self.networks)


def allowed_hosts_from_env() -> AllowList:
    """The allow list in ``MODELREG_WEBHOOK_ALLOW_HOSTS`` (comma-separated), read each time."""
    return AllowList.parse(os.environ.get(ALLOW_HOSTS_ENV, "").split(","))


@dataclass(frozen=True)
class Target:
    """A checked URL and the addresses its host resolved to, all of them allowed."""

    url: str
    scheme: str
    host: str  # lowercase, ASCII (IDNA), without brackets
    port: int
    explicit_port: bool
    path: str  # path and query, as given
    addresses: tuple[IPAddress, ...]

    def pinned(self) -> tuple[str, dict[str, str], dict[str, Any]]:
        """The request to make: the URL with the first checked address in place of the host,
        the ``Host`` header, and the httpx request extensions (SNI for TLS)."""
        address = self.addresses[0]
        literal = f"[{address}]" if address.version == 6 else str(address)
        host = f"[{self.host}]" if ":" in self.host else self.host
        header = f"{host}:{self.port}" if self.explicit_port else host
        extensions: dict[str, Any] = {}
        if self.scheme == "https" and _ip_literal(self.host) is None:
            extensions["sni_hostname"] = self.host
        return f"{self.scheme}://{literal}:{self.port}{self.path}", {"Host": header}, extensions


def check_url(url: str, *, allowed_hosts: AllowList | Collection[str] = ()) -> Target:
    """Check a webhook URL against server-side request forgery; resolve its host.

    Raises InvalidInput naming the rule broken: https only (http for allowed hosts), no
    credentials, no fragment, and every resolved address public unless the host or the
    address is allowed.
    """
    allow = _allow_list(allowed_hosts)
    if not isinstance(url, str) or not url:
        raise InvalidInput("a webhook URL must be a non-empty string")
    if len(url) > MAX_URL_LENGTH:
        raise InvalidInput(f"a webhook URL may have at most {MAX_URL_LENGTH} characters")
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url):
        raise InvalidInput(f"webhook URL {url!r} contains whitespace or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise InvalidInput(f"webhook URL {url!r} is malformed: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http"):
        raise InvalidInput(f"webhook URL {url!r} must use https")
    if "@" in parts.netloc:
        raise InvalidInput(
            f"webhook URL {_redacted(url)!r} must not contain credentials (user:password@):"
            " receivers authenticate the registry by the signature"
        )
    if parts.fragment or url.endswith("#"):
        raise InvalidInput(f"webhook URL {url!r} must not have a fragment (#...)")
    host = _normal_host(parts.hostname or "")
    if not host:
        raise InvalidInput(f"webhook URL {url!r} has no host")
    try:
        host = host.encode("idna").decode("ascii")
    except UnicodeError:
        raise InvalidInput(f"webhook URL {url!r}: host {host!r} is not a valid name") from None
    if scheme == "http" and not allow.allows_host(host):
        raise InvalidInput(
            f"webhook URL {url!r} must use https: http is allowed only for hosts listed in"
            f" {ALLOW_HOSTS_ENV}"
        )
    effective_port = port if port is not None else (443 if scheme == "https" else 80)
    addresses = _resolve(host, effective_port)
    if not allow.allows_host(host):
        for address in addresses:
            reason = _not_public(address)
            if reason is not None and not allow.allows_address(address):
                what = (
                    f"{address} is {reason}"
                    if _ip_literal(host) is not None
                    else f"host {host!r} resolves to {address}, {reason}"
                )
                raise InvalidInput(
                    f"webhook URL {url!r} refused: {what}, not a public address; list the host"
                    f" in {ALLOW_HOSTS_ENV} to allow it"
                )
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    return Target(url, scheme, host, effective_port, port is not None, path, addresses)


def _allow_list(given: AllowList | Collection[str]) -> AllowList:
    if isinstance(given, AllowList):
        return given
    return AllowList.parse(given.split(",") if isinstance(given, str) else given)


def _normal_host(text: str) -> str:
    return text.strip().lower().removeprefix("[").removesuffix("]").rstrip(".")


def _ip_literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _resolve(host: str, port: int) -> tuple[IPAddress, ...]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise InvalidInput(f"webhook host {host!r} does not resolve: {exc}") from None
    found: dict[IPAddress, None] = {}
    for family, _, _, _, sockaddr in infos:
        if family in (socket.AF_INET, socket.AF_INET6):
            found[ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])] = None
    if not found:
        raise InvalidInput(f"webhook host {host!r} resolves to no IP address")
    return tuple(found)


def _not_public(address: IPAddress) -> str | None:
    """Why an address must not be reached from the registry's network, or None if public."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and any(address in net for net in _NAT64):
            embedded = ipaddress.IPv4Address(address.packed[-4:])
        if embedded is not None:
            inner = _not_public(embedded)
            return None if inner is None else f"{inner} (as {embedded})"
    for network, reason in _SPECIAL:
        if address in network:
            return reason.format(ipv4=ipaddress.IPv4Address(address.packed[-4:]))
    if address.version == 6 and address not in _GLOBAL_UNICAST:
        return f"{_RESERVED} (outside global unicast 2000::/3)"
    return None


def shown_url(url: str) -> str:
    """The URL as listings and logs show it: its origin, with the path and query (where a
    token often sits) elided; the full URL is shown once, when the webhook is added."""
    parts = urlsplit(url)
    rest = "/…" if parts.path not in ("", "/") or parts.query else parts.path
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}{rest}"


def _redacted(url: str) -> str:
    parts = urlsplit(url)
    return parts._replace(netloc="***@" + parts.netloc.rpartition("@")[2]).geturl()


# -- registering -----------------------------------------------------------------------------


def check_actions(actions: Sequence[str]) -> list[str]:
    """Action names (``alias.set``), prefixes ending in a dot (``alias.``) or ``*`` for all."""
    if isinstance(actions, str) or not actions:
        raise InvalidInput('give the actions as a list, e.g. ["*"] or ["alias.", "version.create"]')
    out: list[str] = []
    for action in actions:
        if not isinstance(action, str) or not (
            action == "*" or (len(action) <= 64 and _ACTION.fullmatch(action))
        ):
            raise InvalidInput(
                f"webhook action {action!r} is invalid: use an action (alias.set), a prefix"
                " ending in a dot (alias.) or * for every event"
            )
        if action not in out:
            out.append(action)
    return ["*"] if "*" in out else out


def check_secret(secret: str | None) -> str:
    if secret is None:
        return secrets.token_urlsafe(32)
    if not isinstance(secret, str) or not re.fullmatch(r"[\x21-\x7e]{16,256}", secret):
        raise InvalidInput(
            "a webhook secret must be 16 to 256 printable ASCII characters without spaces"
        )
    return secret


def add(
    conn: Connection,
    name: str,
    target: Target,
    *,
    actions: list[str],
    secret: str,
    actor: str,
) -> dict[str, Any]:
    """Register a webhook (audited, without its secret); it gets events from now on."""
    check_name(name, kind="webhook name")
    if conn.execute(sa.select(_hooks.c.id).where(_hooks.c.name == name)).first() is not None:
        raise Conflict(f"a webhook named {name!r} already exists")
    hook_id = str(uuid.uuid4())
    # The URL's path and query may be a credential (many chat and CI hooks work that way):
    # the audit log, which every reader sees, keeps the origin and a digest of the URL.
    audit.append(
        conn,
        actor=actor,
        action="webhook.add",
        entity_type="webhook",
        entity_id=hook_id,
        entity=name,
        after=_audited(name, target.url, actions),
    )
    head = conn.execute(sa.select(schema.audit_head.c.seq)).scalar_one()
    row = {
        "id": hook_id,
        "name": name,
        "url": target.url,
        "secret": secret,
        "actions": json.dumps(actions),
        "cursor_seq": head,
        "created_at": now(),
        "created_by": actor,
        "active": True,
    }
    conn.execute(_hooks.insert(), row)
    return {**_public(conn, row), "url": row["url"], "secret": secret}


def remove(conn: Connection, name: str, *, actor: str) -> dict[str, Any]:
    """Remove a webhook and its delivery log (audited); pending events are dropped."""
    check_name(name, kind="webhook name")
    row = conn.execute(sa.select(_hooks).where(_hooks.c.name == name)).mappings().first()
    if row is None:
        raise NotFound(f"no webhook is named {name!r}")
    found = _public(conn, row)
    conn.execute(_log.delete().where(_log.c.webhook_id == row["id"]))
    conn.execute(_hooks.delete().where(_hooks.c.id == row["id"]))
    audit.append(
        conn,
        actor=actor,
        action="webhook.remove",
        entity_type="webhook",
        entity_id=row["id"],
        entity=name,
        before=_audited(name, row["url"], json.loads(row["actions"])),
    )
    return found


def listing(conn: Connection) -> list[dict[str, Any]]:
    """Every webhook by name, with its backlog; never the secrets."""
    rows = conn.execute(sa.select(_hooks).order_by(_hooks.c.name)).mappings()
    return [_public(conn, row) for row in rows]


def deliveries(
    conn: Connection, name: str | None = None, *, limit: int = 100
) -> list[dict[str, Any]]:
    """The delivery log, newest attempt first, for one webhook or all."""
    if not isinstance(limit, int) or not 1 <= limit <= 10_000:
        raise InvalidInput(f"limit must be between 1 and 10000, not {limit!r}")
    q = (
        sa.select(_log, _hooks.c.name)
        .join(_hooks, _hooks.c.id == _log.c.webhook_id)
        .order_by(_log.c.id.desc())
        .limit(limit)
    )
    if name is not None:
        check_name(name, kind="webhook name")
        if conn.execute(sa.select(_hooks.c.id).where(_hooks.c.name == name)).first() is None:
            raise NotFound(f"no webhook is named {name!r}")
        q = q.where(_hooks.c.name == name)
    return [
        {
            "id": row["id"],
            "webhook": row["name"],
            "delivery": delivery_id(row["webhook_id"], row["event_seq"]),
            "event_seq": row["event_seq"],
            "action": row["action"],
            "attempt": row["attempt"],
            "status": row["status"],
            "status_code": row["status_code"],
            "error": row["error"],
            "at": row["at"],
            "next_attempt_at": row["next_attempt_at"],
        }
        for row in conn.execute(q).mappings()
    ]


def delivery_id(webhook_id: str, seq: int) -> str:
    """The ``X-Modelreg-Delivery`` id: one per event and webhook, the same on every retry."""
    return str(uuid.uuid5(uuid.UUID(webhook_id), str(seq)))


def _public(conn: Connection, row: Any) -> dict[str, Any]:
    actions = json.loads(row["actions"])
    pending = conn.execute(
        sa.select(sa.func.count())
        .select_from(_events)
        .where(_events.c.seq > row["cursor_seq"], _matches(actions))
    ).scalar_one()
    return {
        "name": row["name"],
        "url": shown_url(row["url"]),
        "actions": actions,
        "active": bool(row["active"]),
        "cursor_seq": row["cursor_seq"],
        "pending": pending,
        "created_at": row["created_at"],
        "created_by": row["created_by"],
    }


def _audited(name: str, url: str, actions: list[str]) -> dict[str, Any]:
    parts = urlsplit(url)  # checked when added: no credentials in the netloc
    return {
        "name": name,
        "origin": f"{parts.scheme.lower()}://{parts.netloc.lower()}",
        "url_sha256": hashlib.sha256(url.encode()).hexdigest(),
        "actions": actions,
    }


def _matches(actions: list[str]) -> sa.ColumnElement[bool]:
    if "*" in actions:
        return sa.true()
    return sa.or_(
        *(
            _events.c.action.startswith(a, autoescape=True)
            if a.endswith(".")
            else _events.c.action == a
            for a in actions
        )
    )


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
    allow = allowed_hosts_from_env() if allowed_hosts is None else _allow_list(allowed_hosts)
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
            .where(_matches(json.loads(hook["actions"])))
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
