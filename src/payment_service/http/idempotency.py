"""Idempotency-Key in Redis: the lock that refuses concurrent use, and the "accepted" markers.

The lock (`idempotency-lock:{merchant}:{key}`) is taken with `SET NX EX` and released by a Lua
compare-and-delete, so a request only ever releases its own lock; it expires by itself after
`LOCK_SECONDS`. The marker (`accepted:{transaction id}`) says Kafka acknowledged a payment's
command that PostgreSQL may not show yet; it holds the merchant and the request hash, so a replay
can be told from a reuse with another body before the payment is recorded.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from redis.asyncio import Redis
from redis.exceptions import RedisError

from payment_service.core.errors import IdempotencyKeyInUse

log = logging.getLogger(__name__)

LOCK_SECONDS = 60
ACCEPTED_SECONDS = 24 * 3600

# Compare-and-delete: release the lock only if it is still ours.
_RELEASE = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"
)


class IdempotencyLocks:
    """One Redis lock per (merchant, Idempotency-Key) while a request with it is in progress."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._release = redis.register_script(_RELEASE)

    @asynccontextmanager
    async def hold(
        self, merchant_id: str, key: str, prefetch: str | None
    ) -> AsyncIterator[bytes | str | None]:
        """Hold the key's lock (or 409); yields the value of `prefetch`, read in the same trip."""
        lock = f"idempotency-lock:{merchant_id}:{key}"
        token = str(uuid.uuid4())
        pipe = self._redis.pipeline(transaction=False)
        pipe.set(lock, token, nx=True, ex=LOCK_SECONDS)
        if prefetch is not None:
            pipe.get(prefetch)
        acquired, *prefetched = await pipe.execute()
        if not acquired:
            raise IdempotencyKeyInUse(
                "another request with this Idempotency-Key is in progress; retry shortly"
            )
        try:
            yield prefetched[0] if prefetched else None
        finally:
            try:
                await self._release(keys=[lock], args=[token])
            except RedisError:
                # The answer is already decided; the lock expires by itself after LOCK_SECONDS.
                log.warning("could not release an idempotency lock; it will expire")


class AcceptedMarkers:
    """Markers of payments accepted (acknowledged by Kafka) but maybe not recorded yet."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    @staticmethod
    def key(transaction_id: str) -> str:
        return f"accepted:{transaction_id}"

    @staticmethod
    def entry(
        transaction_id: str, merchant_id: str, request_hash: str
    ) -> dict[str, tuple[str, int]]:
        """The marker as `{key: (value, ttl seconds)}`, for writing beside the security code."""
        value = json.dumps({"merchant_id": merchant_id, "request_hash": request_hash})
        return {AcceptedMarkers.key(transaction_id): (value, ACCEPTED_SECONDS)}

    @staticmethod
    def request_hash(raw: bytes | str | None, merchant_id: str) -> str | None:
        """The request hash in a marker's raw value, if the marker is this merchant's."""
        if raw is None:
            return None
        marker = json.loads(raw)
        if marker.get("merchant_id") != merchant_id:
            return None
        return str(marker.get("request_hash"))

    async def put(self, transaction_id: str, merchant_id: str, request_hash: str) -> None:
        """Write the marker alone (a payment with no security code to store beside it)."""
        for key, (value, ttl) in self.entry(transaction_id, merchant_id, request_hash).items():
            await self._redis.set(key, value, ex=ttl)

    async def accepted_hash(self, transaction_id: str, merchant_id: str) -> str | None:
        """The request hash of an accepted, not yet recorded payment of this merchant's."""
        return self.request_hash(await self._redis.get(self.key(transaction_id)), merchant_id)

    async def forget(self, transaction_id: str) -> None:
        await self._redis.delete(self.key(transaction_id))
