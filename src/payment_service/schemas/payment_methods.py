"""HTTP bodies of cards on file (`/api/v1/payment_methods`) and of the published card key.

A card on file is stored with the same card checks as a payment's `card_data` (Luhn, not
expired, a security code of the network's length), but its security code is optional: it is
never stored. The view shows brand, last four, expiry and the keyed fingerprint only.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from payment_service.schemas.payments import (
    CardData,
    CardNumberField,
    FreeText,
    MerchantId,
    Metadata,
    SecurityCodeField,
    _field_error,
    _Strict,
)


class StoredCardData(_Strict):
    """`card_data` of a card on file: the security code is optional and never stored."""

    card_number: CardNumberField
    expiry_month: int = Field(ge=1, le=12)
    expiry_year: int = Field(ge=2000, le=2100)
    cvv: SecurityCodeField | None = None
    cardholder_name: Annotated[str, FreeText] = Field(min_length=1, max_length=100)

    @field_validator("expiry_month", "expiry_year", mode="before")
    @classmethod
    def _integer(cls, value: object) -> object:
        return CardData._integer(value)

    @model_validator(mode="after")
    def _not_expired_and_code_fits_brand(self) -> StoredCardData:
        today = dt.datetime.now(dt.UTC).date()
        if (self.expiry_year, self.expiry_month) < (today.year, today.month):
            raise _field_error("expiry_year", "card has expired (expiry date is in the past)")
        wanted = 4 if self.card_number.brand == "amex" else 3
        if self.cvv is not None and len(self.cvv.reveal()) != wanted:
            raise _field_error("cvv", f"security code must be {wanted} digits for this card")
        return self


class PaymentMethodRequest(_Strict):
    """Body of `POST /api/v1/payment_methods`: store a card on file (Stripe's PaymentMethod)."""

    # Optional; when given it must be the API key's merchant, as on payments.
    merchant_id: MerchantId | None = None
    type: Literal["card"] = "card"
    card_data: StoredCardData
    metadata: Metadata = Field(default_factory=dict)


class PaymentMethodView(BaseModel):
    """A card on file as its merchant sees it: brand, last four, expiry, fingerprint."""

    id: str
    object: Literal["payment_method"] = "payment_method"
    type: Literal["card"] = "card"
    merchant_id: str
    brand: str
    last4: str
    expiry_month: int
    expiry_year: int
    fingerprint: str = Field(
        description="keyed, versioned HMAC of the number: same card, same value"
    )
    metadata: dict[str, str] = Field(default_factory=dict)
    created_at: dt.datetime
    detached_at: dt.datetime | None = Field(
        default=None, description="set once detached: the card can no longer be charged"
    )


class CardKeyView(BaseModel):
    """The public key producers seal card data to (HPKE, docs/security.md)."""

    kid: str
    alg: str
    public_key: str = Field(description="standard base64 of the raw 32-byte X25519 public key")
    created_at: dt.datetime | None = None
