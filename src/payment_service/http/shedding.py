"""The API's in-flight cap, lowered while payments queue: past capacity, 503 at once.

A fixed cap (`API_MAX_IN_FLIGHT`) refuses only once that many requests are waiting; past the
processors' capacity the requests admitted before then wait their turn in Kafka for seconds
(1,000 in flight at 200/s is five). So the cap follows how long the requests that wait for the
processor take (payment, capture, cancel, refund), the way CoDel watches a packet queue:

- Each interval (`API_SHED_INTERVAL_SECONDS`), the fastest of those requests to finish tells
  the standing queue: a queue delays every request, a passing burst does not delay the fastest.
- Slower than `API_SHED_TARGET_SECONDS`: the cap drops to 80 % of the most that were in flight
  during the interval (at most its current value), never below `API_SHED_MIN_IN_FLIGHT`.
- Faster: the cap rises by a tenth, up to `API_MAX_IN_FLIGHT`. An interval in which none of
  them finished leaves the cap as it is.

Past the cap the answer is 503 `overloaded` with Retry-After, before anything is done, so the
client retries with the same Idempotency-Key. Other requests (reads, card vaulting) hold a slot
but are not measured: they are fast, and would hide the queue.

Not thread-safe: one per API process, on its event loop.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Final

from payment_service.core.errors import Overloaded

logger = logging.getLogger(__name__)

DECREASE: Final = 0.8
INCREASE: Final = 0.1


@dataclass(frozen=True, slots=True)
class SheddingPolicy:
    ceiling: int  # API_MAX_IN_FLIGHT
    floor: int  # API_SHED_MIN_IN_FLIGHT (at most the ceiling)
    target_seconds: float
    interval_seconds: float


class LoadShedder:
    """Admits at most `limit` requests at once; the limit adapts (module doc)."""

    def __init__(self, policy: SheddingPolicy, clock: Callable[[], float] = time.monotonic) -> None:
        self._policy = policy
        self._floor = min(policy.floor, policy.ceiling)
        self._clock = clock
        self.limit = policy.ceiling
        self.count = 0
        self.refused = 0
        self._interval_start = clock()
        self._fastest: float | None = None
        self._peak = 0

    @contextmanager
    def slot(self, *, measured: bool) -> Iterator[None]:
        """Hold one slot while the request is handled; `measured`: it waits for the processor."""
        started = self._clock()
        self._tick(started)
        if self.count >= self.limit:
            self.refused += 1
            raise Overloaded(
                "the service is handling too many requests; nothing was done with this one: "
                "retry shortly (with the same Idempotency-Key)",
                retry_after_seconds=1,
            )
        self.count += 1
        self._peak = max(self._peak, self.count)
        try:
            yield
        finally:
            self.count -= 1
            finished = self._clock()
            if measured:
                took = finished - started
                self._fastest = took if self._fastest is None else min(self._fastest, took)
            self._tick(finished)

    def _tick(self, now: float) -> None:
        if now - self._interval_start < self._policy.interval_seconds:
            return
        fastest, peak = self._fastest, self._peak
        self._interval_start, self._fastest, self._peak = now, None, self.count
        if fastest is None:
            return
        before = self.limit
        if fastest > self._policy.target_seconds:
            self.limit = max(self._floor, min(self.limit, int(peak * DECREASE)))
        else:
            self.limit = min(self._policy.ceiling, self.limit + max(1, int(self.limit * INCREASE)))
        if before == self._policy.ceiling and self.limit < before:
            logger.warning(
                "shedding load: requests queue (the fastest took %.0f ms); at most %d in flight",
                fastest * 1000,
                self.limit,
            )
        elif self.limit == self._policy.ceiling and before < self.limit:
            logger.info("no longer shedding load: at most %d in flight", self.limit)
