"""Events from audit rows: which rows name an event, and what the event carries.

The reader keeps a cursor on `audit_log.id`. Ids are taken when a row is inserted, not when it
commits, so a row can become visible after rows with higher ids: an id skipped over is kept as
a gap and looked up again on every pass until it shows up or `SETTLE` has passed (longer than
any transaction the service runs; an id whose transaction rolled back never shows up). Events
are recorded idempotently (`evt_` + the audit row's UUID), so reading a row twice is harmless.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Final

from payment_service.core.ports import PaymentRepository, RefundRepository
from payment_service.core.webhook_ports import EventStore
from payment_service.core.webhooks import AuditEntry, NewEvent, event_id, event_type
from payment_service.schemas.views import payment_view, refund_view

SETTLE: Final = dt.timedelta(minutes=2)
BATCH: Final = 500
MAX_GAP: Final = 10_000


class EventReader:
    """Turns new audit rows into events, one batch per `step()`."""

    def __init__(
        self,
        store: EventStore,
        payments: PaymentRepository,
        refunds: RefundRepository,
        *,
        give_up: dt.timedelta,
    ) -> None:
        self._store = store
        self._payments = payments
        self._refunds = refunds
        self._give_up = give_up
        self._cursor: int | None = None
        self._gaps: dict[int, float] = {}  # audit id -> when first missed (monotonic)

    async def step(self) -> int:
        """Read and record one batch; the number of audit rows it read."""
        if self._cursor is None:
            self._cursor = await self._store.cursor(SETTLE)
        rows = await self._store.audit_after(self._cursor, BATCH)
        now = time.monotonic()
        self._gaps = {i: t for i, t in self._gaps.items() if now - t < SETTLE.total_seconds()}
        if self._gaps:
            found = await self._store.audit_rows(sorted(self._gaps))
            for row in found:
                self._gaps.pop(row.id, None)
            rows = found + rows
        expected = self._cursor + 1
        for seen in sorted(r.id for r in rows if r.id > self._cursor):
            if seen - expected <= MAX_GAP:  # a bigger jump is a sequence moved on, not commits
                self._gaps.update({missing: now for missing in range(expected, seen)})
            expected = seen + 1
        events = [e for e in [await self._event(row) for row in rows] if e is not None]
        cursor = max([self._cursor, *(r.id for r in rows)])
        await self._store.record(events, cursor, self._give_up)
        self._cursor = cursor
        return len(rows)

    async def _event(self, row: AuditEntry) -> NewEvent | None:
        kind = event_type(row.action, row.to_status)
        if kind is None:
            return None
        if kind.startswith("refund."):
            if row.refund_id is None:
                return None
            refund = await self._refunds.get_refund(row.refund_id, merchant_id=row.merchant_id)
            if refund is None:
                return None
            data = refund_view(refund).model_dump(mode="json")
            object_id = refund.refund_id
        else:
            payment = await self._payments.get_payment(
                row.transaction_id, merchant_id=row.merchant_id
            )
            if payment is None:
                return None
            data = payment_view(payment).model_dump(mode="json")
            object_id = payment.transaction_id
        # The object as it stands now, with the status this transition gave it.
        data["status"] = row.to_status
        return NewEvent(
            event_id=event_id(row.event_id),
            merchant_id=row.merchant_id,
            type=kind,
            object_id=object_id,
            data=data,
            created_at=row.created_at,
        )
