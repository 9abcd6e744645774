"""Property tests (Hypothesis): money is exact, and no input makes validation raise anything
but its own refusal. What the HTTP layer turns a refusal into is a 4xx; anything else is a 500.
"""

from __future__ import annotations

import contextlib
import json
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from payment_service.cards.screen import contains_card_number
from payment_service.core.errors import InvalidRequest, ValidationFailed
from payment_service.core.money import (
    CURRENCY_EXPONENTS,
    MAX_AMOUNT_MINOR,
    MoneyError,
    to_major_units,
    to_minor_units,
)
from payment_service.http.errors import validation_failed
from payment_service.schemas import jsonbody
from payment_service.schemas.jsonbody import OutOfRange
from payment_service.schemas.messages import parse_command
from payment_service.schemas.payments import PaymentRequest, RefundRequest
from payment_service.schemas.text import has_control_characters

pytestmark = pytest.mark.unit

PROPERTY = settings(
    max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
CURRENCIES = st.sampled_from(sorted(CURRENCY_EXPONENTS))

# Numbers as they arrive: JSON literals of any size, exponents far out of range, text.
decimals = st.one_of(
    st.decimals(allow_nan=True, allow_infinity=True),
    st.builds(
        lambda d, e: Decimal(f"{d}E{e}"),  # exact: no context, no overflow
        st.integers(-(10**40), 10**40),
        st.integers(-(10**7), 10**7),
    ),
)
amounts = st.one_of(
    decimals,
    st.integers(-(10**50), 10**50),
    st.text(max_size=80),
    st.from_regex(r"\A-?[0-9]{1,40}(\.[0-9]{1,40})?([eE][-+]?[0-9]{1,9})?\Z"),
)


@PROPERTY
@given(amount=amounts, currency=CURRENCIES)
def test_to_minor_units_returns_a_bounded_int_or_refuses(amount: Any, currency: str) -> None:
    minor, refusal = _minor_or_refusal(amount, currency)
    if refusal is not None:
        assert refusal.code in {"invalid_amount", "amount_too_large", "amount_too_precise"}
    else:
        assert isinstance(minor, int)
        assert 0 < minor <= MAX_AMOUNT_MINOR


def _minor_or_refusal(amount: Any, currency: str) -> tuple[int | None, MoneyError | None]:
    try:
        return to_minor_units(amount, currency), None
    except MoneyError as exc:
        return None, exc


@PROPERTY
@given(digits=st.integers(1, 10**30), power=st.integers(-40, 40), currency=CURRENCIES)
def test_to_minor_units_is_exact_or_refuses(digits: int, power: int, currency: str) -> None:
    value = Decimal(f"{digits}E{power}")
    exact = Fraction(digits) * Fraction(10) ** (power + CURRENCY_EXPONENTS[currency])
    minor, refusal = _minor_or_refusal(value, currency)
    if refusal is None:
        assert minor == exact  # never rounded
    else:
        significant = len(str(digits).rstrip("0"))
        assert exact.denominator != 1 or exact > MAX_AMOUNT_MINOR or significant > 30


@PROPERTY
@given(minor=st.integers(1, MAX_AMOUNT_MINOR), currency=CURRENCIES)
def test_major_units_round_trip(minor: int, currency: str) -> None:
    assert to_minor_units(to_major_units(minor, currency), currency) == minor
    assert to_minor_units(str(to_major_units(minor, currency)), currency) == minor


@PROPERTY
@given(raw=st.binary(max_size=2000))
def test_any_bytes_parse_or_are_a_400(raw: bytes) -> None:
    assert _parsed_or_code(raw)[1] in {None, "json_too_deep", "duplicate_key", "malformed_json"}


def _parsed_or_code(raw: bytes) -> tuple[Any, str | None]:
    try:
        return jsonbody.loads(raw), None
    except InvalidRequest as exc:
        return None, exc.code if exc.status == 400 else f"status {exc.status}"


json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.text(),
    st.decimals(allow_nan=False, allow_infinity=False).map(str).map(Decimal),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)


