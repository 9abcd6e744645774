"""A PostgreSQL advisory lock as the `ExclusiveLock` port: one holder across all processes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg

from payment_service.storage.errors import translated


class PgAdvisoryLock:
    """A session-level advisory lock on its own pooled connection, tried, never waited for."""

    def __init__(self, pool: asyncpg.Pool, lock_id: int) -> None:
        self._pool = pool
        self._lock_id = lock_id

    @asynccontextmanager
    async def held(self) -> AsyncIterator[bool]:
        """Yields True while this process holds the lock, False when another one does."""
        with translated():
            conn = await self._pool.acquire()
        clean = False  # the connection is known to hold no lock of ours
        try:
            with translated():
                got = await conn.fetchval("SELECT pg_try_advisory_lock($1)", self._lock_id)
            if not got:
                clean = True
                yield False
                return
            try:
                yield True
            finally:
                # The pool does not reset sessions (storage/db.py): the lock is released here.
                with translated():
                    await conn.execute("SELECT pg_advisory_unlock($1)", self._lock_id)
                clean = True
        finally:
            if not clean:
                # A timeout or cancel may have come after the server took (or kept) the lock:
                # closing the session is the only sure release; a pooled one would keep it.
                conn.terminate()
            with translated():
                await self._pool.release(conn)
