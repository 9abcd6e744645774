"""Kafka commands refuse control characters, and a refused command gets a final error result."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest
from pydantic import ValidationError

from payment_service.schemas import jsonschema as schemas
from payment_service.schemas.messages import (
    EncryptedCard,
    ProcessPayment,
    ProcessPaymentV1,
    RefundPayment,
    RefundPaymentV1,
    parse_command,
)
from payment_service.streams.refusals import refused

pytestmark = pytest.mark.unit


def _payment() -> dict[str, Any]:
    message = ProcessPaymentV1(
        data=ProcessPayment(
            transaction_id="t-1",
            merchant_id="m-1",
            amount_minor=1999,
            currency="USD",
            card=EncryptedCard(
                number_envelope="{}",
                fingerprint="f",
                brand="visa",
                last4="4242",
                expiry_month=12,
                expiry_year=2031,
                holder_name="A B",
            ),
            description="fine",
            metadata={"k": "v"},
        )
    )
    parsed: dict[str, Any] = json.loads(message.model_dump_json())
    return parsed


def _refund() -> dict[str, Any]:
    message = RefundPaymentV1(
        data=RefundPayment(refund_id="r-1", transaction_id="t-1", merchant_id="m-1", reason="x")
    )
    parsed: dict[str, Any] = json.loads(message.model_dump_json())
    return parsed


def _set(message: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    *parents, last = path.split(".")
    target = message["data"]
    for name in parents:
        target = target[name]
    target[last] = value
    return message


@pytest.mark.parametrize(
    ("make", "path"),
    [
        (_payment, "description"),
        (_payment, "card.holder_name"),
        (_payment, "idempotency_key"),
        (_payment, "payment_method"),
        (_refund, "reason"),
    ],
)
@pytest.mark.parametrize("char", ["\x00", "\x1b", "\n", "\x9b"])
def test_control_characters_in_commands_are_refused(make: Any, path: str, char: str) -> None:
    message = _set(make(), path, f"a{char}b")
    raw = json.dumps(message).encode()
    with pytest.raises(ValidationError):
        parse_command(raw)
    name = "payment.process.v1" if make is _payment else "payment.refund.v1"
    schema = json.loads((schemas.SCHEMA_DIR / f"{name}.schema.json").read_text())
    with pytest.raises(jsonschema.ValidationError):  # the published schema says so too
        jsonschema.validate(message, schema)


@pytest.mark.parametrize("where", ["key", "value"])
def test_control_characters_in_metadata_are_refused(where: str) -> None:
    metadata = {"k\x00": "v"} if where == "key" else {"k": "v\x00"}
    with pytest.raises(ValidationError):
        parse_command(json.dumps(_set(_payment(), "metadata", metadata)).encode())


def test_a_refused_command_that_names_its_payment_gets_a_final_error() -> None:
    raw = json.dumps(_set(_payment(), "description", "a\x00b")).encode()
    result = refused(raw, "invalid_command", "data.description: String should match pattern")
    assert result is not None
    assert (result.kind, result.transaction_id, result.merchant_id, result.final) == (
        "payment",
        "t-1",
        "m-1",
        True,
    )
    assert result.error is not None
    assert result.error.code == "invalid_command"
    refund = refused(
        json.dumps(_set(_refund(), "reason", "\x00")).encode(), "invalid_command", "reason"
    )
    assert refund is not None
    assert (refund.kind, refund.refund_id) == ("refund", "r-1")


@pytest.mark.parametrize(
    "raw",
    [
        b"{not json",
        b"[" * 10_000 + b"]" * 10_000,
        b'{"type": "payment.process/v1"}',
        b'{"type": "other/v1", "data": {"transaction_id": "t", "merchant_id": "m"}}',
        b'{"type": "payment.process/v1", "data": {"transaction_id": "t\\u0000", '
        b'"merchant_id": "m"}}',
        b'{"type": "payment.refund/v1", "data": {"transaction_id": "t", "merchant_id": "m"}}',
        b'{"type": "payment.process/v1", "data": {"transaction_id": 5, "merchant_id": "m"}}',
    ],
)
def test_a_command_that_names_no_payment_is_only_dead_lettered(raw: bytes) -> None:
    assert refused(raw, "invalid_command", "x") is None
