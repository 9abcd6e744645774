"""Ports of refusals, beside `core.ports` (300 lines).

A payment refused before it has a row (a card on file it may not charge) is recorded with its
code in the transaction that decided it, so every redelivery or replay answers the same
(`RefusingPaymentRepository`); and its final error replaces the API's "accepted" marker, so GET
answers it (`PaymentRefusals`).
"""

from __future__ import annotations

from typing import Protocol

from payment_service.core.ports import PaymentRepository
from payment_service.core.records import NewPayment, RecordedRefusal


class RefusingPaymentRepository(PaymentRepository, Protocol):
    """`PaymentRepository` plus the refusals of payments that never got a row."""

    async def refuse_payment(
        self, new: NewPayment, refusal: RecordedRefusal, *, correlation_id: str | None
    ) -> RecordedRefusal:
        """Record `refusal` as the answer to `new` (no payment row is made); returns the refusal
        recorded first, which stays the answer to every delivery of the command."""
        ...

    async def payment_refusal(self, new: NewPayment) -> RecordedRefusal | None:
        """The refusal recorded for `new`, if any; `IdempotencyConflict` if its transaction id
        was refused for another request."""
        ...


class PaymentRefusals(Protocol):
    """Where a payment refused before it had a row keeps its final error, for GET and replays."""

    async def refuse(
        self,
        transaction_id: str,
        merchant_id: str,
        request_hash: str | None,
        code: str,
        message: str,
    ) -> None:
        """Record the refusal (it replaces the "accepted" marker); may raise on a store outage."""
