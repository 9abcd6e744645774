"""Merchant-facing events in PostgreSQL: read from `audit_log`, stored in `events`, listed.

The dispatcher reads audit rows past its cursor in commit order (`audit_after`, as the audit
relay does: storage/audit_feed.py), turns those that name an event into `NewEvent`s and records
them with `record`: the events (an existing id is left as it is), a pending delivery for every
endpoint of the merchant subscribed to the type, and the new cursor, in one transaction. So a
crash between any two steps only repeats work that then changes nothing. The events API pages
newest first on `(created_at, event_id)`.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any, Final

import asyncpg

from payment_service.core.audit_ports import BEGINNING, Position
from payment_service.core.webhooks import AuditEntry, EventRecord, NewEvent
from payment_service.storage.audit_feed import SETTLED
from payment_service.storage.errors import translated

CURSOR_NAME: Final = "dispatcher"
_AUDIT_COLUMNS: Final = (
    "id, event_id, transaction_id, refund_id, merchant_id, action, to_status, created_at,"
    " xid::text AS xid"
)
# Commit order (storage/audit_feed.py): no row is skipped when a lower id commits later.
_AUDIT_AFTER: Final = (
    f"SELECT {_AUDIT_COLUMNS} FROM audit_log"  # noqa: S608 - constant fragments only
    f" WHERE (xid, id) > ($1::text::xid8, $2) AND {SETTLED} ORDER BY audit_log.xid, id LIMIT $3"
)
_LAST_AUDIT: Final = "SELECT max(id) FROM audit_log"
_CURSOR: Final = "SELECT audit_id, xid::text AS xid FROM webhook_cursor WHERE name = $1"
_SET_CURSOR: Final = """
INSERT INTO webhook_cursor (name, audit_id, xid) VALUES ($1, $2, $3::text::xid8)
ON CONFLICT (name) DO UPDATE SET audit_id = EXCLUDED.audit_id, xid = EXCLUDED.xid,
    updated_at = now()
WHERE webhook_cursor.xid IS NULL
   OR (webhook_cursor.xid, webhook_cursor.audit_id) <= (EXCLUDED.xid, EXCLUDED.audit_id)"""
# A cursor by id alone (saved before 0007, or the first start's newest row) becomes a position:
# first moved back over the rows written shortly before it that may have committed after it...
_RESCAN_FROM: Final = """
SELECT COALESCE(MIN(id) - 1, $1) FROM audit_log
WHERE id > $1 - 100000 AND id <= $1
  AND created_at > (SELECT created_at FROM audit_log WHERE id = $1) - $2::interval"""
# ... then placed before every row past that id, committed or still to commit (xid >= xmin).
_POSITION_OF: Final = f"""
SELECT (SELECT min(xid)::text FROM audit_log WHERE id > $1 AND {SETTLED}) AS first,
       pg_snapshot_xmin(pg_current_snapshot())::text AS xmin"""  # noqa: S608
_RECORD: Final = """
WITH new AS (
    INSERT INTO events (event_id, merchant_id, type, object_id, data, created_at)
    SELECT e, m, t, o, d::jsonb, c
    FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::timestamptz[])
        AS u(e, m, t, o, d, c)
    ON CONFLICT (event_id) DO NOTHING
    RETURNING event_id, merchant_id, type, created_at
)
INSERT INTO webhook_deliveries (endpoint_id, event_id, status, next_attempt_at, give_up_at)
SELECT w.endpoint_id, new.event_id, 'pending', now(), now() + $7::interval
FROM new JOIN webhook_endpoints w
  ON w.merchant_id = new.merchant_id AND w.deleted_at IS NULL AND w.created_at <= new.created_at
 AND ('*' = ANY(w.enabled_events) OR new.type = ANY(w.enabled_events))
