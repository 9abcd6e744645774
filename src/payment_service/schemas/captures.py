"""HTTP bodies of manual capture: capture all or part of a hold, or cancel (void) it."""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, field_validator

from payment_service.schemas.payments import AmountField


class CaptureBody(BaseModel):
    """Body of `POST .../{transaction_id}/capture`; the amount defaults to all authorized, and
    a smaller one releases the rest of the hold."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    amount: AmountField | None = None

    @field_validator("amount")
    @classmethod
    def _positive(cls, value: Decimal | None) -> Decimal | None:
        if value is not None and (not value.is_finite() or value <= 0):
            raise ValueError("amount must be greater than zero")
        return value


class CancelBody(BaseModel):
    """Body of `POST .../{transaction_id}/cancel` (Stripe's cancellation reasons)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cancellation_reason: (
        Literal["duplicate", "fraudulent", "requested_by_customer", "abandoned"] | None
    ) = None
