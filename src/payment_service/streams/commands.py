"""Kafka commands mapped onto the core's inputs: what the flows and repositories are asked to do."""

from __future__ import annotations

from payment_service.core.records import CaptureRequest, CardDetails, NewPayment, NewRefund
from payment_service.schemas.messages import (
    CancelPayment,
    CapturePayment,
    ProcessPayment,
    RefundPayment,
)


def new_payment(cmd: ProcessPayment, requested_by: str | None = None) -> NewPayment:
    """The payment a `payment.process/v1` command asks for (`requested_by`: the actor)."""
    card = cmd.card
    # What the producer says of its card; the flow replaces it with what the opened number (or
    # the card on file) shows. A fingerprint the producer sent is never trusted.
    details = (
        CardDetails(
            brand=card.brand,
            last4=card.last4,
            expiry_month=card.expiry_month,
            expiry_year=card.expiry_year,
            holder_name=card.holder_name,
        )
        if card is not None
        else None
    )
    return NewPayment(
        transaction_id=cmd.transaction_id,
        merchant_id=cmd.merchant_id,
        amount_minor=cmd.amount_minor,
        currency=cmd.currency,
        payment_method=cmd.payment_method,
        card=details,
        number_envelope=card.number_envelope if card is not None else None,
        payment_method_id=cmd.payment_method_id,
        description=cmd.description,
        metadata=dict(cmd.metadata),
        idempotency_key=cmd.idempotency_key,
        request_hash=cmd.request_hash,
        security_code_in_vault=cmd.security_code_in_vault,
        requested_by=requested_by,
        capture_method=cmd.capture_method,
    )


def new_refund(cmd: RefundPayment, requested_by: str | None = None) -> NewRefund:
    """The refund a `payment.refund/v1` command asks for (`requested_by`: the actor)."""
    return NewRefund(
        refund_id=cmd.refund_id,
        transaction_id=cmd.transaction_id,
        merchant_id=cmd.merchant_id,
        amount_minor=cmd.amount_minor,
        reason=cmd.reason,
        metadata=dict(cmd.metadata),
        idempotency_key=cmd.idempotency_key,
        request_hash=cmd.request_hash,
        requested_by=requested_by,
    )


def capture_request(cmd: CapturePayment | CancelPayment) -> CaptureRequest:
    """The capture (`payment.capture/v1`) or cancel (`payment.cancel/v1`) a command asks for."""
    return CaptureRequest(
        transaction_id=cmd.transaction_id,
        merchant_id=cmd.merchant_id,
        amount_minor=cmd.amount_minor if isinstance(cmd, CapturePayment) else None,
        cancellation_reason=cmd.cancellation_reason if isinstance(cmd, CancelPayment) else None,
        idempotency_key=cmd.idempotency_key,
        request_hash=cmd.request_hash,
    )
