"""The seed project's clients against this service: its `scripts/test_api.sh`, checks ported.

The script is not ours to ship, so its sixteen checks are repeated here in its order, with what
the issue allows it (a valid API key, a future expiry year) and nothing else changed: the same
merchant id, bodies, cards and expected statuses. One differs on purpose and is asserted as we
answer it: a refund of a transaction that does not exist is 404, not the seed's 400
(docs/compatibility.md). The load test's request shape (`customer`, `billing_address`, float
amounts, other currencies) and its reading of `/health` (`services`) follow.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import aiohttp
import pytest

from tests.fixtures.service import Service

pytestmark = pytest.mark.e2e

SEED_MERCHANT = "merchant_test_123"
FUTURE_YEAR = time.gmtime().tm_year + 2


def _seed_payment(card: str, description: str, metadata: dict[str, Any]) -> dict[str, Any]:
    return {
        "merchant_id": SEED_MERCHANT,
        "amount": 99.99,
        "currency": "USD",
        "payment_method": "credit_card",
        "card_data": {
            "card_number": card,
            "expiry_month": 12,
            "expiry_year": FUTURE_YEAR,
            "cvv": "123",
            "cardholder_name": "John Doe",
        },
        "description": description,
        "metadata": metadata,
    }


VALID = _seed_payment(
    "4111111111111111", "Test payment via API script", {"test": True, "script": "test_api.sh"}
)
DECLINED = _seed_payment(
    "4000000000000002", "Test declined payment", {"test": True, "expected": "declined"}
)
INVALID = {"merchant_id": "", "amount": -10.00, "currency": "INVALID", "payment_method": "x"}
REFUND = {"amount": 50.00, "reason": "Customer requested refund", "metadata": {"refund_test": True}}
FULL_REFUND = {"reason": "Full refund requested", "metadata": {"full_refund": True}}


@pytest.fixture
async def seed(service: Service) -> Any:
    """A session like the script's: its merchant's key, its JSON and correlation headers."""
    key = service.create_key(SEED_MERCHANT)
    headers = {
        "Authorization": f"Bearer {key}",
        "Content-Type": "application/json",
        "X-Correlation-ID": f"test_{int(time.time())}",
    }
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(
        base_url=service.api_url, headers=headers, timeout=timeout
    ) as session:
        yield session


async def _call(
    http: aiohttp.ClientSession, method: str, path: str, body: Any = None, **kw: Any
) -> tuple[int, Any]:
    async with http.request(method, path, json=body, **kw) as resp:
        text = await resp.text()
        assert resp.headers["Request-Id"].startswith("req_")
        try:
            return resp.status, await resp.json(content_type=None) if text else None
        except ValueError:
            return resp.status, text


async def test_the_seed_api_script_passes(service: Service, seed: aiohttp.ClientSession) -> None:
    # 1. Health and root.
    status, health = await _call(seed, "GET", "/health")
    assert status == 200, health
    # The seed's four services are up; `processor` (its heartbeat) is ours, beside them.
    seed_services = {
        name: health["services"][name] for name in ("postgres", "redis", "kafka", "bank")
    }
    assert seed_services == {"postgres": True, "redis": True, "kafka": True, "bank": True}
    assert set(health["services"]) <= {"postgres", "redis", "kafka", "bank", "processor"}
    assert (await _call(seed, "GET", "/"))[0] == 200

    # 2. Authentication: none, and an invalid token.
    async with aiohttp.ClientSession(base_url=service.api_url) as anonymous:
        assert (await _call(anonymous, "POST", "/api/v1/payments/process", VALID))[0] == 401
        bad = {"Authorization": "Bearer invalid_token"}
        assert (await _call(anonymous, "POST", "/api/v1/payments/process", VALID, headers=bad))[
            0
        ] == 401

    # 3. Payments: valid (200, captured), invalid (422), declined (200, failed).
    status, payment = await _call(seed, "POST", "/api/v1/payments/process", VALID)
    assert status == 200, payment
    assert payment["status"] == "captured"
    transaction_id = payment["transaction_id"]
    # The fields the seed's clients read, beside ours.
    assert payment["card_last_four"] == "1111"
    assert payment["authorization_id"] == payment["authorization_code"]
    assert payment["authorization_id"]
    assert payment["capture_id"] == f"{transaction_id}:sale"  # automatic capture: one sale
    assert payment["processed_at"] is not None
    assert payment["expires_at"] is None  # captured: no hold left to lapse
    assert payment["metadata"] == {"test": "true", "script": "test_api.sh"}
    status, error = await _call(seed, "POST", "/api/v1/payments/process", INVALID)
    assert status == 422, error
    status, declined = await _call(seed, "POST", "/api/v1/payments/process", DECLINED)
    assert status == 200, declined
    assert declined["status"] == "failed"

    # 4. Status: the payment (200), and one that does not exist (404).
    status, shown = await _call(seed, "GET", f"/api/v1/payments/{transaction_id}")
    assert status == 200, shown
    assert shown["card_last_four"] == "1111"
    status, missing = await _call(seed, "GET", "/api/v1/payments/nonexistent_transaction")
    assert status == 404
    assert missing["error"]["code"] == "resource_missing"

    # 5. Refunds: 50.00 of 99.99, then the rest; a refund of nothing is 404 (the seed said 400).
    status, partial = await _call(seed, "POST", f"/api/v1/payments/{transaction_id}/refund", REFUND)
    assert status == 200, partial
    assert partial["status"] == "completed"
    assert partial["external_refund_id"]
    assert partial["processed_at"] is not None
    path = f"/api/v1/payments/{transaction_id}/refund"
    status, full = await _call(seed, "POST", path, FULL_REFUND)
    assert status == 200, full
    assert full["amount"] == "49.99"
    assert full["payment"]["status"] == "refunded"
    path = "/api/v1/payments/nonexistent_transaction/refund"
    status, error = await _call(seed, "POST", path, REFUND)
    assert status == 404, error  # deliberate: docs/compatibility.md

    # 6. Five concurrent payments: each answered (the seed timed them; we do not).
    concurrent = [
        _call(seed, "POST", "/api/v1/payments/process", {**VALID, "description": f"c {i}"})
        for i in range(5)
    ]
    answers = await asyncio.gather(*concurrent)
    assert [status for status, _ in answers] == [200] * 5, answers

    # 7. Errors: malformed JSON (400 or 422), a 10,000-character description (422).
    async with seed.post("/api/v1/payments/process", data=b'{"invalid": json}') as resp:
        assert resp.status in (400, 422)
    large = {**VALID, "description": "A" * 10_000}
    status, error = await _call(seed, "POST", "/api/v1/payments/process", large)
    assert status == 422, error


async def test_the_seed_load_test_request_shape_is_accepted(
    seed: aiohttp.ClientSession,
) -> None:
    """Its payment task's body: customer and billing address (checked, not kept), floats, EUR."""
    body = {
        **_seed_payment("5555555555554444", "Dining at Acme Restaurant", {}),
        "amount": 123.45,
        "currency": "EUR",
        "billing_address": {
            "street": "1 Main St",
            "city": "Springfield",
            "state": "IL",
            "zip_code": "62701",
            "country": "US",
        },
        "customer": {"id": "cust_00042", "email": "jane@example.com", "phone": "555-0100"},
        "metadata": {
            "order_id": f"order_{uuid.uuid4().hex[:8]}",
            "channel": "web",
            "session_id": str(uuid.uuid4()),
            "test_transaction": True,
        },
    }
    status, payment = await _call(seed, "POST", "/api/v1/payments/process", body)
    assert status == 200, payment
    assert payment["status"] == "captured"
    assert "customer" not in payment
    assert "billing_address" not in payment
    # Checked like any free text: a card number in an address is refused, and nothing is kept.
    smuggled = {**body, "billing_address": {"street": "4111 1111 1111 1111"}}
    status, error = await _call(seed, "POST", "/api/v1/payments/process", smuggled)
    assert status == 422, error
    assert "4111" not in str(error)
