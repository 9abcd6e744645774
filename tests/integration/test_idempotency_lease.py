"""The Idempotency-Key lock is a lease (real Redis): renewed while its request lives, gone soon
after a holder that stops renewing, released at once by a request that ends."""

from __future__ import annotations

import asyncio
import contextlib
import uuid

import pytest
from redis.asyncio import Redis

from payment_service.core.errors import IdempotencyKeyInUse
from payment_service.http import idempotency
from payment_service.http.idempotency import IdempotencyLocks
from tests.fixtures.service import eventually

pytestmark = pytest.mark.integration


@pytest.fixture
def short_lease(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(idempotency, "LOCK_SECONDS", 0.6)
    monkeypatch.setattr(idempotency, "RENEW_SECONDS", 0.2)


@pytest.mark.usefixtures("short_lease")
async def test_a_living_request_keeps_its_key_past_the_lease(redis: Redis) -> None:
    locks = IdempotencyLocks(redis)
    key = uuid.uuid4().hex
    async with locks.hold("m", key, None):
        await asyncio.sleep(2.0)  # several leases long: only the renewals keep it
        with pytest.raises(IdempotencyKeyInUse):
            async with locks.hold("m", key, None):
                pass
    async with locks.hold("m", key, None):  # released at once on the way out
        pass


@pytest.mark.usefixtures("short_lease")
async def test_a_holder_that_stops_renewing_frees_the_key_within_a_lease(redis: Redis) -> None:
    locks = IdempotencyLocks(redis)
    key = uuid.uuid4().hex
    # A dead API: its lock as it left it, nobody renewing it.
    await redis.set(f"idempotency-lock:m:{key}", "dead-token", px=600)

    async def free() -> bool:
        with contextlib.suppress(IdempotencyKeyInUse):
            async with locks.hold("m", key, None):
                return True
        return False

    await eventually(free, timeout=10, what="the dead holder's lease to run out")


async def test_a_cancelled_request_leaves_no_renewal_behind(redis: Redis) -> None:
    locks = IdempotencyLocks(redis)
    key = uuid.uuid4().hex
    before = asyncio.all_tasks()

    async def request() -> None:
        async with locks.hold("m", key, None):
            await asyncio.sleep(30)

    task = asyncio.create_task(request())
    await asyncio.sleep(idempotency.RENEW_SECONDS * 2)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert not await redis.exists(f"idempotency-lock:m:{key}")
    assert asyncio.all_tasks() - before == set()
