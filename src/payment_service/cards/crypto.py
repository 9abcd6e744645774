"""Sealing and opening card data: the only module that decrypts card numbers and security codes.

`CardSealer` holds only a public key: it seals (HPKE, see `envelope`) and can never open. It is
what the API and any other producer have. `CardOpener` holds the private keys, through a
`CardKeyProvider`: it opens, and re-seals for the rewrap job. Only the processor (and the rewrap
and retire tasks, run with its settings) builds one.

Legacy v1 envelopes (AES-256-GCM under `ENCRYPTION_KEY`) are opened by `LegacyKeyRing`, which
cannot seal: old security codes in Redis and old commands on Kafka still work, and rewrap
converts the stored ones, after which `ENCRYPTION_KEY` is removed.

Opening maps every failure onto the card-data errors, each with its `failure_code`:
`UnknownKeyId` (card_key_unknown), `EnvelopeMismatch` (card_data_mismatch: the envelope says it
was sealed for another transaction or card on file), and otherwise `DecryptionError` or
`MalformedEnvelope` (card_data_unreadable). HPKE cannot tell a wrong binding from tampering by
itself; only an envelope that carries the binding hints is reported as a mismatch.
"""

from __future__ import annotations

from collections.abc import Iterable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from payment_service.cards import envelope
from payment_service.cards.envelope import LegacySealed, Purpose, Sealed
from payment_service.cards.keys import SUITE, CardKeyProvider, PublicCardKey, parse_key_entries
from payment_service.cards.public_key import PublicKeySource
from payment_service.core.errors import (
    CardCryptoError,
    DecryptionError,
    EnvelopeMismatch,
    UnknownKeyId,
)
from payment_service.core.masking import CardNumber, SecurityCode


def _digit_bytes(digits: str) -> bytes:
    # Checked before encoding: a UnicodeEncodeError would carry the whole clear value.
    if not (digits.isascii() and digits.isdigit()):
        raise CardCryptoError("card data must be ASCII digits")
    return digits.encode("ascii")


def _digits(plaintext: bytes) -> str:
    try:
        digits = plaintext.decode("ascii")
    except UnicodeDecodeError:
        raise DecryptionError("decrypted card data is not digits") from None
    if not digits.isdigit():
        raise DecryptionError("decrypted card data is not digits")
    return digits


class CardSealer:
    """Encrypt-only: seals card data to the current public key."""

    def __init__(self, source: PublicKeySource) -> None:
        self._source = source

    def public_key(self) -> PublicCardKey:
        return self._source.current()

    def seal(self, digits: str, purpose: Purpose, subject: str) -> str:
        """`digits` sealed for (`purpose`, `subject`), as v2 envelope text with its hints."""
        key = self._source.current()
        sealed = SUITE.encrypt(
            _digit_bytes(digits), key.public_key(), info=envelope.info(purpose, subject)
        )
        return Sealed(key.kid, sealed, purpose, subject).to_str()

    def seal_card_number(self, card: CardNumber, transaction_id: str) -> str:
        return self.seal(card.reveal(), "card_number", transaction_id)

    def seal_security_code(self, code: SecurityCode, transaction_id: str) -> str:
        return self.seal(code.reveal(), "security_code", transaction_id)

    def seal_card_on_file(self, card: CardNumber, payment_method_id: str) -> str:
        return self.seal(card.reveal(), "card_on_file", payment_method_id)


