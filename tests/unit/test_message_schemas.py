"""The committed JSON Schemas match the models; a model message validates against them."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest

from payment_service.schemas import jsonschema as schemas
from payment_service.schemas.messages import (
    EncryptedCard,
    ProcessPayment,
    ProcessPaymentV1,
    parse_command,
)

pytestmark = pytest.mark.unit


def test_committed_schemas_are_current() -> None:
    assert schemas.stale() == [], "run `payment-service schemas` and commit the result"


def test_a_model_message_validates_against_the_committed_schema() -> None:
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
        )
    )
    raw = message.model_dump_json()
    schema = json.loads((schemas.SCHEMA_DIR / "payment.process.v1.schema.json").read_text())
    jsonschema.validate(json.loads(raw), schema)
    assert parse_command(raw.encode()) == message


def test_amount_as_float_is_refused() -> None:
    schema = json.loads((schemas.SCHEMA_DIR / "payment.process.v1.schema.json").read_text())
    bad: dict[str, Any] = {
        "type": "payment.process/v1",
        "message_id": "x",
        "occurred_at": "2026-01-01T00:00:00Z",
    }
    bad["data"] = {"amount_minor": 19.99}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema)
