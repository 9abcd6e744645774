"""The circuit breaker around every bank call.

aiobreaker 1.2 keeps the state (its storage and state objects) and notifies listeners; the gate
that decides who may call, and how an outcome is counted, is ours. Its `call_async` cannot be used
as is (DESIGN.md §8), and wrapping it would mean fighting each of these:

- The call that trips the breaker raises `CircuitBreakerError`, hiding that this request did reach
  the bank: "open, not sent" and "sent, outcome unknown" become indistinguishable. Here the
  tripping call re-raises its own error (`BankOutcomeUnknown` stays unknown).
- Half-open lets every concurrent caller through. Here exactly one probe is in flight; the others
  fail fast with `BankCircuitOpen` (a `BankNotSent`: nothing was sent, safe to retry later).
- A timeout applied outside the breaker is never counted. Here the deadline runs inside the
  measured call and counts as a failure, reported as `BankOutcomeUnknown`.
- Its clock is naive `datetime.utcnow()` (deprecated since Python 3.12, an error under our
  warning filter) and cannot be injected. Here the reset timer uses a monotonic, injectable clock.

Counted as failures: the bank's own, `BankNotSent` (refused: nothing listens) and
`BankOutcomeUnknown` (5xx, resets and timeouts of requests that were sent). Not failures: any
answer from the bank, including declines and `BankRejected` (4xx). Neither: `BankBusy`, our own
queueing (no slot or connection in time, a connect timeout under our burst, a 429); a probe that
ends so leaves the breaker half-open for the next caller. The failure count is of consecutive
failures; a success resets it.

Callers that were refused can `wait_for_change()`: it returns when the state changes or the
probe slot frees, so they retry as soon as a probe may be admitted or the breaker has closed.

Not thread-safe: one breaker belongs to one event loop, like the client that owns it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, Literal, TypeVar

from aiobreaker import CircuitBreaker, CircuitBreakerListener, CircuitBreakerState
from aiobreaker.storage.memory import CircuitMemoryStorage

from payment_service.config.settings import BankSettings
from payment_service.core.errors import (
    BankBusy,
    BankCircuitOpen,
    BankNotSent,
    BankOutcomeUnknown,
    BankRejected,
)

logger = logging.getLogger(__name__)

T = TypeVar("T")
BreakerState = Literal["closed", "open", "half_open"]
StateChangeHook = Callable[[BreakerState, BreakerState], None]

_NAMES: dict[Any, BreakerState] = {
    CircuitBreakerState.CLOSED: "closed",
    CircuitBreakerState.OPEN: "open",
    CircuitBreakerState.HALF_OPEN: "half_open",
}


class _StateListener(CircuitBreakerListener):  # type: ignore[misc]
    """Turns aiobreaker's state-change notifications into a log line and the optional hook."""

    def __init__(self, name: str, hook: StateChangeHook | None) -> None:
        self._name = name
        self._hook = hook

    def state_change(self, breaker: Any, old: Any, new: Any) -> None:
        old_name = _NAMES[old.state] if old is not None else "closed"
        new_name = _NAMES[new.state]
        level = logging.WARNING if new_name == "open" else logging.INFO
        logger.log(level, "%s circuit breaker state %s -> %s", self._name, old_name, new_name)
        if self._hook is None:
            return
        try:
            self._hook(old_name, new_name)
        except Exception:
            # A broken metrics hook must not turn a bank outcome into a different error.
            logger.exception("%s circuit breaker state-change hook failed", self._name)


