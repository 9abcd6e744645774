"""The processor's heartbeat in Redis, and the API's reading of it for `/health`.

Every `interval` each processor writes `processor-heartbeat:{instance}` (its consumer lag and
whether its consumer runs, with a TTL of a few intervals) and its name with the time into the
sorted set `processor-heartbeats`. A stopped processor (SIGSTOP, crashed, killed) stops writing;
one whose consumer failed writes `consuming: false` until a new consumer runs. The API reads the
fresh entries: none, or none consuming, is "down"; a total lag over its limit is "lagging".
Redis is where both already are; a heartbeat costs two writes a second or two per processor.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import time
from dataclasses import dataclass, field

from redis.asyncio import Redis
from redis.exceptions import RedisError

from payment_service.ops import metric_catalog as catalog
from payment_service.ops.telemetry import Metrics

log = logging.getLogger(__name__)

MEMBERS = "processor-heartbeats"
# A member not seen for this long is dropped from the set by the next writer.
FORGET_SECONDS = 3600.0


def _key(instance: str) -> str:
    return f"processor-heartbeat:{instance}"


def instance_name() -> str:
    """This process's name in the heartbeats: host and pid (a restart is a new instance)."""
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass
class Heartbeat:
    """What a processor reports; `lags` is set from librdkafka's statistics (Quix's thread)."""

    redis: Redis
    instance: str
    interval_seconds: float = 2.0
    consuming: bool = False
    lags: dict[tuple[str, int], int] = field(default_factory=dict)
    metrics: Metrics | None = None

    @property
    def lag(self) -> int:
        return sum(self.lags.values())

    async def beat(self) -> None:
        now = time.time()
        value = json.dumps({"at": now, "lag": self.lag, "consuming": self.consuming})
        ttl = max(1, int(self.interval_seconds * 5))
        pipe = self.redis.pipeline(transaction=False)
        pipe.set(_key(self.instance), value, ex=ttl)
        pipe.zadd(MEMBERS, {self.instance: now})
        pipe.zremrangebyscore(MEMBERS, "-inf", now - FORGET_SECONDS)
        await pipe.execute()
        if self.metrics is not None:
            self.metrics.gauge(catalog.PROCESSOR_HEARTBEAT, 1.0 if self.consuming else 0.0)

    async def run_forever(self) -> None:
        while True:
            try:
                await self.beat()
            except RedisError as exc:  # the next beat tries again; the API sees it stale
                log.warning("heartbeat not written: %s", type(exc).__name__)
            await asyncio.sleep(self.interval_seconds)


@dataclass(frozen=True)
class ProcessorsSeen:
    """The processors with a fresh heartbeat: how many consume, and their total lag."""

    fresh: int
    consuming: int
    lag: int


async def processors_seen(redis: Redis, stale_seconds: float) -> ProcessorsSeen:
    """Read the heartbeats written in the last `stale_seconds`."""
    now = time.time()
    members = await redis.zrangebyscore(MEMBERS, now - stale_seconds, "+inf")
    if not members:
        return ProcessorsSeen(0, 0, 0)
    names = [m.decode() if isinstance(m, bytes) else str(m) for m in members]
    raw = await redis.mget([_key(name) for name in names])
    beats = [json.loads(r) for r in raw if r is not None]
    fresh = [b for b in beats if now - float(b.get("at", 0)) <= stale_seconds]
    consuming = [b for b in fresh if b.get("consuming")]
    return ProcessorsSeen(len(fresh), len(consuming), sum(int(b.get("lag", 0)) for b in consuming))
