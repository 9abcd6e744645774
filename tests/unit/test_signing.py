"""Signed commands and results: the canonical bytes, tampering, the example producer, the cost."""

from __future__ import annotations

import base64
import importlib.util
import struct
from pathlib import Path
from types import ModuleType

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from payment_service.kafka import signing
from payment_service.kafka.signing import Signer

pytestmark = pytest.mark.unit

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "foreign_producer.py"


def _example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("foreign_producer", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_signed_bytes_are_the_documented_layout() -> None:
    got = signing.command_bytes("team-a", "1700000000000", b"txn_1", b'{"v":1}')
    want = b"payment-service/command/v1\x00"
    for field in (b"team-a", b"1700000000000", b"txn_1", b'{"v":1}'):
        want += struct.pack(">I", len(field)) + field
    assert got == want
    # Length prefixes: moving a byte from one field to the next changes the signed bytes.
    assert signing.command_bytes("team-a", "1", b"ab", b"c") != signing.command_bytes(
        "team-a", "1", b"a", b"bc"
    )


def test_a_signed_command_verifies_and_any_change_breaks_it() -> None:
    key = Ed25519PrivateKey.generate()
    headers = Signer("team-a", key).command_headers(b"txn_1", b"value")
    signature = signing.decode_signature(headers["signature"])
    assert signature is not None
    public = key.public_key()
    ok = signing.command_bytes("team-a", headers["signed-at"], b"txn_1", b"value")
    assert signing.verify(public, signature, ok)
    for changed in (
        signing.command_bytes("team-b", headers["signed-at"], b"txn_1", b"value"),
        signing.command_bytes("team-a", "1", b"txn_1", b"value"),
        signing.command_bytes("team-a", headers["signed-at"], b"txn_2", b"value"),
        signing.command_bytes("team-a", headers["signed-at"], b"txn_1", b"valuE"),
    ):
        assert not signing.verify(public, signature, changed)
    other = Ed25519PrivateKey.generate().public_key()
    assert not signing.verify(other, signature, ok)


def test_the_example_producer_signs_exactly_as_the_processor_verifies() -> None:
    key = Ed25519PrivateKey.generate()
    headers = _example().signature_headers("team-a", key, b"txn_9", b"{}")
    signature = signing.decode_signature(headers["signature"])
    assert signature is not None
    signed = signing.command_bytes(headers["producer-id"], headers["signed-at"], b"txn_9", b"{}")
    assert signing.verify(key.public_key(), signature, signed)


def test_a_result_verifies_only_for_its_reply_id_key_and_value() -> None:
    key = Ed25519PrivateKey.generate()
    headers = Signer("processor", key).result_headers("r-1", b"txn_1", b"result")
    public = key.public_key()
    assert signing.verify_result(public, headers, "r-1", b"txn_1", b"result")
    assert not signing.verify_result(public, headers, "r-2", b"txn_1", b"result")
    assert not signing.verify_result(public, headers, "r-1", b"txn_1", b"resulT")
    assert not signing.verify_result(
        public, {**headers, "signer": "api"}, "r-1", b"txn_1", b"result"
    )
    assert not signing.verify_result(public, {}, "r-1", b"txn_1", b"result")
    # A command signature is never a result signature (different context).
    command = Signer("processor", key).command_headers(b"txn_1", b"result")
    assert not signing.verify_result(
        public, {**command, "signer": "processor"}, "", b"txn_1", b"result"
    )


@pytest.mark.parametrize("text", ["", "!!", base64.b64encode(b"short").decode(), "a" * 10_000])
def test_malformed_signatures_and_keys_are_refused(text: str) -> None:
    assert signing.decode_signature(text) is None
    with pytest.raises(signing.SigningKeyError):
        signing.public_key_from_text(text)
