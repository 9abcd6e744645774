"""What processing does next with a command, decided from the stored state alone (pure).

The processor's flows (`streams.payments`, `streams.refunds`) take their next step from
`payment_step` and `refund_step`; `ops replay --dry-run` asks the same functions, then looks at
the bank's record for the idempotency key that step would use (`predict_*`). A step whose key the
bank has already executed is answered by the bank's replay of its first answer: no money moves.

Verdicts: `charge` (an authorization or capture the bank has not executed), `refund` (a refund
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
from payment_service.core.rules import refundable_amount
from payment_service.core.states import PaymentStatus, RefundStatus

S = PaymentStatus
Verdict = Literal["charge", "refund", "refused", "noop"]


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
        if idempotency_key(transaction_id, "authorize") in bank_keys:
            return Prediction("noop", "authorize: the bank replays its earlier answer")
        return Prediction("charge", "processing: it would authorize at the bank")
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
