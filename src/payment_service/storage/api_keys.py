"""Merchant API keys: issue, authenticate, revoke. Only a SHA-256 of each key is stored.

A key reads `psk_<key_id>_<secret>`: `key_id` (12 lowercase letters and digits) finds the row,
`secret` (32 random bytes, URL-safe base64) proves possession. The hash is compared in constant
time. Keys are never logged; why a fast hash is enough here is in docs/storage.md.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string
from typing import Final

import asyncpg

from payment_service.config.settings import Settings
from payment_service.storage.db import connect
from payment_service.storage.errors import translated

PREFIX: Final = "psk"
KEY_ID_LENGTH: Final = 12
SECRET_BYTES: Final = 32
_KEY_ID_ALPHABET: Final = string.ascii_lowercase + string.digits
# last_used_at is bookkeeping, not a log: write it at most once a minute per key.
_TOUCH = """UPDATE api_keys SET last_used_at = now() WHERE key_id = $1
    AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')"""


def _hash(presented_key: str) -> bytes:
    # The whole key is hashed, so the key id is bound to its secret.
    return hashlib.sha256(presented_key.encode()).digest()


def _key_id(presented_key: str) -> str | None:
    """The key id of a well-formed key, else None (no detail: the key may be a typo'd secret)."""
    parts = presented_key.split("_", 2)
    if len(parts) != 3 or parts[0] != PREFIX or not parts[2]:
        return None
    key_id = parts[1]
    if len(key_id) != KEY_ID_LENGTH or any(c not in _KEY_ID_ALPHABET for c in key_id):
        return None
    return key_id


def new_key() -> tuple[str, str]:
    """A fresh (key_id, full key)."""
    key_id = "".join(secrets.choice(_KEY_ID_ALPHABET) for _ in range(KEY_ID_LENGTH))
    return key_id, f"{PREFIX}_{key_id}_{secrets.token_urlsafe(SECRET_BYTES)}"


async def create_api_key(
    pool: asyncpg.Pool | asyncpg.Connection, merchant_id: str, name: str
) -> str:
    """Issue a key for `merchant_id`; returns it in clear, the only time it exists in clear."""
    key_id, key = new_key()
    with translated():
        await pool.execute(
            "INSERT INTO api_keys (key_id, merchant_id, name, secret_hash) VALUES ($1, $2, $3, $4)",
            key_id,
            merchant_id,
            name,
            _hash(key),
        )
    return key


async def authenticate(pool: asyncpg.Pool, presented_key: str) -> str | None:
    """The merchant id the key belongs to, or None (malformed, unknown, wrong or revoked)."""
    key_id = _key_id(presented_key)
    if key_id is None:
        return None
    with translated():
        row = await pool.fetchrow(
            "SELECT merchant_id, secret_hash, revoked_at FROM api_keys WHERE key_id = $1", key_id
        )
        if row is None or not hmac.compare_digest(bytes(row["secret_hash"]), _hash(presented_key)):
            return None
        if row["revoked_at"] is not None:
            return None
        await pool.execute(_TOUCH, key_id)
    merchant_id: str = row["merchant_id"]
    return merchant_id


class PgMerchantKeys:
    """The `MerchantKeys` port over the api_keys table."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def merchant_for_key(self, presented_key: str) -> str | None:
        return await authenticate(self._pool, presented_key)


async def revoke(pool: asyncpg.Pool, key_id: str) -> bool:
    """Revoke a key by id; False when there is no such key or it was already revoked."""
    with translated():
        status: str = await pool.execute(
            "UPDATE api_keys SET revoked_at = now() WHERE key_id = $1 AND revoked_at IS NULL",
            key_id,
        )
    return status == "UPDATE 1"


async def create_key_cli(settings: Settings, merchant_id: str, name: str) -> str:
    """For `payment-service keys create`: one connection, one key, closed again."""
    conn = await connect(settings.database)
    try:
        return await create_api_key(conn, merchant_id, name)
    finally:
        with translated():
            await conn.close()
