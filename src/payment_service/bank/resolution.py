"""Settling an unknown outcome from the bank's own record of what it executed.

After the attempts of an operation ran out with "maybe sent", one status inquiry (through the
gate: a slot, then the breaker, not resetting its failure count) looks for the operation's
idempotency key. Found: its
recorded verdict is the result (a recorded 4xx is re-raised as `BankRejected`). Not found, or no
answer: the outcome stays unknown, and the caller asks again later with the same key.
"""

from __future__ import annotations

import logging

from payment_service.bank.calls import inquire_once
from payment_service.bank.gate import BankGate
from payment_service.bank.transport import BankTransport
from payment_service.core.banking import BankResult
from payment_service.core.errors import BankError, BankOutcomeUnknown, BankRejected

logger = logging.getLogger(__name__)


async def resolve_unknown(
    gate: BankGate,
    transport: BankTransport,
    *,
    operation: str,
    reference: str,
    key: str,
    cause: BankOutcomeUnknown,
    slot_timeout: float,
) -> BankResult:
    """The result of `operation` under `key` as the bank recorded it, or `BankOutcomeUnknown`."""
    try:
        inquiry = await gate.send(
            lambda: inquire_once(transport, reference),
            operation="inquire",
            reference=reference,
            slot_timeout=slot_timeout,
            success_resets=False,
        )
    except BankError as exc:
        logger.warning(
            "bank %s for %s: outcome unknown, inquiry failed: %s", operation, reference, exc
        )
        raise BankOutcomeUnknown(
            f"{operation} outcome unknown ({cause.message}); status inquiry failed: {exc.message}",
            operation=operation,
            reference=reference,
        ) from cause
    found = inquiry.find(key)
    if found is None:
        logger.warning(
            "bank %s for %s: outcome unknown, bank has no record yet", operation, reference
        )
        raise BankOutcomeUnknown(
            f"{operation} outcome unknown ({cause.message}); the bank reports no record of "
            "it yet (a request in flight may still commit)",
            operation=operation,
            reference=reference,
        ) from cause
    logger.info(
        "bank %s for %s: outcome resolved by inquiry: %s", operation, reference, found.outcome
    )
    if found.outcome == "rejected":
        raise BankRejected(
            found.message,
            code=found.error_code or "rejected",
            status=found.http_status,
            operation=operation,
            reference=reference,
        )
    return found.as_result()
