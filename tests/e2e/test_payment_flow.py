"""HTTP -> Kafka -> processor -> bank -> PostgreSQL -> results: every test card, end to end."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest

from tests.e2e.helpers import (
    db_audit,
    db_payment,
    decoded,
    executed,
    ledger,
    topic_messages,
)
from tests.fixtures.service import Merchant, Service, eventually, payment_body

pytestmark = pytest.mark.e2e

# card -> (status, decline_code)
CARDS = {
    "4242424242424242": ("captured", None),
    "4111111111111111": ("captured", None),
    "4000000000000002": ("failed", "generic_decline"),
    "4000000000009995": ("failed", "insufficient_funds"),
    "4000000000009987": ("failed", "lost_card"),
    "4000000000009979": ("failed", "stolen_card"),
    "4000000000000069": ("failed", "expired_card"),
    "4000000000000127": ("failed", "incorrect_cvc"),
    "4000000000000119": ("failed", "processing_error"),
}


@pytest.mark.parametrize(("card", "expected"), CARDS.items(), ids=list(CARDS))
async def test_test_card_outcome_everywhere(
    card: str,
    expected: tuple[str, str | None],
    service: Service,
    merchant: Merchant,
    http: aiohttp.ClientSession,
) -> None:
    status, decline_code = expected
    async with http.post(
        "/api/v1/payments/process",
        json=payment_body(merchant.merchant_id, card),
        headers=merchant.headers,
    ) as resp:
        body = await resp.json()
        assert resp.status == 200, body
    txn = body["transaction_id"]
    assert body["status"] == status
    assert body["decline_code"] == decline_code
    assert body["card"]["last4"] == card[-4:]
    assert card not in json.dumps(body)

    row = await db_payment(service, txn)
    assert row is not None
    assert row["status"] == status
    assert row["decline_code"] == decline_code
    assert row["amount_minor"] == 2500

    entries = await ledger(service, txn)
    # Automatic capture is one sale at the bank (issue 14): no separate authorize or capture.
    assert len(executed(entries, "sale")) == (1 if status == "captured" else 0)
    assert [e["operation"] for e in entries] == ["sale"]

    audit = await db_audit(service, txn)
    assert audit[0]["action"] == "payment.received"
    assert audit[-1]["to_status"] == status

    results = decoded(await topic_messages(service, service.topic("results")))
    mine = [r for r in results if r["data"]["transaction_id"] == txn]
    assert mine
    assert mine[-1]["data"]["payment"]["status"] == status
    # Audit events are the audit rows, published by the relay shortly after they commit.
    published = {str(r["event_id"]) for r in audit}

    async def relayed() -> bool:
        audits = decoded(await topic_messages(service, service.topic("audit")))
        return published <= {a["data"]["event_id"] for a in audits}

    await eventually(relayed, what=f"the audit rows of {txn} on the audit topic")


async def test_get_payment_and_merchant_isolation(
    merchant: Merchant, merchant_factory: Callable[[], Merchant], http: aiohttp.ClientSession
) -> None:
    async with http.post(
        "/api/v1/payments/process",
        json=payment_body(merchant.merchant_id),
        headers=merchant.headers,
    ) as resp:
        created = await resp.json()
    txn = created["transaction_id"]
    async with http.get(f"/api/v1/payments/{txn}", headers=merchant.headers) as resp:
        assert resp.status == 200
        assert (await resp.json())["status"] == "captured"
    other = merchant_factory()
    async with http.get(f"/api/v1/payments/{txn}", headers=other.headers) as resp:
        assert resp.status == 404
        assert (await resp.json())["error"]["code"] == "resource_missing"
    async with http.get(f"/api/v1/payments/{txn}") as resp:
        assert resp.status == 401


async def test_merchant_id_must_match_key(merchant: Merchant, http: aiohttp.ClientSession) -> None:
    async with http.post(
        "/api/v1/payments/process", json=payment_body("someone_else"), headers=merchant.headers
    ) as resp:
        assert resp.status == 422
        assert (await resp.json())["error"]["param"] == "merchant_id"


@pytest.mark.parametrize(
    ("change", "param"),
    [
        ({"amount": "10.001"}, "amount"),
        ({"amount": "-1"}, "amount"),
        ({"currency": "XXX"}, "currency"),
        ({"unknown_field": 1}, "unknown_field"),
        ({"description": "x" * 501}, "description"),
        ({"metadata": {f"k{i}": "v" for i in range(51)}}, "metadata"),
    ],
)
async def test_validation_errors_are_specific_and_change_nothing(
    change: dict[str, Any],
    param: str,
    service: Service,
    merchant: Merchant,
    http: aiohttp.ClientSession,
) -> None:
    body = payment_body(merchant.merchant_id, **change)
    async with http.post("/api/v1/payments/process", json=body, headers=merchant.headers) as resp:
        error = await resp.json()
        assert resp.status == 422, error
    assert error["error"]["param"] == param
    assert error["correlation_id"]


async def test_card_validation_never_echoes_the_number(
    merchant: Merchant, http: aiohttp.ClientSession
) -> None:
    body = payment_body(merchant.merchant_id, card="4242424242424241")  # fails Luhn
    async with http.post("/api/v1/payments/process", json=body, headers=merchant.headers) as resp:
        text = await resp.text()
        assert resp.status == 422
    assert "424242424242424" not in text
    assert json.loads(text)["error"]["param"] == "card_data.card_number"


async def test_malformed_json_and_oversized_body(
    merchant: Merchant, http: aiohttp.ClientSession
) -> None:
    async with http.post(
        "/api/v1/payments/process", data=b"{not json", headers=merchant.headers
    ) as resp:
        assert resp.status == 400
        assert (await resp.json())["error"]["code"] == "malformed_json"
    async with http.post(
        "/api/v1/payments/process", data=b"x" * (65 * 1024), headers=merchant.headers
    ) as resp:
        assert resp.status == 413


async def test_idempotent_replay(
    merchant: Merchant, service: Service, http: aiohttp.ClientSession
) -> None:
    body = payment_body(merchant.merchant_id)
    headers = {**merchant.headers, "Idempotency-Key": "order-1"}
    async with http.post("/api/v1/payments/process", json=body, headers=headers) as resp:
        first = await resp.json()
        assert resp.status == 200
        assert "Idempotent-Replayed" not in resp.headers
    async with http.post("/api/v1/payments/process", json=body, headers=headers) as resp:
        second = await resp.json()
        assert resp.status == 200
        assert resp.headers["Idempotent-Replayed"] == "true"
    assert second["transaction_id"] == first["transaction_id"]
    changed = {**body, "amount": "26.00"}
    async with http.post("/api/v1/payments/process", json=changed, headers=headers) as resp:
        assert resp.status == 422
        assert (await resp.json())["error"]["code"] == "idempotency_key_reused"
    entries = await ledger(service, first["transaction_id"])
    assert len(executed(entries, "sale")) == 1


async def test_concurrent_requests_with_one_key_charge_once(
    merchant: Merchant, service: Service, http: aiohttp.ClientSession
) -> None:
    body = payment_body(merchant.merchant_id)
    headers = {**merchant.headers, "Idempotency-Key": "concurrent-key"}

    async def attempt() -> tuple[int, dict[str, Any]]:
        async with http.post("/api/v1/payments/process", json=body, headers=headers) as resp:
            return resp.status, await resp.json()

    answers = await asyncio.gather(*(attempt() for _ in range(20)))
    statuses = sorted({s for s, _ in answers})
    assert set(statuses) <= {200, 202, 409}, answers
    ids = {b["transaction_id"] for s, b in answers if s in (200, 202)}
    assert len(ids) == 1
    txn = ids.pop()

    async def final() -> bool:
        row = await db_payment(service, txn)
        return row is not None and row["status"] == "captured"

    await eventually(final, what="the payment to be captured")
    entries = await ledger(service, txn)
    assert len(executed(entries, "sale")) == 1
    assert [e["operation"] for e in entries] == ["sale"]
