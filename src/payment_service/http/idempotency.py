"""Idempotency-Key in Redis: the lock that refuses concurrent use, and the "accepted" markers.

The lock (`idempotency-lock:{merchant}:{key}`) is a lease: taken with `SET NX PX` for
`LOCK_SECONDS`, renewed every `RENEW_SECONDS` by a compare-and-extend while its request lives, and
released by a compare-and-delete, so a request only ever extends or releases its own lock. An API
that dies holding one blocks the key for at most `LOCK_SECONDS` (409 until then), not a minute;
a request stuck past all its own deadlines stops renewing after `MAX_HOLD_SECONDS`.

The marker (`accepted:{transaction id}`) says Kafka acknowledged a payment's command that
PostgreSQL may not show yet; it holds the merchant and the request hash, so a replay can be told
from a reuse with another body before the payment is recorded. It is written only after the
acknowledgement (`SET NX`): a marker without its command would answer "processing" for a payment
that never reaches the processor. A payment the processor refuses before any row exists gets its
final error written into the marker (`refuse`), so GET and a replay answer it instead of "pending".
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from payment_service.core.errors import IdempotencyKeyInUse, VaultUnavailable

log = logging.getLogger(__name__)

# A lease, not a guess at the longest request: renewed while the request lives.
LOCK_SECONDS = 5.0
RENEW_SECONDS = LOCK_SECONDS / 3
# A request stuck past any of its own deadlines must not hold its key for ever: renewals stop.
MAX_HOLD_SECONDS = 60.0
ACCEPTED_SECONDS = 24 * 3600

# Compare-and-delete: release the lock only if it is still ours.
_RELEASE = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"
)
# Compare-and-extend: renew the lease only if it is still ours.
_RENEW = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then "
    "return redis.call('pexpire', KEYS[1], ARGV[2]) end return 0"
)


class IdempotencyLocks:
    """One Redis lock per (merchant, Idempotency-Key) while a request with it is in progress."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._release = redis.register_script(_RELEASE)
        self._renew = redis.register_script(_RENEW)

    @staticmethod
    def lock_key(merchant_id: str, key: str) -> str:
        return f"idempotency-lock:{merchant_id}:{key}"

    @staticmethod
    def new_token() -> str:
        return str(uuid.uuid4())

    @staticmethod
    def lease_ms() -> int:
        return int(LOCK_SECONDS * 1000)

    @staticmethod
    def in_use() -> IdempotencyKeyInUse:
        return IdempotencyKeyInUse(
            "another request with this Idempotency-Key is in progress; retry shortly"
        )

    @asynccontextmanager
    async def hold(
        self, merchant_id: str, key: str, prefetch: str | None
    ) -> AsyncIterator[bytes | str | None]:
        """Hold the key's lock (or 409); yields the value of `prefetch`, read in the same trip."""
        lock = self.lock_key(merchant_id, key)
        token = self.new_token()
        pipe = self._redis.pipeline(transaction=False)
        pipe.set(lock, token, nx=True, px=self.lease_ms())
        if prefetch is not None:
            pipe.get(prefetch)
        acquired, *prefetched = await pipe.execute()
        if not acquired:
            raise self.in_use()
        async with self.held(lock, token):
            yield prefetched[0] if prefetched else None

    @asynccontextmanager
    async def held(self, lock: str, token: str) -> AsyncIterator[None]:
        """Renew a lock taken with `token` while the block runs, then release it."""
        done = asyncio.Event()
        renewal = asyncio.create_task(self._keep(lock, token, done))
        try:
            yield
        finally:
            # A flag, not only a cancel: a cancel that lands inside a Redis call can come back
            # as a Redis error, and a renewal that outlived its request would hold the key.
            done.set()
            renewal.cancel()
            await asyncio.wait([renewal], timeout=RENEW_SECONDS)
            try:
                await self._release(keys=[lock], args=[token])
            except RedisError:
                # The answer is already decided; the lease runs out by itself.
                log.warning("could not release an idempotency lock; it will expire")

    async def _keep(self, lock: str, token: str, done: asyncio.Event) -> None:
        """Renew the lease until `done` (or for `MAX_HOLD_SECONDS`); a failed renewal is retried
        at the next tick."""
        for _ in range(int(MAX_HOLD_SECONDS / RENEW_SECONDS)):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), RENEW_SECONDS)
            if done.is_set():
                return
            try:
                await self._renew(keys=[lock], args=[token, self.lease_ms()])
            except RedisError:
                log.warning("could not renew an idempotency lock")


@dataclass(frozen=True)
class Marker:
    """An accepted payment not (yet) in PostgreSQL; `error` when the processor refused it."""

    request_hash: str | None
    error: dict[str, str] | None = None


class AcceptedMarkers:
    """Markers of payments accepted (acknowledged by Kafka) but maybe not recorded yet.

    Also the `PaymentRefusals` port of the processor, which writes the final error of a
    payment it refused before any row existed.
    """

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
    def parse(raw: bytes | str | None, merchant_id: str) -> Marker | None:
        """The marker in a raw value, if there is one and it is this merchant's."""
        if raw is None:
            return None
        value: dict[str, Any] = json.loads(raw)
        if value.get("merchant_id") != merchant_id:
            return None
        request_hash = value.get("request_hash")
        error = value.get("error")
        return Marker(
            None if request_hash is None else str(request_hash),
            error if isinstance(error, dict) else None,
        )

    async def put(self, transaction_id: str, merchant_id: str, request_hash: str) -> None:
        """Write the marker once the command is acknowledged; never over a refusal."""
        for key, (value, ttl) in self.entry(transaction_id, merchant_id, request_hash).items():
            await self._redis.set(key, value, ex=ttl, nx=True)

    async def marker(self, transaction_id: str, merchant_id: str) -> Marker | None:
        """The marker of an accepted, not yet recorded payment of this merchant's."""
        return self.parse(await self._redis.get(self.key(transaction_id)), merchant_id)

    async def forget(self, transaction_id: str) -> None:
        await self._redis.delete(self.key(transaction_id))

    async def refuse(
        self,
        transaction_id: str,
        merchant_id: str,
        request_hash: str | None,
        code: str,
        message: str,
    ) -> None:
        """Record the final error of a payment refused before it had a row (the processor)."""
        value = json.dumps(
            {
                "merchant_id": merchant_id,
                "request_hash": request_hash,
                "error": {"code": code, "message": message},
            }
        )
        try:
            await self._redis.set(self.key(transaction_id), value, ex=ACCEPTED_SECONDS)
        except RedisError as exc:
            raise VaultUnavailable("Redis unavailable: refusal not recorded") from exc
