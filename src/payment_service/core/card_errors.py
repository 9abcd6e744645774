"""The card-data branch of the error tree drawn in `core.errors` (and re-exported there).

Each error's `failure_code` is what a payment that meets it fails with, before any bank call.
Messages never include card data, key bytes or ciphertext.
"""

from __future__ import annotations

from typing import ClassVar


class CardDataError(Exception):
    """Root of every card-data error. Only `VaultUnavailable` is worth retrying."""

    failure_code: ClassVar[str] = "card_data_unreadable"


class CardCryptoError(CardDataError):
    """Encryption or decryption of card data failed."""


class KeyConfigError(CardCryptoError):
    """The key configuration is missing or malformed."""


class MalformedEnvelope(CardCryptoError):
    """A stored envelope does not parse (wrong shape, version, encoding or sizes)."""


class UnknownKeyId(CardCryptoError):
    """The envelope names a key id not held here (retired, or never ours); ids are not secret."""

    failure_code = "card_key_unknown"

    def __init__(self, kid: str, *, where: str = "the card keys") -> None:
        super().__init__(f"no key with id {kid!r} in {where}")
        self.kid = kid


class DecryptionError(CardCryptoError):
    """The ciphertext failed authentication under its key and associated data."""


class EnvelopeMismatch(DecryptionError):
    """The envelope says it was sealed for another purpose or subject, and does not open here."""

    failure_code = "card_data_mismatch"


class VaultUnavailable(CardDataError):
    """The security-code vault (Redis) failed or timed out; the operation may be retried."""
