"""The security-code vault: where a CVV waits, sealed, for the bank call (DESIGN.md §5).

The API seals the code to the processor's public key (`CardSealer`, purpose `security_code`,
bound to the transaction id) and keeps it under `cvv:{transaction_id}` with a short TTL; it can
never read it back. The processor `take`s it with its private keys (`CardOpener`) without
deleting it, so a redelivered request can still reach the bank; `discard` deletes it once the
bank has answered, after which no replay can use it. Redis never sees the clear code.

`rewrap` and `key_ids` serve the rewrap job and `cards keys retire`: a value is re-sealed under
the current key by a Lua compare-and-set that keeps its TTL (`SET ... KEEPTTL`), so a code that
was taken, discarded or replaced meanwhile is left alone.

Every call is bounded: the client (`ops.redis_client`, handed in) has socket and connect timeouts
and one quick retry, and each vault operation runs under a deadline of connect + socket timeout.
Redis failures and timeouts surface as `VaultUnavailable` (retryable); a bad envelope surfaces as
a `CardCryptoError`. `SecurityCodeVault` is the core's `SecurityCodeStore` port.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Mapping
from dataclasses import dataclass
from typing import Final, TypeVar

from redis.asyncio import Redis
from redis.exceptions import RedisError

from payment_service.cards.crypto import CardOpener, CardSealer
from payment_service.config.settings import RedisSettings
from payment_service.core.errors import KeyConfigError, VaultUnavailable
from payment_service.core.masking import SecurityCode

_T = TypeVar("_T")
PREFIX: Final = "cvv:"
# Replace the value only if it is still the one we read, keeping its TTL.
_SWAP: Final = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then "
    "redis.call('set', KEYS[1], ARGV[2], 'KEEPTTL') return 1 end return 0"
)


def vault_key(transaction_id: str) -> str:
    """The Redis key of a transaction's security code."""
    return f"{PREFIX}{transaction_id}"


@dataclass(frozen=True)
class SealedCode:
    """A security code sealed for one transaction, with where and how long it is kept."""

    key: str
    value: str
    ttl_seconds: int


class SecurityCodeVault:
    """Sealed, short-lived storage of security codes in Redis.

    The API's vault has a sealer and no opener (put, discard); the processor's has an opener
    (take, discard, rewrap).
    """

    def __init__(
        self,
        redis: Redis,
        *,
        sealer: CardSealer | None = None,
        opener: CardOpener | None = None,
        ttl_seconds: int,
        deadline_seconds: float,
    ) -> None:
        self._redis = redis
        self._sealer = sealer
        self._opener = opener
        self._ttl = ttl_seconds
        self._deadline = deadline_seconds
        self._swap = redis.register_script(_SWAP)

    @classmethod
    def from_settings(
        cls,
        redis: Redis,
        settings: RedisSettings,
        *,
        sealer: CardSealer | None = None,
        opener: CardOpener | None = None,
    ) -> SecurityCodeVault:
        """A vault with the configured TTL and a deadline of connect + socket timeout."""
        deadline = settings.connect_timeout_seconds + settings.socket_timeout_seconds
        return cls(
            redis,
            sealer=sealer,
            opener=opener,
            ttl_seconds=settings.cvv_ttl_seconds,
            deadline_seconds=deadline,
        )

    async def _call(self, operation: str, awaitable: Awaitable[_T]) -> _T:
        try:
            async with asyncio.timeout(self._deadline):
                return await awaitable
        except (RedisError, TimeoutError) as exc:
            raise VaultUnavailable(f"redis {operation} failed: {type(exc).__name__}") from exc

    def _need_opener(self) -> CardOpener:
        if self._opener is None:
            raise KeyConfigError("this process holds no private card key: it cannot open codes")
        return self._opener

    async def put(
        self,
        transaction_id: str,
        code: SecurityCode,
        *,
        also: Mapping[str, tuple[str, int]] | None = None,
    ) -> bool:
        """Store the code sealed, with the TTL; False if one is already stored (kept as is).

        `also` ({key: (value, ttl seconds)}) is written in the same round trip, for callers
        that record something alongside the code.
        """
        sealed = self.seal(transaction_id, code)
        pipe = self._redis.pipeline(transaction=False)
        pipe.set(sealed.key, sealed.value, ex=sealed.ttl_seconds, nx=True)
        for key, (value, ttl) in (also or {}).items():
            pipe.set(key, value, ex=ttl)
        stored, *_ = await self._call("SET", pipe.execute())
        return bool(stored)

    def seal(self, transaction_id: str, code: SecurityCode) -> SealedCode:
        """The code sealed as `put` stores it, for a caller that writes it in its own script."""
        if self._sealer is None:
            raise KeyConfigError("this vault has no card public key to seal with")
        sealed = self._sealer.seal_security_code(code, transaction_id)
        return SealedCode(vault_key(transaction_id), sealed, self._ttl)

    @property
    def deadline_seconds(self) -> float:
        return self._deadline

    async def take(self, transaction_id: str) -> SecurityCode | None:
        """The stored code, or None if it expired or was discarded. Does not delete it."""
        opener = self._need_opener()
        sealed = await self._call("GET", self._redis.get(vault_key(transaction_id)))
        if sealed is None:
            return None
        return opener.open_security_code(sealed, transaction_id)

    async def discard(self, transaction_id: str) -> bool:
        """Delete the code once the bank has answered; True if there was one."""
        deleted = await self._call("DEL", self._redis.delete(vault_key(transaction_id)))
        return bool(deleted)

    async def sealed_codes(self, batch: int) -> AsyncIterator[tuple[str, bytes]]:
        """Every stored (transaction id, sealed value), by SCAN: codes come and go meanwhile."""
        async for key in self._redis.scan_iter(match=f"{PREFIX}*", count=batch):
            raw = await self._call("GET", self._redis.get(key))
            if raw is not None:
                name = key.decode() if isinstance(key, bytes) else str(key)
                yield name.removeprefix(PREFIX), raw if isinstance(raw, bytes) else raw.encode()

    async def rewrap(self, transaction_id: str, sealed: bytes) -> bool | None:
        """Re-seal one code under the current key, keeping its TTL.

        None when it was current already; True when swapped; False when the value changed
        meanwhile (taken and discarded, or replaced): nothing to do. Raises `CardCryptoError`
        when it cannot be opened (e.g. sealed under a retired key).
        """
        resealed = self._need_opener().rewrap(sealed, "security_code", transaction_id)
        if resealed is None:
            return None
        swap = self._swap(keys=[vault_key(transaction_id)], args=[sealed, resealed])
        swapped = await self._call("EVALSHA", swap)
        return bool(swapped)
