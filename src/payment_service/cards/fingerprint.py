"""Card fingerprints: a keyed HMAC-SHA256 under its own versioned key, `CARD_FINGERPRINT_KEY`.

The key is written `"<version>:<base64 of at least 32 bytes>"` (e.g. `fpk1:...`), and every
fingerprint names the version that made it: `"fpk1:<64 hex>"`, so fingerprints from another key
(or the legacy unversioned `HMAC(SECRET_KEY, PAN)` hex) never compare equal by accident. A
fingerprint is stable per key and useless without it: PANs are guessable, so never a plain hash.

Whoever holds the clear number computes it: the API when a card is stored, the processor after
opening a command's envelope, so a producer needs no secret at all.
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import re
from typing import Final

from payment_service.cards.envelope import b64decode
from payment_service.config.secrets import weakness
from payment_service.core.errors import KeyConfigError
from payment_service.core.masking import CardNumber

_VERSION: Final = re.compile(r"[a-z][a-z0-9]{0,15}")
_DOMAIN: Final = b"payment-service/card-fingerprint/v2\x00"


class FingerprintKey:
    """The fingerprint key and its version; its repr shows the version only."""

    __slots__ = ("_key", "version")

    def __init__(self, version: str, key: bytes) -> None:
        if not _VERSION.fullmatch(version):
            raise KeyConfigError(f"CARD_FINGERPRINT_KEY version must match {_VERSION.pattern}")
        problem = weakness(key)
        if problem:
            raise KeyConfigError(f"CARD_FINGERPRINT_KEY {problem}")
        self.version = version
        self._key = key

    @classmethod
    def parse(cls, spec: str) -> FingerprintKey:
        version, sep, encoded = spec.strip().partition(":")
        if not sep:
            raise KeyConfigError("CARD_FINGERPRINT_KEY: expected 'version:base64key' (fpk1:...)")
        try:
            key = b64decode(encoded.strip())
        except (binascii.Error, UnicodeEncodeError):
            raise KeyConfigError("CARD_FINGERPRINT_KEY: key is not valid base64") from None
        return cls(version, key)

    def fingerprint(self, card: CardNumber) -> str:
        """`"<version>:<hex HMAC-SHA256>"` of the card number."""
        digits = card.reveal()
        if not (digits.isascii() and digits.isdigit()):
            raise KeyConfigError("a fingerprint is made of a card number's digits")
        digest = hmac.new(self._key, _DOMAIN + digits.encode("ascii"), hashlib.sha256)
        return f"{self.version}:{digest.hexdigest()}"

    def __repr__(self) -> str:
        return f"FingerprintKey(version={self.version!r})"
