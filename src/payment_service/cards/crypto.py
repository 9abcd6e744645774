"""Card-data encryption: the only module that decrypts card numbers and security codes.

Card data is sealed with AES-256-GCM under a data key from a `KeyRing` (parsed from
`ENCRYPTION_KEY="kid1:base64key[,kid2:base64key...]"`). The first key encrypts; every key decrypts,
so keys rotate by prepending a new one, re-wrapping old envelopes (`needs_rewrap`, `rewrap`), then
dropping the old key. Every ciphertext travels in an `Envelope` that names its key id.

The associated data binds a ciphertext to its purpose and transaction (`"card_number:<txid>"`):
an envelope copied onto another payment, or a card-number envelope offered as a security code,
fails authentication instead of decrypting.

Fingerprints (`fingerprint`) are a keyed HMAC-SHA256, never a plain hash: PANs are guessable.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final, Literal

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from payment_service.core.errors import (
    CardCryptoError,
    DecryptionError,
    KeyConfigError,
    MalformedEnvelope,
    UnknownKeyId,
)
from payment_service.core.masking import CardNumber, SecurityCode

ENVELOPE_VERSION: Final = 1
KEY_BYTES: Final = 32  # AES-256
NONCE_BYTES: Final = 12  # 96-bit GCM nonce, random per message
TAG_BYTES: Final = 16
_KID = re.compile(r"[A-Za-z0-9_.-]{1,32}")
_ENVELOPE_FIELDS: Final = frozenset({"v", "kid", "nonce", "ct"})
_FINGERPRINT_DOMAIN: Final = b"payment-service/card-fingerprint/v1:"

Purpose = Literal["card_number", "security_code"]


def _b64decode(text: str) -> bytes:
    """Strict standard base64 (raises `binascii.Error` on anything else)."""
    return base64.b64decode(text.encode("ascii"), validate=True)


def _b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unique_fields(pairs: list[tuple[str, object]]) -> dict[str, object]:
    """`json.loads` hook: a repeated field is an error, not "last one wins"."""
    data = dict(pairs)
    if len(data) != len(pairs):
        raise MalformedEnvelope("envelope repeats a field")
    return data


@dataclass(frozen=True, slots=True)
class Envelope:
    """A sealed value: key id, nonce and ciphertext (with its GCM tag). Safe to store and log."""

    kid: str
    nonce: bytes
    ciphertext: bytes

    def to_dict(self) -> dict[str, str | int]:
        """The JSON-able form: `{"v": 1, "kid": ..., "nonce": b64, "ct": b64}`."""
        return {
            "v": ENVELOPE_VERSION,
            "kid": self.kid,
            "nonce": _b64encode(self.nonce),
            "ct": _b64encode(self.ciphertext),
        }

    def to_str(self) -> str:
        """Compact JSON text of `to_dict()`."""
        return json.dumps(self.to_dict(), separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> Envelope:
        """Parse `to_dict()` output strictly: exact fields, known version, valid sizes."""
        if set(data) != _ENVELOPE_FIELDS:
            raise MalformedEnvelope("envelope must have exactly the fields v, kid, nonce, ct")
        version, kid, nonce, ct = data["v"], data["kid"], data["nonce"], data["ct"]
        if type(version) is not int or version != ENVELOPE_VERSION:
            raise MalformedEnvelope(f"unsupported envelope version (expected {ENVELOPE_VERSION})")
        if not isinstance(kid, str) or not _KID.fullmatch(kid):
            raise MalformedEnvelope("envelope key id is missing or malformed")
        if not isinstance(nonce, str) or not isinstance(ct, str):
            raise MalformedEnvelope("envelope nonce and ct must be base64 strings")
        try:
            nonce_bytes, ct_bytes = _b64decode(nonce), _b64decode(ct)
        except (binascii.Error, UnicodeEncodeError):
            raise MalformedEnvelope("envelope nonce or ct is not valid base64") from None
        if len(nonce_bytes) != NONCE_BYTES or len(ct_bytes) < TAG_BYTES:
            raise MalformedEnvelope("envelope nonce or ct has the wrong size")
        return cls(kid=kid, nonce=nonce_bytes, ciphertext=ct_bytes)

    @classmethod
    def from_str(cls, text: str | bytes) -> Envelope:
        """Parse `to_str()` output strictly."""
        try:
            data = json.loads(text, object_pairs_hook=_unique_fields)
        except (ValueError, UnicodeDecodeError):
            raise MalformedEnvelope("envelope is not valid JSON") from None
        if not isinstance(data, dict):
            raise MalformedEnvelope("envelope must be a JSON object")
        return cls.from_dict(data)


def _parse_entry(index: int, entry: str) -> tuple[str, bytes]:
    """One `kid:base64key` entry. Errors name the entry's position, never its text."""
    kid, sep, encoded = entry.strip().partition(":")
    if not sep or not kid or not encoded:
        raise KeyConfigError(f"ENCRYPTION_KEY entry {index}: expected 'kid:base64key'")
    if not _KID.fullmatch(kid):
        raise KeyConfigError(f"ENCRYPTION_KEY entry {index}: key id must match {_KID.pattern}")
    try:
        key = _b64decode(encoded.strip())
    except (binascii.Error, UnicodeEncodeError):
        raise KeyConfigError(f"ENCRYPTION_KEY entry {index}: key is not valid base64") from None
    if len(key) != KEY_BYTES:
        raise KeyConfigError(
            f"ENCRYPTION_KEY entry {index}: key must decode to {KEY_BYTES} bytes, not {len(key)}"
        )
    return kid, key


