"""A dead letter keeps no card data: not in JSON fields, not in junk bytes, not in headers."""

from __future__ import annotations

import json

import pytest

from payment_service.streams.dlq import redacted, redacted_key

pytestmark = pytest.mark.unit

PAN = "4242424242424242"
_GROUPS = [PAN[i : i + 4] for i in range(0, 16, 4)]


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
        # Digits spread by what the log filter does not take for a separator.
        json.dumps({"note": ".".join(_GROUPS)}).encode(),
        json.dumps({"note": "/".join(_GROUPS)}).encode(),
        json.dumps({"note": "  ".join(_GROUPS)}).encode(),
        json.dumps({"/".join(_GROUPS): 1}).encode(),
        "\t".join(_GROUPS).encode(),
        b"\xff".join(g.encode() for g in _GROUPS),
        "\x00".join(PAN).encode(),
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


def test_the_key_and_header_names_keep_no_card_number() -> None:
    _, headers = redacted(b"{}", {PAN: "x", "n": ".".join(_GROUPS)})
    assert all(PAN not in "".join(ch for ch in k + v if ch.isdigit()) for k, v in headers.items())
    assert redacted_key(".".join(_GROUPS)) == "[REDACTED]"
    assert redacted_key("txn_2026-12-02") == "txn_2026-12-02"
    assert redacted_key(None) is None


def test_spread_digits_that_hold_no_card_number_are_kept() -> None:
    raw = json.dumps({"at": "2026-12-02", "ids": "1.2.3", "amount_minor": 2500}).encode()
    assert json.loads(redacted(raw, {})[0]) == json.loads(raw)


def test_digit_soup_past_the_search_budget_is_masked_unsearched() -> None:
    run = ".".join("1" * 30)  # no Luhn-valid span: kept while the search budget lasts
    kept = redacted("x".join([run] * 200).encode(), {})[0].decode().split("x")  # 6000 digits
    assert kept[0] == run
    assert kept[-1] == "[REDACTED]"
