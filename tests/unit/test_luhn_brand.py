"""Luhn check and brand detection on the public test card numbers (Stripe's list)."""

from __future__ import annotations

import pytest

from payment_service.core.masking import CardNumber, card_brand, luhn_valid

pytestmark = pytest.mark.unit

TEST_CARDS = [
    ("4242424242424242", "visa"),
    ("4111111111111111", "visa"),
    ("4000000000000002", "visa"),  # declined
    ("4000000000009995", "visa"),  # insufficient funds
    ("4000000000009987", "visa"),  # lost card
    ("4000000000009979", "visa"),  # stolen card
    ("4000000000000069", "visa"),  # expired card
    ("4000000000000127", "visa"),  # incorrect CVC
    ("4000000000000119", "visa"),  # processing error
    ("378282246310005", "amex"),
    ("5555555555554444", "mastercard"),
    ("6011111111111117", "discover"),
]


@pytest.mark.parametrize(("digits", "brand"), TEST_CARDS)
def test_test_cards_pass_luhn_and_have_their_brand(digits: str, brand: str) -> None:
    assert luhn_valid(digits)
    assert card_brand(digits) == brand
    card = CardNumber(digits)
    assert card.brand == brand
    assert card.last4 == digits[-4:]


@pytest.mark.parametrize(("digits", "_brand"), TEST_CARDS)
def test_one_changed_digit_fails_luhn(digits: str, _brand: str) -> None:
    for position in range(len(digits)):
        changed = str((int(digits[position]) + 1) % 10)
        assert not luhn_valid(digits[:position] + changed + digits[position + 1 :])


@pytest.mark.parametrize(
    "digits", ["", "4242 4242 4242 4242", "4242-4242", "42424242424242a2", "-1"]
)
def test_non_digits_fail_luhn(digits: str) -> None:
    assert not luhn_valid(digits)


@pytest.mark.parametrize(
    ("digits", "brand"),
    [
        ("2221000000000009", "mastercard"),  # 2-series
        ("5105105105105100", "mastercard"),
        ("371449635398431", "amex"),
        ("6500000000000002", "discover"),
        ("3056930009020004", "diners"),
        ("3566002020360505", "jcb"),
        ("6200000000000005", "unionpay"),
        ("9999999999999995", "unknown"),
    ],
)
def test_other_brands(digits: str, brand: str) -> None:
    assert luhn_valid(digits)
    assert card_brand(digits) == brand
