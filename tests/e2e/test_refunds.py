"""Refunds end to end: partial, rest, refused beyond captured, races, retries and crashes."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import aiohttp
import asyncpg
import pytest

from tests.e2e.helpers import executed, ledger
from tests.fixtures.service import Merchant, Service, eventually, payment_body

pytestmark = pytest.mark.e2e


async def _captured_payment(
    http: aiohttp.ClientSession, merchant: Merchant, amount: str = "100.00"
) -> str:
    body = payment_body(merchant.merchant_id, amount=amount)
    async with http.post("/api/v1/payments/process", json=body, headers=merchant.headers) as resp:
        payment = await resp.json()
        assert (resp.status, payment["status"]) == (200, "captured"), payment
    return str(payment["transaction_id"])


async def _refund(
    http: aiohttp.ClientSession,
    merchant: Merchant,
    txn: str,
    body: dict[str, Any] | None = None,
    key: str | None = None,
) -> tuple[int, dict[str, Any]]:
    headers = dict(merchant.headers)
    if key:
        headers["Idempotency-Key"] = key
    async with http.post(
        f"/api/v1/payments/{txn}/refund", json=body or {}, headers=headers
    ) as resp:
        return resp.status, await resp.json()


async def _db_amounts(service: Service, txn: str) -> tuple[int, int, str, list[int]]:
    conn = await asyncpg.connect(service.database_url, timeout=10)
    try:
        row = await conn.fetchrow(
            "SELECT captured_minor, refunded_minor, status FROM transactions"
            " WHERE transaction_id = $1",
            txn,
        )
        refunds = await conn.fetch(
            "SELECT amount_minor FROM refunds WHERE transaction_id=$1 AND status='completed'", txn
        )
    finally:
        await conn.close()
    assert row is not None
    return row["captured_minor"], row["refunded_minor"], row["status"], [r[0] for r in refunds]


async def test_partial_then_rest_then_refused(
    service: Service, merchant: Merchant, http: aiohttp.ClientSession
) -> None:
    txn = await _captured_payment(http, merchant)
    status, first = await _refund(http, merchant, txn, {"amount": "30.00", "reason": "duplicate"})
    assert status == 200, first
    assert first["status"] == "completed"
    assert first["amount_minor"] == 3000
    assert first["payment"]["status"] == "partially_refunded"

    status, rest = await _refund(http, merchant, txn)
    assert status == 200, rest
    assert rest["amount_minor"] == 7000
    assert rest["payment"]["status"] == "refunded"

    status, refused = await _refund(http, merchant, txn, {"amount": "0.01"})
    assert status == 400
    assert refused["error"]["code"] == "payment_not_refundable"

    captured, refunded, db_status, amounts = await _db_amounts(service, txn)
    assert (captured, refunded, db_status) == (10000, 10000, "refunded")
    assert sorted(amounts) == [3000, 7000]
    bank_refunds = executed(await ledger(service, txn), "refund")
    assert sorted(e["amount_minor"] for e in bank_refunds) == [3000, 7000]

    async with http.get(f"/api/v1/payments/{txn}/refunds", headers=merchant.headers) as resp:
        listed = await resp.json()
    assert (listed["object"], len(listed["data"]), listed["has_more"]) == ("list", 2, False)
    async with http.get(f"/api/v1/payments/{txn}", headers=merchant.headers) as resp:
        payment = await resp.json()
    assert payment["refunded_amount"] == "100.00"


async def test_refund_above_remaining_is_refused(
    service: Service, merchant: Merchant, http: aiohttp.ClientSession
) -> None:
    txn = await _captured_payment(http, merchant, amount="10.00")
    status, error = await _refund(http, merchant, txn, {"amount": "10.01"})
    assert status == 400
    assert error["error"]["code"] == "refund_exceeds_remaining"
    status, error = await _refund(http, merchant, txn, {"amount": "1.001"})
    assert status == 422
    assert error["error"]["param"] == "amount"
    assert executed(await ledger(service, txn), "refund") == []


async def test_two_concurrent_sixty_percent_refunds(
    service: Service, merchant: Merchant, http: aiohttp.ClientSession
) -> None:
    txn = await _captured_payment(http, merchant)
    answers = await asyncio.gather(
        _refund(http, merchant, txn, {"amount": "60.00"}),
        _refund(http, merchant, txn, {"amount": "60.00"}),
    )
    statuses = sorted(s for s, _ in answers)
    assert statuses == [200, 400], answers
    refused = next(body for s, body in answers if s == 400)
    assert refused["error"]["code"] == "refund_exceeds_remaining"
    captured, refunded, _, amounts = await _db_amounts(service, txn)
    assert refunded == 6000 <= captured
    assert amounts == [6000]
    assert len(executed(await ledger(service, txn), "refund")) == 1


async def test_refund_retried_with_same_key_refunds_once(
    service: Service, merchant: Merchant, http: aiohttp.ClientSession
) -> None:
    txn = await _captured_payment(http, merchant)
    first = await _refund(http, merchant, txn, {"amount": "5.00"}, key="refund-once")
    headers = {**merchant.headers, "Idempotency-Key": "refund-once"}
    async with http.post(
        f"/api/v1/payments/{txn}/refund", json={"amount": "5.00"}, headers=headers
    ) as resp:
        second = (resp.status, await resp.json())
        assert resp.headers["Idempotent-Replayed"] == "true"
    assert first[0] == 200
    assert second[0] == 200
    assert first[1]["refund_id"] == second[1]["refund_id"]
    other = await _refund(http, merchant, txn, {"amount": "6.00"}, key="refund-once")
    assert other[0] == 422
    assert len(executed(await ledger(service, txn), "refund")) == 1


async def test_refund_of_declined_missing_and_foreign_payment(
    service: Service,
    merchant: Merchant,
    merchant_factory: Callable[[], Merchant],
    http: aiohttp.ClientSession,
) -> None:
    body = payment_body(merchant.merchant_id, card="4000000000000002")
    async with http.post("/api/v1/payments/process", json=body, headers=merchant.headers) as resp:
        declined = (await resp.json())["transaction_id"]
    status, error = await _refund(http, merchant, declined)
    assert (status, error["error"]["code"]) == (400, "payment_not_refundable")
    status, error = await _refund(http, merchant, "no-such-payment")
    assert (status, error["error"]["code"]) == (404, "resource_missing")
    txn = await _captured_payment(http, merchant)
    status, error = await _refund(http, merchant_factory(), txn)
    assert (status, error["error"]["code"]) == (404, "resource_missing")
    _, refunded, db_status, _ = await _db_amounts(service, txn)
    assert (refunded, db_status) == (0, "captured")


@pytest.mark.fault
async def test_refund_redelivered_after_sigkill_refunds_once(
    service: Service, merchant: Merchant, http: aiohttp.ClientSession
) -> None:
    txn = await _captured_payment(http, merchant)
    processor = service.processes["processor"]
    processor.stop()
    processor.start(PROCESSOR_CRASH_AT="after_refund_bank")
    status, body = await _refund(http, merchant, txn, {"amount": "40.00"})
    assert status == 202, body
    await asyncio.to_thread(processor.wait_exit, 60)
    processor.start()

    async def completed() -> bool:
        _, refunded, _, amounts = await _db_amounts(service, txn)
        return refunded == 4000 and amounts == [4000]

    await eventually(completed, timeout=60, what="the refund to complete after restart")
    bank_refunds = executed(await ledger(service, txn), "refund")
    assert [e["amount_minor"] for e in bank_refunds] == [4000]
