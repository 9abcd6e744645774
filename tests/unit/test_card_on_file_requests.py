"""Wire models of card custody: one card per payment, cards on file, and the Kafka command."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from pydantic import ValidationError

from payment_service.schemas.messages import ProcessPayment, parse_command
from payment_service.schemas.payment_methods import PaymentMethodRequest
from payment_service.schemas.payments import PaymentRequest

pytestmark = pytest.mark.unit

YEAR = dt.datetime.now(dt.UTC).year + 1
CARD = {
    "card_number": "4242424242424242",
    "expiry_month": 12,
    "expiry_year": YEAR,
    "cvv": "123",
    "cardholder_name": "Ada Lovelace",
}
PAYMENT = {"merchant_id": "m1", "amount": "10.00", "currency": "USD"}


def errors(model: type[Any], data: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(ValidationError) as caught:
        model.model_validate(data)
    found = caught.value.errors(include_input=False, include_url=False, include_context=False)
    return {".".join(str(p) for p in e["loc"]): e["msg"] for e in found}


def test_a_payment_names_a_card_on_file_instead_of_card_data() -> None:
    request = PaymentRequest.model_validate({**PAYMENT, "payment_method_id": "pm_abcdefgh"})
    assert (request.card_data, request.payment_method_id, request.cvv) == (
        None,
        "pm_abcdefgh",
        None,
    )
    with_code = PaymentRequest.model_validate(
        {**PAYMENT, "payment_method_id": "pm_abcdefgh", "cvv": "123"}
    )
    assert with_code.cvv is not None
    assert "123" not in repr(with_code)


@pytest.mark.parametrize(
    ("extra", "field", "words"),
    [
        ({}, "card_data", "card_data or payment_method_id is required"),
        ({"card_data": CARD, "payment_method_id": "pm_abcdefgh"}, "payment_method_id", "not both"),
        ({"card_data": CARD, "cvv": "123"}, "cvv", "card_data.cvv"),
        ({"payment_method_id": "card_123"}, "payment_method_id", "pattern"),
        ({"payment_method_id": "pm_abcdefgh", "cvv": "12"}, "cvv", "3 or 4 digits"),
    ],
)
def test_the_model_says_which_card_error(extra: dict[str, Any], field: str, words: str) -> None:
    found = errors(PaymentRequest, {**PAYMENT, **extra})
    assert field in found, found
    assert words in found[field]


def test_a_card_on_file_request_has_an_optional_security_code() -> None:
    without = {k: v for k, v in CARD.items() if k != "cvv"}
    assert PaymentMethodRequest.model_validate({"card_data": without}).card_data.cvv is None
    stored = PaymentMethodRequest.model_validate({"card_data": CARD, "merchant_id": "m1"})
    assert "4242424242424242" not in repr(stored)
    assert "card_data.cvv" in errors(PaymentMethodRequest, {"card_data": {**CARD, "cvv": "12345"}})
    expired = {**CARD, "expiry_year": 2020}
    assert "card_data.expiry_year" in errors(PaymentMethodRequest, {"card_data": expired})
    assert "card_data.card_number" in errors(
        PaymentMethodRequest, {"card_data": {**CARD, "card_number": "4242424242424241"}}
    )


COMMAND = {
    "transaction_id": "t-1",
    "merchant_id": "m-1",
    "amount_minor": 1999,
    "currency": "USD",
}
SEALED = {
    "number_envelope": "{}",
    "brand": "visa",
    "last4": "4242",
    "expiry_month": 12,
    "expiry_year": YEAR,
    "holder_name": "A B",
}


def test_a_command_carries_exactly_one_card() -> None:
    assert (
        ProcessPayment.model_validate({**COMMAND, "payment_method_id": "pm_abcdefgh"}).card is None
    )
    # The fingerprint is optional: a producer needs no secret.
    assert ProcessPayment.model_validate({**COMMAND, "card": SEALED}).card is not None
    for data in ({**COMMAND}, {**COMMAND, "card": SEALED, "payment_method_id": "pm_abcdefgh"}):
        with pytest.raises(ValidationError, match="exactly one of card and payment_method_id"):
            ProcessPayment.model_validate(data)


def test_a_command_by_card_on_file_parses_from_the_wire() -> None:
    raw = (
        b'{"type": "payment.process/v1", "message_id": "x", "occurred_at": "2026-01-01T00:00:00Z",'
        b' "data": {"transaction_id": "t-1", "merchant_id": "m-1", "amount_minor": 5,'
        b' "currency": "EUR", "payment_method_id": "pm_abcdefgh"}}'
    )
    assert parse_command(raw).data.payment_method_id == "pm_abcdefgh"  # type: ignore[union-attr]
