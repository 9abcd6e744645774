"""Every input bounded before expensive work: amounts, JSON, text, digits (issue 13, item 1)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from payment_service.core.errors import InvalidRequest
from payment_service.core.money import MoneyError, check_amount_bounds, to_minor_units
from payment_service.schemas import jsonbody
from payment_service.schemas.jsonbody import OutOfRange
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
        **overrides.pop("card", {}),
    }
    return {
        "merchant_id": "m_1",
        "amount": "10.00",
        "currency": "USD",
        "card_data": card,
        **overrides,
    }


def error_types(
    model: type[PaymentRequest | RefundRequest], data: dict[str, Any]
) -> set[tuple[str, str]]:
    with pytest.raises(ValidationError) as info:
        model.model_validate(data)
    return {(".".join(map(str, e["loc"])), e["type"]) for e in info.value.errors()}


# -- amounts -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "code"),
    [
        ("1e300000", "amount_too_large"),
        ("1e999999", "amount_too_large"),
        ("1e1000000000", "amount_too_large"),
        ("1e-300000", "amount_too_precise"),
        ("1" + "0" * 20, "amount_too_large"),
        ("1.0000000000000000000000000001", "amount_too_precise"),  # used to round to 1.00
        ("0." + "1" * 40, "amount_too_precise"),
        ("9" * 5000, "invalid_amount"),  # longer than any amount is written
        ("NaN", "invalid_amount"),
        ("-Infinity", "invalid_amount"),
        ("10.001", "amount_too_precise"),
        ("0", "invalid_amount"),
    ],
)
def test_amount_bounds_come_before_arithmetic(amount: str, code: str) -> None:
    with pytest.raises(MoneyError) as info:
        to_minor_units(amount, "USD")
    assert info.value.code == code


def test_exact_amounts_with_trailing_zeros_still_convert() -> None:
    assert to_minor_units("10.000000000000000000000000000000", "USD") == 1000
    assert to_minor_units(Decimal("1E+3"), "JPY") == 1000
    assert to_minor_units("9999999999999.99", "USD") == 999999999999999
    assert check_amount_bounds(Decimal("0E-1000000")) == 0


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b'{"amount": 1e300000}', "amount_too_large"),
        (b'{"amount": 1e999999}', "amount_too_large"),
        (b'{"amount": 1E+999999999}', "amount_too_large"),
        (b'{"amount": ' + b"9" * 5000 + b"}", "amount_too_large"),
        (b'{"amount": 1e-300000}', "amount_too_precise"),
        (b'{"amount": 0.' + b"0" * 100 + b"1}", "amount_too_precise"),
        (b'{"amount": 12.345}', "amount_too_precise"),
        (b'{"amount": "1e300000"}', "amount_too_large"),
    ],
)
def test_huge_amounts_in_json_are_refused_at_the_field(raw: bytes, code: str) -> None:
    data = {**body(), **jsonbody.loads(raw)}
    assert ("amount", code) in error_types(PaymentRequest, data)


def test_huge_numbers_in_other_fields_are_refused_not_converted() -> None:
    data = jsonbody.loads(b'{"expiry_month": 1e300000, "expiry_year": ' + b"9" * 5000 + b"}")
    types = error_types(PaymentRequest, body(card=data))
    assert {loc for loc, _ in types} == {"card_data.expiry_month", "card_data.expiry_year"}
    meta = jsonbody.loads(b'{"metadata": {"n": 1e300000}}')
    assert ("metadata", "number_out_of_range") in error_types(PaymentRequest, body(**meta))
    refund = jsonbody.loads(b'{"amount": 1e999999}')
    assert ("amount", "amount_too_large") in error_types(RefundRequest, refund)


# -- JSON --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b"[" * 100_000 + b"]" * 100_000, "json_too_deep"),
        (b'{"a":' * 17 + b"1" + b"}" * 17, "json_too_deep"),
        (b'{"metadata": {"a": [[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]}}', "json_too_deep"),
        (b'{"amount": 1, "amount": 1000}', "duplicate_key"),
        (b'{"amount": NaN}', "malformed_json"),
        (b'{"amount": Infinity}', "malformed_json"),
        (b'{"description": "\xff\xfe"}', "malformed_json"),
        (b'{"amount": 1', "malformed_json"),
        ('{"a": "b"}'.encode("utf-16"), "malformed_json"),
    ],
)
def test_json_refusals_are_specific(raw: bytes, code: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        jsonbody.loads(raw)
    assert info.value.code == code


def test_json_within_bounds_keeps_exact_numbers() -> None:
    value = jsonbody.loads(b'{"a": 12.50, "b": 3, "c": [1e2], "d": {"e": "\\u00e9"}}')
    assert value == {"a": Decimal("12.50"), "b": 3, "c": [Decimal("1E+2")], "d": {"e": "é"}}
    assert isinstance(value["a"], Decimal)
    assert jsonbody.loads(b'{"a":' * 15 + b"1" + b"}" * 15) is not None
    assert isinstance(jsonbody.loads(b"1e300000"), OutOfRange)


# -- text --------------------------------------------------------------------------------------

CONTROL = ["\x00", "\x01", "\x1f", "\n", "\t", "\x7f", "\x85", "\ud800", "\udcff"]
FREE_TEXT_FIELDS = [
    ("description", lambda t: {"description": f"a{t}b"}),
    ("metadata", lambda t: {"metadata": {"k": f"a{t}b"}}),
    ("metadata", lambda t: {"metadata": {f"k{t}": "v"}}),
    ("card_data.cardholder_name", lambda t: {"card": {"cardholder_name": f"Ada{t}"}}),
]


@pytest.mark.parametrize("char", CONTROL, ids=[f"U+{ord(c):04X}" for c in CONTROL])
@pytest.mark.parametrize(("field", "change"), FREE_TEXT_FIELDS, ids=lambda v: str(v)[:12])
def test_control_characters_are_refused_in_free_text(char: str, field: str, change: Any) -> None:
    assert (field, "control_characters") in error_types(PaymentRequest, body(**change(char)))


@pytest.mark.parametrize("char", CONTROL, ids=[f"U+{ord(c):04X}" for c in CONTROL])
def test_control_characters_are_refused_in_refunds(char: str) -> None:
    assert ("reason", "control_characters") in error_types(RefundRequest, {"reason": f"a{char}"})
    data = {"metadata": {"k": char}}
    assert ("metadata", "control_characters") in error_types(RefundRequest, data)


def test_ordinary_unicode_text_is_fine() -> None:
    request = PaymentRequest.model_validate(
        body(description="Café ☕ 東京 — order №5", card={"cardholder_name": "Zoë Ñúñez"})
    )
    assert request.description == "Café ☕ 東京 — order №5"


# -- digits ------------------------------------------------------------------------------------

# Digits that str.isdigit() and int() take: U+0660.. (Arabic-Indic), U+FF10.. (fullwidth).
ARABIC_INDIC = str.maketrans("0123456789", "".join(chr(0x660 + d) for d in range(10)))
FULLWIDTH = str.maketrans("0123456789", "".join(chr(0xFF10 + d) for d in range(10)))


@pytest.mark.parametrize("digits", [ARABIC_INDIC, FULLWIDTH], ids=["arabic-indic", "fullwidth"])
def test_only_ascii_digits_in_card_number_and_code(digits: dict[int, str]) -> None:
    card = {"card_number": "4242424242424242".translate(digits)}
    assert ("card_data.card_number", "invalid_card_number") in error_types(
        PaymentRequest, body(card=card)
    )
    code = {"cvv": "123".translate(digits)}
    assert ("card_data.cvv", "invalid_security_code") in error_types(
        PaymentRequest, body(card=code)
    )
    expiry = {"expiry_month": "12".translate(digits)}
    assert {loc for loc, _ in error_types(PaymentRequest, body(card=expiry))} == {
        "card_data.expiry_month"
    }
