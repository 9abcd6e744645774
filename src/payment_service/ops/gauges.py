"""Gauges sampled on a timer: how full the PostgreSQL and Redis connection pools are.

The composition roots start `report_forever` with the samplers of their own pools; each sampler
reads the pool's public counters (no I/O) and returns (metric, value) pairs.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from redis.asyncio import Redis

from payment_service.ops import metric_catalog as catalog
from payment_service.ops.metric_catalog import Metric
from payment_service.ops.telemetry import Metrics

log = logging.getLogger(__name__)

Sampler = Callable[[], Iterable[tuple[Metric, float]]]


def postgres_pool(pool: Any) -> Sampler:
    """Size, idle and maximum of an asyncpg pool."""

    def sample() -> Iterable[tuple[Metric, float]]:
        return (
            (catalog.DB_POOL_SIZE, pool.get_size()),
            (catalog.DB_POOL_IDLE, pool.get_idle_size()),
            (catalog.DB_POOL_MAX, pool.get_max_size()),
        )

    return sample


def redis_pool(client: Redis) -> Sampler:
    """In use, idle and maximum of a redis-py pool (`get_connection_count`: idle, then used)."""
    pool = client.connection_pool

    def sample() -> Iterable[tuple[Metric, float]]:
        counts = [count for count, _attributes in pool.get_connection_count()]
        idle, in_use = [*counts, 0, 0][:2]
        return (
            (catalog.REDIS_POOL_IN_USE, in_use),
            (catalog.REDIS_POOL_IDLE, idle),
            (catalog.REDIS_POOL_MAX, pool.max_connections),
        )

    return sample


def sample_once(metrics: Metrics, samplers: Sequence[Sampler]) -> None:
    for sampler in samplers:
        for metric, value in sampler():
            metrics.gauge(metric, float(value))


async def report_forever(metrics: Metrics, samplers: Sequence[Sampler], interval: float) -> None:
    """Sample every `interval` seconds until cancelled; a failing sampler is logged and skipped."""
    while True:
        try:
            sample_once(metrics, samplers)
        except Exception:  # a gauge must never take the process down
            log.exception("sampling gauges failed")
        await asyncio.sleep(interval)
