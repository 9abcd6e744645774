"""Who sent this command, and may they? The processor's first step for every message.

`CommandGate.check()` runs before anything else touches a command (docs/kafka.md, "Signing"):

1. the headers `producer-id`, `signed-at` and `signature` are present and well formed;
2. the producer is `api` (its public key is in the processor's settings) or registered in
   PostgreSQL, and not revoked;
3. the Ed25519 signature verifies over the canonical bytes of key, value and those headers.

Then, once the command is parsed, `allowed()` checks its type and merchant against the
producer's grants. The registry is read through a cache of `ttl_seconds` (positive and negative
answers alike), so a revocation takes effect within that many seconds, without a restart, and a
flood of commands from one unknown producer costs one query per period.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, replace

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from payment_service.core.ports import ProducerDirectory
from payment_service.core.producers import (
    API_PRODUCER,
    COMMAND_KINDS,
    PRODUCER_REVOKED,
    PRODUCER_UNKNOWN,
    SIGNATURE_INVALID,
    SIGNATURE_MISSING,
    CommandKind,
    ProducerRecord,
    Refusal,
    refusal,
)
from payment_service.kafka.signing import (
    HEADER_PRODUCER_ID,
    HEADER_SIGNATURE,
    HEADER_SIGNED_AT,
    SigningKeyError,
    command_bytes,
    decode_signature,
    public_key_from_text,
    verify,
)


@dataclass(frozen=True)
class Verified:
    """A command whose signature is valid, from this producer."""

    producer: ProducerRecord


class CommandGate:
    def __init__(
        self, directory: ProducerDirectory, api_key: Ed25519PublicKey, *, ttl_seconds: float
    ) -> None:
        self._directory = directory
        self._api = ProducerRecord(API_PRODUCER, None, frozenset(COMMAND_KINDS), "")
        self._api_key = api_key
        self._ttl = ttl_seconds
        self._cache: dict[str, tuple[float, ProducerRecord | None, Ed25519PublicKey | None]] = {}

    async def check(
        self, key: bytes, value: bytes, headers: Mapping[str, str]
    ) -> Verified | Refusal:
        """Steps 1-3: who signed this message, or why it is refused (no I/O beyond the registry)."""
        producer_id = headers.get(HEADER_PRODUCER_ID)
        signed_at = headers.get(HEADER_SIGNED_AT)
        signature = decode_signature(headers.get(HEADER_SIGNATURE))
        if not producer_id or not signed_at or headers.get(HEADER_SIGNATURE) is None:
            return Refusal(
                SIGNATURE_MISSING,
                "the command must carry the headers producer-id, signed-at and signature",
            )
        if signature is None or not signed_at.isdigit() or len(signed_at) > 20:
            return Refusal(SIGNATURE_INVALID, "the signature headers are malformed")
        record, public_key = await self._lookup(producer_id)
        if record is None or public_key is None:
            return Refusal(PRODUCER_UNKNOWN, "the producer is not registered")
        if not verify(public_key, signature, command_bytes(producer_id, signed_at, key, value)):
            # No answer: anyone can name a producer, and a signed "refused" on its topic for one
            # of its own transaction ids would be a forged final result (it may retry: charged
            # twice). Only a verified producer is answered.
            return Refusal(SIGNATURE_INVALID, "the signature does not verify")
        # Revocation is checked after the signature, so only the producer learns it is revoked.
        if record.revoked_at is not None:
            return Refusal(PRODUCER_REVOKED, f"producer {record.name} is revoked", record.name)
        return Verified(record)

    @staticmethod
    def allowed(verified: Verified, kind: CommandKind, merchant_id: str) -> Refusal | None:
        """Step 4, after parsing: may this producer send `kind` for `merchant_id`?"""
        found = refusal(verified.producer, kind, merchant_id)
        return replace(found, answer_to=verified.producer.name) if found else None

    async def _lookup(self, name: str) -> tuple[ProducerRecord | None, Ed25519PublicKey | None]:
        if name == API_PRODUCER:
            return self._api, self._api_key
        now = time.monotonic()
        cached = self._cache.get(name)
        if cached is not None and now - cached[0] < self._ttl:
            return cached[1], cached[2]
        if len(name) > 64:
            return None, None
        record = await self._directory.producer(name)
        key: Ed25519PublicKey | None = None
        if record is not None:
            try:
                key = public_key_from_text(record.public_key)
            except SigningKeyError:
                record = None  # a corrupt row verifies nothing
        if len(self._cache) > 10_000:
            self._cache.clear()  # bounded: names come from the wire
        self._cache[name] = (now, record, key)
        return record, key
