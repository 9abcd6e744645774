"""Webhooks without a network: the SSRF guard, signatures, sealed secrets, the event table,
backoff, and the audit reader's handling of rows that commit late."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest

from payment_service.config.webhooks import WebhookSettings
from payment_service.core.errors import InvalidRequest
from payment_service.core.records import CardDetails, NewPayment
from payment_service.core.states import PaymentStatus
from payment_service.core.webhooks import (
    EVENT_TYPES,
    AuditEntry,
    NewEvent,
    event_id,
    event_type,
    matches,
    new_signing_secret,
)
from payment_service.webhooks import signing
from payment_service.webhooks.dispatcher import backoff
from payment_service.webhooks.events import EventReader
from payment_service.webhooks.secrets import SecretBox, SecretUnreadable
from payment_service.webhooks.ssrf import UrlGuard, address_allowed, check_syntax, literal_refused
from tests.unit.fakes import record_of

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1",
        "0.0.0.0", "224.0.0.1", "240.0.0.1", "255.255.255.255", "192.0.2.1", "::1", "::",
        "fe80::1", "fc00::1", "ff02::1", "::ffff:127.0.0.1", "::ffff:169.254.169.254",
        "2001:db8::1", "not-an-ip",
    ],
)  # fmt: skip
def test_private_loopback_link_local_multicast_and_reserved_addresses_are_refused(
    address: str,
) -> None:
    assert not address_allowed(address)


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111"])
def test_public_addresses_are_allowed(address: str) -> None:
    assert address_allowed(address)


def test_the_development_flag_allows_private_addresses() -> None:
    assert address_allowed("127.0.0.1", allow_private=True)
    assert not literal_refused("http://127.0.0.1:9/x", allow_private=True)
    assert literal_refused("http://127.0.0.1:9/x", allow_private=False)
    assert literal_refused("http://[::1]:9/x", allow_private=False)
    assert not literal_refused("https://example.com/x", allow_private=False)


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/x", "file:///etc/passwd", "gopher://example.com", "example.com/x",
        "http:///nohost", "https://user:pw@example.com/", "http://example.com:99999/",
        "http://exa mple.com/", "https://example.com/\x00", "https://" + "a" * 2050 + ".com",
    ],
)  # fmt: skip
def test_urls_other_than_plain_http_or_https_are_refused(url: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        check_syntax(url)
    assert caught.value.code == "invalid_webhook_url"


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:8080/hook", "http://localhost/hook", "https://169.254.169.254/latest",
     "http://[::1]/", "http://10.0.0.1/"],
)  # fmt: skip
async def test_the_guard_refuses_names_and_literals_of_private_addresses(url: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        await UrlGuard(allow_private=False).check(url)
    assert caught.value.param == "url"


async def test_the_guard_lets_local_urls_through_in_development() -> None:
    await UrlGuard(allow_private=True).check("http://127.0.0.1:8080/hook")


def test_a_signature_verifies_and_any_change_breaks_it() -> None:
    secret, body = new_signing_secret(), b'{"id":"evt_1"}'
    header = signing.header_value(secret, body, timestamp=1_700_000_000)
    assert header.startswith("t=1700000000,v1=")
    assert signing.verify(header, body, secret, now=1_700_000_010) == 1_700_000_000
    for bad_body, bad_secret, now in (
        (body + b" ", secret, 1_700_000_010),
        (body, secret + "x", 1_700_000_010),
        (body, secret, 1_700_000_000 + 301),  # replayed too late
    ):
        with pytest.raises(signing.SignatureError):
            signing.verify(header, bad_body, bad_secret, now=now)
    for malformed in (None, "", "v1=abc", "t=x,v1=abc", "t=1700000000"):
        with pytest.raises(signing.SignatureError):
            signing.verify(malformed, body, secret, now=1_700_000_000)


def test_the_signature_is_stripes_scheme() -> None:
    # HMAC-SHA256 over "<t>.<body>" keyed with the whole secret string, as Stripe's libraries do.
    import hashlib
    import hmac

    secret, body, t = "whsec_test", b"{}", 1_700_000_000
    expected = hmac.new(secret.encode(), b"1700000000.{}", hashlib.sha256).hexdigest()
    assert signing.header_value(secret, body, timestamp=t) == f"t={t},v1={expected}"


def test_a_sealed_secret_opens_only_for_its_endpoint_and_key() -> None:
    box = SecretBox(b"k" * 32)
    envelope = box.seal("whsec_abc", "we_12345678")
    assert "whsec_abc" not in envelope
    assert box.open(envelope, "we_12345678") == "whsec_abc"
    with pytest.raises(SecretUnreadable):
        box.open(envelope, "we_other0000")
    with pytest.raises(SecretUnreadable):
        SecretBox(b"j" * 32).open(envelope, "we_12345678")
    with pytest.raises(SecretUnreadable):
        box.open("v0:garbage", "we_12345678")


@pytest.mark.parametrize(
    ("action", "to_status", "expected"),
    [
        ("payment.received", "processing", None),
        ("authorization_approved", "authorized", None),
        ("capture_approved", "captured", "payment.captured"),
        ("authorization_declined", "failed", "payment.failed"),
        ("authorization_unknown", "unknown", "payment.unknown"),
        ("capture_unknown", "unknown_capture", "payment.unknown"),
        ("authorized_manual", "requires_capture", "payment.requires_capture"),
        ("void_approved", "canceled", "payment.canceled"),
        ("payment.partially_refunded", "partially_refunded", "payment.refunded"),
        ("refund.requested", "processing", None),
        ("refund.completed", "completed", "refund.succeeded"),
        ("refund.failed", "failed", "refund.failed"),
        ("anything", None, None),
    ],
)
def test_each_transition_names_its_event(action: str, to_status: str | None, expected: Any) -> None:
    assert event_type(action, to_status) == expected
    assert expected is None or expected in EVENT_TYPES


def test_subscriptions_and_ids() -> None:
    assert matches(("*",), "payment.failed")
    assert matches(("payment.failed",), "payment.failed")
    assert not matches(("payment.captured",), "payment.failed")
    audit = uuid.uuid4()
    assert event_id(audit) == event_id(audit) == f"evt_{audit.hex}"


def test_backoff_doubles_up_to_its_cap() -> None:
    settings = WebhookSettings(retry_base_seconds=60, retry_max_seconds=3600)
    waits = [backoff(settings, n).total_seconds() for n in range(1, 9)]
    assert waits == [60, 120, 240, 480, 960, 1920, 3600, 3600]
    assert backoff(settings, 10_000).total_seconds() == 3600


class _Store:
    """The event store's reading side in memory: rows become visible when a test says so, and
    are read in commit order, as PostgreSQL's store reads them."""

    def __init__(self) -> None:
        self.visible: dict[tuple[int, int], AuditEntry] = {}
        self.events: dict[str, NewEvent] = {}
        self.saved_cursor: tuple[int, int] = (0, 0)

    async def cursor(self, settle: dt.timedelta) -> tuple[int, int]:
        return self.saved_cursor

    async def audit_after(self, position: tuple[int, int], limit: int) -> list[AuditEntry]:
        return [self.visible[p] for p in sorted(self.visible) if p > position][:limit]

    async def record(
        self, events: list[NewEvent], cursor: tuple[int, int], give_up: dt.timedelta
    ) -> None:
        for e in events:
            self.events.setdefault(e.event_id, e)
        self.saved_cursor = cursor