def _dumps(value: Any) -> bytes:
    return json.dumps(value, default=str).encode()


@PROPERTY
@given(value=json_values)
def test_any_json_parses_with_exact_numbers_or_is_a_400(value: Any) -> None:
    parsed, code = _parsed_or_code(_dumps(value))
    assert code in {None, "json_too_deep"}
    stack = [parsed]
    while stack:
        item = stack.pop()
        assert not isinstance(item, float)
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def _valid_body() -> dict[str, Any]:
    return {
        "merchant_id": "m_1",
        "amount": "10.00",
        "currency": "USD",
        "card_data": {
            "card_number": "4242424242424242",
            "expiry_month": 12,
            "expiry_year": 2099,
            "cvv": "123",
            "cardholder_name": "Ada",
        },
        "description": "ok",
        "metadata": {"k": "v"},
    }


field_values = st.one_of(
    json_values,
    amounts,
    st.builds(OutOfRange, too_large=st.booleans()),
    st.text(alphabet=st.characters(codec=None), max_size=40),
)
PAYMENT_FIELDS = [*_valid_body(), "unknown"]
CARD_FIELDS = [*_valid_body()["card_data"], "unknown"]


def _refused_as_4xx(model: type[PaymentRequest | RefundRequest], data: Any) -> None:
    try:
        model.model_validate(data)
    except ValidationError as exc:
        failed = validation_failed(exc)  # what the HTTP layer answers, built for real
        assert isinstance(failed, ValidationFailed)
        assert failed.status == 422


@PROPERTY
@given(
    changes=st.dictionaries(st.sampled_from(PAYMENT_FIELDS), field_values, max_size=4),
    card=st.dictionaries(st.sampled_from(CARD_FIELDS), field_values, max_size=3),
)
def test_any_payment_body_validates_or_is_a_422(
    changes: dict[str, Any], card: dict[str, Any]
) -> None:
    body = _valid_body()
    body["card_data"].update(card)
    body.update(changes)
    _refused_as_4xx(PaymentRequest, body)


@PROPERTY
@given(body=st.dictionaries(st.sampled_from(["amount", "reason", "metadata", "x"]), field_values))
def test_any_refund_body_validates_or_is_a_422(body: dict[str, Any]) -> None:
    _refused_as_4xx(RefundRequest, body)


@PROPERTY
@given(text=st.text(), char=st.characters(min_codepoint=0, max_codepoint=0x1F) | st.just("\x7f"))
def test_free_text_with_a_control_character_is_refused(text: str, char: str) -> None:
    data = _valid_body()
    data["description"] = (text + char)[-500:]
    assert has_control_characters(data["description"])
    with pytest.raises(ValidationError):
        PaymentRequest.model_validate(data)


@PROPERTY
@given(value=st.uuids().map(str) | st.text(alphabet="0123456789abcdef-", max_size=40))
def test_identifiers_of_hex_digits_and_dashes_never_hold_a_card(value: str) -> None:
    if len(value) == 36 and value.count("-") == 4:
        assert not contains_card_number(value)
    contains_card_number(value)  # never raises, whatever the shape


@PROPERTY
@given(
    body=st.integers(10**11, 10**17),
    before=st.sampled_from(["", "card ", "pan: ", "(", "qty 2 "]),
    after=st.sampled_from(["", ".", " thanks", ")", "\n"]),
)
def test_any_luhn_valid_number_standing_alone_is_refused(
    body: int, before: str, after: str
) -> None:
    digits = str(body)
    check = next(d for d in "0123456789" if _luhn_ok(digits + d))
    assert contains_card_number(f"{before}{digits}{check}{after}")


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, char in enumerate(reversed(digits)):
        value = int(char) * (2 if i % 2 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


@PROPERTY
@given(raw=st.binary(max_size=500) | json_values.map(_dumps))
def test_any_kafka_message_parses_or_is_refused(raw: bytes) -> None:
    with contextlib.suppress(ValidationError):
        parse_command(raw)
