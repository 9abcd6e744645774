"""A payment's admission (rate limit, lease, security code in one Redis script) leaves no security
code behind for a request that produces no command: a replay, or the key reused with another
body (real API, processor, Redis)."""

from __future__ import annotations

import uuid

import aiohttp
import pytest
from redis.asyncio import Redis

from payment_service.cards.vault import vault_key
from payment_service.http.idempotency import AcceptedMarkers
from tests.fixtures.service import Merchant, Service, eventually, payment_body

pytestmark = pytest.mark.e2e


async def test_a_replay_and_a_reuse_leave_no_security_code(
    merchant: Merchant, service: Service, http: aiohttp.ClientSession
) -> None:
    body = payment_body(merchant.merchant_id)
    headers = {**merchant.headers, "Idempotency-Key": uuid.uuid4().hex}
    redis = Redis.from_url(service.redis_url, socket_timeout=5)
    try:
        async with http.post("/api/v1/payments/process", json=body, headers=headers) as resp:
            first = await resp.json()
            assert resp.status == 200, first
        code = vault_key(first["transaction_id"])

        async def discarded() -> bool:
            return not await redis.exists(code)

        # The processor discards the code once the bank has answered.
        await eventually(discarded, timeout=30, what="the processor to discard the code")
        # The "accepted" marker gone (its day is over): only PostgreSQL tells a replay now, after
        # the admission has stored the code.
        await redis.delete(AcceptedMarkers.key(first["transaction_id"]))
        async with http.post("/api/v1/payments/process", json=body, headers=headers) as resp:
            assert resp.status == 200
            assert resp.headers["Idempotent-Replayed"] == "true"
        assert not await redis.exists(code)  # the admission stored it; the replay deleted it
        changed = {**body, "amount": "26.00"}
        async with http.post("/api/v1/payments/process", json=changed, headers=headers) as resp:
            assert resp.status == 422
        assert not await redis.exists(code)
    finally:
        await redis.aclose()
