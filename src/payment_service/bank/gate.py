"""One attempt at the bank through its two gates: a concurrency slot, then the circuit breaker.

Order matters. The slot comes first, so the time a call spends queueing for it is ours and is
never inside the breaker's deadline: only time at the bank (with a slot and a connection) can
count as the bank's failure. A breaker that would refuse is asked first, without waiting, so a
call is not queued only to be refused; the real admission happens once the slot is held, and the
half-open probe is therefore never stuck behind the queue.

After the attempt the limiter learns how it ended: answered (a result or a 4xx) raises the limit,
overload (timeouts, 429, 503) halves it, anything else leaves it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from payment_service.bank.breaker import BankCircuitBreaker
from payment_service.bank.limiter import ConcurrencyLimiter, Signal
from payment_service.bank.transport import overloaded
from payment_service.core.errors import BankBusy, BankCircuitOpen, BankError, BankRejected

T = TypeVar("T")


class BankGate:
    """The limiter and the breaker every bank request passes, in that order."""

    def __init__(self, breaker: BankCircuitBreaker, limiter: ConcurrencyLimiter) -> None:
        self.breaker = breaker
        self.limiter = limiter

    async def send(
        self,
        func: Callable[[], Awaitable[T]],
        *,
        operation: str,
        reference: str | None,
        slot_timeout: float,
        success_resets: bool = True,
    ) -> T:
        """Run `func` once with a slot and the breaker's admission.

        Raises `BankCircuitOpen` at once while the breaker refuses, `BankBusy` when no slot
        frees within `slot_timeout` seconds (in both cases nothing was sent), and otherwise
        whatever `func` or the breaker raises.
        """
        refused = self.breaker.refusal(operation, reference)
        if refused is not None:
            raise refused
        permit = await self.limiter.acquire(slot_timeout)
        if permit is None:
            raise BankBusy(
                f"no free slot for a bank call within {slot_timeout:.3g}s "
                f"({self.limiter.limit} in flight); request not sent",
                operation=operation,
                reference=reference,
            )
        signal: Signal = "neutral"
        try:
            result = await self.breaker.call(
                func, operation=operation, reference=reference, success_resets=success_resets
            )
        except BankRejected:
            signal = "answered"
            raise
        except BankCircuitOpen:
            raise
        except BankError as exc:
            signal = "overload" if overloaded(exc) else "neutral"
            raise
        else:
            signal = "answered"
            return result
        finally:
            self.limiter.release(permit, signal)

    async def pause(self, refused: BankError, wait: float, remaining: float) -> None:
        """Wait before the next try: for the breaker if it refused, else `wait` seconds.

        Never longer than `remaining`, the time left in the caller's budget.
        """
        if isinstance(refused, BankCircuitOpen):
            # Until a probe may go (or, with the probe out, until its end decides).
            until = refused.retry_after if refused.retry_after is not None else remaining
            await self.breaker.wait_for_change(min(until, remaining))
            return
        await asyncio.sleep(max(0.0, min(wait, remaining)))
