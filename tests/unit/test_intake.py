"""Request identity for Idempotency-Key: stable across formatting, blind to card secrets."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any

import pytest

from payment_service.cards.fingerprint import FingerprintKey
from payment_service.core.ids import new_id, new_payment_method_id
from payment_service.http import intake
from payment_service.http.intake import refund_request_hash
from payment_service.schemas.payment_methods import PaymentMethodRequest
from payment_service.schemas.payments import PaymentRequest, RefundRequest

pytestmark = pytest.mark.unit

SECRET = b"s" * 32
YEAR = dt.datetime.now(dt.UTC).year + 1
FINGERPRINTS = FingerprintKey.parse("fpk1:Zm9yIHRlc3RzIG9ubHk6IGEgZml4ZWQga2V5IG9mIDMyIGJ5dGVz")
OTHER_FINGERPRINTS = FingerprintKey.parse(
    "fpk2:b3RoZXIgdGVzdCBrZXk6IHRoaXJ0eS10d28gYnl0ZXMgbG9uZw=="
)


def payment_request_hash(
    secret: bytes, request: PaymentRequest, fingerprints: FingerprintKey = FINGERPRINTS
) -> str:
    return intake.payment_request_hash(secret, fingerprints, request)


def request(**card: Any) -> PaymentRequest:
    data = {
        "merchant_id": "m1",
        "amount": Decimal("10.00"),
        "currency": "USD",
        "card_data": {
            "card_number": "4242424242424242",
            "expiry_month": 1,
            "expiry_year": YEAR,
            "cvv": "123",
            "cardholder_name": "A B",
            **card,
        },
        "metadata": {"a": "1", "b": "2"},
    }
    return PaymentRequest.model_validate(data)


def test_formatting_does_not_change_the_hash() -> None:
    reordered = PaymentRequest.model_validate(
        json.loads(
            json.dumps(
                {
                    "metadata": {"b": "2", "a": "1"},
                    "card_data": request().model_dump(mode="json")["card_data"]
                    | {"card_number": "4242 4242 4242 4242", "cvv": "123"},
                    "currency": "usd",
                    "amount": "10.0",
                    "merchant_id": "m1",
                }
            ),
            parse_float=Decimal,
        )
    )
    assert payment_request_hash(SECRET, reordered) == payment_request_hash(SECRET, request())


def test_what_identifies_a_payment_changes_the_hash() -> None:
    base = payment_request_hash(SECRET, request())
    assert payment_request_hash(SECRET, request(card_number="4111111111111111")) != base
    assert payment_request_hash(SECRET, request(expiry_month=2)) != base
    assert payment_request_hash(b"t" * 32, request()) != base
    # The card enters through its fingerprint, under the fingerprint key.
    assert payment_request_hash(SECRET, request(), OTHER_FINGERPRINTS) != base


def test_a_card_on_file_payment_hash_names_the_card_not_its_code() -> None:
    def by_pm(pm: str, **extra: Any) -> PaymentRequest:
        body = {"merchant_id": "m1", "amount": "10", "currency": "USD", "payment_method_id": pm}
        return PaymentRequest.model_validate({**body, **extra})

    base = payment_request_hash(SECRET, by_pm("pm_aaaaaaaa"))
    assert payment_request_hash(SECRET, by_pm("pm_bbbbbbbb")) != base
    assert payment_request_hash(SECRET, by_pm("pm_aaaaaaaa", cvv="123")) == base
    assert base != payment_request_hash(SECRET, request())


def test_a_card_on_file_request_hash_is_blind_to_the_security_code() -> None:
    def stored(**card: Any) -> PaymentMethodRequest:
        data = {"card_number": "4242424242424242", "expiry_month": 1, "expiry_year": YEAR}
        body = {"card_data": {**data, "cardholder_name": "A B", **card}}
        return PaymentMethodRequest.model_validate(body)

    def h(req: PaymentMethodRequest) -> str:
        return intake.payment_method_request_hash(SECRET, FINGERPRINTS, req)

    assert h(stored()) == h(stored(cvv="123"))
    assert h(stored()) != h(stored(card_number="4111111111111111"))
    assert "4242424242424242" not in h(stored())


def test_the_security_code_is_not_part_of_it() -> None:
    # The hash is kept as long as the payment: it must not be a function of the code.
    assert payment_request_hash(SECRET, request(cvv="999")) == payment_request_hash(
        SECRET, request()
    )


def test_refund_hash_depends_on_payment_and_amount_not_formatting() -> None:
    five = RefundRequest.model_validate({"amount": "5.00"})
    assert refund_request_hash(SECRET, "t1", five) == refund_request_hash(
        SECRET, "t1", RefundRequest.model_validate({"amount": "5"})
    )
    assert refund_request_hash(SECRET, "t2", five) != refund_request_hash(SECRET, "t1", five)
    assert refund_request_hash(SECRET, "t1", RefundRequest()) != refund_request_hash(
        SECRET, "t1", five
    )


def test_ids_derive_from_the_key_per_merchant_and_kind() -> None:
    assert new_id("m1", "k", "payment") == new_id("m1", "k", "payment")
    assert new_id("m1", "k", "payment") != new_id("m2", "k", "payment")
    assert new_id("m1", "k", "payment") != new_id("m1", "k", "refund")
    assert new_id("m1", None, "payment") != new_id("m1", None, "payment")
    pm = new_payment_method_id("m1", "k")
    assert pm == new_payment_method_id("m1", "k")
    assert pm.startswith("pm_")
    assert pm != new_payment_method_id("m2", "k")
    assert new_payment_method_id("m1", None) != new_payment_method_id("m1", None)
