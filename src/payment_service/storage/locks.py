"""A PostgreSQL advisory lock as the `ExclusiveLock` port: one holder across all processes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg


class PgAdvisoryLock:
    """A session-level advisory lock on its own pooled connection, tried, never waited for."""

    def __init__(self, pool: asyncpg.Pool, lock_id: int) -> None:
        self._pool = pool
        self._lock_id = lock_id

    @asynccontextmanager
    async def held(self) -> AsyncIterator[bool]:
        """Yields True while this process holds the lock, False when another one does."""
        async with self._pool.acquire() as conn:
            if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", self._lock_id):
                yield False
                return
            try:
                yield True
            finally:
                # The pool does not reset sessions (storage/db.py): the lock is released here.
                await conn.execute("SELECT pg_advisory_unlock($1)", self._lock_id)
