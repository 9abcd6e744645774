"""Card keys: X25519 key pairs with ids, the public key as published, and the provider port.

Exactly one key is current: producers (the API, other teams) seal to its public key. Every key a
provider holds decrypts, so envelopes sealed before a rotation still open until the rewrap job
has re-sealed them and the old key is retired.

`CardKeyProvider` is the seam a KMS plugs into (docs/security.md): the processor asks it for the
current key id and for the private key of an id. `StaticKeyProvider` (from `CARD_PRIVATE_KEYS`)
and `keydir.FileKeyProvider` (from `CARD_PRIVATE_KEYS_DIR`) are the implementations.
"""

from __future__ import annotations

import binascii
import datetime as dt
import json
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final, Protocol

from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from payment_service.cards.envelope import ALG, KID, b64decode, b64encode
from payment_service.core.errors import KeyConfigError

SUITE: Final = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM)
KEY_BYTES: Final = 32


def new_kid() -> str:
    """A fresh key id: `ck_<date>_<6 hex>` (sortable by day, unique in practice)."""
    return f"ck_{dt.datetime.now(dt.UTC):%Y%m%d}_{secrets.token_hex(3)}"


def _check_kid(kid: str, where: str) -> str:
    if not KID.fullmatch(kid):
        raise KeyConfigError(f"{where}: key id must match {KID.pattern}")
    return kid


def _key_bytes(encoded: str, where: str) -> bytes:
    try:
        raw = b64decode(encoded.strip())
    except (binascii.Error, UnicodeEncodeError):
        raise KeyConfigError(f"{where}: key is not valid base64") from None
    if len(raw) != KEY_BYTES:
        raise KeyConfigError(f"{where}: key must decode to {KEY_BYTES} bytes, not {len(raw)}")
    return raw


def _timestamp(value: object) -> dt.datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise KeyConfigError("created_at must be an ISO 8601 string")
    try:
        return dt.datetime.fromisoformat(value)
    except ValueError:
        raise KeyConfigError("created_at must be an ISO 8601 string") from None