class KeyRing:
    """AES-256-GCM data keys by id; the first one encrypts, all of them decrypt."""

    __slots__ = ("_aeads", "_primary")

    def __init__(self, keys: Iterable[tuple[str, bytes]]) -> None:
        self._aeads: dict[str, AESGCM] = {}
        for kid, key in keys:
            if kid in self._aeads:
                raise KeyConfigError(f"ENCRYPTION_KEY: duplicate key id {kid!r}")
            if not _KID.fullmatch(kid) or len(key) != KEY_BYTES:
                raise KeyConfigError(f"data key {kid!r} is malformed")
            self._aeads[kid] = AESGCM(key)
        if not self._aeads:
            raise KeyConfigError("ENCRYPTION_KEY holds no keys")
        self._primary = next(iter(self._aeads))

    @classmethod
    def parse(cls, spec: str) -> KeyRing:
        """Parse `"kid1:base64key[,kid2:base64key...]"`; raises `KeyConfigError`."""
        if not spec.strip():
            raise KeyConfigError("ENCRYPTION_KEY is empty")
        return cls(_parse_entry(i, entry) for i, entry in enumerate(spec.split(","), start=1))

    @property
    def primary_kid(self) -> str:
        """The id of the key that encrypts."""
        return self._primary

    @property
    def kids(self) -> tuple[str, ...]:
        """All key ids, primary first."""
        return tuple(self._aeads)

    def __repr__(self) -> str:
        return f"KeyRing(kids={self.kids!r})"

    def encrypt(self, plaintext: bytes, associated_data: bytes) -> Envelope:
        """Seal `plaintext` under the primary key with a fresh random 96-bit nonce."""
        nonce = os.urandom(NONCE_BYTES)
        ciphertext = self._aeads[self._primary].encrypt(nonce, plaintext, associated_data)
        return Envelope(kid=self._primary, nonce=nonce, ciphertext=ciphertext)

    def decrypt(self, envelope: Envelope, associated_data: bytes) -> bytes:
        """Open `envelope`; raises `UnknownKeyId` or `DecryptionError`."""
        aead = self._aeads.get(envelope.kid)
        if aead is None:
            raise UnknownKeyId(envelope.kid)
        try:
            return aead.decrypt(envelope.nonce, envelope.ciphertext, associated_data)
        except InvalidTag:
            raise DecryptionError(
                "card data failed authentication (wrong key or transaction id, or tampered)"
            ) from None

    def open_card_number(self, envelope: str, transaction_id: str) -> CardNumber:
        """The `CardOpener` port: `decrypt_card_number` with this ring."""
        return decrypt_card_number(self, envelope, transaction_id)

    def needs_rewrap(self, envelope: Envelope) -> bool:
        """True when `envelope` was sealed under a key other than the primary one."""
        return envelope.kid != self._primary

    def rewrap(self, envelope: Envelope, associated_data: bytes) -> Envelope:
        """Re-seal under the primary key (for rotation jobs); returns `envelope` if current."""
        if not self.needs_rewrap(envelope):
            return envelope
        return self.encrypt(self.decrypt(envelope, associated_data), associated_data)


