"""How many bank calls may be in flight at once: an AIMD limit between a floor and a ceiling.

Additive increase, multiplicative decrease, as Netflix's concurrency-limits `AIMDLimit` does:

- **Increase.** Each answered call (a result or a 4xx) raises the limit by one, if the limit was
  in use (at least half of it in flight), so it doubles per round trip under load, whatever the
  bank's latency, and does not creep up while traffic is light. It starts at the floor, so a
  burst after a restart ramps up instead of arriving all at once.
- **Decrease.** A call that timed out, or was refused as overload (429, 503, a connect timeout),
  halves the limit, never below the floor. Only calls admitted since the last decrease can cause
  the next one: a wave of timeouts from one overloaded moment halves the limit once, not once
  per call.
- **Waiting.** A caller over the limit waits, first come first served, for at most its timeout;
  `acquire` then returns None and nothing was sent.

Not thread-safe: one limiter per event loop, like the client that owns it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

logger = logging.getLogger(__name__)

Signal = Literal["answered", "overload", "neutral"]
LimitHook = Callable[[int], None]

_DECREASE_FACTOR = 0.5


@dataclass(frozen=True, slots=True)
class Permit:
    """One slot, and the decrease epoch it was admitted in."""

    epoch: int


@dataclass(slots=True)
class LimiterStats:
    """What the limiter did since it was built (for tests and the benchmark report)."""

    peak_in_flight: int = 0
    peak_waiting: int = 0
    waited: int = 0  # callers that had to wait for a slot
    timed_out: int = 0  # callers whose wait expired (nothing sent)
    decreases: int = 0
    lowest_limit: int = 0
    highest_limit: int = 0


class ConcurrencyLimiter:
    """Admits at most `limit` concurrent calls; the limit adapts to the answers (module doc)."""

    def __init__(
        self,
        *,
        min_limit: int,
        max_limit: int,
        on_change: LimitHook | None = None,
        name: str = "bank",
    ) -> None:
        if not 1 <= min_limit <= max_limit:
            raise ValueError("need 1 <= min_limit <= max_limit")
        self._min = min_limit
        self._max = max_limit
        self._limit = min_limit
        self._epoch = 0
        self._in_flight = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._on_change = on_change
        self._name = name
        self.stats = LimiterStats(lowest_limit=min_limit, highest_limit=min_limit)
        self._report(min_limit)

    @property
    def limit(self) -> int:
        return self._limit

    @property
    def in_flight(self) -> int:
        return self._in_flight

    @property
    def waiting(self) -> int:
        return sum(1 for waiter in self._waiters if not waiter.done())

    async def acquire(self, timeout: float) -> Permit | None:
        """A slot within `timeout` seconds, or None (the call must not be sent)."""
        if not self._waiters and self._in_flight < self.limit:
            return self._take()
        if timeout <= 0:
            self.stats.timed_out += 1
            return None
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        self.stats.waited += 1
        self.stats.peak_waiting = max(self.stats.peak_waiting, len(self._waiters))
        try:
            async with asyncio.timeout(timeout):
                await waiter
        except TimeoutError:
            self._give_up(waiter)
            self.stats.timed_out += 1
            return None
        except BaseException:
            self._give_up(waiter)
            raise
        return Permit(self._epoch)  # the slot was handed over by `_wake`

    def release(self, permit: Permit, signal: Signal) -> None:
        """Free the slot and learn from how the call ended."""
        in_use = self._in_flight
        self._in_flight -= 1
        before = self._limit
        if signal == "answered" and in_use * 2 >= before:
            self._limit = min(self._max, before + 1)
        elif signal == "overload" and permit.epoch == self._epoch:
            self._limit = max(self._min, int(before * _DECREASE_FACTOR))
            self._epoch += 1
            if self._limit < before:
                self.stats.decreases += 1
                logger.warning(
                    "%s concurrency limit %d -> %d (overload)", self._name, before, self._limit
                )
        if self._limit != before:
            self._report(self._limit)
        self._wake()

    def _take(self) -> Permit:
        self._in_flight += 1
        self.stats.peak_in_flight = max(self.stats.peak_in_flight, self._in_flight)
        return Permit(self._epoch)

    def _wake(self) -> None:
        """Hand free slots to the oldest waiters (they count as in flight from now)."""
        while self._waiters and self._in_flight < self.limit:
            waiter = self._waiters.popleft()
            if not waiter.done():
                self._take()
                waiter.set_result(None)

    def _give_up(self, waiter: asyncio.Future[None]) -> None:
        if waiter.done() and not waiter.cancelled():
            self._in_flight -= 1  # a slot was handed over just as we gave up: pass it on
            self._wake()
        else:
            waiter.cancel()
            with contextlib.suppress(ValueError):  # `_wake` may have popped it already
                self._waiters.remove(waiter)

    def _report(self, limit: int) -> None:
        self.stats.lowest_limit = min(self.stats.lowest_limit, limit)
        self.stats.highest_limit = max(self.stats.highest_limit, limit)
        if self._on_change is None:
            return
        try:
            self._on_change(limit)
        except Exception:
            # A broken metrics hook must not turn a bank outcome into a different error.
            logger.exception("%s concurrency limit hook failed", self._name)
