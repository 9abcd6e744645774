"""Envelope formats: how sealed card data is written down, and what binds it (no crypto here).

Version 2 (current) is HPKE (RFC 9180) base mode, single shot, to the processor's X25519 public
key. Its JSON text, compact, with no other fields:

    {"v": 2, "alg": "HPKE-X25519-HKDF-SHA256-AES-256-GCM", "kid": "<key id>",
     "ct": "<standard base64 of enc || ciphertext>"}

plus, optionally, `"purpose"` and `"subject"`: what the producer says it sealed the value for.
They are hints, not protection: the binding itself is the HPKE `info`, which the key schedule
commits to, so an envelope sealed for one transaction fails to open for any other. The hints
only let the processor tell "sealed for another transaction" (`card_data_mismatch`) from
"damaged" (`card_data_unreadable`) once opening has failed.

The `info` bytes (docs/security.md shows how to make them with `cryptography` alone):

    b"payment-service/card/v2" 0x00 <purpose, ASCII> 0x00 <subject id, UTF-8>

with purpose `card_number` (subject: the transaction id), `security_code` (the transaction id)
or `card_on_file` (the `pm_` id). The plaintext is the ASCII digits of the value.

Version 1 (legacy, decrypt-only) is the old AES-256-GCM format under `ENCRYPTION_KEY`:
`{"v": 1, "kid", "nonce", "ct"}` with associated data `"<purpose>:<subject>"`.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from typing import Final, Literal

from payment_service.core.errors import MalformedEnvelope

Purpose = Literal["card_number", "security_code", "card_on_file"]
PURPOSES: Final[frozenset[str]] = frozenset({"card_number", "security_code", "card_on_file"})

ALG: Final = "HPKE-X25519-HKDF-SHA256-AES-256-GCM"
INFO_PREFIX: Final = b"payment-service/card/v2"
KID: Final = re.compile(r"[A-Za-z0-9_.-]{1,32}")
# enc (32 bytes for X25519) + at least the 16-byte GCM tag.
_MIN_V2_CT: Final = 32 + 16
_V1_NONCE: Final = 12
_V1_TAG: Final = 16
_V2_FIELDS: Final = frozenset({"v", "alg", "kid", "ct"})
_V2_HINTS: Final = frozenset({"purpose", "subject"})
_V1_FIELDS: Final = frozenset({"v", "kid", "nonce", "ct"})


def info(purpose: Purpose, subject: str) -> bytes:
    """The HPKE `info` that binds a sealed value to what it is and to whom it belongs."""
    if purpose not in PURPOSES or not subject:
        raise ValueError("a binding needs a known purpose and a subject id")
    return INFO_PREFIX + b"\x00" + purpose.encode("ascii") + b"\x00" + subject.encode("utf-8")


def legacy_associated_data(purpose: Purpose, subject: str) -> bytes:
    """The v1 format's AES-GCM associated data (`"card_number:<txid>"`)."""
    return f"{purpose}:{subject}".encode()


def b64decode(text: str) -> bytes:
    """Strict standard base64 (raises `binascii.Error` on anything else)."""
    return base64.b64decode(text.encode("ascii"), validate=True)


def b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


@dataclass(frozen=True, slots=True)
class Sealed:
    """A v2 envelope: key id, `enc || ciphertext`, and the producer's optional binding hints."""

    kid: str
    ciphertext: bytes
    purpose: str | None = None
    subject: str | None = None

    def to_str(self) -> str:
        """Compact JSON text."""
        data: dict[str, str | int] = {"v": 2, "alg": ALG, "kid": self.kid}
        data["ct"] = b64encode(self.ciphertext)
        if self.purpose is not None and self.subject is not None:
            data["purpose"], data["subject"] = self.purpose, self.subject
        return json.dumps(data, separators=(",", ":"))

    def declares_other_binding(self, purpose: Purpose, subject: str) -> bool:
        """True when the hints name a binding other than (`purpose`, `subject`)."""
        if self.purpose is None:
            return False
        return (self.purpose, self.subject) != (purpose, subject)