class BankCircuitBreaker:
    """Fails fast while the bank is down, lets one probe through to find out when it is back."""

    def __init__(
        self,
        *,
        fail_max: int,
        reset_seconds: float,
        call_timeout: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        on_state_change: StateChangeHook | None = None,
        name: str = "bank",
    ) -> None:
        self._storage = CircuitMemoryStorage(CircuitBreakerState.CLOSED)
        self._breaker = CircuitBreaker(
            fail_max=fail_max,
            timeout_duration=timedelta(seconds=reset_seconds),
            state_storage=self._storage,
            listeners=[_StateListener(name, on_state_change)],
            name=name,
        )
        self._fail_max = fail_max
        self._reset_seconds = reset_seconds
        self._call_timeout = call_timeout
        self._clock = clock
        self._opened_at = 0.0
        self._probe_in_flight = False
        self._changed = asyncio.Event()

    @classmethod
    def from_settings(
        cls, settings: BankSettings, *, on_state_change: StateChangeHook | None = None
    ) -> BankCircuitBreaker:
        return cls(
            fail_max=settings.breaker_fail_max,
            reset_seconds=settings.breaker_reset_seconds,
            call_timeout=settings.total_timeout_seconds,
            on_state_change=on_state_change,
        )

    @property
    def state(self) -> BreakerState:
        return _NAMES[self._storage.state]

    @property
    def failures(self) -> int:
        """Consecutive failures counted while closed."""
        return int(self._storage.counter)

    @property
    def probe_in_flight(self) -> bool:
        return self._probe_in_flight

    def seconds_until_probe(self) -> float:
        """While open, how long until a probe is admitted; 0 otherwise."""
        if self._storage.state is not CircuitBreakerState.OPEN:
            return 0.0
        return max(0.0, self._opened_at + self._reset_seconds - self._clock())

    def refusal(self, operation: str, reference: str | None = None) -> BankCircuitOpen | None:
        """The error `call` would raise right now without sending; None if it would admit."""
        state = self._storage.state
        if state is CircuitBreakerState.CLOSED:
            return None
        if state is CircuitBreakerState.OPEN and (wait := self.seconds_until_probe()) > 0:
            return BankCircuitOpen(
                "bank circuit breaker is open; request not sent",
                retry_after=wait,
                operation=operation,
                reference=reference,
            )
        if self._probe_in_flight:
            return BankCircuitOpen(
                "bank circuit breaker is half-open with its probe in flight; request not sent",
                retry_after=None,
                operation=operation,
                reference=reference,
            )
        return None

    async def wait_for_change(self, timeout: float) -> None:
        """Return when the state changes or the probe slot frees, or after `timeout` seconds."""
        changed = self._changed
        try:
            async with asyncio.timeout(max(0.0, timeout)):
                await changed.wait()
        except TimeoutError:
            return

    async def call(
        self,
        func: Callable[[], Awaitable[T]],
        *,
        operation: str,
        reference: str | None = None,
        success_resets: bool = True,
    ) -> T:
        """Run one bank request through the breaker.

        `func` must translate transport failures into the `BankError` tree; whatever it raises
        is re-raised unchanged, so a caller always learns whether its request was sent.
        Raises `BankCircuitOpen` without calling `func` while open or while the probe is out.

        `success_resets=False` is for status inquiries: their failures count, but a bank that
        answers inquiries while failing every charge must still trip the breaker.
        """
        probe = self._admit(operation, reference)
        try:
            result = await self._within_deadline(func, operation, reference)
        except BankRejected:
            self._on_success(probe, success_resets)
            raise
        except BankBusy:
            raise  # our queueing, not the bank's failure: neither counted nor a success
        except (BankNotSent, BankOutcomeUnknown):
            self._on_failure(probe)
            raise
        else:
            self._on_success(probe, success_resets)
            return result
        finally:
            # Also on cancellation or an unexpected error: the slot frees, the state stays
            # half-open, and the next caller becomes the probe.
            if probe and self._probe_in_flight:
                self._probe_in_flight = False
                self._notify()

    def _admit(self, operation: str, reference: str | None) -> bool:
        """Whether the caller may go, and whether it is the half-open probe. Never awaits."""
        refused = self.refusal(operation, reference)
        if refused is not None:
            raise refused
        state = self._storage.state
        if state is CircuitBreakerState.CLOSED:
            return False
        if state is CircuitBreakerState.OPEN:
            self._transition(CircuitBreakerState.HALF_OPEN)
        self._probe_in_flight = True
        return True

    async def _within_deadline(
        self, func: Callable[[], Awaitable[T]], operation: str, reference: str | None
    ) -> T:
        if self._call_timeout is None:
            return await func()
        try:
            async with asyncio.timeout(self._call_timeout):
                return await func()
        except TimeoutError as exc:
            raise BankOutcomeUnknown(
                f"no answer from the bank within {self._call_timeout:g}s",
                operation=operation,
                reference=reference,
            ) from exc

    def _on_success(self, probe: bool, resets: bool) -> None:
        if probe:
            self._transition(CircuitBreakerState.CLOSED)  # aiobreaker resets the count on close
        elif resets and self._storage.state is CircuitBreakerState.CLOSED:
            self._storage.reset_counter()
        # A call admitted before the breaker opened proves little; the probe decides.

    def _on_failure(self, probe: bool) -> None:
        if probe:
            self._trip()
            return
        if self._storage.state is not CircuitBreakerState.CLOSED:
            return  # sent before the breaker opened: already accounted for by the trip
        self._storage.increment_counter()
        if self._storage.counter >= self._fail_max:
            self._trip()

    def _trip(self) -> None:
        self._opened_at = self._clock()
        self._transition(CircuitBreakerState.OPEN)

    def _transition(self, new: Any) -> None:
        self._storage.state = new
        # aiobreaker's setter builds the new state object and notifies the listeners.
        self._breaker.state = new
        self._notify()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()
