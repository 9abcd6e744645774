"""Retrying a bank call: the attempts through the breaker, and their timing.

Every retry reuses the operation's idempotency key (the caller's `attempt` carries it), so the bank
replays its first answer instead of charging again. The waits are capped exponential backoff with
full jitter: a uniform draw between zero and the capped exponential ceiling spreads the retries of
many clients that failed together, so a recovering bank is not hit by synchronized waves.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

from payment_service.bank.breaker import BankCircuitBreaker
from payment_service.config.settings import BankSettings
from payment_service.core.errors import BankCircuitOpen, BankError, BankNotSent, BankOutcomeUnknown

logger = logging.getLogger(__name__)

T = TypeVar("T")

# os.urandom-backed; the jitter needs no reproducibility and this keeps the bandit rule quiet.
_system_random = random.SystemRandom()

# Beyond this the ceiling is the cap anyway; stops 2**n from growing without need.
_MAX_EXPONENT = 62


def backoff_ceiling(retry: int, *, base: float, cap: float) -> float:
    """The longest wait before retry number `retry` (0 for the first retry): min(cap, base*2^n)."""
    if retry < 0:
        raise ValueError("retry must be >= 0")
    return min(cap, base * 2.0 ** min(retry, _MAX_EXPONENT))


def backoff_delay(
    retry: int,
    *,
    base: float,
    cap: float,
    rand: Callable[[], float] = _system_random.random,
) -> float:
    """Seconds to wait before retry number `retry`: uniform in [0, backoff_ceiling(retry)].

    `rand` returns a float in [0, 1); tests pass a fixed one.
    """
    return rand() * backoff_ceiling(retry, base=base, cap=cap)


async def retrying(
    breaker: BankCircuitBreaker,
    attempt: Callable[[], Awaitable[T]],
    *,
    settings: BankSettings,
    operation: str,
    reference: str,
    success_resets: bool = True,
) -> T:
    """Run `attempt` through the breaker up to `settings.max_attempts` times, with backoff.

    Raises `BankRejected` at once; after the last attempt raises `BankOutcomeUnknown` if any
    attempt may have been sent (a later "not sent" does not undo an earlier maybe-sent), else the
    last `BankNotSent`. An open breaker ends the attempts: it will not admit us soon.
    """
    unknown: BankOutcomeUnknown | None = None
    last: BankError | None = None
    for number in range(settings.max_attempts):
        if number:
            await asyncio.sleep(
                backoff_delay(
                    number - 1, base=settings.backoff_base_seconds, cap=settings.backoff_cap_seconds
                )
            )
        try:
            return await breaker.call(
                attempt, operation=operation, reference=reference, success_resets=success_resets
            )
        except BankCircuitOpen as exc:
            last = exc
            break
        except BankOutcomeUnknown as exc:
            unknown = last = exc
        except BankNotSent as exc:
            last = exc
        logger.info("bank %s for %s: attempt %d failed: %s", operation, reference, number + 1, last)
    assert last is not None
    raise unknown or last
