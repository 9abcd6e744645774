"""Webhooks and events end to end: a real receiver checks every signature; a receiver down for
a while gets everything afterwards, once per event id; a slow endpoint does not hold up another
merchant's; every new endpoint is the caller's own; the events list pages at its edges."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest

from tests.e2e.webhook_receiver import Receiver
from tests.fixtures.service import Merchant, Service, eventually, payment_body

# The first test here also pays for starting the session's service, slow on a busy machine.
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]
CARD = "4242424242424242"


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = Receiver()
    await r.start()
    yield r
    if r.hold is not None:
        r.hold.set()
    await r.stop()


async def _register(
    http: aiohttp.ClientSession, merchant: Merchant, url: str, events: list[str] | None = None
) -> dict[str, Any]:
    body = {"url": url, "enabled_events": events or ["*"], "description": "e2e"}
    async with http.post("/api/v1/webhook_endpoints", json=body, headers=merchant.headers) as r:
        endpoint: dict[str, Any] = await r.json()
        assert r.status == 201, endpoint
    assert endpoint["secret"].startswith("whsec_")
    return endpoint


async def _pay(http: aiohttp.ClientSession, merchant: Merchant, **overrides: Any) -> dict[str, Any]:
    body = payment_body(merchant.merchant_id, **overrides)
    async with http.post("/api/v1/payments/process", json=body, headers=merchant.headers) as r:
        payment: dict[str, Any] = await r.json()
        assert r.status == 200, payment
    return payment


async def _get(http: aiohttp.ClientSession, merchant: Merchant, path: str) -> tuple[int, Any]:
    async with http.get(path, headers=merchant.headers) as r:
        return r.status, await r.json()


async def test_signed_webhooks_for_a_payment_and_its_refund(
    service: Service, http: aiohttp.ClientSession, merchant: Merchant, receiver: Receiver
) -> None:
    endpoint = await _register(http, merchant, receiver.url)
    receiver.secret = endpoint["secret"]
    # The secret is shown once: never again by GET or the list.
    status, shown = await _get(http, merchant, f"/api/v1/webhook_endpoints/{endpoint['id']}")
    assert status == 200
    assert "secret" not in shown
    assert shown["enabled_events"] == ["*"]

    payment = await _pay(http, merchant, amount="30.00")
    txn = payment["transaction_id"]
    async with http.post(
        f"/api/v1/payments/{txn}/refund", json={"amount": "10.00"}, headers=merchant.headers
    ) as r:
        refund = await r.json()
        assert r.status == 200, refund

    def arrived() -> bool:
        types = sorted(e["type"] for e in receiver.of(txn))
        return types == ["payment.captured", "payment.refunded", "refund.succeeded"]

    await eventually(_async(arrived), timeout=60, what="the three webhooks")
    assert receiver.bad_signatures == 0
    for event in receiver.received:
        text = json.dumps(event)
        assert CARD not in text
        assert event["data"]["object"].get("card", {}).get("last4") in (None, "4242")
    captured = next(e for e in receiver.received if e["type"] == "payment.captured")
    assert captured["data"]["object"]["status"] == "captured"
    succeeded = next(e for e in receiver.received if e["type"] == "refund.succeeded")
    assert succeeded["data"]["object"]["refund_id"] == refund["refund_id"]

    # The same events, as the events API shows them (newest first).
    status, listed = await _get(http, merchant, "/api/v1/events?limit=100")
    assert status == 200
    assert {e["id"] for e in listed["data"]} == set(receiver.ids())
    assert listed["data"] == sorted(listed["data"], key=lambda e: e["created_at"], reverse=True)
    status, one = await _get(http, merchant, f"/api/v1/events/{captured['id']}")
    assert (status, one) == (200, captured)

    # The delivery log, and a redelivery: the same event, with the same id, once more.
    path = f"/api/v1/webhook_endpoints/{endpoint['id']}/deliveries"
    status, log = await _get(http, merchant, path)
    assert status == 200
    assert {d["status"] for d in log["data"]} == {"succeeded"}
    assert {d["event_id"] for d in log["data"]} == set(receiver.ids())
    async with http.post(
        f"/api/v1/events/{captured['id']}/redeliver", headers=merchant.headers
    ) as r:
        assert r.status == 202, await r.text()
    await eventually(
        _async(lambda: receiver.ids().count(captured["id"]) == 2), what="the redelivery"
    )


def _async(check: Callable[[], bool]) -> Callable[[], Any]:
    async def probe() -> bool:
        return check()

    return probe


async def test_a_receiver_down_for_a_while_gets_everything_once(
    service: Service, http: aiohttp.ClientSession, merchant: Merchant
) -> None:
    down = Receiver()  # not started: its port refuses connections
    endpoint = await _register(http, merchant, down.url, ["payment.captured", "payment.failed"])
    down.secret = endpoint["secret"]
    paid = [await _pay(http, merchant) for _ in range(3)]
    declined = await _pay(http, merchant, card_data=_card("4000000000000002"))
    assert declined["status"] == "failed"
    path = f"/api/v1/webhook_endpoints/{endpoint['id']}/deliveries?limit=100"

    async def retried() -> bool:
        _, log = await _get(http, merchant, path)
        return len(log["data"]) == 4 and all(
            d["attempts"] >= 2 and d["status"] == "pending" and d["last_error"] for d in log["data"]
        )

    await eventually(retried, timeout=60, what="every delivery to fail and be retried")
    down.status = 500  # up, but failing: still retried
    await down.start()
    try:

        async def answered_500() -> bool:
            _, log = await _get(http, merchant, path)
            return any(d["last_status_code"] == 500 for d in log["data"])

        await eventually(answered_500, timeout=60, what="an attempt answered 500")
        assert down.received == []
        down.status = 200
        want = {p["transaction_id"] for p in [*paid, declined]}

        def all_arrived() -> bool:
            return {e["data"]["object"]["transaction_id"] for e in down.received} == want

        await eventually(_async(all_arrived), timeout=60, what="every event after the outage")
        await eventually(retried_done(http, merchant, path), what="the log to show success")
        ids = down.ids()
        assert len(ids) == len(set(ids)) == 4, ids
        assert sorted(e["type"] for e in down.received) == ["payment.captured"] * 3 + [
            "payment.failed"
        ]
        assert down.bad_signatures == 0
    finally:
        await down.stop()


def _card(number: str) -> dict[str, Any]:
    card: dict[str, Any] = payment_body("m")["card_data"]
    return {**card, "card_number": number}


def retried_done(http: aiohttp.ClientSession, merchant: Merchant, path: str) -> Any:
    async def probe() -> bool:
        _, log = await _get(http, merchant, path)
        return {d["status"] for d in log["data"]} == {"succeeded"}

    return probe


async def test_a_slow_endpoint_does_not_delay_another_merchants_deliveries(
    service: Service,
    http: aiohttp.ClientSession,
    merchant_factory: Callable[[], Merchant],
) -> None:
    slow_merchant, quick_merchant = merchant_factory(), merchant_factory()
    slow, quick = Receiver(hold=asyncio.Event()), Receiver()
    await slow.start()
    await quick.start()
    try:
        slow.secret = (await _register(http, slow_merchant, slow.url))["secret"]
        quick.secret = (await _register(http, quick_merchant, quick.url))["secret"]
        for _ in range(3):
            await _pay(http, slow_merchant)
        await eventually(_async(lambda: slow.in_flight > 0), what="the slow endpoint to be held")
        payment = await _pay(http, quick_merchant)
        # Delivered while the slow endpoint still holds its request (nothing answered there).
        await eventually(
            _async(lambda: bool(quick.of(payment["transaction_id"]))),
            timeout=60,
            what="the other merchant's webhook",
        )
        assert slow.in_flight > 0
        assert slow.received == []
    finally:
        assert slow.hold is not None
        slow.hold.set()
        await slow.stop()
        await quick.stop()


async def test_every_new_endpoint_is_the_callers_own(
    service: Service,
    http: aiohttp.ClientSession,
    merchant_factory: Callable[[], Merchant],
    receiver: Receiver,
) -> None:
    owner, other = merchant_factory(), merchant_factory()
    endpoint = await _register(http, owner, receiver.url)
    receiver.secret = endpoint["secret"]
    payment = await _pay(http, owner)
    await eventually(_async(lambda: bool(receiver.of(payment["transaction_id"]))), timeout=60)
    event_id = receiver.received[0]["id"]
    we = endpoint["id"]
    for path in (
        f"/api/v1/webhook_endpoints/{we}",
        f"/api/v1/webhook_endpoints/{we}/deliveries",
        f"/api/v1/events/{event_id}",
        f"/api/v1/events?starting_after={event_id}",
        f"/api/v1/events?ending_before={event_id}",
    ):
        status, body = await _get(http, other, path)
        assert status == 404, (path, body)
        assert event_id not in json.dumps(body)
    for method, path in (
        ("DELETE", f"/api/v1/webhook_endpoints/{we}"),
        ("POST", f"/api/v1/events/{event_id}/redeliver"),
    ):
        async with http.request(method, path, headers=other.headers) as r:
            assert r.status == 404, (path, await r.text())
    for path in ("/api/v1/webhook_endpoints", "/api/v1/events"):
        status, listed = await _get(http, other, path)
        assert (status, listed["data"]) == (200, [])
    # Untouched: the owner still has both, and no second delivery was queued.
    assert (await _get(http, owner, f"/api/v1/webhook_endpoints/{we}"))[0] == 200
    assert receiver.ids().count(event_id) == 1
    # Without a key, nothing at all.
    async with http.get("/api/v1/events") as r:
        assert r.status == 401


async def test_bad_endpoints_are_refused_and_change_nothing(
    service: Service, http: aiohttp.ClientSession, merchant: Merchant
) -> None:
    bad: list[tuple[dict[str, Any], str]] = [
        ({"url": "ftp://example.com/x", "enabled_events": ["*"]}, "invalid_webhook_url"),
        ({"url": "https://u:p@example.com/", "enabled_events": ["*"]}, "invalid_webhook_url"),
        ({"url": "https://example.com/", "enabled_events": ["payment.nope"]},
         "invalid_enabled_events"),
        ({"url": "https://example.com/", "enabled_events": []}, "validation_error"),
        ({"url": "https://example.com/"}, "validation_error"),
        ({"url": "https://example.com/", "enabled_events": ["*"], "secret": "mine"},
         "validation_error"),
    ]  # fmt: skip
    for body, code in bad:
        async with http.post("/api/v1/webhook_endpoints", json=body, headers=merchant.headers) as r:
            answer = await r.json()
            assert r.status in (400, 422), answer
            assert answer["error"]["code"] == code, answer
    status, listed = await _get(http, merchant, "/api/v1/webhook_endpoints")
    assert (status, listed["data"]) == (200, [])
    for path in ("/api/v1/webhook_endpoints/we_nothere00", "/api/v1/events/evt_x"):
        assert (await _get(http, merchant, path))[0] == 404


async def test_deleting_an_endpoint_stops_its_deliveries(
    service: Service, http: aiohttp.ClientSession, merchant: Merchant, receiver: Receiver
) -> None:
    endpoint = await _register(http, merchant, receiver.url)
    async with http.delete(
        f"/api/v1/webhook_endpoints/{endpoint['id']}", headers=merchant.headers
    ) as r:
        assert (r.status, (await r.json())["deleted"]) == (200, True)
    assert (await _get(http, merchant, f"/api/v1/webhook_endpoints/{endpoint['id']}"))[0] == 404
    payment = await _pay(http, merchant)

    async def listed() -> bool:
        _, events = await _get(http, merchant, "/api/v1/events")
        return any(e["data"]["object"]["transaction_id"] == payment["transaction_id"]
                   for e in events["data"])  # fmt: skip

    await eventually(listed, timeout=60, what="the event")
    assert receiver.received == []


async def test_the_events_list_pages_at_its_edges(
    service: Service, http: aiohttp.ClientSession, merchant: Merchant
) -> None:
    for _ in range(3):
        await _pay(http, merchant)

    async def three() -> list[dict[str, Any]] | None:
        _, page = await _get(http, merchant, "/api/v1/events?limit=100&type=payment.captured")
        return page["data"] if len(page["data"]) == 3 else None

    everything = await eventually(three, timeout=60, what="three events")
    ids = [e["id"] for e in everything]
    status, first = await _get(http, merchant, "/api/v1/events?limit=1")
    assert (status, [e["id"] for e in first["data"]], first["has_more"]) == (200, ids[:1], True)
    _, middle = await _get(http, merchant, f"/api/v1/events?limit=1&starting_after={ids[0]}")
    assert ([e["id"] for e in middle["data"]], middle["has_more"]) == (ids[1:2], True)
    _, last = await _get(http, merchant, f"/api/v1/events?limit=5&starting_after={ids[1]}")
    assert ([e["id"] for e in last["data"]], last["has_more"]) == (ids[2:], False)
    _, back = await _get(http, merchant, f"/api/v1/events?limit=1&ending_before={ids[2]}")
    assert ([e["id"] for e in back["data"]], back["has_more"]) == (ids[1:2], True)
    _, top = await _get(http, merchant, f"/api/v1/events?ending_before={ids[0]}")
    assert (top["data"], top["has_more"]) == ([], False)
    _, typed = await _get(http, merchant, "/api/v1/events?type=refund.succeeded")
    assert typed["data"] == []
    for query, param in (
        ("limit=0", "limit"), ("limit=101", "limit"), ("limit=ten", "limit"),
        (f"starting_after={ids[0]}&ending_before={ids[1]}", "ending_before"),
        ("type=payment.nope", "type"),
    ):  # fmt: skip
        status, answer = await _get(http, merchant, f"/api/v1/events?{query}")
        assert (status, answer["error"]["param"]) == (400, param), answer


@pytest.mark.fault  # starts an API of its own
async def test_without_the_development_flag_private_urls_are_refused(
    service: Service, merchant: Merchant
) -> None:
    strict = {"API_INSTANCE": "2", "WEBHOOKS_ALLOW_PRIVATE_URLS": "false"}
    async with (
        service.spawn("strict-webhooks-api", **strict) as (_, url),
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as client,
    ):
        for target in (
            "http://127.0.0.1:9/hooks", "http://localhost:9/hooks", "http://[::1]/hooks",
            "http://169.254.169.254/latest/meta-data", "http://10.0.0.1/", "http://2130706433/",
        ):  # fmt: skip
            body = {"url": target, "enabled_events": ["*"]}
            async with client.post(
                f"{url}/api/v1/webhook_endpoints", json=body, headers=merchant.headers
            ) as r:
                answer = await r.json()
                assert r.status == 400, (target, answer)
                assert answer["error"]["code"] == "invalid_webhook_url", answer
        async with client.get(f"{url}/api/v1/webhook_endpoints", headers=merchant.headers) as r:
            assert (await r.json())["data"] == []
