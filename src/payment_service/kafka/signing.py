"""Ed25519 signatures of commands and results: the canonical bytes, signing and verifying.

A command carries three headers: `producer-id` (the registered producer's name, or `api`),
`signed-at` (milliseconds since the Unix epoch, decimal ASCII) and `signature` (standard base64
of the 64-byte Ed25519 signature). The signature is over these bytes (docs/kafka.md, "Signing"):

    "payment-service/command/v1" 0x00
    u32be(len(producer-id)) producer-id
    u32be(len(signed-at))   signed-at
    u32be(len(key))         key          (the message key's bytes: the transaction id)
    u32be(len(value))       value        (the message value's bytes, exactly as produced)

Every field is length-prefixed (4 bytes, big-endian), so no two different messages share the
signed bytes. A result the processor publishes is signed the same way under the context
`payment-service/result/v1` with `signer` (`processor`), `signed-at`, the `reply-id` it answers
(empty when none) and its own key and value. Replays re-produce the same bytes and headers, so a
replayed command verifies again and idempotency makes it harmless; `signed-at` is recorded, not
checked for freshness (an operator's replay may come days later).

Keys are raw 32-byte Ed25519 keys written as standard base64 (one line), in files or settings.
"""

from __future__ import annotations

import base64
import binascii
import struct
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

HEADER_PRODUCER_ID: Final = "producer-id"
HEADER_SIGNED_AT: Final = "signed-at"
HEADER_SIGNATURE: Final = "signature"
HEADER_SIGNER: Final = "signer"
COMMAND_CONTEXT: Final = b"payment-service/command/v1"
RESULT_CONTEXT: Final = b"payment-service/result/v1"
PROCESSOR_SIGNER: Final = "processor"
SIGNATURE_BYTES: Final = 64
KEY_BYTES: Final = 32


class SigningKeyError(ValueError):
    """A key that is not a base64 raw Ed25519 key of 32 bytes (the message never shows it)."""


def signed_bytes(context: bytes, *fields: bytes) -> bytes:
    """The canonical bytes: the context, a NUL, then each field behind its u32 length."""
    parts = [context, b"\x00"]
    for value in fields:
        parts.append(struct.pack(">I", len(value)))
        parts.append(value)
    return b"".join(parts)


def command_bytes(producer_id: str, signed_at: str, key: bytes, value: bytes) -> bytes:
    return signed_bytes(COMMAND_CONTEXT, producer_id.encode(), signed_at.encode(), key, value)


def result_bytes(signed_at: str, reply_id: str, key: bytes, value: bytes) -> bytes:
    return signed_bytes(
        RESULT_CONTEXT, PROCESSOR_SIGNER.encode(), signed_at.encode(), reply_id.encode(), key, value
    )


def now_millis() -> str:
    return str(time.time_ns() // 1_000_000)


def _raw(text: str, what: str) -> bytes:
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise SigningKeyError(f"{what} is not base64") from None
    if len(raw) != KEY_BYTES:
        raise SigningKeyError(f"{what} is {len(raw)} bytes; an Ed25519 key is {KEY_BYTES}")
    return raw


def public_key_from_text(text: str, what: str = "the public key") -> Ed25519PublicKey:
    return Ed25519PublicKey.from_public_bytes(_raw(text, what))


def private_key_from_text(text: str, what: str = "the private key") -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(_raw(text, what))


def public_text(key: Ed25519PublicKey) -> str:
    return base64.b64encode(key.public_bytes_raw()).decode()


def private_text(key: Ed25519PrivateKey) -> str:
    return base64.b64encode(key.private_bytes_raw()).decode()


def read_key_file(path: Path) -> str:
    """A key file's one line (the caller parses it, naming the file in any error)."""
    return path.read_text(encoding="ascii").strip()


@dataclass(frozen=True)
class Signer:
    """Signs as one producer (`producer_id`), or as the processor for results."""

    producer_id: str
    key: Ed25519PrivateKey

    def command_headers(self, key: bytes, value: bytes) -> dict[str, str]:
        """The three signature headers of a command with this key and value."""
        signed_at = now_millis()
        signature = self.key.sign(command_bytes(self.producer_id, signed_at, key, value))
        return {
            HEADER_PRODUCER_ID: self.producer_id,
            HEADER_SIGNED_AT: signed_at,
            HEADER_SIGNATURE: base64.b64encode(signature).decode(),
        }

    def result_headers(self, reply_id: str | None, key: bytes, value: bytes) -> dict[str, str]:
        """The signature headers of a result answering `reply_id` (None: nobody waits)."""
        signed_at = now_millis()
        signature = self.key.sign(result_bytes(signed_at, reply_id or "", key, value))
        return {
            HEADER_SIGNER: PROCESSOR_SIGNER,
            HEADER_SIGNED_AT: signed_at,
            HEADER_SIGNATURE: base64.b64encode(signature).decode(),
        }


def decode_signature(text: str | None) -> bytes | None:
    """The 64 signature bytes from a header, or None when it is absent or not one."""
    if not text:
        return None
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if len(raw) == SIGNATURE_BYTES else None


def verify(key: Ed25519PublicKey, signature: bytes, message: bytes) -> bool:
    try:
        key.verify(signature, message)
    except InvalidSignature:
        return False
    return True


def verify_result(
    key: Ed25519PublicKey,
    headers: Mapping[str, str],
    reply_id: str,
    message_key: bytes,
    value: bytes,
) -> bool:
    """True when a result's headers hold the processor's valid signature for these bytes."""
    signature = decode_signature(headers.get(HEADER_SIGNATURE))
    signed_at = headers.get(HEADER_SIGNED_AT)
    if signature is None or not signed_at or headers.get(HEADER_SIGNER) != PROCESSOR_SIGNER:
        return False
    return verify(key, signature, result_bytes(signed_at, reply_id, message_key, value))


def new_key_pair() -> tuple[str, str]:
    """A fresh (private, public) pair as base64 text."""
    private = Ed25519PrivateKey.generate()
    return private_text(private), public_text(private.public_key())
