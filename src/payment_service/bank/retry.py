"""Retrying a bank call: the attempts through the gate (slot, breaker), and their timing.

Every retry reuses the operation's idempotency key (the caller's `attempt` carries it), so the bank
replays its first answer instead of charging again. The waits are capped exponential backoff with
full jitter: a uniform draw between zero and the capped exponential ceiling spreads the retries of
many clients that failed together, so a recovering bank is not hit by synchronized waves. A call
refused by the open breaker waits for its next probe instead.

A call that could not be sent is never failed at once: a burst after a restart queues for slots,
an open breaker is waited out, for up to the not-sent budget. Only a bank that stays unreachable
for longer than that makes the caller see `BankNotSent` (DESIGN.md §8: never fail a payment for
good because *we* were queueing).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

from payment_service.bank.gate import BankGate
from payment_service.config.settings import BankSettings
from payment_service.core.errors import BankError, BankNotSent, BankOutcomeUnknown

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
    gate: BankGate,
    attempt: Callable[[], Awaitable[T]],
    *,
    settings: BankSettings,
    operation: str,
    reference: str,
    success_resets: bool = True,
) -> T:
    """Run `attempt` through the gate until it is answered, within two limits.

    - Attempts that may have reached the bank (`BankOutcomeUnknown`) count against
      `settings.max_attempts`, with backoff between them.
    - Attempts that were not sent (breaker open, no slot, bank unreachable, 429) are free: they
      wait (for the breaker's next probe, a slot, or a backoff) and try again, for as long as
      `settings.not_sent_budget_seconds` lasts since the first attempt began.

    Raises `BankRejected` at once. When a limit is reached, raises `BankOutcomeUnknown` if any
    attempt may have been sent (a later "not sent" does not undo an earlier maybe-sent), else
    the last `BankNotSent`.
    """
    clock = asyncio.get_running_loop().time
    deadline = clock() + settings.not_sent_budget_seconds
    unknown: BankOutcomeUnknown | None = None
    last: BankError | None = None
    sent = retries = 0
    while True:
        try:
            return await gate.send(
                attempt,
                operation=operation,
                reference=reference,
                slot_timeout=max(0.0, deadline - clock()),
                success_resets=success_resets,
            )
        except BankOutcomeUnknown as exc:
            unknown = last = exc
            sent += 1
            if sent >= settings.max_attempts:
                break
        except BankNotSent as exc:
            last = exc
        remaining = deadline - clock()
        if remaining <= 0:
            break
        logger.info(
            "bank %s for %s: attempt %d failed: %s", operation, reference, retries + 1, last
        )
        delay = backoff_delay(
            retries, base=settings.backoff_base_seconds, cap=settings.backoff_cap_seconds
        )
        await gate.pause(last, delay, remaining)
        retries += 1
    assert last is not None
    logger.warning("bank %s for %s: giving up after %d attempts: %s", operation, reference,
                   retries + 1, last)  # fmt: skip
    raise unknown or last
