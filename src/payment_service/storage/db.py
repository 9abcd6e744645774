"""Connections to PostgreSQL: the pool every process uses, with every timeout set explicitly.

asyncpg has no timeouts by default (DESIGN.md §8). Here: `connect_timeout_seconds` bounds opening
a connection, `command_timeout_seconds` bounds each call on the client side, and the server gets
`statement_timeout` (same bound, so the server stops work the client gave up on) and
`idle_in_transaction_session_timeout` (a client that dies inside a transaction cannot hold row
locks on a payment for long). `jsonb` columns are read and written as Python dicts.
"""

from __future__ import annotations

import json
from typing import Any, Final

import asyncpg
from pydantic import SecretStr

from payment_service.config.settings import DatabaseSettings
from payment_service.storage.errors import translated

APPLICATION_NAME: Final = "payment-service"
# A transaction idle this long while open is a bug or a dead client: the server ends it.
IDLE_IN_TRANSACTION_SECONDS: Final = 30.0


async def _init_connection(conn: asyncpg.Connection) -> None:
    """Per-connection setup: jsonb <-> dict (text codec, so no extra dependency)."""
    await conn.set_type_codec(
        "jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog", format="text"
    )


def _server_settings(
    statement_timeout_seconds: float, application_name: str = APPLICATION_NAME
) -> dict[str, str]:
    return {
        # Names the process in pg_stat_activity, and so in Datadog Database Monitoring.
        "application_name": application_name,
        "statement_timeout": str(int(statement_timeout_seconds * 1000)),
        "idle_in_transaction_session_timeout": str(int(IDLE_IN_TRANSACTION_SECONDS * 1000)),
        "timezone": "UTC",
    }


class BoundedPool(asyncpg.Pool):  # type: ignore[misc]
    """A pool whose every wait for a free connection is bounded (asyncpg's is not by default).

    `Pool.fetchrow` and friends acquire through `acquire()`, so they are bounded too; a caller
    that waits too long gets `TimeoutError`, which storage reports as `StorageUnavailable`.
    """

    acquire_timeout_seconds: float = 5.0

    def acquire(self, *, timeout: float | None = None) -> Any:
        return super().acquire(timeout=timeout or self.acquire_timeout_seconds)


async def create_pool(
    settings: DatabaseSettings, *, application_name: str = APPLICATION_NAME
) -> asyncpg.Pool:
    """Open the connection pool (fails fast, as `StorageUnavailable`, if PostgreSQL is down)."""
    with translated():
        pool = BoundedPool(
            settings.url.get_secret_value(),
            min_size=min(settings.pool_min_size, settings.pool_max_size),
            max_size=settings.pool_max_size,
            init_size=None,
            timeout=settings.connect_timeout_seconds,
            command_timeout=settings.command_timeout_seconds,
            server_settings=_server_settings(settings.command_timeout_seconds, application_name),
            init=_init_connection,
            # We keep no session state (no LISTEN, cursors or SET), so the default reset query
            # (four statements on every release) is pure overhead; the reconciler unlocks its
            # advisory lock itself.
            reset=_no_reset,
            connection_class=asyncpg.Connection,
            record_class=asyncpg.Record,
            max_queries=50_000,
            max_inactive_connection_lifetime=300.0,
            setup=None,
            loop=None,
            connect=None,
        )
        pool.acquire_timeout_seconds = settings.pool_acquire_timeout_seconds
        await pool
    return pool


async def _no_reset(conn: asyncpg.Connection) -> None:
    return None


async def connect(
    settings: DatabaseSettings,
    *,
    statement_timeout_seconds: float | None = None,
    url: SecretStr | None = None,
) -> asyncpg.Connection:
    """One connection outside the pool (migrations, CLI), optionally with a longer timeout and
    as another role (`url`, e.g. the owner's)."""
    timeout = statement_timeout_seconds or settings.command_timeout_seconds
    with translated():
        conn: asyncpg.Connection = await asyncpg.connect(
            dsn=(url or settings.url).get_secret_value(),
            timeout=settings.connect_timeout_seconds,
            command_timeout=timeout,
            server_settings=_server_settings(timeout),
        )
        await _init_connection(conn)
    return conn
