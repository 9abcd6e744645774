"""Audit rows in commit order, past a cursor, and the cursor itself (the relay's outbox read).

Ids are taken at insert, so a row with a lower id can commit after one with a higher id: reading
by id alone skips it. Each row carries the id of the transaction that wrote it (`xid`, 0007);
`after` returns only rows of transactions below the snapshot's xmin, which can no longer commit
(nothing older is still open), in `(xid, id)` order. So a row never appears behind the cursor
after the cursor has passed it: no row is skipped, none is read twice by an advancing cursor.
A transaction left open holds the reader back (not forward): it waits, and never skips.
"""

from __future__ import annotations

from typing import Final

import asyncpg

from payment_service.core.audit_ports import BEGINNING, AuditRow, Lag, Position
from payment_service.storage.errors import translated

_COLUMNS: Final = (
    "id, xid::text AS xid, event_id, transaction_id, refund_id, merchant_id, action, from_status,"
    " to_status, amount_minor, currency, correlation_id, actor, details, created_at"
)
# Rows of ended transactions only: none older than these can still commit. ORDER BY names
# `audit_log.xid`: a bare `xid` would be the text output column, and "999" sorts after "1000".
SETTLED: Final = "xid < pg_snapshot_xmin(pg_current_snapshot())"
_AFTER: Final = (
    f"SELECT {_COLUMNS} FROM audit_log"  # noqa: S608 - constant fragments only
    f" WHERE (xid, id) > ($1::text::xid8, $2) AND {SETTLED} ORDER BY audit_log.xid, id LIMIT $3"
)
# Rows past the cursor (bounded count) and the age of the oldest: the relay's lag.
_BEHIND: Final = """
SELECT count(*) AS rows, extract(epoch FROM now() - min(created_at))::float8 AS seconds
FROM (SELECT created_at FROM audit_log WHERE (xid, id) > ($1::text::xid8, $2)
      ORDER BY xid, id LIMIT $3) pending"""
_END: Final = (
    f"SELECT xid::text AS xid, id FROM audit_log WHERE {SETTLED}"  # noqa: S608
    " ORDER BY audit_log.xid DESC, id DESC LIMIT 1"
)
# The rows written before 0007 carry xid 0: the last of them is where the upgrade happened.
_UPGRADE: Final = "SELECT COALESCE(max(id), 0) FROM audit_log WHERE xid = '0'"
_CURSOR: Final = "SELECT xid::text AS xid, id FROM audit_relay_cursor WHERE name = $1"
# Never backwards: a relay that lost its lock unseen cannot undo its successor's progress.
_SET_CURSOR: Final = """
INSERT INTO audit_relay_cursor (name, xid, id) VALUES ($1, $2::text::xid8, $3)
ON CONFLICT (name) DO UPDATE SET xid = EXCLUDED.xid, id = EXCLUDED.id, updated_at = now()
WHERE (audit_relay_cursor.xid, audit_relay_cursor.id) < (EXCLUDED.xid, EXCLUDED.id)"""


def _row(record: asyncpg.Record) -> AuditRow:
    values = dict(record)
    values["xid"] = int(values["xid"])
    return AuditRow(**values)


class PgAuditFeed:
    """The `AuditFeed` port: audit rows in commit order, and named cursors over them."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def after(self, position: Position, limit: int) -> list[AuditRow]:
        """Up to `limit` rows past `position`, of ended transactions only, in commit order."""
        xid, audit_id = position
        with translated():
            return [_row(r) for r in await self._pool.fetch(_AFTER, str(xid), audit_id, limit)]

    async def behind(self, position: Position, bound: int) -> Lag:
        """How many rows (at most `bound`) lie past `position`, and the oldest one's age."""
        xid, audit_id = position
        with translated():
            r = await self._pool.fetchrow(_BEHIND, str(xid), audit_id, bound)
        return Lag(rows=int(r["rows"]), seconds=max(0.0, float(r["seconds"] or 0.0)))

    async def end(self) -> Position:
        """The position of the newest row of an ended transaction (the beginning if none)."""
        with translated():
            r = await self._pool.fetchrow(_END)
        return (int(r["xid"]), int(r["id"])) if r else BEGINNING

    async def upgrade(self) -> Position:
        """The position just past the rows written before 0007 (the beginning on a new database)."""
        with translated():
            last: int = await self._pool.fetchval(_UPGRADE)
        return (0, int(last))

    async def cursor(self, name: str) -> Position | None:
        with translated():
            r = await self._pool.fetchrow(_CURSOR, name)
        return (int(r["xid"]), int(r["id"])) if r else None

    async def save(self, name: str, position: Position) -> None:
        xid, audit_id = position
        with translated():
            await self._pool.execute(_SET_CURSOR, name, str(xid), audit_id)
