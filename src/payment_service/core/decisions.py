"""What processing does next with a command, decided from the stored state alone (pure).

The processor's flows (`streams.payments`, `streams.refunds`, `streams.captures`) take their next
step from `payment_step`, `authorize_operation`, `refund_step` and `capture_step`; `ops replay
--dry-run` asks the same functions, then looks at
the bank's record for the idempotency key that step would use (`predict_*`). A step whose key the
bank has already executed is answered by the bank's replay of its first answer: no money moves.

Verdicts: `charge` (a sale, authorization or capture the bank has not executed), `refund` (a
refund the bank has not executed), `capture` / `void` (a manual-capture hold's capture or void
the bank has not executed), `refused` (the rule or an idempotency check would refuse it now,
and record the refusal), `noop` (nothing would change: settled, every call it would make is
a bank replay, or it answers a refusal recorded earlier).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from payment_service.core.errors import InvalidRequest
from payment_service.core.ids import idempotency_key
from payment_service.core.records import PaymentRecord, RecordedRefusal, RefundRecord
from payment_service.core.rules import refundable_amount, repeats_capture
from payment_service.core.states import CAPTURABLE, PaymentStatus, RefundStatus

S = PaymentStatus
Verdict = Literal["charge", "refund", "capture", "void", "refused", "noop"]
VERDICTS: tuple[Verdict, ...] = ("charge", "refund", "capture", "void", "refused", "noop")


class PaymentStep(StrEnum):
    """The flow's next step for a stored payment."""

    RESOLVE = "resolve"  # an earlier attempt's outcome is unknown: ask the bank, never re-send
    AUTHORIZE = "authorize"
    CAPTURE = "capture"
    DONE = "done"


class RefundStep(StrEnum):
    RESERVE = "reserve"  # no refund row yet: the amount rule decides
    REFUND = "refund"  # reserved, still processing: refund at the bank with its key
    DONE = "done"


def payment_step(status: PaymentStatus) -> PaymentStep:
    """The step that processing takes next for a payment in `status`."""
    if status == S.UNKNOWN:
        return PaymentStep.RESOLVE
    if status == S.PROCESSING:
        return PaymentStep.AUTHORIZE
    if status in (S.AUTHORIZED, S.UNKNOWN_CAPTURE):
        return PaymentStep.CAPTURE
    return PaymentStep.DONE


class CaptureStep(StrEnum):
    """The capture flow's next bank call for a manual-capture payment."""

    CAPTURE = "capture"  # capturing: capture (or repeat it) with `<transaction>:capture`
    VOID = "void"  # canceling: void (or repeat it) with `<transaction>:void`
    DONE = "done"


def authorize_operation(payment: PaymentRecord) -> Literal["sale", "authorize"]:
    """The bank call that takes a `processing` payment: one sale for automatic capture, an
    authorization (a hold until `payment.capture/v1`) for manual capture."""
    return "authorize" if payment.manual_capture else "sale"


def capture_step(status: PaymentStatus) -> CaptureStep:
    """The bank call a capture, a cancel or the reconciler makes next for a payment in `status`."""
    if status == S.CAPTURING:
        return CaptureStep.CAPTURE
    if status == S.CANCELING:
        return CaptureStep.VOID
    return CaptureStep.DONE


def refund_step(refund: RefundRecord | None) -> RefundStep:
    """The step that processing takes next for a refund (None: not reserved yet)."""
    if refund is None:
        return RefundStep.RESERVE
    return RefundStep.REFUND if refund.status == RefundStatus.PROCESSING else RefundStep.DONE


@dataclass(frozen=True)
class Prediction:
    verdict: Verdict
    reason: str


