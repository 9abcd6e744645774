"""What a merchant sees of a stored payment, refund or card on file: records onto the wire views.

Both the API (GET, replays) and the processor (results on Kafka) publish these, so the mapping
lives here once. The card shows as brand, last four digits and expiry only; amounts are formatted
as decimals of the currency's minor digits. The compatibility fields (schemas/answers.py) are
derived here from the same record, never stored twice.
"""

from __future__ import annotations

import datetime as dt
from typing import Final

from payment_service.core.ids import idempotency_key
from payment_service.core.money import to_major_units
from payment_service.core.records import PaymentMethodRecord, PaymentRecord, RefundRecord
from payment_service.core.states import PAYMENT_SETTLED, PaymentStatus, RefundStatus
from payment_service.schemas.answers import CardView, PaymentView, RefundView
from payment_service.schemas.payment_methods import PaymentMethodView

# How long a card network keeps an uncaptured authorization's hold (the usual 7 days).
AUTHORIZATION_HOLD: Final = dt.timedelta(days=7)
# The bank operation that captured: one sale for automatic capture, a capture for manual.
_CAPTURE_OPERATION: Final = {"automatic": "sale", "manual": "capture"}
_HOLDING: Final = frozenset({PaymentStatus.AUTHORIZED, PaymentStatus.REQUIRES_CAPTURE})


def _amount(amount_minor: int, currency: str) -> str:
    return str(to_major_units(amount_minor, currency))


def refund_view(refund: RefundRecord) -> RefundView:
    return RefundView(
        refund_id=refund.refund_id,
        transaction_id=refund.transaction_id,
        status=refund.status,
        amount=_amount(refund.amount_minor, refund.currency),
        amount_minor=refund.amount_minor,
        currency=refund.currency,
        reason=refund.reason,
        metadata=dict(refund.metadata),
        failure_code=refund.failure_code,
        failure_message=refund.failure_message,
        created_at=refund.created_at,
        updated_at=refund.updated_at,
        external_refund_id=refund.bank_refund_id,
        processed_at=None if refund.status == RefundStatus.PROCESSING else refund.updated_at,
    )


def payment_view(payment: PaymentRecord) -> PaymentView:
    return PaymentView(
        transaction_id=payment.transaction_id,
        merchant_id=payment.merchant_id,
        status=payment.status,
        amount=_amount(payment.amount_minor, payment.currency),
        amount_minor=payment.amount_minor,
        currency=payment.currency,
        payment_method=payment.payment_method,
        card=CardView(
            brand=payment.card_brand,
            last4=payment.card_last4,
            expiry_month=payment.card_expiry_month,
            expiry_year=payment.card_expiry_year,
        ),
        payment_method_id=payment.payment_method_id,
        description=payment.description,
        metadata=dict(payment.metadata),
        authorization_code=payment.authorization_id,
        failure_code=payment.failure_code,
        decline_code=payment.decline_code,
        failure_message=payment.failure_message,
        refunded_amount=_amount(payment.refunded_minor, payment.currency),
        refunded_amount_minor=payment.refunded_minor,
        refunds=[refund_view(r) for r in payment.refunds],
        capture_method=payment.capture_method,
        captured_amount=_amount(payment.captured_minor, payment.currency),
        captured_amount_minor=payment.captured_minor,
        amount_capturable_minor=(
            payment.amount_minor if payment.status == PaymentStatus.REQUIRES_CAPTURE else 0
        ),
        cancellation_reason=payment.cancellation_reason,
        created_at=payment.created_at,
        updated_at=payment.updated_at,
        card_last_four=payment.card_last4,
        authorization_id=payment.authorization_id,
        capture_id=(
            idempotency_key(payment.transaction_id, _CAPTURE_OPERATION[payment.capture_method])
            if payment.captured_minor
            else None
        ),
        expires_at=(
            (payment.authorized_at or payment.created_at) + AUTHORIZATION_HOLD
            if payment.status in _HOLDING
            else None
        ),
        processed_at=payment.updated_at if payment.status in PAYMENT_SETTLED else None,
    )


def payment_method_view(method: PaymentMethodRecord) -> PaymentMethodView:
    """A card on file: never its envelope, never its holder's name."""
    return PaymentMethodView(
        id=method.payment_method_id,
        merchant_id=method.merchant_id,
        brand=method.brand,
        last4=method.last4,
        expiry_month=method.expiry_month,
        expiry_year=method.expiry_year,
        fingerprint=method.fingerprint,
        metadata=dict(method.metadata),
        created_at=method.created_at,
        detached_at=method.detached_at,
    )
