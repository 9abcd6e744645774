"""Signing secrets at rest: AES-256-GCM under a key derived from `SECRET_KEY`.

The dispatcher must sign with the secret itself, so a hash would not do. The key is
HKDF-SHA256(SECRET_KEY, info "payment-service/webhook-secret/v1"), separate from the key's other
use (request hashes); the endpoint id is the associated data, so an envelope copied onto another
endpoint does not open. Format: `v1:` + base64url(nonce || ciphertext). Rotating `SECRET_KEY`
makes the stored secrets unreadable: endpoints must then be registered again (docs/webhooks.md).
"""

from __future__ import annotations

import base64
import os
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_INFO: Final = b"payment-service/webhook-secret/v1"
_PREFIX: Final = "v1:"
_NONCE: Final = 12


class SecretUnreadable(ValueError):
    """An envelope that does not open with this key and endpoint id."""


class SecretBox:
    """The `SigningSecrets` port."""

    def __init__(self, secret_key: bytes) -> None:
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(secret_key)
        self._aead = AESGCM(key)

    def seal(self, secret: str, endpoint_id: str) -> str:
        nonce = os.urandom(_NONCE)
        sealed = self._aead.encrypt(nonce, secret.encode(), endpoint_id.encode())
        return _PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode()

    def open(self, envelope: str, endpoint_id: str) -> str:
        if not envelope.startswith(_PREFIX):
            raise SecretUnreadable("unknown signing-secret envelope format")
        try:
            raw = base64.urlsafe_b64decode(envelope[len(_PREFIX) :])
            plain = self._aead.decrypt(raw[:_NONCE], raw[_NONCE:], endpoint_id.encode())
        except (InvalidTag, ValueError) as exc:
            raise SecretUnreadable("the signing secret does not open with this key") from exc
        return plain.decode()
