"""The rules the state table does not decide: how much a refund may take, when a card expires.

`refundable_amount` is used twice: by the API's quick pre-check (which knows no refunds in
flight) and by storage's reservation under the payment's row lock (which does). Checked before
`states.advance`; the table decides only whether a transition is legal.
"""

from __future__ import annotations

import datetime as dt

from payment_service.core.errors import PaymentNotRefundable, RefundExceedsRemaining
from payment_service.core.money import to_major_units
from payment_service.core.records import PaymentRecord
from payment_service.core.states import REFUNDABLE, PaymentStatus


def refundable_amount(
    payment: PaymentRecord, requested_minor: int | None, in_flight_minor: int
) -> int:
    """The amount a refund of `payment` takes: `requested_minor`, or all that remains if None.

    Rule: a refund may take at most `captured - refunded - in_flight`, where `in_flight` is the
    sum of the payment's refunds still `processing` (reserved, not yet answered by the bank).
    Raises `PaymentNotRefundable` unless the payment is captured or partially refunded, and
    `RefundExceedsRemaining` when nothing remains or the request asks for more than remains.
    """
    if payment.status == PaymentStatus.REFUNDED:
        raise PaymentNotRefundable(f"payment {payment.transaction_id} is already fully refunded")
    if payment.status not in REFUNDABLE:
        raise PaymentNotRefundable(
            f"payment {payment.transaction_id} is {payment.status.value}: only captured"
            " payments can be refunded"
        )
    remaining = payment.captured_minor - payment.refunded_minor - in_flight_minor
    amount = remaining if requested_minor is None else requested_minor
    if remaining <= 0 or amount > remaining:
        shown = f"{to_major_units(max(remaining, 0), payment.currency)} {payment.currency}"
        raise RefundExceedsRemaining(
            f"refund exceeds the remaining refundable amount of {shown}", param="amount"
        )
    return amount


def card_expired(expiry_month: int, expiry_year: int, today: dt.date) -> bool:
    """A card is valid through the last day of its expiry month (networks' rule), in UTC."""
    return (expiry_year, expiry_month) < (today.year, today.month)


def repeats_capture(payment: PaymentRecord, kind: str, amount_minor: int | None) -> bool:
    """Whether a capture (`amount_minor`, None: all) or cancel of a manual-capture payment is
    one already in flight (capturing that amount, canceling) or done (captured that amount,
    canceled): a redelivery or the same request again, which continues or answers that one
    bank call and never makes another. Used by the API's pre-check and by storage."""
    if not payment.manual_capture:
        return False
    if kind == "cancel":
        return payment.status in (PaymentStatus.CANCELING, PaymentStatus.CANCELED)
    wanted = payment.amount_minor if amount_minor is None else amount_minor
    if payment.status == PaymentStatus.CAPTURING:
        return payment.capture_requested_minor == wanted
    done = payment.status in (PaymentStatus.CAPTURED, *REFUNDABLE, PaymentStatus.REFUNDED)
    return done and payment.captured_minor == wanted
