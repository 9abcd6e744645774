"""HTTP bodies: what merchants send to create payments and refunds, and what they get back.

Validation is strict and specific (Stripe's limits, DESIGN.md §3): unknown fields are refused,
amounts are exact decimals within the currency's minor digits, cards pass Luhn, are not expired,
and carry a security code of the network's length. Card fields are typed so they never print.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from payment_service.core.masking import CardNumber, SecurityCode, ascii_digits, luhn_valid
from payment_service.core.money import (
    MoneyError,
    check_amount_bounds,
    currency_exponent,
    to_minor_units,
)
from payment_service.schemas.jsonbody import OutOfRange
from payment_service.schemas.seed import SeedAddress, SeedCustomer
from payment_service.schemas.text import free_text

MAX_DESCRIPTION = 500
MAX_METADATA_KEYS = 50
MAX_METADATA_KEY = 40
MAX_METADATA_VALUE = 500
REFUND_REASONS = ("duplicate", "fraudulent", "requested_by_customer")


def _card_number(value: object) -> CardNumber:
    if isinstance(value, CardNumber):
        return value
    if not isinstance(value, str) or len(value) > 32:
        raise PydanticCustomError("invalid_card_number", "card number must be 12 to 19 digits")
    digits = value.replace(" ", "").replace("-", "")
    if not ascii_digits(digits) or not 12 <= len(digits) <= 19:
        raise PydanticCustomError(
            "invalid_card_number", "card number must be 12 to 19 digits (0-9)"
        )
    if not luhn_valid(digits):
        raise PydanticCustomError(
            "invalid_card_number", "card number is not valid (Luhn check failed)"
        )
    return CardNumber(digits)


def _security_code(value: object) -> SecurityCode:
    if isinstance(value, SecurityCode):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        raise PydanticCustomError(
            "invalid_security_code", "security code must be a string (leading zeros matter)"
        )
    if not isinstance(value, str) or not ascii_digits(value) or not 3 <= len(value) <= 4:
        raise PydanticCustomError("invalid_security_code", "security code must be 3 or 4 digits")
    return SecurityCode(value)


def _money_error(exc: MoneyError) -> PydanticCustomError:
    return PydanticCustomError(exc.code, str(exc))


def _amount(value: object) -> Decimal:
    """A bounded Decimal (see core.money): nothing later can be slowed down by its size."""
    if isinstance(value, OutOfRange):
        if value.too_large:
            raise PydanticCustomError("amount_too_large", "amount is too large")
        raise PydanticCustomError("amount_too_precise", "amount has too many digits")
    # bool is an int subclass; floats never reach here because JSON is parsed with Decimal.
    if isinstance(value, bool | float):
        raise PydanticCustomError("invalid_amount", "amount must be a decimal number")
    try:
        if isinstance(value, int | Decimal):
            return check_amount_bounds(Decimal(value))
        if isinstance(value, str) and len(value) <= 64:
            return check_amount_bounds(Decimal(value.strip()))
    except MoneyError as exc:
        raise _money_error(exc) from None
    except ArithmeticError:
        pass
    raise PydanticCustomError("invalid_amount", "amount must be a decimal number")


def _free_text(value: object) -> object:
    # Before pydantic's own str checks, so an unpaired surrogate gets our code too.
    return free_text(value) if isinstance(value, str) else value


FreeText = BeforeValidator(_free_text)


def _metadata(value: object) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError("metadata must be an object of string keys and values")
    if len(value) > MAX_METADATA_KEYS:
        raise ValueError(f"metadata has more than {MAX_METADATA_KEYS} keys")
    result: dict[str, str] = {}
    for key, item in value.items():
        if not isinstance(key, str) or not key or len(key) > MAX_METADATA_KEY:
            raise ValueError(f"metadata keys must be 1 to {MAX_METADATA_KEY} characters")
        free_text(key)  # before the key is shown in any message below
        if isinstance(item, bool):
            text = "true" if item else "false"
        elif isinstance(item, OutOfRange):
            raise PydanticCustomError(
                "number_out_of_range",
                "metadata value for {key} is a number out of range",
                {"key": repr(key)},
            )
        elif isinstance(item, str | int | Decimal):
            text = str(item)
        else:
            raise ValueError(f"metadata value for {key!r} must be a string or number")
        if len(text) > MAX_METADATA_VALUE:
            raise ValueError(f"metadata value for {key!r} exceeds {MAX_METADATA_VALUE} characters")
        result[key] = free_text(text)
    return result


def _field_error(field: str, message: str, code: str = "value_error") -> ValidationError:
    """A validation error located at `field` (model-level rules still point at the field)."""
    detail = InitErrorDetails(type=PydanticCustomError(code, message), loc=(field,), input=None)
    return ValidationError.from_exception_data("validation", [detail])


CardNumberField = Annotated[
    CardNumber,
    BeforeValidator(_card_number),
    PlainSerializer(lambda c: f"****{c.last4}"),
    WithJsonSchema({"type": "string", "pattern": "^[0-9 -]{12,23}$", "description": "PAN"}),
]
SecurityCodeField = Annotated[
    SecurityCode,
    BeforeValidator(_security_code),
    PlainSerializer(lambda _: "***"),
    WithJsonSchema({"type": "string", "pattern": "^[0-9]{3,4}$"}),
]
AmountField = Annotated[
    Decimal,
    BeforeValidator(_amount),
    WithJsonSchema(
        {
            "anyOf": [{"type": "number"}, {"type": "string"}],
            "description": "major units, at most the currency's minor digits (99.99 USD)",
        }
    ),
]
Metadata = Annotated[
    dict[str, str],
    BeforeValidator(_metadata),
    WithJsonSchema(
        {"type": "object", "additionalProperties": {"type": "string"}, "maxProperties": 50}
    ),
]
MerchantId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True, frozen=True)


class CardData(_Strict):
    card_number: CardNumberField
    expiry_month: int = Field(ge=1, le=12)
    expiry_year: int = Field(ge=2000, le=2100)
    cvv: SecurityCodeField
    cardholder_name: Annotated[str, FreeText] = Field(min_length=1, max_length=100)

    @field_validator("expiry_month", "expiry_year", mode="before")
    @classmethod
    def _integer(cls, value: object) -> object:
        if isinstance(value, str) and ascii_digits(value) and len(value) <= 4:
            return int(value)
        return value

    @model_validator(mode="after")
    def _not_expired_and_code_fits_brand(self) -> CardData:
        today = dt.datetime.now(dt.UTC).date()
        if (self.expiry_year, self.expiry_month) < (today.year, today.month):
            raise _field_error("expiry_year", "card has expired (expiry date is in the past)")
        wanted = 4 if self.card_number.brand == "amex" else 3
        if len(self.cvv.reveal()) != wanted:
            raise _field_error("cvv", f"security code must be {wanted} digits for this card")
        return self


class PaymentRequest(_Strict):
    """Body of `POST /api/v1/payments/process`."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "merchant_id": "merchant_123",
                    "amount": "99.99",
                    "currency": "USD",
                    "payment_method": "credit_card",
                    "card_data": {
                        "card_number": "4242424242424242",
                        "expiry_month": 12,
                        "expiry_year": 2030,
                        "cvv": "123",
                        "cardholder_name": "Jane Doe",
                    },
                    "description": "Order 12345",
                    "metadata": {"order_id": "12345"},
                }
            ]
        }
    )

    merchant_id: MerchantId
    amount: AmountField
    currency: str = Field(min_length=3, max_length=3)
    payment_method: Literal["credit_card", "debit_card", "card"] = "credit_card"
    card_data: CardData | None = None  # or a card on file, and its security code if collected:
    payment_method_id: Annotated[str, Field(pattern=r"^pm_[A-Za-z0-9]{8,64}$")] | None = None
    cvv: SecurityCodeField | None = None
    description: Annotated[str, FreeText] | None = Field(default=None, max_length=MAX_DESCRIPTION)
    metadata: Metadata = Field(default_factory=dict)
    customer: SeedCustomer | None = Field(default=None, description="accepted, not kept")
    billing_address: SeedAddress | None = Field(default=None, description="accepted, not kept")
    # manual: authorize only (status requires_capture), then capture or cancel.
    capture_method: Literal["automatic", "manual"] = "automatic"

    @field_validator("currency", mode="before")
    @classmethod
    def _currency(cls, value: object) -> object:
        if isinstance(value, str):
            code = value.upper()
            try:
                currency_exponent(code)
            except MoneyError as exc:
                raise _money_error(exc) from None
            return code
        return value

    @model_validator(mode="after")
    def _amount_fits_currency(self) -> PaymentRequest:
        try:
            to_minor_units(self.amount, self.currency)
        except MoneyError as exc:
            raise _field_error("amount", str(exc), exc.code) from None
        return self

    @model_validator(mode="after")
    def _one_card(self) -> PaymentRequest:
        if self.card_data is None and self.payment_method_id is None:
            raise _field_error("card_data", "card_data or payment_method_id is required")
        if self.card_data is not None and self.payment_method_id is not None:
            raise _field_error("payment_method_id", "give card_data or payment_method_id, not both")
        if self.card_data is not None and self.cvv is not None:
            raise _field_error("cvv", "with card_data, the security code goes in card_data.cvv")
        return self

    @property
    def amount_minor(self) -> int:
        return to_minor_units(self.amount, self.currency)


class RefundRequest(_Strict):
    """Body of `POST .../{transaction_id}/refund`; the amount defaults to all that remains."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"amount": "50.00", "reason": "Customer request"}]}
    )

    amount: AmountField | None = None
    reason: Annotated[str, FreeText] | None = Field(default=None, min_length=1, max_length=100)
    metadata: Metadata = Field(default_factory=dict)

    @field_validator("amount")
    @classmethod
    def _positive(cls, value: Decimal | None) -> Decimal | None:
        if value is not None and (not value.is_finite() or value <= 0):
            raise ValueError("amount must be greater than zero")
        return value
