"""A dead letter keeps no card data: not in JSON fields, not in junk bytes, not in headers."""

from __future__ import annotations

import json

import pytest

from payment_service.streams.dlq import redacted

pytestmark = pytest.mark.unit

PAN = "4242424242424242"


@pytest.mark.parametrize(
    "raw",
    [
        json.dumps({"type": "payment.process/v1", "data": {"card_number": PAN}}).encode(),
        json.dumps(
            {"data": {"card": {"number_envelope": "sealed", "note": f"pan {PAN}"}}}
        ).encode(),
        json.dumps({"a": [[[[[[[[[[{"deep": PAN}]]]]]]]]]]}).encode(),
        json.dumps({"n": int(PAN)}).encode(),
        f"not json at all {PAN[:4]} {PAN[4:8]} {PAN[8:12]} {PAN[12:]}".encode(),
        b"\xff\xfe junk " + PAN.encode() + b" \x00",
        ('{"card_number": "' + PAN + '", broken').encode(),
    ],
)
def test_no_card_number_survives(raw: bytes) -> None:
    value, headers = redacted(raw, {"note": f"card {PAN}", "dlq-reason": "x"})
    digits = "".join(ch for ch in value.decode("utf-8", "replace") if ch.isdigit())
    assert PAN not in digits
    assert PAN not in headers["note"]
    assert headers["dlq-reason"] == "x"


def test_sealed_envelopes_are_removed_and_the_rest_kept() -> None:
    raw = json.dumps(
        {
            "type": "payment.process/v1",
            "data": {
                "transaction_id": "t-1",
                "card": {"number_envelope": '{"v":2,"ct":"abc"}', "last4": "4242"},
            },
        }
    ).encode()
    kept = json.loads(redacted(raw, {})[0])
    assert kept["data"]["transaction_id"] == "t-1"
    assert kept["data"]["card"]["number_envelope"] == "[REDACTED]"
    assert kept["data"]["card"]["last4"] == "4242"


def test_an_empty_message_stays_empty() -> None:
    assert redacted(None, {}) == (b"", {})
