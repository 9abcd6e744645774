"""Refunds in PostgreSQL: reserve an amount under a row lock, then complete or fail it.

Money rule (`core.rules.refundable_amount`): a refund may take at most `captured - refunded -
(refunds still processing)`.
Reserving locks the payment row (`SELECT ... FOR UPDATE`), so two concurrent refunds of one
payment are decided one after the other and can never together exceed what was captured; the
`refunded_minor <= captured_minor` CHECK is the last line of defence.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import asyncpg

from payment_service.core.errors import (
    IdempotencyConflict,
    NotFound,
    StorageError,
    TransitionConflict,
)
from payment_service.core.records import NewRefund, PaymentRecord, RefundRecord, RefundReservation
from payment_service.core.rules import refundable_amount
from payment_service.core.states import (
    RefundEvent,
    RefundStatus,
    advance,
    advance_refund,
    refund_event,
)
from payment_service.storage.audit import write_audit
from payment_service.storage.errors import translated
from payment_service.storage.idempotency import claim_idempotency_key
from payment_service.storage.payments import load_payment
from payment_service.storage.rows import payment_from_row, refund_from_row

_INSERT_REFUND = """
INSERT INTO refunds (refund_id, transaction_id, merchant_id, status, amount_minor, currency,
    reason, metadata, idempotency_key, request_hash, correlation_id, requested_by)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
