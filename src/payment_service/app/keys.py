"""The secrets the roots parse once and hand down: the card-data key ring, the HMAC key."""

from __future__ import annotations

from payment_service.cards.crypto import KeyRing
from payment_service.config.settings import Settings
from payment_service.core.errors import KeyConfigError


def key_ring(settings: Settings) -> KeyRing:
    """The ring from `ENCRYPTION_KEY`; raises `KeyConfigError` when it is unset or malformed."""
    try:
        spec = settings.require_secret("encryption_key")
    except RuntimeError as exc:
        raise KeyConfigError(str(exc)) from None
    return KeyRing.parse(spec)
