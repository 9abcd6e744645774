"""HTTP body validation: every rule refuses with a specific field, and never echoes card data."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from payment_service.schemas.payments import PaymentRequest, RefundRequest

pytestmark = pytest.mark.unit

NEXT_YEAR = dt.datetime.now(dt.UTC).year + 1


def body(**overrides: Any) -> dict[str, Any]:
    card = {
        "card_number": "4242424242424242",
        "expiry_month": 12,
        "expiry_year": NEXT_YEAR,
        "cvv": "123",
        "cardholder_name": "Ada Lovelace",
    }
    card.update(overrides.pop("card", {}))
    data: dict[str, Any] = {
        "merchant_id": "merchant_1",
        "amount": Decimal("99.99"),
        "currency": "USD",
        "card_data": card,
    }
    data.update(overrides)
    return data


def errors(data: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(ValidationError) as info:
        PaymentRequest.model_validate(data)
    found = info.value.errors(include_input=False, include_url=False, include_context=False)
    return [(".".join(str(p) for p in e["loc"]), e["msg"]) for e in found]


def test_a_valid_request_parses_to_minor_units() -> None:
    request = PaymentRequest.model_validate(body(currency="usd"))
    assert request.currency == "USD"
    assert request.amount_minor == 9999
    assert request.card_data is not None
    assert request.card_data.card_number.last4 == "4242"


def test_card_number_may_have_spaces_or_dashes() -> None:
    request = PaymentRequest.model_validate(body(card={"card_number": "4242 4242-4242 4242"}))
    assert request.card_data is not None
    assert request.card_data.card_number.reveal() == "4242424242424242"


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"card": {"card_number": "4242424242424241"}}, "card_data.card_number", "Luhn"),
        ({"card": {"card_number": "4242"}}, "card_data.card_number", "12 to 19 digits"),
        ({"card": {"expiry_year": 2020}}, "card_data.expiry_year", "expired"),
        ({"card": {"expiry_month": 13}}, "card_data.expiry_month", "less than or equal"),
        ({"card": {"cvv": "12"}}, "card_data.cvv", "3 or 4 digits"),
        ({"card": {"cvv": 123}}, "card_data.cvv", "must be a string"),
        ({"card": {"cvv": "1234"}}, "card_data.cvv", "3 digits"),
        (
            {"card": {"card_number": "378282246310005", "cvv": "123"}},
            "card_data.cvv",
            "4 digits",
        ),
        ({"amount": Decimal("10.001")}, "amount", "decimal places"),
        ({"amount": Decimal("0")}, "amount", "greater than zero"),
        ({"amount": 10.5}, "amount", "decimal number"),
        ({"amount": True}, "amount", "decimal number"),
        ({"currency": "ABC"}, "currency", "ISO 4217"),
        ({"currency": "JPY", "amount": Decimal("1.5")}, "amount", "0 decimal places"),
        ({"description": "x" * 501}, "description", "at most 500"),
        ({"metadata": {f"k{i}": "v" for i in range(51)}}, "metadata", "50 keys"),
        ({"metadata": {"k" * 41: "v"}}, "metadata", "1 to 40"),
        ({"metadata": {"k": "v" * 501}}, "metadata", "500 characters"),
        ({"metadata": {"k": {"nested": 1}}}, "metadata", "string or number"),
        ({"surprise": 1}, "surprise", "Extra inputs"),
        ({"merchant_id": "bad id!"}, "merchant_id", "pattern"),
        ({"payment_method": "cash"}, "payment_method", "Input should be"),
    ],
)
def test_each_rule_names_its_field(change: dict[str, Any], field: str, words: str) -> None:
    found = errors(body(**change))
    assert any(loc == field and words in msg for loc, msg in found), found


def test_an_amex_with_a_four_digit_code_is_valid() -> None:
    request = PaymentRequest.model_validate(
        body(card={"card_number": "378282246310005", "cvv": "1234"})
    )
    assert request.card_data is not None
    assert request.card_data.card_number.brand == "amex"


def test_errors_and_reprs_never_contain_the_card_data() -> None:
    data = body(card={"expiry_year": 2020, "cvv": "987"})
    with pytest.raises(ValidationError) as info:
        PaymentRequest.model_validate(data)
    text = json.dumps(
        info.value.errors(include_input=False, include_url=False, include_context=False)
    )
    assert "4242424242424242" not in text
    assert "987" not in text
    valid = PaymentRequest.model_validate(body(card={"cvv": "987"}))
    shown = repr(valid) + str(valid) + valid.model_dump_json()
    assert "4242424242424242" not in shown
    assert "987" not in shown


def test_metadata_numbers_become_strings() -> None:
    request = PaymentRequest.model_validate(body(metadata={"n": 5, "flag": True}))
    assert request.metadata == {"n": "5", "flag": "true"}


def test_refund_request_defaults_and_limits() -> None:
    assert RefundRequest.model_validate({}).amount is None
    assert RefundRequest.model_validate({"amount": "5.00"}).amount == Decimal("5.00")
    with pytest.raises(ValidationError):
        RefundRequest.model_validate({"amount": "-5"})
    with pytest.raises(ValidationError):
        RefundRequest.model_validate({"reason": "x" * 101})
    with pytest.raises(ValidationError):
        RefundRequest.model_validate({"unknown": 1})


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"description": "card 4242 4242 4242 4242 please"}, "description"),
        ({"metadata": {"note": "4111111111111111"}}, "metadata"),
        ({"card": {"cardholder_name": "4111-1111-1111-1111"}}, "card_data.cardholder_name"),
    ],
)
def test_free_text_may_not_carry_a_card_number(change: dict[str, Any], field: str) -> None:
    found = errors(body(**change))
    assert any(loc == field and "card number" in msg for loc, msg in found), found
    assert "4242 4242" not in json.dumps(found)


def test_free_text_with_ordinary_numbers_is_fine() -> None:
    request = PaymentRequest.model_validate(
        body(description="order 12345, invoice 2026-11-26", metadata={"order_id": "98765"})
    )
    assert request.description == "order 12345, invoice 2026-11-26"
