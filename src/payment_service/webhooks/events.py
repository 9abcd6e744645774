"""Events from audit rows: which rows name an event, and what the event carries.

The reader keeps a cursor on the audit rows' commit order, `(xid, id)` (storage/audit_feed.py):
ids are taken at insert, so a row can commit after rows with higher ids, but the store returns
only rows of ended transactions in `(xid, id)` order, so a late row is never skipped; it waits
for the transaction that writes it. Events are recorded idempotently (`evt_` + the audit row's
UUID), so reading a row twice is harmless.
"""

from __future__ import annotations

import datetime as dt
from typing import Final

from payment_service.core.audit_ports import Position
from payment_service.core.ports import PaymentRepository, RefundRepository
from payment_service.core.webhook_ports import EventStore
from payment_service.core.webhooks import AuditEntry, NewEvent, event_id, event_type
from payment_service.schemas.views import payment_view, refund_view

# A cursor saved by id alone (before 0007) is moved back this far when converted.
SETTLE: Final = dt.timedelta(minutes=2)
BATCH: Final = 500


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
        self._cursor: Position | None = None

    async def step(self) -> int:
        """Read and record one batch; the number of audit rows it read."""
        if self._cursor is None:
            self._cursor = await self._store.cursor(SETTLE)
        rows = await self._store.audit_after(self._cursor, BATCH)
        events = [e for e in [await self._event(row) for row in rows] if e is not None]
        cursor = rows[-1].position if rows else self._cursor
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
