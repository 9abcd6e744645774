"""Who holds which card key, decided once from the settings (docs/security.md).

* The API (`api_sealer`): the current public key only, from `CARD_PUBLIC_KEY_FILE` (followed
  through rotations) or `CARD_PUBLIC_KEY`. `refuse_private_keys` stops it from starting when its
  settings hold any private key or the legacy `ENCRYPTION_KEY`.
* The processor and the key tasks (`card_opener`): the private keys, from
  `CARD_PRIVATE_KEYS_DIR` or `CARD_PRIVATE_KEYS`, plus the legacy ring if `ENCRYPTION_KEY` is set.
* Both: `CARD_FINGERPRINT_KEY` (`fingerprint_key`). The API also `SECRET_KEY` for request hashes.

Missing or malformed keys raise `KeyConfigError` naming the variable; weak secrets are refused
in production by the settings and reported as warnings elsewhere (`warn_weak_secrets`).
"""

from __future__ import annotations

import logging

from payment_service.cards.crypto import CardOpener, CardSealer, legacy_ring
from payment_service.cards.fingerprint import FingerprintKey
from payment_service.cards.keydir import FileKeyProvider
from payment_service.cards.keys import (
    CardKeyProvider,
    PublicCardKey,
    StaticKeyProvider,
    parse_private_keys,
)
from payment_service.cards.public_key import PublicKeyFile, PublicKeySource, StaticPublicKey
from payment_service.config.settings import Settings
from payment_service.core.errors import KeyConfigError

log = logging.getLogger(__name__)

PRIVATE_KEY_SETTINGS = ("card_private_keys", "card_private_keys_dir", "encryption_key")


def refuse_private_keys(settings: Settings, process: str = "the API") -> None:
    """Encrypt-only processes must hold no way to decrypt card data."""
    held = [name.upper() for name in PRIVATE_KEY_SETTINGS if getattr(settings, name) is not None]
    if held:
        raise KeyConfigError(
            f"{process} must not hold private card keys, but its settings set "
            f"{', '.join(held)}: give them to the processor only (never in .stack/local.env "
            "or .env), and give this process CARD_PUBLIC_KEY_FILE or CARD_PUBLIC_KEY"
        )


def _required(settings: Settings, name: str) -> str:
    try:
        return settings.require_secret(name)  # type: ignore[arg-type]
    except RuntimeError as exc:
        raise KeyConfigError(str(exc)) from None


def fingerprint_key(settings: Settings) -> FingerprintKey:
    return FingerprintKey.parse(_required(settings, "card_fingerprint_key"))


def request_hash_key(settings: Settings) -> bytes:
    """`SECRET_KEY`, the HMAC key of Idempotency-Key request hashes."""
    return _required(settings, "secret_key").encode()


def public_key_source(settings: Settings) -> PublicKeySource:
    if settings.card_public_key_file is not None:
        return PublicKeyFile(settings.card_public_key_file)
    if settings.card_public_key:
        return StaticPublicKey(PublicCardKey.parse(settings.card_public_key))
    raise KeyConfigError(
        "CARD_PUBLIC_KEY_FILE (or CARD_PUBLIC_KEY) is not set: the API seals card data to the "
        "processor's public key (`payment-service keys export-public` prints it)"
    )


def api_sealer(settings: Settings) -> CardSealer:
    refuse_private_keys(settings)
    return CardSealer(public_key_source(settings))


def key_provider(settings: Settings) -> CardKeyProvider:
    directory, inline = settings.card_private_keys_dir, settings.card_private_keys
    if directory is not None and inline is not None:
        raise KeyConfigError("set CARD_PRIVATE_KEYS_DIR or CARD_PRIVATE_KEYS, not both")
    if directory is not None:
        return FileKeyProvider(directory)
    if inline is not None:
        return StaticKeyProvider(parse_private_keys(inline.get_secret_value()))
    raise KeyConfigError(
        "CARD_PRIVATE_KEYS_DIR (or CARD_PRIVATE_KEYS) is not set: the processor opens card "
        "data with its private keys (`payment-service cards keys init --dir DIR` makes one)"
    )


def card_opener(settings: Settings) -> CardOpener:
    legacy = settings.encryption_key.get_secret_value() if settings.encryption_key else None
    return CardOpener(key_provider(settings), legacy_ring(legacy))


def warn_weak_secrets(settings: Settings) -> None:
    """Outside production weak secrets are allowed, and said out loud."""
    for problem in settings.secret_problems():
        log.warning("weak secret (refused in production): %s", problem)
