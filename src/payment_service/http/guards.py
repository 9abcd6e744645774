"""Who may call, and how often: bearer API keys (cached) and per-merchant rate limits (Redis).

A key is looked up in PostgreSQL only when it is in neither cache: known keys are kept for
`CACHE_SECONDS`, unknown ones for the negative-cache time, and concurrent requests with the same
uncached key share one lookup. Lookups also spend a budget per client address and per key prefix
(`auth_lookup_rate_per_second`), so a flood of distinct bogus keys costs a bounded number of
queries and then 429s. Only hashes of keys are kept in memory.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from typing import Final, TypeVar

from redis.asyncio import Redis

from payment_service.core.errors import AuthenticationFailed, RateLimited
from payment_service.core.ports import MerchantKeys
from payment_service.http.protection import TokenBuckets, key_prefix, refuse_rate

CACHE_SECONDS = 60.0
CACHE_MAX = 10_000
MAX_KEY_CHARS: Final = 200


class ApiKeyAuth:
    """Resolves `Authorization: Bearer <key>` to a merchant id; only hashes are kept in memory."""

    def __init__(
        self,
        keys: MerchantKeys,
        *,
        lookups: TokenBuckets | None = None,
        negative_cache_seconds: float = 10.0,
    ) -> None:
        self._keys = keys
        self._lookups = lookups
        self._negative_seconds = negative_cache_seconds
        self._cache: dict[bytes, tuple[str, float]] = {}
        self._unknown: dict[bytes, float] = {}
        self._pending: dict[bytes, asyncio.Future[str | None]] = {}

    async def merchant_for(self, authorization: str | None, client: str = "") -> str:
        scheme, _, key = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            raise AuthenticationFailed("missing API key: send 'Authorization: Bearer <api key>'")
        key = key.strip()
        # Keys are short printable ASCII; anything else (a header that was not UTF-8 arrives
        # with surrogate escapes) cannot be one, and must not reach hashing or the database.
        if len(key) > MAX_KEY_CHARS or not key.isascii() or not key.isprintable():
            raise AuthenticationFailed("invalid API key")
        digest = hashlib.sha256(key.encode()).digest()
        now = time.monotonic()
        cached = self._cache.get(digest)
        if cached is not None and cached[1] > now:
            return cached[0]
        if self._unknown.get(digest, 0.0) > now:
            raise AuthenticationFailed("invalid API key")
        merchant = await self._lookup(key, digest, client, now)
        if merchant is None:
            _remember(self._unknown, digest, now + self._negative_seconds)
            raise AuthenticationFailed("invalid API key")
        _remember(self._cache, digest, (merchant, now + CACHE_SECONDS))
        return merchant

    async def _lookup(self, key: str, digest: bytes, client: str, now: float) -> str | None:
        """One PostgreSQL lookup per uncached key at a time, within the lookup budget."""
        pending = self._pending.get(digest)
        if pending is None:
            if self._lookups is not None:
                wait = max(
                    self._lookups.take("a:" + client, now),
                    self._lookups.take("k:" + (key_prefix("Bearer " + key) or ""), now),
                )
                if wait:
                    raise refuse_rate(wait, "with unknown API keys")
            pending = asyncio.ensure_future(self._keys.merchant_for_key(key))
            self._pending[digest] = pending
            pending.add_done_callback(lambda done: self._settled(digest, done))
        return await asyncio.shield(pending)

    def _settled(self, digest: bytes, done: asyncio.Future[str | None]) -> None:
        self._pending.pop(digest, None)
        if not done.cancelled():
            done.exception()  # retrieved here too: every waiter may have gone away


V = TypeVar("V")


def _remember(cache: dict[bytes, V], digest: bytes, value: V) -> None:
    if len(cache) >= CACHE_MAX:
        cache.clear()
    cache[digest] = value


class RateLimiter:
    """A fixed one-minute window per merchant, counted in Redis so every instance shares it.

    `window_key`, `WINDOW_TTL_SECONDS`, `limit` and `refusal` let the payment admission script
    (`http.admission`) count the same window in its own round trip.
    """

    WINDOW_TTL_SECONDS: Final = 61

    def __init__(self, redis: Redis, per_minute: int) -> None:
        self._redis = redis
        self.limit = per_minute

    @staticmethod
    def window_key(merchant_id: str, now: float) -> str:
        return f"ratelimit:{merchant_id}:{int(now // 60)}"

    def refusal(self, now: float) -> RateLimited:
        retry_after = max(1, 60 - int(now % 60))
        return RateLimited(
            f"rate limit of {self.limit} requests per minute exceeded; retry later",
            retry_after_seconds=retry_after,
        )

    async def check(self, merchant_id: str) -> None:
        now = time.time()
        key = self.window_key(merchant_id, now)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.incr(key)
            pipe.expire(key, self.WINDOW_TTL_SECONDS)
            count, _ = await pipe.execute()
        if int(count) > self.limit:
            raise self.refusal(now)