def predict_payment(
    transaction_id: str,
    request_hash: str | None,
    payment: PaymentRecord | None,
    refusal: RecordedRefusal | None,
    bank_keys: Collection[str],
) -> Prediction:
    """What a `payment.process/v1` command would do now, with `bank_keys` the idempotency keys
    the bank has executed for the transaction."""
    if refusal is not None:
        return Prediction("noop", f"answers its recorded refusal again: {refusal.code}")
    if payment is None:
        return Prediction("charge", "no payment row: it would be claimed and authorized")
    if payment.request_hash != request_hash:
        return Prediction("refused", "idempotency_key_reused: another request has this id")
    step = payment_step(payment.status)
    if step == PaymentStep.AUTHORIZE:
        operation = authorize_operation(payment)
        if idempotency_key(transaction_id, operation) in bank_keys:
            return Prediction("noop", f"{operation}: the bank replays its earlier answer")
        return Prediction("charge", f"processing: it would {operation} at the bank")
    if step == PaymentStep.CAPTURE:
        if idempotency_key(transaction_id, "capture") in bank_keys:
            return Prediction("noop", "capture: the bank replays its earlier answer")
        return Prediction("charge", f"{payment.status.value}: it would capture at the bank")
    if step == PaymentStep.RESOLVE:
        return Prediction("noop", "unknown: it asks the bank (an inquiry moves no money)")
    return Prediction("noop", f"settled ({payment.status.value})")


def predict_refund(
    refund_id: str,
    amount_minor: int | None,
    payment: PaymentRecord | None,
    refusal: RecordedRefusal | None,
    bank_keys: Collection[str],
    in_flight_minor: int,
) -> Prediction:
    """What a `payment.refund/v1` command would do now (the same order as the flow)."""
    if payment is None:
        return Prediction("refused", "resource_missing: no such payment")
    refund = next((r for r in payment.refunds if r.refund_id == refund_id), None)
    step = refund_step(refund)
    if step == RefundStep.DONE:
        return Prediction("noop", f"refund {refund.status.value if refund else ''}".strip())
    if step == RefundStep.REFUND:
        if idempotency_key(refund_id, "refund") in bank_keys:
            return Prediction("noop", "refund: the bank replays its earlier answer")
        return Prediction("refund", "processing: it would refund at the bank")
    if refusal is not None:
        return Prediction("noop", f"answers its recorded refusal again: {refusal.code}")
    try:
        amount = refundable_amount(payment, amount_minor, in_flight_minor)
    except InvalidRequest as exc:
        return Prediction("refused", f"{exc.code} (would be recorded now)")
    return Prediction("refund", f"new refund of {amount} minor units")


def predict_capture(
    kind: Literal["capture", "cancel"],
    amount_minor: int | None,
    payment: PaymentRecord | None,
    bank_keys: Collection[str],
) -> Prediction:
    """What a `payment.capture/v1` (`kind` capture, `amount_minor` None: all) or
    `payment.cancel/v1` would do now (the order of `storage.captures` and `streams.captures`)."""
    if payment is None:
        return Prediction("refused", "resource_missing: no such payment")
    if repeats_capture(payment, kind, amount_minor):
        step = capture_step(payment.status)
        if step == CaptureStep.DONE:
            return Prediction("noop", f"{kind} done ({payment.status.value})")
        operation: Literal["capture", "void"] = "capture" if step == CaptureStep.CAPTURE else "void"
        if idempotency_key(payment.transaction_id, operation) in bank_keys:
            return Prediction("noop", f"{operation}: the bank replays its earlier answer")
        return Prediction(operation, f"{payment.status.value}: it would {operation} at the bank")
    if payment.status not in CAPTURABLE:
        return Prediction("refused", f"payment_not_capturable: {payment.status.value}")
    if kind == "cancel":
        return Prediction("void", "requires_capture: it would void the hold at the bank")
    if amount_minor is not None and amount_minor > payment.amount_minor:
        return Prediction("refused", "capture_exceeds_authorized")
    amount = payment.amount_minor if amount_minor is None else amount_minor
    return Prediction("capture", f"requires_capture: it would capture {amount} minor units")
