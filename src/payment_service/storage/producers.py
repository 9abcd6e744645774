"""The producer registry in PostgreSQL (`producers`), and its insert-only `producer_audit`.

A producer is registered once (`register`) and may be revoked once (`revoke`); the table's
trigger refuses any other change, and a revoked name stays taken (docs/kafka.md says why). Each
change writes its `producer_audit` row in the same transaction. `producer()` is the processor's
read (`ProducerDirectory`), cached by `streams/authorize.py` for a few seconds.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any, Final, cast

import asyncpg

from payment_service.core.producers import CommandKind, ProducerRecord
from payment_service.storage.errors import translated

_INSERT: Final = """
INSERT INTO producers (name, merchants, commands, public_key, created_by)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (name) DO NOTHING
RETURNING *"""
_SELECT: Final = "SELECT * FROM producers WHERE name = $1"
_LIST: Final = "SELECT * FROM producers ORDER BY name"
_REVOKE: Final = """
UPDATE producers SET revoked_at = now(), revoked_by = $2
WHERE name = $1 AND revoked_at IS NULL
RETURNING *"""
_AUDIT: Final = """
INSERT INTO producer_audit (event_id, producer, action, actor, details)
VALUES ($1, $2, $3, $4, $5)"""


class ProducerExists(Exception):
    """The name is registered already (or was, and is revoked: names are never reused)."""


def _record(row: Any) -> ProducerRecord:
    return ProducerRecord(
        name=row["name"],
        merchants=frozenset(row["merchants"]),
        commands=frozenset(cast(Iterable[CommandKind], row["commands"])),
        public_key=row["public_key"],
        created_at=row["created_at"],
        revoked_at=row["revoked_at"],
    )


class PgProducers:
    """The `ProducerDirectory` port, plus the operators' registration and revocation."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def producer(self, name: str) -> ProducerRecord | None:
        with translated():
            row = await self._pool.fetchrow(_SELECT, name)
        return _record(row) if row is not None else None

    async def all(self) -> list[ProducerRecord]:
        with translated():
            rows = await self._pool.fetch(_LIST)
        return [_record(row) for row in rows]

    async def register(
        self,
        name: str,
        *,
        merchants: Iterable[str],
        commands: Iterable[CommandKind],
        public_key: str,
        actor: str,
    ) -> ProducerRecord:
        """Insert the producer and its audit row; `ProducerExists` when the name is taken."""
        merchant_list, command_list = sorted(set(merchants)), sorted(set(commands))
        with translated():
            async with self._pool.acquire() as conn, conn.transaction():
                row = await conn.fetchrow(
                    _INSERT, name, merchant_list, command_list, public_key, actor
                )
                if row is None:
                    raise ProducerExists(f"producer {name} exists (or existed): pick a new name")
                details = {"merchants": merchant_list, "commands": command_list}
                await conn.execute(
                    _AUDIT, uuid.uuid4(), name, "producer.registered", actor, details
                )
        return _record(row)

    async def revoke(self, name: str, *, actor: str) -> ProducerRecord | None:
        """Revoke the producer (audited); None when it is unknown or revoked already."""
        with translated():
            async with self._pool.acquire() as conn, conn.transaction():
                row = await conn.fetchrow(_REVOKE, name, actor)
                if row is None:
                    return None
                await conn.execute(_AUDIT, uuid.uuid4(), name, "producer.revoked", actor, {})
        return _record(row)

    async def audit_trail(self, name: str) -> list[dict[str, Any]]:
        """The producer's audit rows, oldest first (for operators and tests)."""
        with translated():
            rows = await self._pool.fetch(
                "SELECT action, actor, details, created_at FROM producer_audit"
                " WHERE producer = $1 ORDER BY id",
                name,
            )
        return [dict(row.items()) for row in rows]