def generate_key_spec(kid: str) -> str:
    """A new `kid:base64key` entry with a random 256-bit key, for tooling and local setup."""
    if not _KID.fullmatch(kid):
        raise KeyConfigError(f"key id must match {_KID.pattern}")
    return f"{kid}:{_b64encode(AESGCM.generate_key(bit_length=256))}"


def associated_data(purpose: Purpose, transaction_id: str) -> bytes:
    """The AAD that binds a ciphertext to what it holds and to its transaction."""
    return f"{purpose}:{transaction_id}".encode()


def _digit_bytes(digits: str) -> bytes:
    # Checked before encoding: a UnicodeEncodeError would carry the whole clear value.
    if not (digits.isascii() and digits.isdigit()):
        raise CardCryptoError("card data must be ASCII digits")
    return digits.encode("ascii")


def _open_digits(ring: KeyRing, sealed: str | bytes, aad: bytes) -> str:
    plaintext = ring.decrypt(Envelope.from_str(sealed), aad)
    try:
        digits = plaintext.decode("ascii")
    except UnicodeDecodeError:
        raise DecryptionError("decrypted card data is not digits") from None
    if not digits.isdigit():
        raise DecryptionError("decrypted card data is not digits")
    return digits


def encrypt_card_number(ring: KeyRing, card: CardNumber, transaction_id: str) -> str:
    """The card number sealed for `transaction_id`, as envelope text."""
    aad = associated_data("card_number", transaction_id)
    return ring.encrypt(_digit_bytes(card.reveal()), aad).to_str()


def decrypt_card_number(ring: KeyRing, envelope: str | bytes, transaction_id: str) -> CardNumber:
    """Open a card-number envelope sealed for `transaction_id` (any other id fails)."""
    return CardNumber(_open_digits(ring, envelope, associated_data("card_number", transaction_id)))


def encrypt_security_code(ring: KeyRing, code: SecurityCode, transaction_id: str) -> str:
    """The security code sealed for `transaction_id`, as envelope text."""
    aad = associated_data("security_code", transaction_id)
    return ring.encrypt(_digit_bytes(code.reveal()), aad).to_str()


def decrypt_security_code(
    ring: KeyRing, envelope: str | bytes, transaction_id: str
) -> SecurityCode:
    """Open a security-code envelope sealed for `transaction_id` (any other id fails)."""
    aad = associated_data("security_code", transaction_id)
    return SecurityCode(_open_digits(ring, envelope, aad))


def fingerprint(secret_key: bytes, card: CardNumber) -> str:
    """Keyed HMAC-SHA256 (hex) of the card number: stable per key, useless without it."""
    if not secret_key:
        raise KeyConfigError("fingerprint key is empty: set SECRET_KEY")
    message = _FINGERPRINT_DOMAIN + _digit_bytes(card.reveal())
    return hmac.new(secret_key, message, hashlib.sha256).hexdigest()
