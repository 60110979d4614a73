"""Webhooks: registry events POSTed, signed and in order, to a real HTTP receiver; retried with
backoff; never sent where server-side request forgery could reach."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

import modelreg
from modelreg import outbound, webhook_delivery, webhooks
from modelreg.errors import Conflict, InvalidInput, NotFound

SECRET = "s3cret-for-tests-only-0123456789"


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def event(self) -> dict[str, Any]:
        return json.loads(self.body)


@dataclass
class Receiver:
    """An HTTP server on 127.0.0.1 that records every request and answers from a script."""

    port: int = 0
    requests: list[Received] = field(default_factory=list)
    replies: list[tuple[int, dict[str, str]]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def actions(self) -> list[str]:
        return [r.event["action"] for r in self.requests]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            self._answer(body)

        def do_GET(self) -> None:
            self._answer(b"")

        def _answer(self, body: bytes) -> None:
            state.requests.append(Received(self.path, dict(self.headers.items()), body))
            status, headers = state.replies.pop(0) if state.replies else (200, {})
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def reg(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv(outbound.ALLOW_HOSTS_ENV, "127.0.0.1")
    Path("m.bin").write_text("weights")
    Path("eval.csv").write_text("x,y\n1,2\n")
    with modelreg.connect(workdir / "reg", actor="alice") as registry:
        yield registry


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def deliver(reg: Any, clock: Clock, **options: Any) -> dict[str, int]:
    return webhook_delivery.deliver_pending(reg.db, now=clock, **options)


def expected_signature(secret: str, received: Received) -> str:
    timestamp = received.headers["X-Modelreg-Timestamp"]
    message = timestamp.encode() + b"." + received.body
    return "sha256=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


# -- delivery ----------------------------------------------------------------------------------


def test_events_of_several_kinds_are_delivered_in_order_and_signed(reg, receiver):
    hook = reg.add_webhook("ci", receiver.url, secret=SECRET)
    assert hook["secret"] == SECRET
    reg.register("churn", "m.bin")
    reg.register("churn", "m.bin", metrics={"auc": 0.8})
    reg.set_alias("churn", "staging", "churn/2")
    reg.evaluate("churn/2", "eval.csv", metrics={"auc": 0.81})
    reg.set_tag("churn/2", "team", "growth")
    reg.retire_dataset("eval.csv", reason="erasure request 42")

    counts = reg.deliver_webhooks()

    expected = [e for e in reversed(reg.audit(limit=1000)) if e.action != "webhook.add"]
    assert counts["delivered"] == len(expected) == len(receiver.requests)
    assert receiver.actions() == [e.action for e in expected]
    assert {"version.create", "alias.set", "evaluation.create", "tag.set", "dataset.retire"} <= set(
        receiver.actions()
    )
    for received, event in zip(receiver.requests, expected, strict=True):
        assert received.path == "/hook"
        assert received.event == json.loads(json.dumps(event.to_dict()))
        assert received.headers["Content-Type"] == "application/json"
        assert received.headers["X-Modelreg-Event"] == event.action
        assert received.headers["X-Modelreg-Signature"] == expected_signature(SECRET, received)
        assert webhooks.verify_signature(
            SECRET,
            received.headers["X-Modelreg-Timestamp"],
            received.body,
            received.headers["X-Modelreg-Signature"],
        )
    last = receiver.requests[-1]
    signature, timestamp = (
        last.headers["X-Modelreg-Signature"],
        last.headers["X-Modelreg-Timestamp"],
    )
    assert not webhooks.verify_signature("another-secret-entirely", timestamp, last.body, signature)
    assert not webhooks.verify_signature(SECRET, timestamp, last.body + b" ", signature)
    stale = datetime.now(UTC) + timedelta(hours=1)
    assert not webhooks.verify_signature(SECRET, timestamp, last.body, signature, at=stale)
    deliveries = reg.webhook_deliveries("ci")
    assert [d["status"] for d in deliveries] == ["delivered"] * len(expected)
    assert [d["event_seq"] for d in deliveries] == [e.seq for e in reversed(expected)]
    assert len({r.headers["X-Modelreg-Delivery"] for r in receiver.requests}) == len(expected)

    assert reg.deliver_webhooks()["delivered"] == 0  # nothing is sent twice
    assert reg.webhooks()[0]["pending"] == 0


def test_a_new_webhook_gets_only_events_from_then_on(reg, receiver):
    reg.register("churn", "m.bin")
    reg.add_webhook("ci", receiver.url)
    assert reg.deliver_webhooks()["delivered"] == 0
    reg.set_tag("churn/1", "team", "growth")
    assert reg.deliver_webhooks()["delivered"] == 1
    assert receiver.actions() == ["tag.set"]


def test_a_webhook_gets_only_the_actions_it_asked_for(reg, receiver):
    reg.add_webhook("aliases", receiver.url.replace("/hook", "/aliases"), actions=["alias."])
    reg.add_webhook(
        "versions", receiver.url.replace("/hook", "/versions"), actions=["version.create"]
    )
    reg.register("churn", "m.bin")
    reg.register("churn", "m.bin")
    reg.set_alias("churn", "staging", "churn/1")
    reg.set_alias("churn", "staging", "churn/2")
    reg.set_tag("churn/2", "team", "growth")
    reg.delete_alias("churn", "staging")

    reg.deliver_webhooks()

    by_path: dict[str, list[str]] = {}
    for r in receiver.requests:
        by_path.setdefault(r.path, []).append(r.event["action"])
    assert by_path == {
        "/aliases": ["alias.set", "alias.set", "alias.delete"],
        "/versions": ["version.create", "version.create"],
    }
    assert [(w["name"], w["pending"]) for w in reg.webhooks()] == [("aliases", 0), ("versions", 0)]


def test_a_failing_receiver_is_retried_with_backoff_until_it_answers(reg, receiver):
    clock = Clock()
    reg.add_webhook("ci", receiver.url)
    reg.register("churn", "m.bin")  # model.create, version.create
    receiver.replies = [(500, {}), (500, {})]

    assert deliver(reg, clock)["retrying"] == 1
    waiting = {"webhooks": 1, "delivered": 0, "retrying": 0, "failed": 0, "waiting": 1}
    assert deliver(reg, clock) == waiting
    clock.advance(webhook_delivery.backoff_seconds(1) - 1)
    assert deliver(reg, clock)["waiting"] == 1
    assert len(receiver.requests) == 1  # nothing is sent while the webhook backs off
    clock.advance(1)
    assert deliver(reg, clock)["retrying"] == 1
    clock.advance(webhook_delivery.backoff_seconds(2))
    assert deliver(reg, clock)["delivered"] == 2  # the event, then the one after it

    first = receiver.requests[0]
    assert receiver.actions() == ["model.create"] * 3 + ["version.create"]
    assert {r.headers["X-Modelreg-Delivery"] for r in receiver.requests[:3]} == {
        first.headers["X-Modelreg-Delivery"]
    }  # one id for every attempt, so a receiver can drop repeats
    log = list(reversed(reg.webhook_deliveries("ci")))
    model_create = [d for d in log if d["action"] == "model.create"]
    assert [(d["attempt"], d["status"], d["status_code"]) for d in model_create] == [
        (1, "retrying", 500),
        (2, "retrying", 500),
        (3, "delivered", 200),
    ]
    waits = [
        datetime.fromisoformat(d["next_attempt_at"]) - datetime.fromisoformat(d["at"])
        for d in model_create[:2]
    ]
    assert waits == [timedelta(seconds=30), timedelta(seconds=60)]
    assert model_create[0]["error"] == "HTTP 500"
    for r in receiver.requests:
        assert r.headers["X-Modelreg-Signature"] == expected_signature(_secret(reg), r)


def _secret(reg: Any) -> str:
    from modelreg import schema

    return str(reg.db.read(lambda conn: conn.execute(schema.webhooks.select()).one().secret))


def test_a_redirect_is_not_followed_and_counts_as_a_failure(reg, receiver):
    clock = Clock()
    reg.add_webhook("ci", receiver.url)
    reg.register("churn", "m.bin")
    receiver.replies = [(302, {"Location": f"http://127.0.0.1:{receiver.port}/elsewhere"})]

    assert deliver(reg, clock)["retrying"] == 1

    assert [r.path for r in receiver.requests] == ["/hook"]
    (entry,) = reg.webhook_deliveries("ci")
    assert (entry["status"], entry["status_code"]) == ("retrying", 302)
    assert "not followed" in entry["error"]


def test_after_the_last_attempt_an_event_fails_and_the_next_one_is_delivered(reg, receiver):
    clock = Clock()
    reg.add_webhook("ci", receiver.url, actions=["tag."])
    reg.register("churn", "m.bin")
    reg.set_tag("churn/1", "a", "1")
    reg.set_tag("churn/1", "b", "2")
    receiver.replies = [(503, {})] * webhook_delivery.MAX_ATTEMPTS

    totals = {"delivered": 0, "retrying": 0, "failed": 0}
    for _ in range(webhook_delivery.MAX_ATTEMPTS):
        counts = deliver(reg, clock)
        for key in totals:
            totals[key] += counts[key]
        clock.advance(webhook_delivery.BACKOFF_CAP_SECONDS)

    assert totals == {"delivered": 1, "retrying": webhook_delivery.MAX_ATTEMPTS - 1, "failed": 1}
    tags = [r.event["after"] for r in receiver.requests]
    assert tags == [{"a": "1"}] * webhook_delivery.MAX_ATTEMPTS + [{"b": "2"}]
    log = reg.webhook_deliveries("ci")
    assert [(d["status"], d["attempt"]) for d in log[:2]] == [
        ("delivered", 1),
        ("failed", webhook_delivery.MAX_ATTEMPTS),
    ]
    assert (
        webhook_delivery.backoff_seconds(webhook_delivery.MAX_ATTEMPTS)
        <= webhook_delivery.BACKOFF_CAP_SECONDS
    )


def test_the_request_goes_to_the_checked_address_with_the_name_in_host(reg, receiver, monkeypatch):
    real = socket.getaddrinfo

    def resolve(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "hooks.internal":
            return real("127.0.0.1", port, *args, **kwargs)
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    monkeypatch.setenv(outbound.ALLOW_HOSTS_ENV, "hooks.internal")
    reg.add_webhook("ci", f"http://hooks.internal:{receiver.port}/hook?team=growth")
    reg.register("churn", "m.bin")

    assert reg.deliver_webhooks()["delivered"] == 2
    assert receiver.requests[0].headers["Host"] == f"hooks.internal:{receiver.port}"
    assert receiver.requests[0].path == "/hook?team=growth"


def test_https_is_pinned_to_the_address_with_the_name_in_sni(monkeypatch):
    monkeypatch.setattr(
        socket, "getaddrinfo", lambda *a, **k: [(socket.AF_INET, 1, 6, "", ("93.184.215.14", 443))]
    )
    url, headers, extensions = outbound.check_url("https://Hooks.Example.com/x?y=1").pinned()
    assert url == "https://93.184.215.14:443/x?y=1"
    assert headers == {"Host": "hooks.example.com"}
    assert extensions == {"sni_hostname": "hooks.example.com"}


# -- server-side request forgery ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://example.com/hook", "must use https"),
        ("ftp://example.com/hook", "must use https"),
        ("https://user:pw@example.com/hook", "must not contain credentials"),
        ("https://example.com/hook#frag", "must not have a fragment"),
        ("https:///hook", "has no host"),
        ("https://10.0.0.1/", "10.0.0.1 is a private address"),
        ("https://127.0.0.1/", "127.0.0.1 is a loopback address"),
        ("https://localhost/", "host 'localhost' resolves to"),
        ("https://[::1]/", "::1 is a loopback address"),
        ("https://169.254.169.254/latest/meta-data/", "link-local address (where cloud metadata"),
        ("https://[::ffff:10.0.0.1]/", "private address (as 10.0.0.1)"),
        ("https://224.0.0.1/", "multicast"),
        ("https://0.0.0.0/", "unspecified"),
        ("https://100.64.0.1/", "reserved or non-routable"),
        ("https://example.com:99999/", "is malformed"),
    ],
)
def test_urls_that_could_reach_inside_are_refused(reg, monkeypatch, url, message):
    monkeypatch.delenv(outbound.ALLOW_HOSTS_ENV)
    with pytest.raises(InvalidInput, match="webhook") as caught:
        reg.add_webhook("ci", url)
    assert message in str(caught.value)
    assert "pw" not in str(caught.value)
    assert reg.webhooks() == []


def test_the_allow_list_opens_http_and_private_addresses_for_listed_hosts_only():
    allow = outbound.AllowList.parse(["127.0.0.1", "10.1.0.0/16", "CI.Internal."])
    assert outbound.check_url("http://127.0.0.1:8080/", allowed_hosts=allow).addresses
    assert outbound.check_url("https://10.1.2.3/", allowed_hosts=allow).addresses
    with pytest.raises(InvalidInput, match="must use https"):
        outbound.check_url("http://10.2.0.1/", allowed_hosts=allow)
    with pytest.raises(InvalidInput, match="private address"):
        outbound.check_url("https://10.2.0.1/", allowed_hosts=allow)
    assert allow.allows_host("ci.internal")
    with pytest.raises(InvalidInput, match="MODELREG_WEBHOOK_ALLOW_HOSTS entry"):
        outbound.AllowList.parse(["http://ci.internal/"])


_METADATA = "link-local address (where cloud metadata services answer)"
_COMPATIBLE = "an IPv4-compatible IPv6 address (deprecated; it embeds"


@pytest.mark.parametrize(
    ("address", "why"),
    [
        # found by the security probe (issue 13)
        ("::a9fe:a9fe", f"{_COMPATIBLE} 169.254.169.254)"),
        ("::10.0.0.1", f"{_COMPATIBLE} 10.0.0.1)"),
        ("3fff::1", "a documentation address"),
        ("5f00::1", "reserved or non-routable address (SRv6"),
        # IPv4 inside IPv6
        ("::7f00:1", f"{_COMPATIBLE} 127.0.0.1)"),
        ("::0a00:0001", f"{_COMPATIBLE} 10.0.0.1)"),
        ("::ffff:10.0.0.1", "a private address (as 10.0.0.1)"),
        ("::ffff:127.0.0.1", "a loopback address (as 127.0.0.1)"),
        ("::ffff:a9fe:a9fe", f"{_METADATA} (as 169.254.169.254)"),
        ("64:ff9b::10.0.0.1", "a private address (as 10.0.0.1)"),
        ("64:ff9b::a9fe:a9fe", f"{_METADATA} (as 169.254.169.254)"),
        ("64:ff9b:1::c0a8:101", "a private address (as 192.168.1.1)"),
        ("2002:7f00:0001::", "a loopback address (as 127.0.0.1)"),
        ("2002:a9fe:a9fe::", f"{_METADATA} (as 169.254.169.254)"),
        ("2002:c058:6301::1", "6to4 relay anycast) (as 192.88.99.1)"),
        ("::ffff:0:a00:1", "outside global unicast"),  # IPv4-translated (SIIT)
        # IPv6 outside global unicast, or special inside it
        ("::", "the unspecified address"),
        ("::1", "a loopback address"),
        ("2001:0::1", "Teredo"),
        ("2001:2::1", "benchmarking"),
        ("2001:20::1", "ORCHID"),
        ("2001:db8::1", "a documentation address"),
        ("3fff:fff:ffff::1", "a documentation address"),
        ("fd00::1", "a private address (unique local)"),
        ("fd00:ec2::254", "a private address (unique local)"),  # AWS metadata over IPv6
        ("fc00::1", "a private address (unique local)"),
        ("fe80::1", _METADATA),
        ("fec0::1", "a private address (deprecated site-local)"),
        ("ff02::1", "a multicast address"),
        ("ff0e::1", "a multicast address"),
        ("100::1", "reserved or non-routable address (discard-only)"),
        ("4000::1", "outside global unicast"),
        # IPv4
        ("0.0.0.0", "the unspecified address"),
        ("0.1.2.3", "reserved or non-routable address (this network)"),
        ("10.0.0.1", "a private address"),
        ("10.255.255.255", "a private address"),
        ("100.64.0.1", "carrier-grade NAT"),
        ("100.127.255.254", "carrier-grade NAT"),
        ("127.0.0.1", "a loopback address"),
        ("127.255.0.1", "a loopback address"),
        ("169.254.169.254", _METADATA),
        ("172.16.0.1", "a private address"),
        ("172.31.255.254", "a private address"),
        ("192.0.0.9", "IETF protocol assignments"),
        ("192.0.2.1", "a documentation address"),
        ("192.31.196.1", "AS112"),
        ("192.52.193.1", "AMT"),
        ("192.88.99.1", "6to4 relay anycast"),
        ("192.168.1.1", "a private address"),
        ("192.175.48.1", "AS112"),
        ("198.18.0.1", "benchmarking"),
        ("198.19.255.254", "benchmarking"),
        ("198.51.100.1", "a documentation address"),
        ("203.0.113.1", "a documentation address"),
        ("224.0.0.1", "a multicast address"),
        ("239.255.255.250", "a multicast address"),
        ("240.0.0.1", "reserved or non-routable address (future use"),
        ("255.255.255.255", "broadcast"),
    ],
)
def test_addresses_that_are_not_public_are_refused_with_the_reason(address, why):
    url = f"https://[{address}]/" if ":" in address else f"https://{address}/"
    with pytest.raises(InvalidInput) as caught:
        outbound.check_url(url)
    reason = str(caught.value).partition(f" {ipaddress.ip_address(address)} is ")[2]
    assert why in reason
    assert ", not a public address;" in reason


@pytest.mark.parametrize(
    "address",
    [
        "8.8.8.8",
        "1.1.1.1",
        "9.9.9.9",
        "93.184.215.14",
        "100.63.255.254",  # just outside 100.64.0.0/10
        "100.128.0.1",
        "172.32.0.1",  # just outside 172.16.0.0/12
        "198.20.0.1",  # just outside 198.18.0.0/15
        "223.255.255.254",  # just below multicast
        "2606:4700:4700::1111",
        "2a00:1450:4001:81b::200e",
        "2001:4860:4860::8888",
        "2620:fe::fe",
        "2001:200::1",  # just outside 2001::/23
        "3fff:1000::1",  # just outside 3fff::/20
        "64:ff9b::808:808",  # NAT64 of 8.8.8.8
        "::ffff:8.8.8.8",
        "2002:0808:0808::1",  # 6to4 of 8.8.8.8
    ],
)
def test_global_addresses_are_accepted(address):
    url = f"https://[{address}]/hook" if ":" in address else f"https://{address}/hook"
    assert outbound.check_url(url).addresses == (ipaddress.ip_address(address),)


def test_a_name_with_one_address_that_is_not_public_is_refused(reg, monkeypatch):
    monkeypatch.delenv(outbound.ALLOW_HOSTS_ENV)
    monkeypatch.setattr(
        socket,
        "getaddrinfo",
        lambda host, port, *a, **k: [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.215.14", port)),
            (socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("::169.254.169.254", port, 0, 0)),
        ],
    )
    with pytest.raises(InvalidInput) as caught:
        reg.add_webhook("ci", "https://hooks.example.com/hook")
    assert (
        f"host 'hooks.example.com' resolves to ::a9fe:a9fe, {_COMPATIBLE} 169.254.169.254)"
        in str(caught.value)
    )
    assert reg.webhooks() == []


@pytest.mark.parametrize(
    ("rebound", "why"),
    [
        ("127.0.0.1", "127.0.0.1, a loopback address"),
        ("::a9fe:a9fe", f"::a9fe:a9fe, {_COMPATIBLE} 169.254.169.254)"),
    ],
)
def test_dns_rebinding_between_check_and_connect_reaches_nothing(reg, monkeypatch, rebound, why):
    monkeypatch.delenv(outbound.ALLOW_HOSTS_ENV)
    answers = iter(["93.184.215.14", rebound])
    real = socket.getaddrinfo

    def resolve(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "hooks.example.com":
            address = next(answers)
            if ":" in address:
                return [(socket.AF_INET6, socket.SOCK_STREAM, 6, "", (address, port, 0, 0))]
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    reg.add_webhook("ci", "https://hooks.example.com/hook")  # resolved once: public
    reg.register("churn", "m.bin")
    sent: list[httpx.Request] = []
    transport = httpx.MockTransport(lambda request: sent.append(request) or httpx.Response(200))

    with httpx.Client(transport=transport) as client:
        counts = deliver(reg, Clock(), client=client)  # resolved again: loopback

    assert counts["retrying"] == 1
    assert sent == []
    (entry,) = reg.webhook_deliveries("ci")
    assert entry["status"] == "retrying"
    assert entry["status_code"] is None
    assert "refused before connecting" in entry["error"]
    assert why in entry["error"]


# -- registering, listing, removing -----------------------------------------------------------


def test_secrets_are_shown_once_and_never_listed_or_audited(reg, receiver):
    url = receiver.url + "/T0001/token-in-the-path"
    made = reg.add_webhook("ci", url, actions=["alias.", "version.create"], secret=SECRET)
    generated = reg.add_webhook("cd", receiver.url)["secret"]
    assert len(generated) >= 40
    reg.register("churn", "m.bin")
    reg.deliver_webhooks()

    assert made["actions"] == ["alias.", "version.create"]
    listed = reg.webhooks()
    assert [w["name"] for w in listed] == ["cd", "ci"]
    assert all("secret" not in w for w in listed)
    (event,) = reg.audit(action="webhook.add", entity="ci")
    assert event.after["origin"] == f"http://127.0.0.1:{receiver.port}"
    assert event.after["url_sha256"] == hashlib.sha256(url.encode()).hexdigest()
    everything = json.dumps(
        [listed, [e.to_dict() for e in reg.audit(limit=1000)], reg.webhook_deliveries()]
    )
    for secret in (SECRET, generated):
        assert secret not in everything
    assert "token-in-the-path" not in json.dumps([e.to_dict() for e in reg.audit(limit=1000)])
    assert reg.verify_audit().ok


def test_names_actions_and_secrets_are_checked(reg, receiver):
    reg.add_webhook("ci", receiver.url)
    with pytest.raises(Conflict, match="already exists"):
        reg.add_webhook("ci", receiver.url)
    with pytest.raises(InvalidInput, match="webhook name"):
        reg.add_webhook("CI hook", receiver.url)
    with pytest.raises(InvalidInput, match=r"webhook action 'alias\*' is invalid"):
        reg.add_webhook("cd", receiver.url, actions=["alias.set", "alias*"])
    with pytest.raises(InvalidInput, match="as a list"):
        reg.add_webhook("cd", receiver.url, actions="alias.")
    with pytest.raises(InvalidInput, match="secret"):
        reg.add_webhook("cd", receiver.url, secret="short")


def test_removing_a_webhook_is_audited_and_stops_deliveries(reg, receiver):
    reg.add_webhook("ci", receiver.url)
    reg.register("churn", "m.bin")
    reg.deliver_webhooks()
    removed = reg.remove_webhook("ci")
    assert removed["name"] == "ci"
    assert "secret" not in removed
    (event,) = reg.audit(action="webhook.remove")
    assert event.before["name"] == "ci"
    reg.register("churn", "m.bin")
    assert reg.deliver_webhooks()["webhooks"] == 0
    assert reg.webhooks() == []
    with pytest.raises(NotFound, match="no webhook is named 'ci'"):
        reg.remove_webhook("ci")
    with pytest.raises(NotFound):
        reg.webhook_deliveries("ci")


def test_a_webhook_being_delivered_by_one_worker_is_skipped_by_another(reg, receiver):
    reg.add_webhook("ci", receiver.url)
    reg.register("churn", "m.bin")
    hook_id = reg.db.read(lambda conn: conn.execute(webhooks.schema.webhooks.select()).one().id)
    moment = Clock()()
    job = reg.db.write(lambda conn: webhook_delivery._claim(conn, hook_id, moment))
    assert not isinstance(job, str)
    assert deliver(reg, Clock())["delivered"] == 0  # leased by the first worker
    assert receiver.requests == []


def test_importing_webhooks_does_not_import_httpx():
    code = "import sys, modelreg.webhooks; print('httpx' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