class _Refunds:
    async def get_refund(self, refund_id: str, *, merchant_id: str | None = None) -> Any:
        return None


class _Payments:
    def __init__(self, payment: Any) -> None:
        self.payment = payment

    async def get_payment(self, transaction_id: str, *, merchant_id: str | None = None) -> Any:
        return self.payment


def _payment() -> Any:
    card = CardDetails("visa", "4242", 12, 2030, "Ada Lovelace", fingerprint="fp")
    new = NewPayment("t1", "m1", 2500, "USD", "credit_card", card, number_envelope="envelope")
    return record_of(new, status=PaymentStatus.CAPTURED, captured_minor=2500)


def _row(i: int, xid: int) -> AuditEntry:
    return AuditEntry(
        i, uuid.uuid4(), "t1", None, "m1", "capture_approved", "captured", dt.datetime.now(dt.UTC),
        xid,
    )  # fmt: skip


def _reader(store: _Store) -> EventReader:
    fakes: Any = (store, _Payments(_payment()), _Refunds())  # the ports, structurally
    return EventReader(*fakes, give_up=dt.timedelta(days=3))


async def test_a_row_that_commits_after_a_later_one_still_becomes_its_event() -> None:
    store = _Store()
    reader = _reader(store)
    # Row 2 was inserted before 3, and its transaction (xid 30) ended after row 3's (xid 20).
    store.visible = {(10, 1): _row(1, 10), (20, 3): _row(3, 20)}
    assert await reader.step() == 2
    assert len(store.events) == 2
    assert store.saved_cursor == (20, 3)
    store.visible[(30, 2)] = _row(2, 30)
    assert await reader.step() == 1
    assert len(store.events) == 3
    assert store.saved_cursor == (30, 2)
    ids = {e.event_id for e in store.events.values()}
    assert ids == {event_id(r.event_id) for r in store.visible.values()}
    assert all(
        e.data["card"]["last4"] and "number" not in str(e.data) for e in store.events.values()
    )
    # Read again from the start (a restart): the same events, none added.
    again = _reader(store)
    store.saved_cursor = (0, 0)
    await again.step()
    assert len(store.events) == 3


def test_the_openapi_document_covers_every_webhook_and_event_route() -> None:
    from payment_service.http.routes import openapi_document

    paths = openapi_document()["paths"]
    for path, method in [
        ("/api/v1/webhook_endpoints", "post"), ("/api/v1/webhook_endpoints", "get"),
        ("/api/v1/webhook_endpoints/{endpoint_id}", "get"),
        ("/api/v1/webhook_endpoints/{endpoint_id}", "delete"),
        ("/api/v1/webhook_endpoints/{endpoint_id}/deliveries", "get"),
        ("/api/v1/events", "get"), ("/api/v1/events/{event_id}", "get"),
        ("/api/v1/events/{event_id}/redeliver", "post"),
    ]:  # fmt: skip
        assert method in paths[path], (method, path)


def test_production_refuses_private_webhook_urls(monkeypatch: pytest.MonkeyPatch) -> None:
    from pydantic import ValidationError

    from payment_service.config.settings import Settings

    monkeypatch.setenv("ENVIRONMENT", "production")
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("WEBHOOKS_ALLOW_PRIVATE_URLS", "true")
    with pytest.raises(ValidationError, match="WEBHOOKS_ALLOW_PRIVATE_URLS"):
        Settings()
    monkeypatch.setenv("WEBHOOKS_ALLOW_PRIVATE_URLS", "false")
    assert not Settings().webhooks.allow_private_urls
