"""The reply consumer shows a client only the processor's signed result for its own command,
and survives any message (non-UTF-8 headers, tombstones, junk)."""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from payment_service.http.replies import Expected, _Arrived, accept, read_message
from payment_service.kafka.signing import Signer
from payment_service.schemas.messages import PaymentResult, PaymentResultV1

pytestmark = pytest.mark.unit

PROCESSOR = Ed25519PrivateKey.generate()
EXPECTED = Expected("txn_1", "m_1", None)


class Message:
    def __init__(self, value: bytes | None, headers: list[tuple[str, bytes | None]] | None,
                 key: bytes | None = b"txn_1") -> None:  # fmt: skip
        self._value, self._headers, self._key = value, headers, key

    def error(self) -> None:
        return None

    def value(self) -> bytes | None:
        return self._value

    def key(self) -> bytes | None:
        return self._key

    def headers(self) -> list[tuple[str, bytes | None]] | None:
        return self._headers


def _result(**changes: Any) -> bytes:
    data = {"transaction_id": "txn_1", "merchant_id": "m_1", "kind": "payment", "final": True,
            "payment": {"status": "captured"}, **changes}  # fmt: skip
    return PaymentResultV1(data=PaymentResult(**data)).model_dump_json().encode()


def _signed(value: bytes, reply_id: str = "r-1", key: Ed25519PrivateKey = PROCESSOR) -> _Arrived:
    headers = {
        "reply-id": reply_id,
        **Signer("processor", key).result_headers(reply_id, b"txn_1", value),
    }
    return _Arrived(reply_id, b"txn_1", value, headers)


def test_the_processors_signed_result_for_this_command_is_accepted() -> None:
    result = accept(PROCESSOR.public_key(), _signed(_result()), EXPECTED)
    assert isinstance(result, PaymentResult)
    assert result.payment == {"status": "captured"}


def test_a_forged_or_unsigned_result_is_dropped() -> None:
    forged = _signed(_result(), key=Ed25519PrivateKey.generate())
    assert accept(PROCESSOR.public_key(), forged, EXPECTED) == "signature_invalid"
    unsigned = _Arrived("r-1", b"txn_1", _result(), {"reply-id": "r-1"})
    assert accept(PROCESSOR.public_key(), unsigned, EXPECTED) == "signature_invalid"
    # A genuine result moved to another waiting request (another reply id) does not verify.
    moved = _signed(_result(), reply_id="r-other")
    moved = _Arrived("r-1", moved.key, moved.value, {**moved.headers, "reply-id": "r-1"})
    assert accept(PROCESSOR.public_key(), moved, EXPECTED) == "signature_invalid"


@pytest.mark.parametrize(
    "changes",
    [{"transaction_id": "txn_2"}, {"merchant_id": "m_2"}, {"refund_id": "rf_1"}],
)
def test_a_signed_result_naming_other_ids_is_dropped(changes: dict[str, str]) -> None:
    arrived = _signed(_result(**changes))
    assert accept(PROCESSOR.public_key(), arrived, EXPECTED) == "ids_mismatch"


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        (Message(b"{}", [("reply-id", b"\xff\xfe")]), "unreadable"),
        (Message(None, [("reply-id", b"r-1")]), "tombstone"),
        (Message(b"junk", None), "no_reply_id"),
        (Message(b"junk", [("other", b"\xff"), ("reply-id", None)]), "no_reply_id"),
    ],
)
def test_malformed_messages_are_reasons_not_exceptions(message: Message, reason: str) -> None:
    assert read_message(message) == reason


def test_junk_with_a_reply_id_is_read_then_dropped_by_its_signature() -> None:
    arrived = read_message(Message(b"\x00\xffjunk", [("reply-id", b"r-1")]))
    assert isinstance(arrived, _Arrived)
    assert accept(PROCESSOR.public_key(), arrived, EXPECTED) == "signature_invalid"
