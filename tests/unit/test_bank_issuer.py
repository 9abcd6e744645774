"""The simulated issuer's verdicts, and the wire models' refusal to echo card data."""

from __future__ import annotations

from datetime import date

import pytest
from pydantic import ValidationError

from payment_service.bank.simulator.issuer import TEST_CARDS, decide
from payment_service.bank.wire import AuthorizeRequest, CardIn

pytestmark = pytest.mark.unit

TODAY = date(2026, 6, 15)


def card(number: str, *, month: int = 12, year: int = 2030, cvc: str | None = "123") -> CardIn:
    return CardIn(number=number, expiry_month=month, expiry_year=year, cvc=cvc, holder_name="A B")


@pytest.mark.parametrize(
    ("number", "code", "decline"),
    [
        ("4242424242424242", "00", None),
        ("4111111111111111", "00", None),
        ("4000000000000002", "05", "generic_decline"),
        ("4000000000009995", "51", "insufficient_funds"),
        ("4000000000009987", "41", "lost_card"),
        ("4000000000009979", "43", "stolen_card"),
        ("4000000000000069", "54", "expired_card"),
        ("4000000000000127", "N7", "incorrect_cvc"),
        ("4000000000000119", "91", "processing_error"),
        ("5555555555554444", "00", None),  # any other valid card
        ("4242424242424241", "14", "incorrect_number"),  # fails Luhn
    ],
)
def test_card_numbers_give_their_documented_verdict(
    number: str, code: str, decline: str | None
) -> None:
    verdict = decide(card(number), TODAY)
    assert (verdict.response_code, verdict.decline_code) == (code, decline)
    assert verdict.approved is (code == "00")


def test_every_test_card_passes_luhn_so_its_own_verdict_is_reached() -> None:
    for number, verdict in TEST_CARDS.items():
        assert decide(card(number), TODAY) == verdict


@pytest.mark.parametrize(
    ("month", "year", "expired"),
    [(5, 2026, True), (6, 2026, False), (12, 2025, True), (1, 2027, False)],
)
def test_a_card_is_valid_through_the_end_of_its_expiry_month(
    month: int, year: int, expired: bool
) -> None:
    verdict = decide(card("4242424242424242", month=month, year=year), TODAY)
    assert (verdict.response_code == "54") is expired


@pytest.mark.parametrize(
    ("number", "cvc", "ok"),
    [
        ("4242424242424242", "123", True),
        ("4242424242424242", None, True),
        ("4242424242424242", "12", False),
        ("4242424242424242", "1234", False),
        ("4242424242424242", "12a", False),
        ("378282246310005", "1234", True),  # amex codes have four digits
        ("378282246310005", "123", False),
    ],
)
def test_a_malformed_security_code_is_declined_as_incorrect_cvc(
    number: str, cvc: str | None, ok: bool
) -> None:
    verdict = decide(card(number, cvc=cvc), TODAY)
    assert verdict.approved is ok
    if not ok:
        assert (verdict.response_code, verdict.decline_code) == ("N7", "incorrect_cvc")


def test_validation_errors_and_reprs_never_show_the_card() -> None:
    secret_number, secret_cvc = "4000000000009995", "987"
    body = {
        "reference": "ref_1",
        "amount_minor": 100,
        "currency": "USD",
        "card": {"number": secret_number, "expiry_month": 13, "expiry_year": 2030,
                 "cvc": secret_cvc, "holder_name": "Jane Roe"},
    }  # fmt: skip
    with pytest.raises(ValidationError) as failed:
        AuthorizeRequest.model_validate(body)
    assert secret_number not in str(failed.value)
    body["card"]["expiry_month"] = 12  # type: ignore[index]
    model = AuthorizeRequest.model_validate(body)
    assert secret_number not in repr(model)
    assert secret_cvc not in repr(model)
    assert "Jane" not in repr(model)


def test_a_malformed_number_is_refused_without_echoing_it() -> None:
    with pytest.raises(ValidationError) as failed:
        CardIn(number="4242-4242-4242-4242", expiry_month=1, expiry_year=2030)
    assert "4242-4242" not in str(failed.value)
