"""Carry one refund through the bank and into its repository, safely repeatable.

1. Reserve the refund under the payment's row lock: the amount is checked against what remains
   (captured - refunded - refunds still in flight), so two racing refunds can never exceed it.
2. Refund at the bank with the key `<refund>:refund`.
3. Record completion (the payment's refunded total and status move in the same transaction) or
   failure (the reservation is released). An unanswered bank call leaves the refund `processing`,
   still reserved, never `completed` without a bank refund.

A settlement this flow recorded is counted once (`streams.outcomes`).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from payment_service.core.decisions import RefundStep, refund_step
from payment_service.core.errors import (
    BankError,
    BankNotSent,
    BankOutcomeUnknown,
    BankRejected,
    IdempotencyConflict,
    InvalidRequest,
    NotFound,
    TransitionConflict,
)
from payment_service.core.ids import idempotency_key
from payment_service.core.ports import BankClient, RefundRepository
from payment_service.core.records import NewRefund, PaymentRecord, RefundRecord
from payment_service.core.states import RefundStatus
from payment_service.ops.faults import crash_point
from payment_service.ops.telemetry import Metrics
from payment_service.streams.outcomes import refund_settled

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RefundOutcome:
    refund: RefundRecord | None
    payment: PaymentRecord | None
    error_code: str | None = None
    error_message: str | None = None

    @property
    def final(self) -> bool:
        return self.refund is None or self.refund.status != RefundStatus.PROCESSING


class RefundFlow:
    def __init__(
        self, repo: RefundRepository, bank: BankClient, *, metrics: Metrics | None = None
    ) -> None:
        self._repo = repo
        self._bank = bank
        self._metrics = metrics

    async def run(self, new: NewRefund, correlation_id: str | None) -> RefundOutcome:
        try:
            reservation = await self._repo.reserve_refund(new, correlation_id=correlation_id)
        except (NotFound, InvalidRequest) as exc:
            # InvalidRequest: not refundable, or exceeds what remains (recorded, so any
            # redelivery or replay of this refund gets this same answer).
            return RefundOutcome(None, None, exc.code, exc.message)
        except IdempotencyConflict as exc:
            return RefundOutcome(None, None, "idempotency_key_reused", str(exc))
        refund, payment = reservation.refund, reservation.payment
        if refund_step(refund) == RefundStep.DONE:  # `core.decisions`, as `ops replay` asks
            return RefundOutcome(refund, payment)
        try:
            result = await self._bank.refund(
                reference=refund.transaction_id,
                refund_reference=refund.refund_id,
                idempotency_key=idempotency_key(refund.refund_id, "refund"),
                amount_minor=refund.amount_minor,
                currency=refund.currency,
            )
        except BankOutcomeUnknown as exc:
            # Still reserved and `processing`, until the reconciler learns the bank's answer.
            log.warning("refund %s: bank outcome not known: %s", refund.refund_id, exc)
            return RefundOutcome(refund, payment)
        except BankNotSent as exc:
            # This attempt never reached the bank, but an earlier delivery's may have: the refund
            # stays reserved and `processing` until the reconciler learns the bank's answer.
            log.warning("refund %s: bank unreachable: %s", refund.refund_id, exc)
            return RefundOutcome(refund, payment)
        except BankRejected as exc:
            return await self._fail(refund, payment, "refund_rejected", str(exc), correlation_id)
        crash_point("after_refund_bank")
        if not result.approved:
            code = result.decline_code or "refund_declined"
            return await self._fail(refund, payment, code, result.message, correlation_id)
        try:
            refund, payment = await self._repo.complete_refund(
                refund.refund_id,
                bank_refund_id=result.bank_transaction_id or "",
                correlation_id=correlation_id,
            )
        except TransitionConflict:
            return await self._current(refund)
        refund_settled(self._metrics, refund)
        return RefundOutcome(refund, payment)

    async def reconcile(
        self, refund: RefundRecord, *, give_up_after: dt.timedelta
    ) -> RefundOutcome:
        """Settle a refund whose bank outcome was never learned, from the bank's own record."""
        key = idempotency_key(refund.refund_id, "refund")
        try:
            operation = (await self._bank.inquire(refund.transaction_id)).find(key)
        except BankError:
            return RefundOutcome(refund, None)
        if operation is None:
            if dt.datetime.now(dt.UTC) - refund.created_at <= give_up_after:
                return RefundOutcome(refund, None)  # a delivery may still be sending it
            message = "the bank has no record of this refund"
            return await self._fail(refund, None, "not_processed_by_bank", message, None)
        if operation.outcome == "rejected":
            return await self._fail(refund, None, "refund_rejected", operation.message, None)
        if operation.outcome == "declined":
            code = operation.decline_code or "refund_declined"
            return await self._fail(refund, None, code, operation.message, None)
        try:
            refund, payment = await self._repo.complete_refund(
                refund.refund_id,
                bank_refund_id=operation.bank_transaction_id or "",
                correlation_id=None,
            )
        except TransitionConflict:
            return await self._current(refund)
        refund_settled(self._metrics, refund)
        return RefundOutcome(refund, payment)

    async def _fail(
        self,
        refund: RefundRecord,
        payment: PaymentRecord | None,
        code: str,
        message: str,
        correlation_id: str | None,
    ) -> RefundOutcome:
        try:
            refund = await self._repo.fail_refund(
                refund.refund_id,
                failure_code=code,
                failure_message=message,
                correlation_id=correlation_id,
            )
        except TransitionConflict:
            return await self._current(refund)
        refund_settled(self._metrics, refund)
        return RefundOutcome(refund, payment)

    async def _current(self, refund: RefundRecord) -> RefundOutcome:
        current = await self._repo.get_refund(refund.refund_id)
        return RefundOutcome(current, None)
