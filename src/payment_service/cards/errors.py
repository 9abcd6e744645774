"""Errors raised by card-data handling (encryption, keys, the security-code vault).

    CardDataError
    ├── CardCryptoError          encryption or decryption could not be done
    │   ├── KeyConfigError       ENCRYPTION_KEY / SECRET_KEY missing or malformed (fix the config)
    │   ├── MalformedEnvelope    the stored ciphertext is not a valid envelope
    │   ├── UnknownKeyId         the envelope names a key id that is not in the ring
    │   └── DecryptionError      authentication failed: wrong key, wrong transaction id, tampered
    └── VaultUnavailable         Redis failed or was too slow (transient: retry later)

Messages never contain card data, key bytes or ciphertext; a key id is not secret and may appear.
Only `VaultUnavailable` is worth retrying; the others need an operator or mean the data is bad.
"""

from __future__ import annotations


class CardDataError(Exception):
    """Root of every card-data error."""


class CardCryptoError(CardDataError):
    """Encryption or decryption of card data failed."""


class KeyConfigError(CardCryptoError):
    """The key configuration is missing or malformed."""


class MalformedEnvelope(CardCryptoError):
    """A stored envelope does not parse (wrong shape, version, encoding or sizes)."""


class UnknownKeyId(CardCryptoError):
    """The envelope was sealed with a key id the ring does not hold."""

    def __init__(self, kid: str) -> None:
        super().__init__(f"no data key with id {kid!r} in ENCRYPTION_KEY")
        self.kid = kid


class DecryptionError(CardCryptoError):
    """The ciphertext failed authentication under its key and associated data."""


class VaultUnavailable(CardDataError):
    """The security-code vault (Redis) failed or timed out; the operation may be retried."""
