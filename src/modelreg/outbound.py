"""Requests the registry makes to hosts its users name (webhook receivers): the guard against
server-side request forgery.

A URL must be https, carry no credentials or fragment, and every address its host resolves to
must be public: IPv4 outside the IANA special-purpose ranges, IPv6 in global unicast
(2000::/3) outside them, an IPv4 address inside IPv6 judged as that address. A host listed in
``MODELREG_WEBHOOK_ALLOW_HOSTS`` (comma-separated names, IP addresses or networks) may use
http and private addresses. ``check_url`` returns the addresses it checked, and the sender
connects to those, with the name in ``Host`` and in TLS SNI, so a DNS answer that changes in
between cannot reach a private address. Pure: no SQL, and no HTTP library until a request.
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, TypeAlias
from urllib.parse import urlsplit

from modelreg.errors import InvalidInput

IPAddress: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork: TypeAlias = ipaddress.IPv4Network | ipaddress.IPv6Network

ALLOW_HOSTS_ENV = "MODELREG_WEBHOOK_ALLOW_HOSTS"
MAX_URL_LENGTH = 2048


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
    allow = allow_list(allowed_hosts)
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


def allow_list(given: AllowList | Collection[str]) -> AllowList:
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
