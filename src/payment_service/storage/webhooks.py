"""Webhook endpoints and their deliveries in PostgreSQL (`webhook_endpoints`, `webhook_deliveries`).

Every read the API makes is merchant-scoped: another merchant's endpoint or event reads as
missing (404). Deleting an endpoint is soft (its delivery log stays readable by nobody, its
pending deliveries stop). The dispatcher asks for endpoints with due deliveries (one row per
endpoint, oldest due first, leaving out those it is serving) and records each attempt.
"""

from __future__ import annotations

import datetime as dt
from typing import Final

import asyncpg

from payment_service.core.webhooks import DeliveryRecord, DueDelivery, EndpointRecord, EventRecord
from payment_service.storage.errors import translated

_INSERT: Final = """
INSERT INTO webhook_endpoints (endpoint_id, merchant_id, url, enabled_events, description,
    secret_envelope) VALUES ($1, $2, $3, $4, $5, $6) RETURNING *"""
_LIVE: Final = "deleted_at IS NULL"
_GET: Final = (
    f"SELECT * FROM webhook_endpoints WHERE endpoint_id = $1 AND merchant_id = $2 AND {_LIVE}"  # noqa: S608
)
_LIST: Final = f"""SELECT * FROM webhook_endpoints WHERE merchant_id = $1 AND {_LIVE}
    ORDER BY created_at DESC, endpoint_id DESC LIMIT $2"""  # noqa: S608
_COUNT: Final = f"SELECT count(*) FROM webhook_endpoints WHERE merchant_id = $1 AND {_LIVE}"  # noqa: S608
_DELETE: Final = f"""UPDATE webhook_endpoints SET deleted_at = now()
    WHERE endpoint_id = $1 AND merchant_id = $2 AND {_LIVE} RETURNING *"""  # noqa: S608
_STOP_PENDING: Final = """UPDATE webhook_deliveries SET status = 'failed', next_attempt_at = NULL,
    last_error = 'endpoint deleted' WHERE endpoint_id = $1 AND status = 'pending'"""
_DELIVERIES: Final = """
SELECT * FROM webhook_deliveries WHERE endpoint_id = $1
  AND ($3::timestamptz IS NULL OR (created_at, event_id) < ($3, $4))
ORDER BY created_at DESC, event_id DESC LIMIT $2"""
_CURSOR_DELIVERY: Final = (
    "SELECT created_at, event_id FROM webhook_deliveries WHERE endpoint_id = $1 AND event_id = $2"
)
# A redelivery: every live endpoint of the merchant subscribed to the event's type, due now,
# with a fresh 3-day horizon (a delivery that succeeded or gave up becomes pending again).
_REDELIVER: Final = """
INSERT INTO webhook_deliveries AS d (endpoint_id, event_id, status, next_attempt_at, give_up_at)
SELECT w.endpoint_id, e.event_id, 'pending', now(), now() + $3::interval
FROM events e JOIN webhook_endpoints w ON w.merchant_id = e.merchant_id AND w.deleted_at IS NULL
 AND ('*' = ANY(w.enabled_events) OR e.type = ANY(w.enabled_events))
WHERE e.event_id = $1 AND e.merchant_id = $2
ON CONFLICT (endpoint_id, event_id) DO UPDATE SET status = 'pending', next_attempt_at = now(),
    give_up_at = EXCLUDED.give_up_at
RETURNING d.*"""
_DUE_ENDPOINTS: Final = """
SELECT endpoint_id FROM (
    SELECT DISTINCT ON (endpoint_id) endpoint_id, next_attempt_at FROM webhook_deliveries
    WHERE status = 'pending' AND next_attempt_at <= now()
      AND NOT (endpoint_id = ANY($1::text[]))
    ORDER BY endpoint_id, next_attempt_at
) due ORDER BY next_attempt_at LIMIT $2"""
_DUE_FOR: Final = """
SELECT d.endpoint_id, d.event_id, d.attempts, d.give_up_at, w.url, w.secret_envelope,
       e.event_id AS id, e.type, e.data, e.created_at AS event_created_at, e.merchant_id,
       e.object_id
FROM webhook_deliveries d
JOIN webhook_endpoints w ON w.endpoint_id = d.endpoint_id AND w.deleted_at IS NULL
JOIN events e ON e.event_id = d.event_id
WHERE d.endpoint_id = $1 AND d.status = 'pending' AND d.next_attempt_at <= now()
ORDER BY d.next_attempt_at, e.created_at LIMIT $2"""
# One attempt's outcome: $3 the new status, $4 the next attempt (NULL unless pending).
_ATTEMPTED: Final = """
UPDATE webhook_deliveries SET status = $3, next_attempt_at = $4, attempts = attempts + 1,
    last_attempt_at = now(), last_status_code = $5, last_error = $6
WHERE endpoint_id = $1 AND event_id = $2 AND status = 'pending'"""


