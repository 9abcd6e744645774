"""Capture or void a manual-capture payment's hold at the bank, safely repeatable.

1. Record the request (`requires_capture` -> `capturing` with the amount, or -> `canceling`),
   binding the merchant's Idempotency-Key, under the payment's row lock.
2. Call the bank with the key `<transaction>:capture` (the recorded amount; a smaller capture
   releases the rest of the hold) or `<transaction>:void`.
3. Record the outcome. A lost answer leaves `capturing`/`canceling`, handed to the fast lane
   (`streams.fastlane`, within seconds), a redelivery or the reconciler's sweep; each repeats the
   same call under the same key (never a second capture); a refusal goes back to
   `requires_capture`, the hold still standing.

A void of a hold the bank has voided already (`already_voided`) is a void done. Any other
refusal (a hold captured behind our back) goes back to `requires_capture`, logged as an error
for an operator: nothing here ever marks money as moved that the bank did not move.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from dataclasses import dataclass

from payment_service.core.banking import BankResult
from payment_service.core.capture_ports import CaptureRepository
from payment_service.core.decisions import CaptureStep, capture_step
from payment_service.core.errors import (
    BankNotSent,
    BankOutcomeUnknown,
    BankRejected,
    CaptureExceedsAuthorized,
    IdempotencyConflict,
    NotFound,
    PaymentNotCapturable,
    TransitionConflict,
)
from payment_service.core.ids import idempotency_key
from payment_service.core.ports import BankClient, PaymentRepository
from payment_service.core.records import CaptureRequest, PaymentRecord
from payment_service.core.states import PaymentStatus
from payment_service.ops.faults import crash_point
from payment_service.streams.recorder import PaymentRecorder

log = logging.getLogger(__name__)
S = PaymentStatus


@dataclass(frozen=True)
class CaptureOutcome:
    payment: PaymentRecord | None
    error_code: str | None = None
    error_message: str | None = None

    @property
    def final(self) -> bool:
        return self.payment is None or self.payment.status not in (S.CAPTURING, S.CANCELING)


class CaptureFlow:
    """Capture and cancel commands, and the reconciler's repeat of their bank calls."""

    def __init__(
        self,
        captures: CaptureRepository,
        payments: PaymentRepository,
        bank: BankClient,
        recorder: PaymentRecorder,
    ) -> None:
        self._captures = captures
        self._payments = payments
        self._bank = bank
        self._record = recorder

    async def capture(self, request: CaptureRequest, correlation_id: str | None) -> CaptureOutcome:
        try:
            payment = await self._captures.request_capture(request, correlation_id=correlation_id)
        except (NotFound, PaymentNotCapturable, CaptureExceedsAuthorized) as exc:
            return CaptureOutcome(None, exc.code, exc.message)
        except IdempotencyConflict as exc:
            return CaptureOutcome(None, "idempotency_key_reused", str(exc))
        return CaptureOutcome(await self.finish(payment, correlation_id))

    async def cancel(self, request: CaptureRequest, correlation_id: str | None) -> CaptureOutcome:
        try:
            payment = await self._captures.request_cancel(request, correlation_id=correlation_id)
        except (NotFound, PaymentNotCapturable) as exc:
            return CaptureOutcome(None, exc.code, exc.message)
        except IdempotencyConflict as exc:
            return CaptureOutcome(None, "idempotency_key_reused", str(exc))
        return CaptureOutcome(await self.finish(payment, correlation_id))

    async def finish(self, payment: PaymentRecord, correlation_id: str | None) -> PaymentRecord:
        """Make (or repeat) the bank call a `capturing`/`canceling` payment is waiting for."""
        step = capture_step(payment.status)  # the step `ops replay --dry-run` predicts too
        if step == CaptureStep.CAPTURE:
            return await self._capture(payment, correlation_id)
        if step == CaptureStep.VOID:
            return await self._void(payment, correlation_id)
        return payment

    async def _capture(self, payment: PaymentRecord, correlation_id: str | None) -> PaymentRecord:
        txn = payment.transaction_id
        amount = payment.capture_requested_minor or payment.amount_minor
        key = idempotency_key(txn, "capture")
        try:
            result = await self._bank.capture(
                reference=txn,
                idempotency_key=key,
                authorization_id=payment.authorization_id or "",
                amount_minor=amount,
                currency=payment.currency,
            )
        except (BankOutcomeUnknown, BankNotSent) as exc:
            log.warning("capture of %s: outcome not known (%s); stays capturing", txn, exc)
            self._record.answer_lost(payment)
            return payment
        except BankRejected as exc:
            return await self._refused(payment, f"{exc.code}: {exc}", correlation_id)
        crash_point("after_capture_bank")
        if not result.approved:
            return await self._refused(payment, result.message, correlation_id)
        return await self._record.captured(payment, correlation_id, amount)

    async def _refused(
        self, payment: PaymentRecord, reason: str, correlation_id: str | None
    ) -> PaymentRecord:
        log.warning("capture of %s refused by the bank: %s", payment.transaction_id, reason)
        try:
            return await self._captures.refuse_capture(
                payment.transaction_id, reason=reason, correlation_id=correlation_id
            )
        except TransitionConflict:
            return await self._current(payment)

    async def _void(self, payment: PaymentRecord, correlation_id: str | None) -> PaymentRecord:
        txn = payment.transaction_id
        try:
            result = await self._bank.void(
                reference=txn,
                idempotency_key=idempotency_key(txn, "void"),
                authorization_id=payment.authorization_id or "",
            )
        except (BankOutcomeUnknown, BankNotSent) as exc:
            log.warning("void of %s: outcome not known (%s); stays canceling", txn, exc)
            self._record.answer_lost(payment)
            return payment
        except BankRejected as exc:
            if exc.code == "already_voided":
                return await self._canceled(payment, None, correlation_id)
            return await self._void_refused(payment, f"{exc.code}: {exc}", correlation_id)
        crash_point("after_void_bank")
        if not result.approved:
            return await self._void_refused(payment, result.message, correlation_id)
        return await self._canceled(payment, result.bank_transaction_id, correlation_id)

    async def _canceled(
        self, payment: PaymentRecord, void_id: str | None, correlation_id: str | None
    ) -> PaymentRecord:
        try:
            return await self._captures.mark_canceled(
                payment.transaction_id, void_id=void_id, correlation_id=correlation_id
            )
        except TransitionConflict:
            return await self._current(payment)

    async def _void_refused(
        self, payment: PaymentRecord, reason: str, correlation_id: str | None
    ) -> PaymentRecord:
        log.error("void of %s refused by the bank: %s", payment.transaction_id, reason)
        try:
            return await self._captures.refuse_void(
                payment.transaction_id, reason=reason, correlation_id=correlation_id
            )
        except TransitionConflict:
            return await self._current(payment)

    async def release_late_hold(self, payment: PaymentRecord) -> tuple[str, ...]:
        """Undo what reached the bank for a payment we failed for want of a bank record (the
        give-up path's race with a late delivery): void an open hold, reverse (refund) a late
        sale. Returns the authorization ids released; `BankError` when the bank cannot say."""
        txn = payment.transaction_id
        inquiry = await self._bank.inquire(txn)
        released: list[str] = []
        for hold in inquiry.authorizations:
            if hold.status == "open":
                await self._call_ignoring(
                    "already_voided",
                    self._bank.void(
                        reference=txn,
                        idempotency_key=idempotency_key(txn, "void"),
                        authorization_id=hold.authorization_id,
                    ),
                )
            elif hold.status == "captured" and hold.captured_minor > inquiry.refunded_minor:
                await self._bank.refund(
                    reference=txn,
                    refund_reference=f"{txn}:reversal",
                    idempotency_key=idempotency_key(txn, "reversal"),
                    amount_minor=hold.captured_minor - inquiry.refunded_minor,
                    currency=hold.currency,
                )
            else:
                continue
            released.append(hold.authorization_id)
        return tuple(released)

    @staticmethod
    async def _call_ignoring(code: str, call: Awaitable[BankResult]) -> None:
        try:
            await call
        except BankRejected as exc:
            if exc.code != code:
                raise

    async def _current(self, payment: PaymentRecord) -> PaymentRecord:
        current = await self._payments.get_payment(payment.transaction_id)
        assert current is not None  # a claimed payment is never deleted
        return current
