"""HTTP answers: what merchants get back (payments, refunds, errors), cards as last four only."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, Field


class CardView(BaseModel):
    brand: str
    last4: str
    expiry_month: int
    expiry_year: int


class RefundView(BaseModel):
    refund_id: str
    transaction_id: str
    status: str
    amount: str
    amount_minor: int
    currency: str
    reason: str | None = None
    metadata: dict[str, str] = Field(default_factory=dict)
    failure_code: str | None = None
    failure_message: str | None = None
    created_at: dt.datetime
    updated_at: dt.datetime


class PaymentView(BaseModel):
    """What a merchant sees of a payment: card shown as brand and last four only."""

    transaction_id: str
    merchant_id: str
    status: str
    amount: str
    amount_minor: int
    currency: str
    payment_method: str
    card: CardView
    payment_method_id: str | None = None
    description: str | None = None
    metadata: dict[str, str] = Field(default_factory=dict)
    authorization_code: str | None = None
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


class ErrorBody(BaseModel):
    type: str
    code: str
    message: str
    param: str | None = None
    errors: list[dict[str, Any]] | None = None


class ErrorResponse(BaseModel):
    error: ErrorBody
    correlation_id: str