@dataclass(frozen=True, slots=True)
class LegacySealed:
    """A v1 envelope (AES-256-GCM under `ENCRYPTION_KEY`): read, never written."""

    kid: str
    nonce: bytes
    ciphertext: bytes


def _unique_fields(pairs: list[tuple[str, object]]) -> dict[str, object]:
    """`json.loads` hook: a repeated field is an error, not "last one wins"."""
    data = dict(pairs)
    if len(data) != len(pairs):
        raise MalformedEnvelope("envelope repeats a field")
    return data


def _bytes(data: dict[str, object], name: str) -> bytes:
    value = data[name]
    if not isinstance(value, str):
        raise MalformedEnvelope(f"envelope {name} must be a base64 string")
    try:
        return b64decode(value)
    except (binascii.Error, UnicodeEncodeError):
        raise MalformedEnvelope(f"envelope {name} is not valid base64") from None


def _kid(data: dict[str, object]) -> str:
    kid = data["kid"]
    if not isinstance(kid, str) or not KID.fullmatch(kid):
        raise MalformedEnvelope("envelope key id is missing or malformed")
    return kid


def _v2(data: dict[str, object]) -> Sealed:
    fields = set(data)
    if not fields >= _V2_FIELDS or not fields <= _V2_FIELDS | _V2_HINTS:
        raise MalformedEnvelope("a v2 envelope has the fields v, alg, kid, ct (purpose, subject)")
    if data["alg"] != ALG:
        raise MalformedEnvelope(f"unsupported envelope algorithm (expected {ALG})")
    purpose, subject = data.get("purpose"), data.get("subject")
    if (purpose is None) != (subject is None):
        raise MalformedEnvelope("envelope purpose and subject come together")
    if purpose is not None and (
        purpose not in PURPOSES or not isinstance(subject, str) or not 0 < len(subject) <= 128
    ):
        raise MalformedEnvelope("envelope purpose or subject is malformed")
    ciphertext = _bytes(data, "ct")
    if len(ciphertext) < _MIN_V2_CT:
        raise MalformedEnvelope("envelope ct is too short")
    hints = (str(purpose), str(subject)) if purpose is not None else (None, None)
    return Sealed(_kid(data), ciphertext, *hints)


def _v1(data: dict[str, object]) -> LegacySealed:
    if set(data) != _V1_FIELDS:
        raise MalformedEnvelope("a v1 envelope has exactly the fields v, kid, nonce, ct")
    nonce, ciphertext = _bytes(data, "nonce"), _bytes(data, "ct")
    if len(nonce) != _V1_NONCE or len(ciphertext) < _V1_TAG:
        raise MalformedEnvelope("envelope nonce or ct has the wrong size")
    return LegacySealed(_kid(data), nonce, ciphertext)


def parse(text: str | bytes) -> Sealed | LegacySealed:
    """Parse envelope text strictly: exact fields, known version and algorithm, valid sizes."""
    try:
        data = json.loads(text, object_pairs_hook=_unique_fields)
    except (ValueError, UnicodeDecodeError):
        raise MalformedEnvelope("envelope is not valid JSON") from None
    if not isinstance(data, dict):
        raise MalformedEnvelope("envelope must be a JSON object")
    version = data.get("v")
    if type(version) is int and version == 2:
        return _v2(data)
    if type(version) is int and version == 1:
        return _v1(data)
    raise MalformedEnvelope("unsupported envelope version (expected 2, or legacy 1)")


def key_id_of(text: str | bytes) -> str:
    """The key id an envelope names, `v1:<kid>` for a legacy one (for rewrap and retire)."""
    sealed = parse(text)
    return sealed.kid if isinstance(sealed, Sealed) else f"v1:{sealed.kid}"
