"""Payments in PostgreSQL: claim a payment once, then record each transition by name.

Every transition is a compare-and-set (`UPDATE ... WHERE transaction_id = $1 AND status = $2`)
whose new status comes from `core.states.advance(expected, event)`, with the event named by the
flow, written in one statement together with its audit row. Zero rows matched raises
`TransitionConflict` with the status actually found. The SQL is in `payment_sql`.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any, Final

import asyncpg

from payment_service.core.errors import IdempotencyConflict, StorageError, TransitionConflict
from payment_service.core.records import Claim, NewPayment, PaymentRecord
from payment_service.core.states import PAYMENT_UNSETTLED, PaymentEvent, PaymentStatus, advance
from payment_service.storage import payment_sql as sql
from payment_service.storage.audit import write_audit
from payment_service.storage.errors import translated
from payment_service.storage.idempotency import claim_idempotency_key
from payment_service.storage.rows import payment_from_row, refund_from_row

S, E = PaymentStatus, PaymentEvent
_DECLINES: Final = frozenset({E.AUTHORIZATION_DECLINED, E.CAPTURE_DECLINED})
_UNKNOWNS: Final = frozenset({E.AUTHORIZATION_UNKNOWN, E.CAPTURE_UNKNOWN})
_APPROVALS: Final = frozenset({E.AUTHORIZATION_APPROVED, E.AUTHORIZATION_HELD})
_EPOCH: Final = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


async def load_payment(
    conn: asyncpg.Connection, transaction_id: str, *, for_update: bool = False
) -> PaymentRecord | None:
    """The payment and its refunds (oldest first) as seen on `conn`; optionally row-locked."""
    row = await conn.fetchrow(
        sql.SELECT_FOR_UPDATE if for_update else sql.SELECT_PAYMENT, transaction_id
    )
    if row is None:
        return None
    refunds = await conn.fetch(sql.SELECT_REFUNDS, transaction_id)
    return payment_from_row(row, tuple(refund_from_row(r) for r in refunds))


class PgPaymentRepository:
    """The payments table behind named, audited compare-and-set transitions."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def claim_payment(self, new: NewPayment, *, correlation_id: str | None) -> Claim:
        """Store a new payment as `processing`, or return the stored one for the same request.

        Raises `IdempotencyConflict` when the idempotency key, or the transaction id, is already
        bound to a different request (other merchant, amount, currency or request hash).
        """
        with translated():
            row = await self._pool.fetchrow(
                sql.CLAIM_NEW, *sql.claim_args(new, correlation_id), uuid.uuid4()
            )
        if row is not None:
            return Claim(created=True, payment=payment_from_row(row))
        return await self._claim_carefully(new, correlation_id=correlation_id)

    async def _claim_carefully(self, new: NewPayment, *, correlation_id: str | None) -> Claim:
        """The claim of a payment whose key or id is taken: a redelivery, or a conflict."""
        with translated():
            async with self._pool.acquire() as conn, conn.transaction():
                if new.idempotency_key is not None:
                    await claim_idempotency_key(
                        conn, merchant_id=new.merchant_id, key=new.idempotency_key,
                        kind="payment", request_hash=new.request_hash,
                        resource_id=new.transaction_id,
                    )  # fmt: skip
                row = await conn.fetchrow(sql.INSERT_PAYMENT, *sql.claim_args(new, correlation_id))
                if row is None:
                    existing = await load_payment(conn, new.transaction_id)
                    if existing is None:  # committed by the other claim; rows are never deleted
                        raise StorageError(f"{new.transaction_id} vanished during its claim")
                    _check_same_payment(existing, new)
                    return Claim(created=False, payment=existing)
                await write_audit(
                    conn, transaction_id=new.transaction_id, merchant_id=new.merchant_id,
                    action="payment.received", from_status=None, to_status=S.PROCESSING.value,
                    amount_minor=new.amount_minor, currency=new.currency,
                    correlation_id=correlation_id, actor=new.requested_by,
                )  # fmt: skip
        return Claim(created=True, payment=payment_from_row(row))

    async def mark_authorized(
        self,
        transaction_id: str,
        *,
        expected: PaymentStatus,
        authorization_id: str,
        correlation_id: str | None,
        event: PaymentEvent = E.AUTHORIZATION_APPROVED,
    ) -> PaymentRecord:
        """processing/unknown -> authorized (automatic capture, before the sale) or, with
        `authorization_held`, requires_capture (manual), recording the authorization id."""
        if event not in _APPROVALS:
            raise ValueError(f"mark_authorized records an approval, not {event.value}")
        return await self._cas(
            sql.SET_AUTHORIZED, transaction_id, expected, event,
            authorization_id, correlation_id=correlation_id,
            details={"authorization_id": authorization_id},
        )  # fmt: skip

    async def mark_sold(
        self,
        transaction_id: str,
        *,
        expected: PaymentStatus,
        authorization_id: str,
        correlation_id: str | None,
    ) -> PaymentRecord:
        """processing/unknown -> captured by one sale: authorized and captured in full."""
        return await self._cas(
            sql.SET_SOLD, transaction_id, expected, E.SALE_APPROVED, authorization_id,
            correlation_id=correlation_id, details={"authorization_id": authorization_id},
        )  # fmt: skip

    async def mark_captured(
        self,
        transaction_id: str,
        *,
        expected: PaymentStatus,
        captured_minor: int,
        correlation_id: str | None,
    ) -> PaymentRecord:
        """authorized/unknown_capture/capturing -> captured (`captured_minor` below the amount:
        a partial capture, the rest released); the CHECK keeps captured <= amount."""
        if captured_minor <= 0:
            raise ValueError("captured amount must be positive")
        return await self._cas(
            sql.SET_CAPTURED, transaction_id, expected, E.CAPTURE_APPROVED, captured_minor,
            correlation_id=correlation_id, details={"captured_minor": captured_minor},
        )  # fmt: skip

    async def mark_failed(
        self,
        transaction_id: str,
        *,
        expected: PaymentStatus,
        event: PaymentEvent,
        failure_code: str,
        decline_code: str | None,
        failure_message: str | None,
        correlation_id: str | None,
    ) -> PaymentRecord:
        """A decline (`event`: authorization_declined or capture_declined) -> failed."""
        if event not in _DECLINES:
            raise ValueError(f"mark_failed records a decline, not {event.value}")
        return await self._cas(
            sql.SET_FAILED, transaction_id, expected, event,
            failure_code, decline_code, failure_message, correlation_id=correlation_id,
            details={"failure_code": failure_code, "decline_code": decline_code},
        )  # fmt: skip

    async def mark_unknown(
        self,
        transaction_id: str,
        *,
        expected: PaymentStatus,
        event: PaymentEvent,
        correlation_id: str | None,
        detail: str | None = None,
    ) -> PaymentRecord:
        """The bank's answer was lost (`event`: authorization_unknown -> unknown, or
        capture_unknown -> unknown_capture)."""
        if event not in _UNKNOWNS:
            raise ValueError(f"mark_unknown records a lost answer, not {event.value}")
        return await self._cas(
            sql.SET_UNKNOWN, transaction_id, expected, event,
            correlation_id=correlation_id, details={"detail": detail},
        )  # fmt: skip

    async def get_payment(
        self, transaction_id: str, *, merchant_id: str | None = None
    ) -> PaymentRecord | None:
        """The payment with its refunds; None when missing or (with `merchant_id`) not theirs."""
        with translated():
            row = await self._pool.fetchrow(sql.SELECT_PAYMENT, transaction_id)
            if row is None or (merchant_id is not None and row["merchant_id"] != merchant_id):
                return None
            if row["captured_minor"] == 0:
                return payment_from_row(row)  # never captured, so it has no refunds
            async with self._pool.acquire() as conn:
                return await _load_snapshot(conn, transaction_id)

    async def find_unsettled(
        self, older_than: dt.timedelta, limit: int, after: PaymentRecord | None = None
    ) -> list[PaymentRecord]:
        """Payments stuck before a final status for longer than `older_than`, oldest first,
        from just past `after` (keyset paging, so rows that stay stuck cannot hide newer ones).

        These have no refunds (refunds need a captured payment), so `refunds` is empty.
        """
        since = (after.updated_at, after.transaction_id) if after else (_EPOCH, "")
        statuses = sorted(s.value for s in PAYMENT_UNSETTLED)
        with translated():
            rows = await self._pool.fetch(sql.SELECT_UNSETTLED, statuses, older_than, *since, limit)
        return [payment_from_row(r) for r in rows]

    async def _cas(
        self,
        update_sql: str,
        transaction_id: str,
        expected: PaymentStatus,
        event: PaymentEvent,
        *args: Any,
        correlation_id: str | None,
        details: dict[str, Any],
    ) -> PaymentRecord:
        # Illegal transitions raise InvalidTransition here, before any I/O.
        new_status = advance(expected, event)
        audit = (
            uuid.uuid4(), f"payment.{new_status.value}", correlation_id,
            {"event": event.value, **details},
        )  # fmt: skip
        with translated():
            row = await self._pool.fetchrow(
                sql.audited(update_sql, len(args)), transaction_id, expected.value,
                new_status.value, *args, *audit,
            )  # fmt: skip
            if row is None:
                current = await self._pool.fetchval(sql.SELECT_STATUS, transaction_id)
                raise TransitionConflict(current, resource_id=transaction_id)
        # Transitions before capture: a payment here has no refunds yet.
        return payment_from_row(row)


async def _load_snapshot(conn: asyncpg.Connection, transaction_id: str) -> PaymentRecord | None:
    # One snapshot for the payment and its refunds, so their amounts agree.
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        return await load_payment(conn, transaction_id)


def _check_same_payment(existing: PaymentRecord, new: NewPayment) -> None:
    """A transaction id seen again must carry the same request, or it is a conflict."""
    same = (
        existing.merchant_id == new.merchant_id
        and existing.amount_minor == new.amount_minor
        and existing.currency == new.currency
        and existing.request_hash == new.request_hash
    )
    if not same:
        raise IdempotencyConflict(
            "this transaction id was already used for a different payment",
            existing_resource_id=existing.transaction_id,
        )
