"""Money: exact minor units per ISO 4217 exponent, never a float, never silently rounded."""

from __future__ import annotations

from decimal import Decimal

import pytest

from payment_service.core.money import (
    CURRENCY_EXPONENTS,
    MoneyError,
    currency_exponent,
    to_major_units,
    to_minor_units,
)

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("amount", "currency", "minor"),
    [
        ("99.99", "USD", 9999),
        (Decimal("0.01"), "EUR", 1),
        (5, "JPY", 5),
        ("1.234", "KWD", 1234),
        ("10", "USD", 1000),
        ("1E+2", "USD", 10000),
        ("0.0001", "CLF", 1),
    ],
)
def test_to_minor_units_is_exact(amount: object, currency: str, minor: int) -> None:
    assert to_minor_units(amount, currency) == minor  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("amount", "currency", "message"),
    [
        ("10.001", "USD", "more than 2 decimal places"),
        ("1.5", "JPY", "more than 0 decimal places"),
        ("1.2345", "KWD", "more than 3 decimal places"),
        ("0", "USD", "greater than zero"),
        ("-1", "USD", "greater than zero"),
        ("NaN", "USD", "finite"),
        ("Infinity", "USD", "finite"),
        ("abc", "USD", "decimal number"),
        ("1" + "0" * 20, "USD", "too large"),
    ],
)
def test_to_minor_units_refuses_with_a_reason(amount: str, currency: str, message: str) -> None:
    with pytest.raises(MoneyError, match=message):
        to_minor_units(amount, currency)


def test_floats_are_refused() -> None:
    with pytest.raises(MoneyError, match="float"):
        to_minor_units(0.1, "USD")  # type: ignore[arg-type]


def test_unknown_currency_says_what_to_use() -> None:
    with pytest.raises(MoneyError, match="ISO 4217"):
        currency_exponent("XXX")


def test_exponents_of_well_known_currencies() -> None:
    assert {
        c: CURRENCY_EXPONENTS[c] for c in ("USD", "EUR", "GBP", "JPY", "KRW", "BHD", "KWD")
    } == {
        "USD": 2,
        "EUR": 2,
        "GBP": 2,
        "JPY": 0,
        "KRW": 0,
        "BHD": 3,
        "KWD": 3,
    }


@pytest.mark.parametrize(
    ("minor", "currency", "major"),
    [(9999, "USD", "99.99"), (5, "JPY", "5"), (1234, "KWD", "1.234"), (100, "USD", "1.00")],
)
def test_round_trip_to_major_units(minor: int, currency: str, major: str) -> None:
    assert str(to_major_units(minor, currency)) == major
    assert to_minor_units(to_major_units(minor, currency), currency) == minor
