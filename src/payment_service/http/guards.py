"""Who may call, and how often: bearer API keys (cached) and per-merchant rate limits (Redis)."""

from __future__ import annotations

import hashlib
import time

from redis.asyncio import Redis

from payment_service.core.errors import AuthenticationFailed, RateLimited
from payment_service.core.ports import MerchantKeys

CACHE_SECONDS = 60.0
CACHE_MAX = 10_000


class ApiKeyAuth:
    """Resolves `Authorization: Bearer <key>` to a merchant id; only hashes are kept in memory."""

    def __init__(self, keys: MerchantKeys) -> None:
        self._keys = keys
        self._cache: dict[bytes, tuple[str, float]] = {}

    async def merchant_for(self, authorization: str | None) -> str:
        scheme, _, key = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            raise AuthenticationFailed("missing API key: send 'Authorization: Bearer <api key>'")
        key = key.strip()
        digest = hashlib.sha256(key.encode()).digest()
        cached = self._cache.get(digest)
        now = time.monotonic()
        if cached is not None and cached[1] > now:
            return cached[0]
        merchant = await self._keys.merchant_for_key(key)
        if merchant is None:
            raise AuthenticationFailed("invalid API key")
        if len(self._cache) >= CACHE_MAX:
            self._cache.clear()
        self._cache[digest] = (merchant, now + CACHE_SECONDS)
        return merchant


class RateLimiter:
    """A fixed one-minute window per merchant, counted in Redis so every instance shares it."""

    def __init__(self, redis: Redis, per_minute: int) -> None:
        self._redis = redis
        self._limit = per_minute

    async def check(self, merchant_id: str) -> None:
        now = time.time()
        window = int(now // 60)
        key = f"ratelimit:{merchant_id}:{window}"
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.incr(key)
            pipe.expire(key, 61)
            count, _ = await pipe.execute()
        if int(count) > self._limit:
            retry_after = max(1, 60 - int(now % 60))
            raise RateLimited(
                f"rate limit of {self._limit} requests per minute exceeded; retry later",
                retry_after_seconds=retry_after,
            )
