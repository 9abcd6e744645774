"""One Redis round trip admits a payment request: rate limit, Idempotency-Key lease, security code.

A Lua script (atomic in Redis) does, in order, each step only when the one before let it through:

1. counts the merchant's one-minute window (`guards.RateLimiter`'s key and TTL); over the limit:
   429, nothing else written;
2. with an Idempotency-Key, takes its lease (`SET NX PX`, `idempotency.IdempotencyLocks`' key and
   lease time); held by another request: 409, nothing else written;
3. reads the key's "accepted" marker; when there is one, the request is a replay of a payment
   Kafka already acknowledged: the security code is not written;
4. stores the sealed security code (`SET NX EX`, sealed, keyed and timed by `cards.vault`).

The "accepted" marker is still written only after Kafka's acknowledgement
(`AcceptedMarkers.put`), and the lease is renewed and released by `IdempotencyLocks.held`. A
code stored for a request that then produces no command (a replay found in PostgreSQL, a card on
file refused) is the caller's to discard (`Admission.code_stored`).

The keys are in different Redis Cluster slots: on a cluster this script needs hash tags on them
(docs/scaling.md).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Final

from redis.asyncio import Redis
from redis.exceptions import RedisError

from payment_service.cards.vault import SecurityCodeVault
from payment_service.core.errors import VaultUnavailable
from payment_service.core.masking import SecurityCode
from payment_service.http.guards import RateLimiter
from payment_service.http.idempotency import AcceptedMarkers, IdempotencyLocks

RATE_LIMITED: Final = 0
KEY_IN_USE: Final = 1
MARKED: Final = 2
ADMITTED: Final = 3

# KEYS: rate window, lock, marker, code. ARGV: limit, window TTL, lock token ('' = no key),
# lease ms, sealed code ('' = none), code TTL.
_ADMIT: Final = """
local count = redis.call('incr', KEYS[1])
redis.call('expire', KEYS[1], ARGV[2])
if count > tonumber(ARGV[1]) then return {0} end
if ARGV[3] ~= '' then
  if not redis.call('set', KEYS[2], ARGV[3], 'NX', 'PX', ARGV[4]) then return {1} end
  local marker = redis.call('get', KEYS[3])
  if marker then return {2, marker} end
end
if ARGV[5] ~= '' and redis.call('set', KEYS[4], ARGV[5], 'EX', ARGV[6], 'NX') then
  return {3, 1}
end
return {3, 0}
"""


@dataclass
class Admission:
    """What the script did: the lease taken (when a key was given), the marker read, whether
    the code was stored by this request."""

    transaction_id: str
    lock: str | None
    token: str
    marker: bytes | None
    code_stored: bool


class PaymentAdmission:
    """Runs the admission script for `POST /api/v1/payments/process`."""

    def __init__(
        self, redis: Redis, limiter: RateLimiter, vault: SecurityCodeVault, markers: AcceptedMarkers
    ) -> None:
        self._script = redis.register_script(_ADMIT)
        self._limiter = limiter
        self._vault = vault
        self._markers = markers

    async def admit(
        self,
        merchant_id: str,
        idempotency_key: str | None,
        transaction_id: str,
        code: SecurityCode | None,
    ) -> Admission:
        """Steps 1-4 of the module docstring; raises `RateLimited` or `IdempotencyKeyInUse`."""
        now = time.time()
        lock = (
            None
            if idempotency_key is None
            else IdempotencyLocks.lock_key(merchant_id, key=idempotency_key)
        )
        token = IdempotencyLocks.new_token() if lock is not None else ""
        sealed = None if code is None else self._vault.seal(transaction_id, code)
        keys = [
            self._limiter.window_key(merchant_id, now),
            lock or "",
            self._markers.key(transaction_id),
            sealed.key if sealed is not None else "",
        ]
        args: list[str | int] = [
            self._limiter.limit,
            RateLimiter.WINDOW_TTL_SECONDS,
            token,
            IdempotencyLocks.lease_ms(),
            sealed.value if sealed is not None else "",
            sealed.ttl_seconds if sealed is not None else 0,
        ]
        try:
            async with asyncio.timeout(self._vault.deadline_seconds):
                outcome = await self._script(keys=keys, args=args)
        except (RedisError, TimeoutError) as exc:
            raise VaultUnavailable(f"redis admission failed: {type(exc).__name__}") from exc
        step = int(outcome[0])
        if step == RATE_LIMITED:
            raise self._limiter.refusal(now)
        if step == KEY_IN_USE:
            raise IdempotencyLocks.in_use()
        marker = outcome[1] if step == MARKED else None
        stored = step == ADMITTED and int(outcome[1]) == 1
        return Admission(transaction_id, lock, token, marker, stored)