@dataclass(frozen=True)
class PublicCardKey:
    """The published half of a key pair: what producers seal card data to. Not secret."""

    kid: str
    public_bytes: bytes
    created_at: dt.datetime | None = None

    def public_key(self) -> X25519PublicKey:
        return X25519PublicKey.from_public_bytes(self.public_bytes)

    def to_dict(self) -> dict[str, Any]:
        """`{kid, alg, public_key (standard base64 of the raw 32 bytes), created_at}`."""
        created = self.created_at.isoformat() if self.created_at else None
        return {
            "kid": self.kid,
            "alg": ALG,
            "public_key": b64encode(self.public_bytes),
            "created_at": created,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"

    @classmethod
    def parse(cls, text: str, *, where: str = "CARD_PUBLIC_KEY") -> PublicCardKey:
        """The exported JSON (`keys export-public`), or `kid:base64`."""
        text = text.strip()
        if not text.startswith("{"):
            kid, sep, encoded = text.partition(":")
            if not sep:
                raise KeyConfigError(f"{where}: expected the exported JSON or 'kid:base64'")
            return cls(_check_kid(kid, where), _key_bytes(encoded, where))
        try:
            data = json.loads(text)
        except ValueError:
            raise KeyConfigError(f"{where}: not valid JSON") from None
        if not isinstance(data, dict) or not isinstance(data.get("public_key"), str):
            raise KeyConfigError(f"{where}: expected an object with kid and public_key")
        if data.get("alg", ALG) != ALG:
            raise KeyConfigError(f"{where}: unsupported algorithm (expected {ALG})")
        named = data.get("kid")
        if not isinstance(named, str):
            raise KeyConfigError(f"{where}: kid is missing")
        return cls(
            _check_kid(named, where),
            _key_bytes(data["public_key"], where),
            _timestamp(data.get("created_at")),
        )


class CardKeyPair:
    """A private key with its id; its repr never shows key material."""

    __slots__ = ("_private", "created_at", "kid")

    def __init__(
        self, kid: str, private: X25519PrivateKey, created_at: dt.datetime | None = None
    ) -> None:
        self.kid = _check_kid(kid, "card key")
        self._private = private
        self.created_at = created_at

    @classmethod
    def generate(cls, kid: str | None = None) -> CardKeyPair:
        return cls(kid or new_kid(), X25519PrivateKey.generate(), dt.datetime.now(dt.UTC))

    @classmethod
    def from_b64(
        cls, kid: str, encoded: str, created_at: dt.datetime | None = None, *, where: str
    ) -> CardKeyPair:
        raw = _key_bytes(encoded, where)
        return cls(_check_kid(kid, where), X25519PrivateKey.from_private_bytes(raw), created_at)

    @property
    def private_key(self) -> X25519PrivateKey:
        return self._private

    @property
    def public(self) -> PublicCardKey:
        raw = self._private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        return PublicCardKey(self.kid, raw, self.created_at)

    def private_b64(self) -> str:
        """The raw private key, base64: only for writing it to its 0600 file or a secret store."""
        raw = self._private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        return b64encode(raw)

    def __repr__(self) -> str:
        return f"CardKeyPair(kid={self.kid!r})"


def parse_key_entries(spec: str, *, where: str) -> list[tuple[str, bytes]]:
    """`"kid1:base64[,kid2:base64...]"` as (kid, 32 bytes) pairs, in order. Errors name the
    entry's position, never its text."""
    if not spec.strip():
        raise KeyConfigError(f"{where} is empty")
    entries: list[tuple[str, bytes]] = []
    for index, entry in enumerate(spec.split(","), start=1):
        kid, sep, encoded = entry.strip().partition(":")
        here = f"{where} entry {index}"
        if not sep or not kid or not encoded:
            raise KeyConfigError(f"{here}: expected 'kid:base64key'")
        entries.append((_check_kid(kid, here), _key_bytes(encoded, here)))
    if len({kid for kid, _ in entries}) != len(entries):
        raise KeyConfigError(f"{where}: a key id appears twice")
    return entries


def parse_private_keys(spec: str, *, where: str = "CARD_PRIVATE_KEYS") -> list[CardKeyPair]:
    """`CARD_PRIVATE_KEYS`: X25519 private keys as `"kid:base64,..."`; the first is current."""
    return [
        CardKeyPair(kid, X25519PrivateKey.from_private_bytes(raw))
        for kid, raw in parse_key_entries(spec, where=where)
    ]


class CardKeyProvider(Protocol):
    """Where the processor's private keys come from: files, the environment, or a KMS."""

    def current_kid(self) -> str:
        """The id of the key producers seal to now."""
        ...

    def current_public(self) -> PublicCardKey: ...

    def private_key(self, kid: str) -> X25519PrivateKey | None:
        """The private key of `kid`, or None when it is not held (never was, or retired)."""
        ...

    def kids(self) -> tuple[str, ...]:
        """Every key id held, the current one first."""
        ...


class StaticKeyProvider:
    """A fixed set of key pairs (from `CARD_PRIVATE_KEYS`, or tests); the first is current."""

    def __init__(self, pairs: Iterable[CardKeyPair]) -> None:
        self._pairs: dict[str, CardKeyPair] = {}
        for pair in pairs:
            if pair.kid in self._pairs:
                raise KeyConfigError(f"duplicate card key id {pair.kid!r}")
            self._pairs[pair.kid] = pair
        if not self._pairs:
            raise KeyConfigError("no card private key configured")
        self._current = next(iter(self._pairs))

    def current_kid(self) -> str:
        return self._current

    def current_public(self) -> PublicCardKey:
        return self._pairs[self._current].public

    def private_key(self, kid: str) -> X25519PrivateKey | None:
        pair = self._pairs.get(kid)
        return pair.private_key if pair else None

    def kids(self) -> tuple[str, ...]:
        return tuple(self._pairs)

    def __repr__(self) -> str:
        return f"StaticKeyProvider(kids={self.kids()!r})"