class LegacyKeyRing:
    """Decrypt-only AES-256-GCM keys of the v1 format, from `ENCRYPTION_KEY` ("kid:b64,...")."""

    __slots__ = ("_aeads",)

    def __init__(self, keys: Iterable[tuple[str, bytes]]) -> None:
        self._aeads = {kid: AESGCM(key) for kid, key in keys}

    @classmethod
    def parse(cls, spec: str) -> LegacyKeyRing:
        # Same "kid:base64(32 bytes)" entries as the card keys, so one parser checks both.
        return cls(parse_key_entries(spec, where="ENCRYPTION_KEY"))

    @property
    def kids(self) -> tuple[str, ...]:
        return tuple(self._aeads)

    def open(self, sealed: LegacySealed, purpose: Purpose, subject: str) -> bytes:
        aead = self._aeads.get(sealed.kid)
        if aead is None:
            raise UnknownKeyId(sealed.kid, where="ENCRYPTION_KEY (legacy v1 keys)")
        aad = envelope.legacy_associated_data(purpose, subject)
        try:
            return aead.decrypt(sealed.nonce, sealed.ciphertext, aad)
        except InvalidTag:
            raise DecryptionError(
                "legacy card data failed authentication (wrong key or binding, or tampered)"
            ) from None

    def __repr__(self) -> str:
        return f"LegacyKeyRing(kids={self.kids!r})"


class CardOpener:
    """Opens envelopes with the processor's private keys (and legacy v1 ones); re-seals them."""

    def __init__(self, keys: CardKeyProvider, legacy: LegacyKeyRing | None = None) -> None:
        self._keys = keys
        self._legacy = legacy

    @property
    def keys(self) -> CardKeyProvider:
        return self._keys

    def open(self, text: str | bytes, purpose: Purpose, subject: str) -> str:
        """The digits sealed in `text` for (`purpose`, `subject`); a `CardCryptoError` if not."""
        sealed = envelope.parse(text)
        if isinstance(sealed, LegacySealed):
            if self._legacy is None:
                raise UnknownKeyId(sealed.kid, where="ENCRYPTION_KEY (legacy v1 keys: not set)")
            return _digits(self._legacy.open(sealed, purpose, subject))
        private = self._keys.private_key(sealed.kid)
        if private is None:
            raise UnknownKeyId(sealed.kid)
        try:
            plaintext = SUITE.decrypt(
                sealed.ciphertext, private, info=envelope.info(purpose, subject)
            )
        except InvalidTag:
            if sealed.declares_other_binding(purpose, subject):
                raise EnvelopeMismatch(
                    f"card data was sealed for another {_subject_kind(sealed.purpose)}"
                ) from None
            raise DecryptionError(
                "card data failed authentication (sealed to another key or binding, or tampered)"
            ) from None
        return _digits(plaintext)

    def open_card_number(self, text: str, transaction_id: str) -> CardNumber:
        """The `CardOpener` port: a command's card number, sealed for its transaction."""
        return CardNumber(self.open(text, "card_number", transaction_id))

    def open_security_code(self, text: str | bytes, transaction_id: str) -> SecurityCode:
        return SecurityCode(self.open(text, "security_code", transaction_id))

    def open_card_on_file(self, text: str, payment_method_id: str) -> CardNumber:
        """The `CardOpener` port: a card on file's number, sealed for its `pm_` id."""
        return CardNumber(self.open(text, "card_on_file", payment_method_id))

    def needs_rewrap(self, text: str | bytes) -> bool:
        """True unless `text` is a v2 envelope under the current key."""
        sealed = envelope.parse(text)
        return not isinstance(sealed, Sealed) or sealed.kid != self._keys.current_kid()

    def rewrap(self, text: str | bytes, purpose: Purpose, subject: str) -> str | None:
        """`text` re-sealed under the current key (v1 converted to v2); None if already current."""
        if not self.needs_rewrap(text):
            return None
        digits = self.open(text, purpose, subject)
        current = self._keys.current_public()
        sealed = SUITE.encrypt(
            _digit_bytes(digits), current.public_key(), info=envelope.info(purpose, subject)
        )
        return Sealed(current.kid, sealed, purpose, subject).to_str()


def _subject_kind(purpose: str | None) -> str:
    return "card on file" if purpose == "card_on_file" else "transaction or purpose"


def legacy_ring(spec: str | None) -> LegacyKeyRing | None:
    """The legacy ring from `ENCRYPTION_KEY`, or None when it is unset or empty."""
    if spec is None or not spec.strip():
        return None
    return LegacyKeyRing.parse(spec)