RETURNING *
"""
_IN_FLIGHT = """SELECT COALESCE(SUM(amount_minor), 0) FROM refunds
    WHERE transaction_id = $1 AND status = 'processing'"""
_SELECT_STATUS = "SELECT status FROM refunds WHERE refund_id = $1"
_SET_COMPLETED = """UPDATE refunds SET status = $3, bank_refund_id = $4, updated_at = now()
    WHERE refund_id = $1 AND status = $2 RETURNING *"""
_SET_FAILED = """UPDATE refunds SET status = $3, failure_code = $4, failure_message = $5,
    updated_at = now() WHERE refund_id = $1 AND status = $2 RETURNING *"""
_SET_PAYMENT_REFUNDED = """UPDATE transactions SET status = $3, refunded_minor = $4,
    updated_at = now() WHERE transaction_id = $1 AND status = $2 RETURNING *"""


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


class PgRefundRepository:
    """The refunds table: reservations, their completion or failure, and reads."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def reserve_refund(
        self, new: NewRefund, *, correlation_id: str | None
    ) -> RefundReservation:
        """Reserve `new.amount_minor` (None: all that remains) of the payment as `processing`.

        Raises `NotFound` (missing, or another merchant's payment), `IdempotencyConflict`,
        `PaymentNotRefundable` (not captured) or `RefundExceedsRemaining`.
        """
        with translated():
            async with self._pool.acquire() as conn, conn.transaction():
                # Step 1: lock the payment; every refund decision for it queues here.
                payment = await load_payment(conn, new.transaction_id, for_update=True)
                if payment is None or payment.merchant_id != new.merchant_id:
                    raise NotFound(f"no such payment: {new.transaction_id}")
                # Step 2: idempotency and redelivery return the refund already reserved.
                if new.idempotency_key is not None:
                    await claim_idempotency_key(
                        conn, merchant_id=new.merchant_id, key=new.idempotency_key,
                        kind="refund", request_hash=new.request_hash, resource_id=new.refund_id,
                    )  # fmt: skip
                existing = next((r for r in payment.refunds if r.refund_id == new.refund_id), None)
                if existing is None:
                    existing = await _foreign_refund(conn, new.refund_id)
                if existing is not None:
                    _check_same_refund(existing, new)
                    return RefundReservation(created=False, refund=existing, payment=payment)
                # Step 3: the amount rule, then the reservation and its audit row.
                in_flight: int = await conn.fetchval(_IN_FLIGHT, payment.transaction_id)
                amount = refundable_amount(payment, new.amount_minor, in_flight)
                row = await conn.fetchrow(
                    _INSERT_REFUND,
                    new.refund_id, payment.transaction_id, payment.merchant_id,
                    RefundStatus.PROCESSING.value, amount, payment.currency, new.reason,
                    dict(new.metadata), new.idempotency_key, new.request_hash, correlation_id,
                    new.requested_by,
                )  # fmt: skip
                refund = refund_from_row(row)
                await write_audit(
                    conn, transaction_id=payment.transaction_id, refund_id=refund.refund_id,
                    merchant_id=payment.merchant_id, action="refund.requested", from_status=None,
                    to_status=refund.status.value, amount_minor=amount, currency=refund.currency,
                    correlation_id=correlation_id, details={"reason": new.reason},
                    actor=new.requested_by,
                )  # fmt: skip
        payment = replace(payment, refunds=(*payment.refunds, refund))
        return RefundReservation(created=True, refund=refund, payment=payment)

    async def complete_refund(
        self, refund_id: str, *, bank_refund_id: str, correlation_id: str | None
    ) -> tuple[RefundRecord, PaymentRecord]:
        """processing -> completed; adds the amount to the payment's refunded total and moves
        the payment to partially_refunded or refunded. Already completed: `TransitionConflict`.
        """
        to_status = advance_refund(RefundStatus.PROCESSING, RefundEvent.REFUND_APPROVED)
        with translated():
            async with self._pool.acquire() as conn, conn.transaction():
                transaction_id = await conn.fetchval(
                    "SELECT transaction_id FROM refunds WHERE refund_id = $1", refund_id
                )
                if transaction_id is None:
                    raise TransitionConflict(None, resource_id=refund_id)
                payment = await load_payment(conn, transaction_id, for_update=True)
                if payment is None:  # impossible: the foreign key keeps a refund's payment
                    raise StorageError(f"refund {refund_id} has no payment")
                refund = await self._cas_refund(
                    conn, _SET_COMPLETED, refund_id, to_status, bank_refund_id,
                    correlation_id=correlation_id, details={"bank_refund_id": bank_refund_id},
                )  # fmt: skip
                refunded_after = payment.refunded_minor + refund.amount_minor
                event = refund_event(payment.captured_minor, refunded_after)
                new_status = advance(payment.status, event)
                row = await conn.fetchrow(
                    _SET_PAYMENT_REFUNDED,
                    transaction_id, payment.status.value, new_status.value, refunded_after,
                )  # fmt: skip
                if row is None:  # cannot happen under the row lock; kept as a guard
                    raise TransitionConflict(payment.status.value, resource_id=transaction_id)
                await write_audit(
                    conn, transaction_id=transaction_id, refund_id=refund_id,
                    merchant_id=payment.merchant_id, action=f"payment.{new_status.value}",
                    from_status=payment.status.value, to_status=new_status.value,
                    amount_minor=refund.amount_minor, currency=payment.currency,
                    correlation_id=correlation_id, actor=refund.requested_by,
                    details={"event": event.value, "refunded_minor": refunded_after},
                )  # fmt: skip
        refunds = tuple(refund if r.refund_id == refund_id else r for r in payment.refunds)
        return refund, payment_from_row(row, refunds)

    async def fail_refund(
        self,
        refund_id: str,
        *,
        failure_code: str,
        failure_message: str | None,
        correlation_id: str | None,
    ) -> RefundRecord:
        """processing -> failed: the bank refused; the reserved amount is free again."""
        to_status = advance_refund(RefundStatus.PROCESSING, RefundEvent.REFUND_DECLINED)
        with translated():
            async with self._pool.acquire() as conn, conn.transaction():
                return await self._cas_refund(
                    conn, _SET_FAILED, refund_id, to_status, failure_code, failure_message,
                    correlation_id=correlation_id, details={"failure_code": failure_code},
                )  # fmt: skip

    async def get_refund(
        self, refund_id: str, *, merchant_id: str | None = None
    ) -> RefundRecord | None:
        """The refund; None when missing or (with `merchant_id`) another merchant's."""
        with translated():
            row = await self._pool.fetchrow("SELECT * FROM refunds WHERE refund_id = $1", refund_id)
        if row is None or (merchant_id is not None and row["merchant_id"] != merchant_id):
            return None
        return refund_from_row(row)

    async def find_unsettled(
        self, older_than: dt.timedelta, limit: int, after: RefundRecord | None = None
    ) -> list[RefundRecord]:
        """Refunds still `processing` after `older_than` (bank outcome unknown), oldest first,
        from just past `after` (keyset paging)."""
        since = (after.updated_at, after.refund_id) if after else (_EPOCH, "")
        with translated():
            rows = await self._pool.fetch(
                "SELECT * FROM refunds WHERE status = 'processing'"
                " AND updated_at < now() - $1::interval AND (updated_at, refund_id) > ($2, $3)"
                " ORDER BY updated_at, refund_id LIMIT $4",
                older_than,
                *since,
                limit,
            )
        return [refund_from_row(r) for r in rows]

    @staticmethod
    async def _cas_refund(
        conn: asyncpg.Connection,
        sql: str,
        refund_id: str,
        to_status: RefundStatus,
        *args: object,
        correlation_id: str | None,
        details: dict[str, object],
    ) -> RefundRecord:
        expected = RefundStatus.PROCESSING
        row = await conn.fetchrow(sql, refund_id, expected.value, to_status.value, *args)
        if row is None:
            current = await conn.fetchval(_SELECT_STATUS, refund_id)
            raise TransitionConflict(current, resource_id=refund_id)
        refund = refund_from_row(row)
        await write_audit(
            conn, transaction_id=refund.transaction_id, refund_id=refund_id,
            merchant_id=refund.merchant_id, action=f"refund.{to_status.value}",
            from_status=expected.value, to_status=to_status.value,
            amount_minor=refund.amount_minor, currency=refund.currency,
            correlation_id=correlation_id, details=dict(details), actor=refund.requested_by,
        )  # fmt: skip
        return refund


async def _foreign_refund(conn: asyncpg.Connection, refund_id: str) -> RefundRecord | None:
    """A refund with this id on another payment (a reused id), if any."""
    row = await conn.fetchrow("SELECT * FROM refunds WHERE refund_id = $1", refund_id)
    return None if row is None else refund_from_row(row)


def _check_same_refund(existing: RefundRecord, new: NewRefund) -> None:
    same = (
        existing.transaction_id == new.transaction_id
        and existing.merchant_id == new.merchant_id
        and existing.request_hash == new.request_hash
        and (new.amount_minor is None or new.amount_minor == existing.amount_minor)
    )
    if not same:
        raise IdempotencyConflict(
            "this refund id was already used for a different refund",
            existing_resource_id=existing.refund_id,
        )
