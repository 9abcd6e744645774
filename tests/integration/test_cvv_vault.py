"""The security-code vault against a real Redis: encrypted at rest, TTL, take, discard, timeouts.

Uses `REDIS_URL` when set, else starts a throwaway `redis-server` (no persistence) for the session.
"""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator

import pytest
from pydantic import SecretStr
from redis.asyncio import Redis

from payment_service.cards.vault import SecurityCodeVault, vault_key
from payment_service.config.settings import RedisSettings
from payment_service.core.errors import EnvelopeMismatch, KeyConfigError, VaultUnavailable
from payment_service.core.masking import SecurityCode
from payment_service.ops.redis_client import redis_client
from tests.fixtures.custody import Custody
from tests.fixtures.stack import StackInfo

pytestmark = pytest.mark.integration

TTL_SECONDS = 30


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="session")
def redis_url(stack: StackInfo) -> str:
    """The stack's real Redis."""
    return stack.redis_url


@pytest.fixture
def redis_settings(redis_url: str) -> RedisSettings:
    return RedisSettings(url=SecretStr(redis_url), cvv_ttl_seconds=TTL_SECONDS)


@pytest.fixture
async def redis(redis_settings: RedisSettings) -> AsyncIterator[Redis]:
    client = redis_client(redis_settings)
    yield client
    await client.aclose()


@pytest.fixture
def vault(redis: Redis, custody: Custody) -> SecurityCodeVault:
    return custody.vault(redis, ttl_seconds=TTL_SECONDS)


@pytest.fixture
def custody() -> Custody:
    return Custody()


def _txid() -> str:
    return str(uuid.uuid4())


async def test_stored_encrypted_with_ttl(vault: SecurityCodeVault, redis: Redis) -> None:
    txid, code = _txid(), "9876"
    assert await vault.put(txid, SecurityCode(code)) is True

    raw = await redis.get(vault_key(txid))
    assert isinstance(raw, bytes)
    assert code.encode() not in raw
    assert raw.startswith(b'{"v":2,"alg":"HPKE-X25519-HKDF-SHA256-AES-256-GCM","kid":"ck_')
    ttl = await redis.ttl(vault_key(txid))
    assert 0 < ttl <= TTL_SECONDS


async def test_take_discard_lifecycle(vault: SecurityCodeVault) -> None:
    txid = _txid()
    await vault.put(txid, SecurityCode("123"))

    assert await vault.take(txid) == SecurityCode("123")
    assert await vault.take(txid) == SecurityCode("123")  # reading does not consume it
    assert await vault.discard(txid) is True
    assert await vault.take(txid) is None
    assert await vault.discard(txid) is False


async def test_put_keeps_the_first_code(vault: SecurityCodeVault) -> None:
    txid = _txid()
    assert await vault.put(txid, SecurityCode("111")) is True
    assert await vault.put(txid, SecurityCode("222")) is False
    assert await vault.take(txid) == SecurityCode("111")


async def test_take_missing_is_none(vault: SecurityCodeVault) -> None:
    assert await vault.take(_txid()) is None


async def test_envelope_moved_to_another_transaction_fails(
    vault: SecurityCodeVault, redis: Redis
) -> None:
    source, target = _txid(), _txid()
    await vault.put(source, SecurityCode("123"))
    await redis.set(vault_key(target), await redis.get(vault_key(source)) or b"")
    with pytest.raises(EnvelopeMismatch):
        await vault.take(target)


async def test_the_api_side_cannot_read_a_code_back(redis: Redis, custody: Custody) -> None:
    api_side = SecurityCodeVault(redis, sealer=custody.sealer, ttl_seconds=30, deadline_seconds=5)
    txid = _txid()
    await api_side.put(txid, SecurityCode("123"))
    with pytest.raises(KeyConfigError):
        await api_side.take(txid)


async def test_rewrap_keeps_the_ttl_and_skips_a_changed_value(
    redis: Redis, custody: Custody
) -> None:
    from payment_service.cards.crypto import CardOpener
    from payment_service.cards.envelope import key_id_of
    from payment_service.cards.keys import CardKeyPair, StaticKeyProvider

    txid, other = _txid(), _txid()
    old = custody.vault(redis, ttl_seconds=TTL_SECONDS)
    await old.put(txid, SecurityCode("123"))
    await old.put(other, SecurityCode("456"))
    new_pair = CardKeyPair.generate()
    rotated = SecurityCodeVault(
        redis,
        opener=CardOpener(StaticKeyProvider([new_pair, custody.pair])),
        ttl_seconds=TTL_SECONDS,
        deadline_seconds=5,
    )
    sealed = await redis.get(vault_key(txid))
    assert isinstance(sealed, bytes)
    assert await rotated.rewrap(txid, sealed) is True
    after = await redis.get(vault_key(txid))
    assert isinstance(after, bytes)
    assert key_id_of(after) == new_pair.kid
    assert 0 < await redis.ttl(vault_key(txid)) <= TTL_SECONDS
    assert await rotated.take(txid) == SecurityCode("123")
    assert await rotated.rewrap(txid, after) is None  # current already
    # The value changed between the read and the swap: left alone.
    stale = await redis.get(vault_key(other))
    assert isinstance(stale, bytes)
    await redis.set(vault_key(other), b"replaced", keepttl=True)
    assert await rotated.rewrap(other, stale) is False
    assert await redis.get(vault_key(other)) == b"replaced"
    found = {t async for t, _ in rotated.sealed_codes(100)}
    assert {txid, other} <= found


async def test_silent_server_times_out() -> None:
    """A server that accepts connections but never answers: each call ends by its deadline."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)  # never accepted: the kernel completes the handshake, nobody answers
        port = listener.getsockname()[1]
        settings = RedisSettings(
            url=SecretStr(f"redis://127.0.0.1:{port}/0"),
            socket_timeout_seconds=0.2,
            connect_timeout_seconds=0.2,
        )
        client = redis_client(settings)
        vault = SecurityCodeVault.from_settings(client, settings, opener=Custody().opener)
        try:
            started = asyncio.get_running_loop().time()
            with pytest.raises(VaultUnavailable):
                await vault.take(_txid())
            assert asyncio.get_running_loop().time() - started < 1.0
        finally:
            await client.aclose()
