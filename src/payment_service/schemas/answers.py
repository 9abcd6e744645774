"""HTTP answers: what merchants get back (payments, refunds, errors), cards as last four only.

These models are the OpenAPI document's answer schemas (http/openapi.py), so each field's type
and description is what a client reads there. Fields marked "compatibility" repeat a value under
the name the seed project's clients read (docs/compatibility.md); they are kept as long as such
clients exist and never carry anything the other fields do not.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from payment_service.core.states import PaymentStatus, RefundStatus

COMPAT = "Compatibility field (the seed API's name): "


class CardView(BaseModel):
    brand: str = Field(examples=["visa"])
    last4: str = Field(examples=["4242"])
    expiry_month: int = Field(examples=[12])
    expiry_year: int = Field(examples=[2030])


class RefundView(BaseModel):
    refund_id: str
    transaction_id: str
    status: RefundStatus
    amount: str = Field(examples=["50.00"])
    amount_minor: int = Field(examples=[5000])
    currency: str = Field(examples=["USD"])
    reason: str | None = None
    metadata: dict[str, str] = Field(default_factory=dict)
    failure_code: str | None = None
    failure_message: str | None = None
    created_at: dt.datetime
    updated_at: dt.datetime
    external_refund_id: str | None = Field(
        default=None, description=COMPAT + "the bank's id of the refund, once it answered"
    )
    processed_at: dt.datetime | None = Field(
        default=None, description=COMPAT + "when the refund was settled (null while processing)"
    )


class PaymentView(BaseModel):
    """What a merchant sees of a payment: card shown as brand and last four only."""

    transaction_id: str
    merchant_id: str
    status: PaymentStatus = Field(
        description="`captured` or `failed` are final; `processing`, `authorized`, `unknown` "
        "and `unknown_capture` are not (never read them as failed); then `partially_refunded` "
        "and `refunded`"
    )
    amount: str = Field(examples=["99.99"])
    amount_minor: int = Field(examples=[9999])
    currency: str = Field(examples=["USD"])
    payment_method: str = Field(examples=["credit_card"])
    card: CardView
    payment_method_id: str | None = None
    description: str | None = None
    metadata: dict[str, str] = Field(default_factory=dict)
    authorization_code: str | None = Field(default=None, description="the bank's authorization")
    failure_code: str | None = None
    decline_code: str | None = None
    failure_message: str | None = None
    refunded_amount: str
    refunded_amount_minor: int
    refunds: list[RefundView] = Field(default_factory=list)
    capture_method: str = "automatic"
    captured_amount: str | None = None
    captured_amount_minor: int = 0
    # What a capture may still take: the hold, while it waits (requires_capture); else 0.
    amount_capturable_minor: int = 0
    cancellation_reason: str | None = None
    created_at: dt.datetime
    updated_at: dt.datetime
    card_last_four: str = Field(description=COMPAT + "`card.last4`")
    authorization_id: str | None = Field(default=None, description=COMPAT + "`authorization_code`")
    capture_id: str | None = Field(
        default=None,
        description=COMPAT + "our reference of the capture at the bank, once captured",
    )
    expires_at: dt.datetime | None = Field(
        default=None,
        description=COMPAT + "when an authorization not yet captured lapses at the bank "
        "(7 days); null otherwise",
    )
    processed_at: dt.datetime | None = Field(
        default=None,
        description=COMPAT + "when the payment last changed as settled (null until settled)",
    )


class RefundAnswer(RefundView):
    """A refund, with its payment as it stands after it (POST .../refund)."""

    payment: PaymentView | None = None


class Processing(BaseModel):
    """Accepted, no final answer yet (202): GET `Location` for the outcome, or retry the same
    request with the same Idempotency-Key."""

    transaction_id: str
    refund_id: str | None = Field(default=None, description="on refunds only")
    status: Literal["processing"] = "processing"


class Pending(BaseModel):
    """GET of a payment Kafka accepted that PostgreSQL does not show yet."""

    transaction_id: str
    status: Literal["pending"] = "pending"


class Refused(BaseModel):
    """GET of a payment the processor refused before it had a row: its final error."""

    transaction_id: str
    status: Literal["failed"] = "failed"
    error: dict[str, str] = Field(description="the refusal's `code` and `message`")


class RefundList(BaseModel):
    """A page of a payment's refunds, newest first (Stripe's list shape)."""

    object: Literal["list"] = "list"
    data: list[RefundView]
    has_more: bool = Field(description="more lie past this page")
    url: str = Field(examples=["/api/v1/payments/txn_.../refunds"])


class PaymentList(BaseModel):
    """A page of payments, newest first (Stripe's list shape)."""

    object: Literal["list"] = "list"
    data: list[PaymentView]
    has_more: bool = Field(description="more lie past this page")
    url: str = Field(examples=["/api/v1/payments"])


class ComponentHealth(BaseModel):
    status: Literal["up", "down", "lagging"]
    latency_ms: float | None = None
    error: str | None = Field(
        default=None, description="the failure's type (lagging: how far behind), never its text"
    )


class HealthReport(BaseModel):
    status: Literal["healthy", "degraded", "unhealthy"] = Field(
        description="`degraded` (still 200): only the processor is down or lagging; payments "
        "are still accepted (202 until it is back)"
    )
    components: dict[str, ComponentHealth]
    services: dict[str, bool] = Field(
        description=COMPAT + "each component's `status == 'up'`, as a boolean"
    )
    version: str
    timestamp: dt.datetime


class ServiceInfo(BaseModel):
    service: str
    version: str
    environment: str
    docs: str
    openapi: str
    health: str


class ErrorBody(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "type": "invalid_request_error",
                    "code": "validation_error",
                    "message": "amount: amount must be a decimal number",
                    "param": "amount",
                }
            ]
        }
    )

    type: Literal[
        "invalid_request_error",
        "authentication_error",
        "card_error",
        "idempotency_error",
        "rate_limit_error",
        "api_error",
    ]
    code: str = Field(description="stable, specific: `resource_missing`, `method_not_allowed`...")
    message: str
    param: str | None = None
    errors: list[dict[str, Any]] | None = Field(
        default=None, description="422 only: every field's problem (`param`, `message`, `type`)"
    )


class ErrorResponse(BaseModel):
    error: ErrorBody
    correlation_id: str