ON CONFLICT DO NOTHING"""
_GET: Final = """SELECT * FROM events WHERE event_id = $1 AND merchant_id = $2
    AND created_at > now() - $3::interval"""
_PURGE: Final = """
DELETE FROM events WHERE event_id IN (
    SELECT event_id FROM events WHERE created_at < now() - $1::interval LIMIT $2)"""


def _event(row: asyncpg.Record) -> EventRecord:
    return EventRecord(
        event_id=row["event_id"],
        merchant_id=row["merchant_id"],
        type=row["type"],
        object_id=row["object_id"],
        data=row["data"],
        created_at=row["created_at"],
    )


def _audit(row: asyncpg.Record) -> AuditEntry:
    values = dict(row)
    values["xid"] = int(values["xid"])
    return AuditEntry(**values)


def _page_sql(newer: bool) -> str:
    """Keyset page: past the cursor newest first, or (ending_before) newer than it oldest first."""
    op, order = (">", "ASC") if newer else ("<", "DESC")
    where = "merchant_id = $1 AND created_at > now() - $2::interval"
    where += " AND ($3::text IS NULL OR type = $3)"
    where += f" AND ($4::timestamptz IS NULL OR (created_at, event_id) {op} ($4, $5))"
    return (
        f"SELECT * FROM events WHERE {where}"  # noqa: S608 - constant fragments only
        f" ORDER BY created_at {order}, event_id {order} LIMIT $6"
    )


class PgEvents:
    """The `EventStore` port: audit rows in, events out."""

    def __init__(self, pool: asyncpg.Pool, *, retention: dt.timedelta) -> None:
        self._pool = pool
        self._retention = retention

    async def cursor(self, settle: dt.timedelta) -> Position:
        """Where to read audit rows from after a start: the saved position; a cursor saved by id
        alone (and the first start, at the newest row) is converted, moved back to cover rows
        written just before it and committed later."""
        with translated():
            saved = await self._pool.fetchrow(_CURSOR, CURSOR_NAME)
            if saved is not None and saved["xid"] is not None:
                return int(saved["xid"]), int(saved["audit_id"])
            # The first start: events begin now, not with the whole history of audit_log.
            audit_id = saved["audit_id"] if saved else await self._pool.fetchval(_LAST_AUDIT)
            if audit_id is None:
                return BEGINNING
            after: int = await self._pool.fetchval(_RESCAN_FROM, audit_id, settle)
            r = await self._pool.fetchrow(_POSITION_OF, after)
        # Before the first committed row past `after`, and before any still to commit.
        xmin = int(r["xmin"]) - 1
        return min(int(r["first"]), xmin) if r["first"] else xmin, after

    async def audit_after(self, position: Position, limit: int) -> list[AuditEntry]:
        xid, audit_id = position
        with translated():
            found = await self._pool.fetch(_AUDIT_AFTER, str(xid), audit_id, limit)
        return [_audit(r) for r in found]

    async def record(self, events: list[NewEvent], cursor: Position, give_up: dt.timedelta) -> None:
        """Store the events, their pending deliveries and the cursor, in one transaction."""
        columns: list[list[Any]] = [[], [], [], [], [], []]
        for e in events:
            values = (e.event_id, e.merchant_id, e.type, e.object_id, json.dumps(e.data))
            for column, value in zip(columns, (*values, e.created_at), strict=True):
                column.append(value)
        with translated():
            async with self._pool.acquire() as conn, conn.transaction():
                if events:
                    await conn.execute(_RECORD, *columns, give_up)
                await conn.execute(_SET_CURSOR, CURSOR_NAME, cursor[1], str(cursor[0]))

    async def get(self, event_id: str, *, merchant_id: str) -> EventRecord | None:
        with translated():
            row = await self._pool.fetchrow(_GET, event_id, merchant_id, self._retention)
        return _event(row) if row else None

    async def page(
        self,
        merchant_id: str,
        *,
        limit: int,
        starting_after: EventRecord | None = None,
        ending_before: EventRecord | None = None,
        event_type: str | None = None,
    ) -> tuple[list[EventRecord], bool]:
        """Up to `limit` events newest first, after or before a cursor event, and has_more."""
        cursor = ending_before or starting_after
        sql = _page_sql(newer=ending_before is not None)
        args = (
            merchant_id, self._retention, event_type,
            cursor.created_at if cursor else None, cursor.event_id if cursor else None, limit + 1,
        )  # fmt: skip
        with translated():
            rows = [_event(r) for r in await self._pool.fetch(sql, *args)]
        has_more = len(rows) > limit
        rows = rows[:limit]
        if ending_before is not None:
            rows.reverse()
        return rows, has_more

    async def purge(self, batch: int = 1000) -> int:
        """Delete events past their retention (their deliveries go with them); how many."""
        with translated():
            status: str = await self._pool.execute(_PURGE, self._retention, batch)
        return int(status.split()[-1])
