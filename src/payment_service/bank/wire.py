"""The bank API's JSON bodies, shared by the client and the simulator so the contract lives once.

Every model hides its input in validation errors and keeps card fields out of its repr: a
malformed request must never echo a card number into a log line or an error body.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from payment_service.core.banking import Operation

Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
AmountMinor = Annotated[int, Field(gt=0, le=10**15)]
# References travel in URL paths (status inquiry), so they are restricted to URL-safe characters.
Reference = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.:-]{1,128}$")]
IdempotencyKey = Annotated[str, StringConstraints(min_length=1, max_length=255)]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, hide_input_in_errors=True)


class CardIn(_Request):
    number: str = Field(pattern=r"^[0-9]{12,19}$", repr=False)
    expiry_month: int = Field(ge=1, le=12)
    expiry_year: int = Field(ge=2000, le=2999)
    # Any string: a malformed code is the issuer's decline (incorrect_cvc), not a 422.
    cvc: str | None = Field(default=None, max_length=8, repr=False)
    holder_name: str = Field(default="", max_length=200, repr=False)


class AuthorizeRequest(_Request):
    reference: Reference
    amount_minor: AmountMinor
    currency: Currency
    card: CardIn


class SaleRequest(AuthorizeRequest):
    """Authorize and capture in one message (ISO 8583 0200): the same body as authorize."""


class CaptureRequest(_Request):
    reference: Reference
    authorization_id: str = Field(min_length=1, max_length=64)
    amount_minor: AmountMinor
    currency: Currency


class VoidRequest(_Request):
    """Release an authorization's whole hold (before any capture)."""

    reference: Reference
    authorization_id: str = Field(min_length=1, max_length=64)


class RefundRequest(_Request):
    reference: Reference
    refund_reference: Reference
    amount_minor: AmountMinor
    currency: Currency


class _Response(BaseModel):
    # Lenient on the reading side: a bank may add fields without breaking us.
    model_config = ConfigDict(extra="ignore", frozen=True)


class OperationResponse(_Response):
    """The 200 answer to every money operation: approved or declined."""

    reference: str
    operation: Operation
    approved: bool
    response_code: str
    decline_code: str | None = None
    message: str
    authorization_id: str | None = None
    bank_transaction_id: str | None = None
    refund_reference: str | None = None
    amount_minor: int
    currency: str


class ErrorDetail(_Response):
    code: str
    message: str
    param: str | None = None


class ErrorResponse(_Response):
    """Every 4xx/5xx body: `{"error": {"code", "message", "param"?}}`."""

    error: ErrorDetail
