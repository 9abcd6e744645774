"""Manual capture end to end over HTTP and Kafka: hold, capture all or part, cancel, retries,
other merchants, and the reconciler voiding a hold past its validity window.

Every outcome is checked against the bank's own record (its status inquiry and ledger).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import aiohttp
import pytest

from tests.e2e.helpers import db_audit, db_payment, executed, ledger
from tests.fixtures.service import Merchant, Service, eventually, payment_body

pytestmark = pytest.mark.e2e


async def _inquiry(service: Service, txn: str) -> dict[str, Any]:
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session,
        session.get(f"{service.bank_url}/api/v1/transactions/{txn}") as resp,
    ):
        resp.raise_for_status()
        inquiry: dict[str, Any] = await resp.json()
    return inquiry


async def _held(http: aiohttp.ClientSession, merchant: Merchant, amount: str = "100.00") -> str:
    body = payment_body(merchant.merchant_id, amount=amount, capture_method="manual")
    async with http.post("/api/v1/payments/process", json=body, headers=merchant.headers) as resp:
        payment = await resp.json()
        assert (resp.status, payment["status"]) == (200, "requires_capture"), payment
    assert payment["capture_method"] == "manual"
    assert payment["amount_capturable_minor"] == payment["amount_minor"]
    assert payment["captured_amount_minor"] == 0
    return str(payment["transaction_id"])


async def _post(
    http: aiohttp.ClientSession,
    merchant: Merchant,
    path: str,
    body: dict[str, Any] | None = None,
    key: str | None = None,
) -> tuple[int, dict[str, Any], dict[str, str]]:
    headers = {**merchant.headers, **({"Idempotency-Key": key} if key else {})}
    async with http.post(path, json=body or {}, headers=headers) as resp:
        return resp.status, await resp.json(), dict(resp.headers)


async def test_capture_part_of_a_hold_releases_the_rest_and_a_retry_replays(
    merchant: Merchant, service: Service, http: aiohttp.ClientSession
) -> None:
    txn = await _held(http, merchant)
    hold = await _inquiry(service, txn)
    assert [(a["status"], a["amount_minor"]) for a in hold["authorizations"]] == [("open", 10_000)]

    path = f"/api/v1/payments/{txn}/capture"
    status, captured, _ = await _post(http, merchant, path, {"amount": "40.00"}, key="cap-1")
    assert (status, captured["status"], captured["captured_amount"]) == (200, "captured", "40.00")
    assert captured["amount_capturable_minor"] == 0
    # A retry with the same key replays; the same key with another amount is refused.
    status, again, headers = await _post(http, merchant, path, {"amount": "40.00"}, key="cap-1")
    assert (status, again["status"]) == (200, "captured")
    assert headers.get("Idempotent-Replayed") == "true"
    status, reused, _ = await _post(http, merchant, path, {"amount": "50.00"}, key="cap-1")
    assert (status, reused["error"]["code"]) == (422, "idempotency_key_reused")
    status, late, _ = await _post(http, merchant, path, {"amount": "10.00"})
    assert (status, late["error"]["code"]) == (400, "payment_not_capturable")

    bank = await _inquiry(service, txn)
    assert (bank["captured_minor"], bank["released_minor"]) == (4_000, 6_000)
    entries = await ledger(service, txn)
    assert [e["operation"] for e in entries] == ["authorize", "capture"]  # one capture, ever
    row = await db_payment(service, txn)
    assert row is not None
    assert (row["status"], row["captured_minor"]) == ("captured", 4_000)
    trail = [(r["from_status"], r["to_status"]) for r in await db_audit(service, txn)]
    assert trail == [
        (None, "processing"),
        ("processing", "requires_capture"),
        ("requires_capture", "capturing"),
        ("capturing", "captured"),
    ]
    # Refunds take at most what was captured, not what was authorized.
    status, refund, _ = await _post(http, merchant, f"/api/v1/payments/{txn}/refund")
    assert (status, refund["amount"], refund["payment"]["status"]) == (200, "40.00", "refunded")


async def test_capture_all_by_default(
    merchant: Merchant, service: Service, http: aiohttp.ClientSession
) -> None:
    txn = await _held(http, merchant, "12.34")
    status, captured, _ = await _post(http, merchant, f"/api/v1/payments/{txn}/capture")
    assert (status, captured["status"], captured["captured_amount"]) == (200, "captured", "12.34")
    bank = await _inquiry(service, txn)
    assert (bank["captured_minor"], bank["released_minor"]) == (1_234, 0)


async def test_cancel_voids_the_hold_at_the_bank(
    merchant: Merchant, service: Service, http: aiohttp.ClientSession
) -> None:
    txn = await _held(http, merchant)
    path = f"/api/v1/payments/{txn}/cancel"
    body = {"cancellation_reason": "requested_by_customer"}
    status, canceled, _ = await _post(http, merchant, path, body, key="void-1")
    assert (status, canceled["status"]) == (200, "canceled"), canceled
    assert canceled["cancellation_reason"] == "requested_by_customer"
    status, again, headers = await _post(http, merchant, path, body, key="void-1")
    assert (status, again["status"]) == (200, "canceled")
    assert headers.get("Idempotent-Replayed") == "true"
    status, late, _ = await _post(http, merchant, f"/api/v1/payments/{txn}/capture")
    assert (status, late["error"]["code"]) == (400, "payment_not_capturable")
    bank = await _inquiry(service, txn)
    assert (bank["captured_minor"], bank["released_minor"]) == (0, 10_000)
    assert [a["status"] for a in bank["authorizations"]] == ["voided"]
    assert len(executed(await ledger(service, txn), "void")) == 1


async def test_bad_captures_are_refused_and_change_nothing(
    merchant: Merchant, service: Service, http: aiohttp.ClientSession
) -> None:
    txn = await _held(http, merchant)
    path = f"/api/v1/payments/{txn}/capture"
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"amount": "100.01"}, 400, "capture_exceeds_authorized"),
        ({"amount": "0"}, 422, "validation_error"),
        ({"amount": "1.001"}, 422, "amount_too_precise"),
        ({"amount": 5, "extra": 1}, 422, "validation_error"),
    ]
    for body, want_status, code in cases:
        status, refused, _ = await _post(http, merchant, path, body)
        assert (status, refused["error"]["code"]) == (want_status, code), (body, refused)
    status, refused, _ = await _post(
        http, merchant, f"/api/v1/payments/{txn}/cancel", {"cancellation_reason": "bored"}
    )
    assert status == 422
    # An automatic payment has no hold to capture or cancel.
    body = payment_body(merchant.merchant_id)
    async with http.post("/api/v1/payments/process", json=body, headers=merchant.headers) as resp:
        automatic = await resp.json()
    for action in ("capture", "cancel"):
        path = f"/api/v1/payments/{automatic['transaction_id']}/{action}"
        status, refused, _ = await _post(http, merchant, path)
        assert (status, refused["error"]["code"]) == (400, "payment_not_capturable")
    assert [e["operation"] for e in await ledger(service, txn)] == ["authorize"]
    row = await db_payment(service, txn)
    assert row is not None
    assert row["status"] == "requires_capture"


async def test_another_merchant_gets_404_for_capture_and_cancel(
    merchant: Merchant,
    merchant_factory: Callable[[], Merchant],
    service: Service,
    http: aiohttp.ClientSession,
) -> None:
    txn = await _held(http, merchant)
    other = merchant_factory()
    for action in ("capture", "cancel"):
        status, refused, _ = await _post(http, other, f"/api/v1/payments/{txn}/{action}")
        assert (status, refused["error"]["code"]) == (404, "resource_missing")
    assert [e["operation"] for e in await ledger(service, txn)] == ["authorize"]


@pytest.mark.fault
async def test_the_reconciler_voids_a_hold_past_its_validity_window(
    merchant: Merchant, service: Service, http: aiohttp.ClientSession
) -> None:
    processor = service.processes["processor"]
    processor.stop()
    processor.start(
        PROCESSOR_AUTHORIZATION_VALIDITY_SECONDS="2", PROCESSOR_RECONCILE_INTERVAL_SECONDS="1"
    )
    try:
        await service.wait_healthy()
        body = payment_body(merchant.merchant_id, amount="100.00", capture_method="manual")
        async with http.post(
            "/api/v1/payments/process", json=body, headers=merchant.headers
        ) as resp:
            # 202 while the restarted processor joins its group; the hold comes all the same.
            assert resp.status in (200, 202)
            txn = (await resp.json())["transaction_id"]

        async def voided() -> dict[str, Any] | None:
            async with http.get(f"/api/v1/payments/{txn}", headers=merchant.headers) as resp:
                payment: dict[str, Any] = await resp.json()
            return payment if payment["status"] == "canceled" else None

        payment = await eventually(voided, timeout=60, what="the expired hold to be voided")
        assert payment["cancellation_reason"] == "expired"
        bank = await _inquiry(service, txn)
        assert [a["status"] for a in bank["authorizations"]] == ["voided"]
        assert bank["released_minor"] == 10_000
    finally:
        processor.stop()
        processor.start()
        await service.wait_healthy()
