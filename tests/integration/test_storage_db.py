"""The pool: explicit timeouts on the server side, jsonb as dicts, errors translated once."""

from __future__ import annotations

import socket

import asyncpg
import pytest
from pydantic import SecretStr

from payment_service.config.settings import DatabaseSettings
from payment_service.core.errors import IntegrityViolation, StorageError, StorageUnavailable
from payment_service.storage.db import create_pool
from payment_service.storage.errors import translate, translated

pytestmark = pytest.mark.integration


async def test_the_pool_sets_server_timeouts_and_decodes_jsonb(pg_pool: asyncpg.Pool) -> None:
    async with pg_pool.acquire() as conn:
        assert await conn.fetchval("SHOW statement_timeout") == "5s"
        assert await conn.fetchval("SHOW idle_in_transaction_session_timeout") == "30s"
        assert await conn.fetchval("SELECT $1::jsonb", {"a": "1"}) == {"a": "1"}


async def test_a_statement_over_the_timeout_is_cancelled_as_unavailable(
    database_settings: DatabaseSettings,
) -> None:
    settings = database_settings.model_copy(
        update={"command_timeout_seconds": 0.2, "pool_min_size": 1, "pool_max_size": 1}
    )
    pool = await create_pool(settings)
    try:
        with pytest.raises(StorageUnavailable), translated():
            await pool.execute("SELECT pg_sleep(2)")
    finally:
        await pool.close()


async def test_an_unreachable_database_is_unavailable_quickly() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings = DatabaseSettings(
        url=SecretStr(f"postgresql://nobody:secret@127.0.0.1:{port}/none"),
        connect_timeout_seconds=1,
    )
    with pytest.raises(StorageUnavailable) as caught:
        await create_pool(settings)
    assert "secret" not in str(caught.value)


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (asyncpg.SerializationError("x"), StorageUnavailable),
        (asyncpg.DeadlockDetectedError("x"), StorageUnavailable),
        (asyncpg.TooManyConnectionsError("x"), StorageUnavailable),
        (asyncpg.AdminShutdownError("x"), StorageUnavailable),
        (asyncpg.QueryCanceledError("x"), StorageUnavailable),
        (ConnectionRefusedError(), StorageUnavailable),
        (TimeoutError(), StorageUnavailable),
        (asyncpg.UniqueViolationError("x"), IntegrityViolation),
        (asyncpg.CheckViolationError("x"), IntegrityViolation),
        (asyncpg.UndefinedTableError("x"), StorageError),
    ],
)
def test_asyncpg_errors_are_translated_once(error: Exception, kind: type[StorageError]) -> None:
    translated_error = translate(error)
    assert type(translated_error) is kind
    with pytest.raises(kind) as caught, translated():
        raise error
    assert caught.value.__cause__ is error


async def test_waiting_for_a_pooled_connection_is_bounded(postgres_url: str) -> None:
    from payment_service.storage.payments import PgPaymentRepository

    settings = DatabaseSettings(
        url=SecretStr(postgres_url), pool_min_size=1, pool_max_size=1,
        pool_acquire_timeout_seconds=0.3,
    )  # fmt: skip
    pool = await create_pool(settings)
    try:
        async with pool.acquire():  # the only connection is busy
            with pytest.raises(StorageUnavailable):
                await PgPaymentRepository(pool).get_payment("anything")
    finally:
        await pool.close()
