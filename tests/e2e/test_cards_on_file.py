"""Cards on file over HTTP and Kafka: store, read, pay, detach, idempotency, merchant scope."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import aiohttp
import asyncpg
import pytest

from tests.e2e.custody import (
    by_card_on_file,
    card_data,
    command,
    nothing_charged,
    produce,
    refusal,
    settled_row,
    store_card,
    unique_txn,
)
from tests.e2e.helpers import db_payment, executed, ledger
from tests.fixtures.service import Merchant, Service

pytestmark = pytest.mark.e2e


async def _db(service: Service, sql: str, *args: Any) -> Any:
    conn = await asyncpg.connect(service.database_url, timeout=10)
    try:
        return await conn.fetchrow(sql, *args)
    finally:
        await conn.close()


async def test_store_a_card_then_pay_with_it(
    service: Service, merchant: Merchant, http: aiohttp.ClientSession
) -> None:
    stored = await store_card(http, merchant)
    assert stored["id"].startswith("pm_")
    assert (stored["brand"], stored["last4"], stored["expiry_month"]) == ("visa", "4242", 12)
    assert stored["fingerprint"].startswith("fpk1:")
    assert {"created_at", "expiry_year"} <= set(stored)
    assert stored["detached_at"] is None
    assert "4242424242424242" not in json.dumps(stored)
    async with http.get(f"/api/v1/payment_methods/{stored['id']}", headers=merchant.headers) as r:
        assert (r.status, await r.json()) == (200, stored)

    body = by_card_on_file(merchant, stored["id"])
    async with http.post("/api/v1/payments/process", json=body, headers=merchant.headers) as resp:
        paid = await resp.json()
        assert resp.status == 200, paid
    assert paid["status"] == "captured"
    assert paid["payment_method_id"] == stored["id"]
    assert paid["card"]["last4"] == "4242"
    row = await db_payment(service, paid["transaction_id"])
    assert row is not None
    assert row["payment_method_id"] == stored["id"]
    assert row["card_fingerprint"] == stored["fingerprint"]  # the API's and the processor's agree
    entries = await ledger(service, paid["transaction_id"])
    assert len(executed(entries, "sale")) == 1

    # With a security code collected again, it is vaulted for the bank call and then gone.
    again = by_card_on_file(merchant, stored["id"], cvv="321")
    async with http.post("/api/v1/payments/process", json=again, headers=merchant.headers) as r:
        second = await r.json()
        assert (r.status, second["status"]) == (200, "captured"), second


async def test_the_processor_fingerprints_a_card_like_the_api_does(
    service: Service, merchant: Merchant, http: aiohttp.ClientSession
) -> None:
    card = "4000056655665556"
    stored = await store_card(http, merchant, card)
    body = {
        "merchant_id": merchant.merchant_id,
        "amount": "5.00",
        "currency": "USD",
        "card_data": card_data(card),
    }
    async with http.post("/api/v1/payments/process", json=body, headers=merchant.headers) as r:
        paid = await r.json()
        assert r.status == 200, paid
    row = await db_payment(service, paid["transaction_id"])
    assert row is not None
    assert row["card_fingerprint"] == stored["fingerprint"]
    assert row["payment_method_id"] is None


async def test_detach_destroys_the_card_and_refuses_later_payments(
    service: Service, merchant: Merchant, http: aiohttp.ClientSession
) -> None:
    stored = await store_card(http, merchant)
    path = f"/api/v1/payment_methods/{stored['id']}"
    async with http.delete(path, headers=merchant.headers) as resp:
        detached = await resp.json()
        assert resp.status == 200, detached
    assert detached["detached_at"] is not None
    async with http.delete(path, headers=merchant.headers) as resp:
        assert (resp.status, (await resp.json())["detached_at"]) == (200, detached["detached_at"])
    row = await _db(
        service, "SELECT envelope, key_id FROM payment_methods WHERE payment_method_id = $1",
        stored["id"],
    )  # fmt: skip
    assert (row["envelope"], row["key_id"]) == (None, None)

    body = by_card_on_file(merchant, stored["id"])
    async with http.post("/api/v1/payments/process", json=body, headers=merchant.headers) as resp:
        error = await resp.json()
        assert resp.status == 400, error
    assert error["error"]["code"] == "payment_method_detached"
    # A direct producer's command is refused by the processor too: failed, nothing charged.
    txn = await produce(service, command(merchant.merchant_id, unique_txn(), **_pm(stored)))
    failed = await settled_row(service, txn)
    assert (failed["status"], failed["failure_code"]) == ("failed", "payment_method_detached")
    await nothing_charged(service, txn)


def _pm(stored: dict[str, Any]) -> dict[str, Any]:
    return {"payment_method_id": stored["id"]}


async def test_an_expired_card_on_file_is_refused_with_nothing_charged(
    service: Service, merchant: Merchant, http: aiohttp.ClientSession
) -> None:
    stored = await store_card(http, merchant)
    await _db(
        service,
        "UPDATE payment_methods SET expiry_year = 2020 WHERE payment_method_id = $1",
        stored["id"],
    )
    body = by_card_on_file(merchant, stored["id"])
    async with http.post("/api/v1/payments/process", json=body, headers=merchant.headers) as resp:
        error = await resp.json()
        assert resp.status == 402, error
    assert error["error"]["code"] == "card_expired"
    txn = await produce(service, command(merchant.merchant_id, unique_txn(), **_pm(stored)))
    failed = await settled_row(service, txn)
    assert (failed["status"], failed["failure_code"]) == ("failed", "card_expired")
    await nothing_charged(service, txn)


async def test_cards_on_file_are_merchant_scoped_on_every_endpoint(
    service: Service,
    merchant: Merchant,
    merchant_factory: Callable[[], Merchant],
    http: aiohttp.ClientSession,
) -> None:
    stored = await store_card(http, merchant)
    other = merchant_factory()
    path = f"/api/v1/payment_methods/{stored['id']}"
    async with http.get(path, headers=other.headers) as resp:
        assert resp.status == 404
        assert (await resp.json())["error"]["code"] == "payment_method_not_found"
    async with http.delete(path, headers=other.headers) as resp:
        assert resp.status == 404
    body = by_card_on_file(other, stored["id"])
    async with http.post("/api/v1/payments/process", json=body, headers=other.headers) as resp:
        assert resp.status == 404
        assert (await resp.json())["error"]["code"] == "payment_method_not_found"
    async with http.get("/api/v1/payment_methods/pm_doesnotexist0", headers=merchant.headers) as r:
        assert r.status == 404
    # Still the owner's, still attached.
    async with http.get(path, headers=merchant.headers) as resp:
        assert (await resp.json())["detached_at"] is None
    # On Kafka: another merchant's command naming it is refused, nothing stored or charged.
    txn = await produce(service, command(other.merchant_id, unique_txn(), **_pm(stored)))
    refused = await refusal(service, txn)
    assert refused["error"]["code"] == "payment_method_not_found"
    assert await db_payment(service, txn) is None
    await nothing_charged(service, txn)


async def test_idempotency_key_on_cards_on_file(
    service: Service, merchant: Merchant, http: aiohttp.ClientSession
) -> None:
    body = {"card_data": card_data()}
    headers = {**merchant.headers, "Idempotency-Key": "card-1"}
    async with http.post("/api/v1/payment_methods", json=body, headers=headers) as resp:
        first = await resp.json()
        assert resp.status == 200
        assert "Idempotent-Replayed" not in resp.headers
    # The security code is not part of the request's identity (it is never stored).
    same = {"card_data": card_data(cvv="999")}
    async with http.post("/api/v1/payment_methods", json=same, headers=headers) as resp:
        assert (resp.status, resp.headers.get("Idempotent-Replayed")) == (200, "true")
        assert (await resp.json())["id"] == first["id"]
    changed = {"card_data": card_data("4111111111111111")}
    async with http.post("/api/v1/payment_methods", json=changed, headers=headers) as resp:
        assert resp.status == 422
        assert (await resp.json())["error"]["code"] == "idempotency_key_reused"

    concurrent = {**merchant.headers, "Idempotency-Key": "card-concurrent"}

    async def attempt() -> tuple[int, str | None]:
        async with http.post("/api/v1/payment_methods", json=body, headers=concurrent) as r:
            return r.status, (await r.json()).get("id")

    answers = await asyncio.gather(*(attempt() for _ in range(10)))
    assert {status for status, _ in answers} <= {200, 409}
    assert len({pm for status, pm in answers if status == 200}) == 1
    rows = await _db(
        service,
        "SELECT count(*) AS n FROM payment_methods WHERE merchant_id = $1 AND idempotency_key = $2",
        merchant.merchant_id,
        "card-concurrent",
    )
    assert rows["n"] == 1


async def test_card_on_file_validation(merchant: Merchant, http: aiohttp.ClientSession) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"card_data": card_data("4242424242424241")}, "card_data.card_number"),
        ({"card_data": card_data(expiry_year=2020)}, "card_data.expiry_year"),
        ({"card_data": card_data(cvv="12")}, "card_data.cvv"),
        ({"card_data": card_data(), "merchant_id": "someone_else"}, "merchant_id"),
        ({"card_data": card_data(), "unknown": 1}, "unknown"),
    ]
    for body, param in cases:
        async with http.post("/api/v1/payment_methods", json=body, headers=merchant.headers) as r:
            text = await r.text()
            assert r.status == 422, text
        assert json.loads(text)["error"]["param"] == param
        assert "424242424242424" not in text
    both = by_card_on_file(merchant, "pm_abcdefgh", card_data=card_data())
    async with http.post("/api/v1/payments/process", json=both, headers=merchant.headers) as r:
        assert r.status == 422
        assert (await r.json())["error"]["param"] == "payment_method_id"
