"""`GET /health`: the state of each dependency (Kafka, PostgreSQL, Redis, bank), with deadlines.

Results are cached for a second so that a busy load balancer cannot turn health checks into load.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import asyncpg
from redis.asyncio import Redis

from payment_service.http.replies import ReplyRouter
from payment_service.kafka.producer import AsyncProducer

CHECK_TIMEOUT_SECONDS = 2.0
CACHE_SECONDS = 1.0


class HealthCheck:
    def __init__(
        self,
        *,
        pool: asyncpg.Pool,
        redis: Redis,
        producer: AsyncProducer,
        replies: ReplyRouter,
        bank_url: str,
        session: aiohttp.ClientSession,
    ) -> None:
        self._checks: dict[str, Callable[[], Awaitable[object]]] = {
            "postgres": lambda: pool.fetchval("SELECT 1"),
            "redis": lambda: redis.ping(),
            "kafka": lambda: _kafka(producer, replies),
            "bank": lambda: _bank(session, bank_url),
        }
        self._cached: tuple[float, dict[str, Any]] | None = None

    async def report(self) -> dict[str, Any]:
        now = time.monotonic()
        if self._cached is not None and now - self._cached[0] < CACHE_SECONDS:
            return self._cached[1]
        names = list(self._checks)
        results = await asyncio.gather(*(self._run(self._checks[n]) for n in names))
        components = dict(zip(names, results, strict=True))
        healthy = all(c["status"] == "up" for c in components.values())
        report = {"status": "healthy" if healthy else "unhealthy", "components": components}
        self._cached = (now, report)
        return report

    @staticmethod
    async def _run(check: Callable[[], Awaitable[object]]) -> dict[str, Any]:
        started = time.perf_counter()
        try:
            async with asyncio.timeout(CHECK_TIMEOUT_SECONDS):
                await check()
        except Exception as exc:  # a health check reports every failure, whatever it is
            return {"status": "down", "error": type(exc).__name__}
        return {"status": "up", "latency_ms": round((time.perf_counter() - started) * 1000, 1)}


async def _kafka(producer: AsyncProducer, replies: ReplyRouter) -> None:
    if not replies.healthy:
        raise RuntimeError("reply consumer is not running")
    await asyncio.to_thread(producer.list_topics, CHECK_TIMEOUT_SECONDS)


async def _bank(session: aiohttp.ClientSession, url: str) -> None:
    async with session.get(f"{url}/health") as response:
        response.raise_for_status()
