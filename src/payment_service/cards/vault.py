"""The security-code vault: where a CVV waits, encrypted, for the bank call (DESIGN.md §5).

The code is sealed by `crypto.encrypt_security_code` (AES-GCM, bound to the transaction id and to
its purpose) and kept under `cvv:{transaction_id}` with a short TTL. `take` reads without
deleting, so a redelivered request can still reach the bank; `discard` deletes once the bank has
answered, after which no replay can use the code. Redis never sees the clear code.

Every call is bounded: the client (`ops.redis_client`, handed in) has socket and connect timeouts
and one quick retry, and each vault operation runs under a deadline of connect + socket timeout.
Redis failures and timeouts surface as `VaultUnavailable` (retryable); a bad envelope surfaces as
a `CardCryptoError`. `SecurityCodeVault` is the core's `SecurityCodeStore` port.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Mapping
from typing import TypeVar

from redis.asyncio import Redis
from redis.exceptions import RedisError

from payment_service.cards.crypto import KeyRing, decrypt_security_code, encrypt_security_code
from payment_service.config.settings import RedisSettings
from payment_service.core.errors import VaultUnavailable
from payment_service.core.masking import SecurityCode

_T = TypeVar("_T")


def vault_key(transaction_id: str) -> str:
    """The Redis key of a transaction's security code."""
    return f"cvv:{transaction_id}"


class SecurityCodeVault:
    """Encrypted, short-lived storage of security codes in Redis."""

    def __init__(
        self, redis: Redis, ring: KeyRing, *, ttl_seconds: int, deadline_seconds: float
    ) -> None:
        self._redis = redis
        self._ring = ring
        self._ttl = ttl_seconds
        self._deadline = deadline_seconds

    @classmethod
    def from_settings(
        cls, redis: Redis, ring: KeyRing, settings: RedisSettings
    ) -> SecurityCodeVault:
        """A vault with the configured TTL and a deadline of connect + socket timeout."""
        deadline = settings.connect_timeout_seconds + settings.socket_timeout_seconds
        return cls(redis, ring, ttl_seconds=settings.cvv_ttl_seconds, deadline_seconds=deadline)

    async def _call(self, operation: str, awaitable: Awaitable[_T]) -> _T:
        try:
            async with asyncio.timeout(self._deadline):
                return await awaitable
        except (RedisError, TimeoutError) as exc:
            raise VaultUnavailable(f"redis {operation} failed: {type(exc).__name__}") from exc

    async def put(
        self,
        transaction_id: str,
        code: SecurityCode,
        *,
        also: Mapping[str, tuple[str, int]] | None = None,
    ) -> bool:
        """Store the code encrypted with the TTL; False if one is already stored (kept as is).

        `also` ({key: (value, ttl seconds)}) is written in the same round trip, for callers
        that record something alongside the code.
        """
        sealed = encrypt_security_code(self._ring, code, transaction_id)
        pipe = self._redis.pipeline(transaction=False)
        pipe.set(vault_key(transaction_id), sealed, ex=self._ttl, nx=True)
        for key, (value, ttl) in (also or {}).items():
            pipe.set(key, value, ex=ttl)
        stored, *_ = await self._call("SET", pipe.execute())
        return bool(stored)

    async def take(self, transaction_id: str) -> SecurityCode | None:
        """The stored code, or None if it expired or was discarded. Does not delete it."""
        sealed = await self._call("GET", self._redis.get(vault_key(transaction_id)))
        if sealed is None:
            return None
        return decrypt_security_code(self._ring, sealed, transaction_id)

    async def discard(self, transaction_id: str) -> bool:
        """Delete the code once the bank has answered; True if there was one."""
        deleted = await self._call("DEL", self._redis.delete(vault_key(transaction_id)))
        return bool(deleted)
