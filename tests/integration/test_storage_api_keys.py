"""Merchant API keys against a real PostgreSQL: only hashes at rest, revocation is final."""

from __future__ import annotations

import re
from collections.abc import Callable

import asyncpg
import pytest

from payment_service.config.settings import DatabaseSettings, Settings
from payment_service.storage.api_keys import authenticate, create_api_key, create_key_cli, revoke
from tests.fixtures.postgres import new_id

pytestmark = pytest.mark.integration
KEY_FORMAT = re.compile(r"^psk_([a-z0-9]{12})_([A-Za-z0-9_-]{43})$")


async def test_a_new_key_authenticates_its_merchant_and_only_its_hash_is_stored(
    pg_pool: asyncpg.Pool,
) -> None:
    merchant = new_id("merchant")
    key = await create_api_key(pg_pool, merchant, "server")
    match = KEY_FORMAT.match(key)
    assert match is not None
    assert await authenticate(pg_pool, key) == merchant
    row = await pg_pool.fetchrow(
        "SELECT k.*, k::text AS whole FROM api_keys k WHERE key_id = $1", match.group(1)
    )
    assert (row["merchant_id"], row["name"]) == (merchant, "server")
    assert row["last_used_at"] is not None
    assert match.group(2) not in row["whole"]
    assert len(row["secret_hash"]) == 32


@pytest.mark.parametrize(
    "tamper",
    [
        lambda k: k[:-1] + ("A" if k[-1] != "A" else "B"),  # wrong secret
        lambda k: "psk_" + "z" * 12 + k[16:],  # unknown key id
        lambda k: k.replace("psk_", "sk_"),  # wrong prefix
        lambda k: k[:20],  # truncated
        lambda k: "",
        lambda k: "psk__",
    ],
)
async def test_a_wrong_or_malformed_key_is_refused(
    pg_pool: asyncpg.Pool, tamper: Callable[[str], str]
) -> None:
    key = await create_api_key(pg_pool, new_id("merchant"), "server")
    assert await authenticate(pg_pool, tamper(key)) is None


async def test_a_revoked_key_is_refused(pg_pool: asyncpg.Pool) -> None:
    key = await create_api_key(pg_pool, new_id("merchant"), "old")
    key_id = key.split("_")[1]
    assert await revoke(pg_pool, key_id)
    assert await authenticate(pg_pool, key) is None
    assert not await revoke(pg_pool, key_id)
    assert not await revoke(pg_pool, "nosuchkey000")


async def test_the_cli_helper_creates_a_working_key(
    pg_pool: asyncpg.Pool, database_settings: DatabaseSettings
) -> None:
    merchant = new_id("merchant")
    key = await create_key_cli(Settings(database=database_settings), merchant, "cli")
    assert await authenticate(pg_pool, key) == merchant
