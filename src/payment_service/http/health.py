"""`GET /health`: the state of each dependency (Kafka, PostgreSQL, Redis, bank), with deadlines.

The checks are handed in by the composition root, one probe per dependency, in the order the
report lists them. Results are cached for a second so that a busy load balancer cannot turn health
checks into load.

The processor is reported from its heartbeat (`ops/heartbeat.py`): "down" when none is fresh or
none consumes, "lagging" past `max_lag` commands. It degrades the report (`"degraded"`, still 200)
rather than failing it: this API still accepts payments (202) while the processor is away, and a
load balancer that dropped every API for it would refuse them all.

Beside `components`, `services` maps each one to a boolean (up or not), the shape the seed's
clients read (docs/compatibility.md).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import aiohttp
from redis.asyncio import Redis

from payment_service import __version__
from payment_service.http.replies import ReplyRouter
from payment_service.kafka.producer import AsyncProducer
from payment_service.ops.heartbeat import processors_seen

CHECK_TIMEOUT_SECONDS = 2.0
CACHE_SECONDS = 1.0

Check = Callable[[], Awaitable[object]]


class Lagging(Exception):
    """The processors run but are behind by more than the limit."""


class HealthCheck:
    def __init__(self, checks: Mapping[str, Check], *, degrading: frozenset[str] = frozenset()):
        """`degrading`: the components whose failure degrades the report instead of failing it."""
        self._checks = dict(checks)
        self._degrading = degrading
        self._cached: tuple[float, dict[str, Any]] | None = None

    async def report(self) -> dict[str, Any]:
        now = time.monotonic()
        if self._cached is not None and now - self._cached[0] < CACHE_SECONDS:
            return self._cached[1]
        names = list(self._checks)
        results = await asyncio.gather(*(self._run(self._checks[n]) for n in names))
        components = dict(zip(names, results, strict=True))
        failing = {n for n, c in components.items() if c["status"] != "up"}
        status = "healthy" if not failing else "unhealthy"
        if failing and failing <= self._degrading:
            status = "degraded"
        report = {
            "status": status,
            "components": components,
            "services": {name: c["status"] == "up" for name, c in components.items()},
            "version": __version__,
            "timestamp": dt.datetime.now(dt.UTC).isoformat(),
        }
        self._cached = (now, report)
        return report

    @staticmethod
    async def _run(check: Check) -> dict[str, Any]:
        started = time.perf_counter()
        try:
            async with asyncio.timeout(CHECK_TIMEOUT_SECONDS):
                found = await check()
        except Lagging as exc:
            return {"status": "lagging", "error": str(exc)}
        except ComponentDown as exc:
            return {"status": "down", **exc.details}
        except Exception as exc:  # a health check reports every failure, whatever it is
            return {"status": "down", "error": type(exc).__name__}
        details = found if isinstance(found, dict) else {}
        elapsed = round((time.perf_counter() - started) * 1000, 1)
        return {"status": "up", "latency_ms": elapsed, **details}


class ComponentDown(Exception):
    """A check's failure with details for the report (no secrets in them)."""

    def __init__(self, **details: object) -> None:
        super().__init__(details)
        self.details = details


def kafka_check(producer: AsyncProducer, replies: ReplyRouter) -> Check:
    """Up when the reply consumer runs and the broker answers a metadata request."""

    async def check() -> dict[str, object]:
        state = {
            "reply_consumer": replies.state,
            "reply_consumer_restarts": replies.restarts,
            "reply_partition": replies.partition,  # which instance answered (API_INSTANCE)
        }
        if not replies.healthy:
            raise ComponentDown(error="reply consumer is not running", **state)
        await asyncio.to_thread(producer.list_topics, CHECK_TIMEOUT_SECONDS)
        return state

    return check


def bank_check(session: aiohttp.ClientSession, url: str) -> Check:
    """Up when the bank's `/health` answers 2xx."""

    async def check() -> None:
        async with session.get(f"{url}/health") as response:
            response.raise_for_status()

    return check


def processor_check(redis: Redis, *, stale_seconds: float, max_lag: int) -> Check:
    """Up when a processor's heartbeat is fresh, its consumer runs, and the lag is in bounds."""

    async def check() -> None:
        seen = await processors_seen(redis, stale_seconds)
        if not seen.consuming:
            raise ProcessorDown(f"{seen.fresh} processors seen, none consuming")
        if seen.lag > max_lag:
            raise Lagging(f"{seen.lag} commands behind (limit {max_lag})")

    return check


class ProcessorDown(Exception):
    """No processor heartbeat is fresh, or none of them consumes."""
