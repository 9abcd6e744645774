"""The payment admission script against a real Redis: rate limit, lease and security code in one
round trip, and every refusal writes nothing beyond the rate counter."""

from __future__ import annotations

import time
import uuid

import pytest
from redis.asyncio import Redis

from payment_service.cards.vault import SecurityCodeVault, vault_key
from payment_service.core.errors import IdempotencyKeyInUse, RateLimited
from payment_service.core.masking import SecurityCode
from payment_service.http.admission import PaymentAdmission
from payment_service.http.guards import RateLimiter
from payment_service.http.idempotency import AcceptedMarkers, IdempotencyLocks
from tests.fixtures.custody import Custody

pytestmark = pytest.mark.integration

LIMIT = 5
TTL_SECONDS = 30


@pytest.fixture
def vault(redis: Redis) -> SecurityCodeVault:
    return Custody().vault(redis, ttl_seconds=TTL_SECONDS)


@pytest.fixture
def admission(redis: Redis, vault: SecurityCodeVault) -> PaymentAdmission:
    return PaymentAdmission(redis, RateLimiter(redis, LIMIT), vault, AcceptedMarkers(redis))


def _names() -> tuple[str, str, str]:
    """A fresh merchant (its own rate window), Idempotency-Key and transaction id."""
    return f"m_{uuid.uuid4().hex[:8]}", uuid.uuid4().hex, f"txn_{uuid.uuid4().hex}"


async def _written(redis: Redis, merchant: str, key: str, transaction_id: str) -> dict[str, bool]:
    return {
        "lock": bool(await redis.exists(IdempotencyLocks.lock_key(merchant, key))),
        "code": bool(await redis.exists(vault_key(transaction_id))),
        "marker": bool(await redis.exists(AcceptedMarkers.key(transaction_id))),
    }


async def test_an_admitted_payment_holds_its_lease_and_its_sealed_code(
    redis: Redis, admission: PaymentAdmission, vault: SecurityCodeVault
) -> None:
    merchant, key, transaction_id = _names()
    before = time.time()
    admitted = await admission.admit(merchant, key, transaction_id, SecurityCode("123"))
    after = time.time()
    assert admitted.code_stored
    assert admitted.marker is None
    lock = IdempotencyLocks.lock_key(merchant, key)
    assert admitted.lock == lock
    assert (await redis.get(lock)) == admitted.token.encode()
    assert 0 < await redis.pttl(lock) <= IdempotencyLocks.lease_ms()
    sealed = await redis.get(vault_key(transaction_id))
    assert sealed is not None
    assert sealed != b"123"  # sealed (opened below by the vault's private key only)
    assert 0 < await redis.ttl(vault_key(transaction_id)) <= TTL_SECONDS
    code = await vault.take(transaction_id)
    assert code is not None
    assert code.reveal() == "123"
    assert not await redis.exists(AcceptedMarkers.key(transaction_id))  # only after Kafka's ack
    # The minute the script counted in (the clock may have turned during the call).
    windows = {RateLimiter.window_key(merchant, at) for at in (before, after)}
    counted = [w for w in windows if await redis.exists(w)]
    assert len(counted) == 1
    assert int(await redis.get(counted[0]) or 0) == 1
    assert 0 < await redis.ttl(counted[0]) <= RateLimiter.WINDOW_TTL_SECONDS


async def test_a_rate_limited_payment_writes_nothing_else(
    redis: Redis, admission: PaymentAdmission
) -> None:
    merchant, key, transaction_id = _names()
    # The whole minute's allowance spent (both windows, should the minute turn meanwhile).
    now = time.time()
    for at in (now, now + 60):
        await redis.set(RateLimiter.window_key(merchant, at), LIMIT, ex=120)
    with pytest.raises(RateLimited) as refused:
        await admission.admit(merchant, key, transaction_id, SecurityCode("123"))
    assert refused.value.retry_after_seconds >= 1
    assert await _written(redis, merchant, key, transaction_id) == {
        "lock": False,
        "code": False,
        "marker": False,
    }


async def test_a_key_leased_by_another_request_is_409_and_writes_no_code(
    redis: Redis, admission: PaymentAdmission
) -> None:
    merchant, key, transaction_id = _names()
    lock = IdempotencyLocks.lock_key(merchant, key)
    await redis.set(lock, "another-request", px=5000)
    with pytest.raises(IdempotencyKeyInUse):
        await admission.admit(merchant, key, transaction_id, SecurityCode("123"))
    assert await redis.get(lock) == b"another-request"  # the other's lease is untouched
    written = await _written(redis, merchant, key, transaction_id)
    assert not written["code"]
    assert not written["marker"]


async def test_an_accepted_payment_is_reported_and_no_code_is_written(
    redis: Redis, admission: PaymentAdmission
) -> None:
    merchant, key, transaction_id = _names()
    await AcceptedMarkers(redis).put(transaction_id, merchant, "hash")
    admitted = await admission.admit(merchant, key, transaction_id, SecurityCode("123"))
    marker = AcceptedMarkers.parse(admitted.marker, merchant)
    assert marker is not None
    assert marker.request_hash == "hash"
    assert not admitted.code_stored
    assert not await redis.exists(vault_key(transaction_id))


async def test_a_code_already_stored_is_kept_as_it_is(
    redis: Redis, admission: PaymentAdmission
) -> None:
    merchant, key, transaction_id = _names()
    await redis.set(vault_key(transaction_id), b"earlier", ex=TTL_SECONDS)
    admitted = await admission.admit(merchant, key, transaction_id, SecurityCode("123"))
    assert not admitted.code_stored
    assert await redis.get(vault_key(transaction_id)) == b"earlier"


async def test_without_a_key_there_is_no_lease_and_no_code_without_one(
    redis: Redis, admission: PaymentAdmission
) -> None:
    merchant, _, transaction_id = _names()
    admitted = await admission.admit(merchant, None, transaction_id, None)
    assert admitted.lock is None
    assert not admitted.code_stored
    assert not await redis.exists(vault_key(transaction_id))
    assert await redis.keys(f"idempotency-lock:{merchant}:*") == []
