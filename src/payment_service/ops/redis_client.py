"""The one Redis client factory: every process's Redis (vault, idempotency locks, rate limits).

Every call is bounded: socket and connect timeouts, a blocking pool whose wait is bounded too, and
one quick retry.
"""

from __future__ import annotations

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff

from payment_service.config.settings import RedisSettings


def redis_client(settings: RedisSettings) -> Redis:
    """A Redis client whose every call is bounded by the configured timeouts.

    redis-py's default retries up to 10 times with backoff, which would multiply the timeouts;
    one quick retry covers a dropped pooled connection, and callers retry the rest.
    """
    pool = BlockingConnectionPool.from_url(
        settings.url.get_secret_value(),
        max_connections=settings.max_connections,
        timeout=settings.pool_timeout_seconds,
        socket_timeout=settings.socket_timeout_seconds,
        socket_connect_timeout=settings.connect_timeout_seconds,
        retry=Retry(ExponentialWithJitterBackoff(base=0.01, cap=0.05), retries=1),
    )
    return Redis.from_pool(pool)  # the client owns the pool: aclose() closes its connections
