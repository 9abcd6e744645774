"""Business metrics of the processor: one count per payment or refund as it is settled.

Called where a settlement is recorded (a compare-and-set that won), so a redelivered or replayed
command, which finds the payment already settled, counts nothing: the figures are payments, not
deliveries. Volume and amount by currency, and the approval ratio (captured / all settled, with
failures by failure and decline code), come from `payments.settled` and `payments.amount`.
"""

from __future__ import annotations

from payment_service.core.money import to_major_units
from payment_service.core.records import PaymentRecord, RefundRecord
from payment_service.ops import metric_catalog as catalog
from payment_service.ops.telemetry import Metrics


def payment_settled(metrics: Metrics | None, payment: PaymentRecord) -> None:
    """Count a payment just recorded as captured or failed."""
    if metrics is None:
        return
    status = payment.status.value
    metrics.increment(
        catalog.PAYMENTS_SETTLED,
        {
            "currency": payment.currency,
            "status": status,
            "failure_code": payment.failure_code,
            "decline_code": payment.decline_code,
        },
    )
    # A reported figure, not money we compute with: the float ends here. What was captured (a
    # manual capture may take part of the hold); for a failure, what was asked.
    taken = payment.captured_minor or payment.amount_minor
    amount = float(to_major_units(taken, payment.currency))
    metrics.increment(
        catalog.PAYMENTS_AMOUNT, {"currency": payment.currency, "status": status}, amount
    )


def refund_settled(metrics: Metrics | None, refund: RefundRecord) -> None:
    """Count a refund just recorded as completed or failed."""
    if metrics is None:
        return
    status = refund.status.value
    metrics.increment(
        catalog.REFUNDS_SETTLED,
        {"currency": refund.currency, "status": status, "failure_code": refund.failure_code},
    )
    amount = float(to_major_units(refund.amount_minor, refund.currency))
    metrics.increment(
        catalog.REFUNDS_AMOUNT, {"currency": refund.currency, "status": status}, amount
    )
