"""Recording a payment's transitions through the repository port, safely repeatable.

The flow decides which transition (naming its event); this records it as a compare-and-set on
the status the flow saw. If another delivery recorded a transition first (`TransitionConflict`),
the payment as that delivery left it is the answer, so redeliveries and the reconciler can race.
A settlement (captured, failed) that this call recorded is counted once (`streams.outcomes`).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from payment_service.core.errors import TransitionConflict
from payment_service.core.ports import PaymentRepository
from payment_service.core.records import PaymentRecord
from payment_service.core.states import PaymentEvent, PaymentStatus
from payment_service.ops.telemetry import Metrics
from payment_service.streams.outcomes import payment_settled

log = logging.getLogger(__name__)

S = PaymentStatus
# Waiting for a bank answer that was lost: the fast lane asks again.
_ANSWER_LOST = frozenset({S.UNKNOWN, S.UNKNOWN_CAPTURE, S.CAPTURING, S.CANCELING})
_Record = Callable[[PaymentStatus], Awaitable[PaymentRecord]]


class PaymentRecorder:
    """The flow's writes: authorized, sold, captured, failed, unknown (and lost answers)."""

    def __init__(
        self,
        repo: PaymentRepository,
        metrics: Metrics | None = None,
        on_unknown: Callable[[PaymentRecord], None] | None = None,
    ) -> None:
        self._repo = repo
        self._metrics = metrics
        self._on_unknown = on_unknown

    async def authorized(
        self,
        payment: PaymentRecord,
        authorization_id: str,
        correlation_id: str | None,
        event: PaymentEvent = PaymentEvent.AUTHORIZATION_APPROVED,
    ) -> PaymentRecord:
        """Approved: authorized (to capture at once) or, `authorization_held`, waiting for
        the merchant's capture (counted as settled only once captured)."""
        return await self._transition(
            payment,
            lambda expected: self._repo.mark_authorized(
                payment.transaction_id,
                expected=expected,
                authorization_id=authorization_id,
                correlation_id=correlation_id,
                event=event,
            ),
        )

    async def sold(
        self, payment: PaymentRecord, authorization_id: str, correlation_id: str | None
    ) -> PaymentRecord:
        """One sale: authorized and captured in full."""
        return await self._transition(
            payment,
            lambda expected: self._repo.mark_sold(
                payment.transaction_id,
                expected=expected,
                authorization_id=authorization_id,
                correlation_id=correlation_id,
            ),
            settles=True,
        )

    async def captured(
        self, payment: PaymentRecord, correlation_id: str | None, amount_minor: int | None = None
    ) -> PaymentRecord:
        """Captured: the whole amount, or `amount_minor` of it (a manual partial capture)."""
        return await self._transition(
            payment,
            lambda expected: self._repo.mark_captured(
                payment.transaction_id,
                expected=expected,
                captured_minor=amount_minor or payment.amount_minor,
                correlation_id=correlation_id,
            ),
            settles=True,
        )

    async def failed(
        self,
        payment: PaymentRecord,
        event: PaymentEvent,
        failure_code: str,
        decline_code: str | None,
        message: str,
        correlation_id: str | None,
    ) -> PaymentRecord:
        """A decline: `event` is authorization_declined or capture_declined."""
        return await self._transition(
            payment,
            lambda expected: self._repo.mark_failed(
                payment.transaction_id,
                expected=expected,
                event=event,
                failure_code=failure_code,
                decline_code=decline_code,
                failure_message=message,
                correlation_id=correlation_id,
            ),
            settles=True,
        )

    async def unknown(
        self,
        payment: PaymentRecord,
        event: PaymentEvent,
        detail: str,
        correlation_id: str | None,
    ) -> PaymentRecord:
        """The bank's answer was lost; a payment already unknown stays as it is. Either way it
        is handed to `on_unknown` (the fast lane), which asks again within seconds."""
        if payment.status in (S.UNKNOWN, S.UNKNOWN_CAPTURE):
            self._unknown(payment)
            return payment
        log.warning("payment %s: %s", payment.transaction_id, detail)
        recorded = await self._transition(
            payment,
            lambda expected: self._repo.mark_unknown(
                payment.transaction_id,
                expected=expected,
                event=event,
                correlation_id=correlation_id,
                detail=detail,
            ),
        )
        self._unknown(recorded)
        return recorded

    def answer_lost(self, payment: PaymentRecord) -> None:
        """A capture or void whose bank answer was lost left `payment` capturing / canceling:
        hand it to `on_unknown` (the fast lane) too, rather than leave it to the slow sweep."""
        self._unknown(payment)

    def _unknown(self, payment: PaymentRecord) -> None:
        if self._on_unknown is not None and payment.status in _ANSWER_LOST:
            self._on_unknown(payment)

    async def _transition(
        self, payment: PaymentRecord, record: _Record, *, settles: bool = False
    ) -> PaymentRecord:
        """Record a transition; if another delivery got there first, take what it recorded."""
        try:
            recorded = await record(payment.status)
        except TransitionConflict:
            current = await self._repo.get_payment(payment.transaction_id)
            assert current is not None  # a claimed payment is never deleted
            return current
        if settles:
            payment_settled(self._metrics, recorded)
        return recorded