def _endpoint(row: asyncpg.Record) -> EndpointRecord:
    return EndpointRecord(
        endpoint_id=row["endpoint_id"],
        merchant_id=row["merchant_id"],
        url=row["url"],
        enabled_events=tuple(row["enabled_events"]),
        description=row["description"],
        created_at=row["created_at"],
        secret_envelope=row["secret_envelope"],
    )


def _delivery(row: asyncpg.Record) -> DeliveryRecord:
    return DeliveryRecord(**{k: row[k] for k in DeliveryRecord.__dataclass_fields__})


def _due(row: asyncpg.Record) -> DueDelivery:
    event = EventRecord(
        row["id"], row["merchant_id"], row["type"], row["object_id"], row["data"],
        row["event_created_at"],
    )  # fmt: skip
    return DueDelivery(
        endpoint_id=row["endpoint_id"],
        event_id=row["event_id"],
        attempts=row["attempts"],
        give_up_at=row["give_up_at"],
        url=row["url"],
        secret_envelope=row["secret_envelope"],
        body=event.body(),
    )


class PgWebhooks:
    """The `WebhookStore` port: endpoints for the API, due deliveries for the dispatcher."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def create_endpoint(self, endpoint: EndpointRecord) -> EndpointRecord:
        e = endpoint
        args = (e.endpoint_id, e.merchant_id, e.url, list(e.enabled_events), e.description)
        with translated():
            row = await self._pool.fetchrow(_INSERT, *args, e.secret_envelope)
        return _endpoint(row)

    async def count_endpoints(self, merchant_id: str) -> int:
        with translated():
            count: int = await self._pool.fetchval(_COUNT, merchant_id)
        return count

    async def get_endpoint(self, endpoint_id: str, *, merchant_id: str) -> EndpointRecord | None:
        with translated():
            row = await self._pool.fetchrow(_GET, endpoint_id, merchant_id)
        return _endpoint(row) if row else None

    async def list_endpoints(self, merchant_id: str, limit: int) -> list[EndpointRecord]:
        with translated():
            return [_endpoint(r) for r in await self._pool.fetch(_LIST, merchant_id, limit)]

    async def delete_endpoint(self, endpoint_id: str, *, merchant_id: str) -> bool:
        """Soft-delete it and stop its pending deliveries; False when not theirs or gone."""
        with translated():
            async with self._pool.acquire() as conn, conn.transaction():
                row = await conn.fetchrow(_DELETE, endpoint_id, merchant_id)
                if row is not None:
                    await conn.execute(_STOP_PENDING, endpoint_id)
        return row is not None

    async def deliveries(
        self, endpoint_id: str, *, limit: int, starting_after: str | None = None
    ) -> tuple[list[DeliveryRecord], bool] | None:
        """The endpoint's delivery log, newest first; None when the cursor is not its event."""
        at, after = None, None
        with translated():
            if starting_after is not None:
                cursor = await self._pool.fetchrow(_CURSOR_DELIVERY, endpoint_id, starting_after)
                if cursor is None:
                    return None
                at, after = cursor["created_at"], cursor["event_id"]
            rows = await self._pool.fetch(_DELIVERIES, endpoint_id, limit + 1, at, after)
        return [_delivery(r) for r in rows[:limit]], len(rows) > limit

    async def redeliver(
        self, event_id: str, *, merchant_id: str, horizon: dt.timedelta
    ) -> list[DeliveryRecord]:
        with translated():
            rows = await self._pool.fetch(_REDELIVER, event_id, merchant_id, horizon)
        return [_delivery(r) for r in rows]

    async def due_endpoints(self, busy: list[str], limit: int) -> list[str]:
        with translated():
            return [r["endpoint_id"] for r in await self._pool.fetch(_DUE_ENDPOINTS, busy, limit)]

    async def due_for(self, endpoint_id: str, limit: int) -> list[DueDelivery]:
        with translated():
            return [_due(r) for r in await self._pool.fetch(_DUE_FOR, endpoint_id, limit)]

    async def attempted(
        self,
        delivery: DueDelivery,
        *,
        next_attempt_at: dt.datetime | None,
        succeeded: bool,
        status_code: int | None,
        error: str | None,
    ) -> None:
        """Record one attempt: succeeded, due again at `next_attempt_at`, or given up (None)."""
        status = "succeeded" if succeeded else ("pending" if next_attempt_at else "failed")
        args = (
            delivery.endpoint_id,
            delivery.event_id,
            status,
            None if succeeded else next_attempt_at,
        )
        with translated():
            await self._pool.execute(_ATTEMPTED, *args, status_code, error)
