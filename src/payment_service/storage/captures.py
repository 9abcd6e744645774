"""Captures and voids of manual-capture payments in PostgreSQL, each an audited transition.

A capture or cancel is recorded before the bank call, under the payment's row lock, with the
merchant's Idempotency-Key bound in the same transaction: `capturing` keeps the amount, so a
redelivery or the reconciler repeats exactly the same bank call under the same key. Outcomes
are compare-and-set transitions with their audit row in one statement (`payment_sql.audited`).
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any, Final

import asyncpg

from payment_service.core.errors import (
    CaptureExceedsAuthorized,
    NotFound,
    PaymentNotCapturable,
    TransitionConflict,
)
from payment_service.core.money import to_major_units
from payment_service.core.records import CaptureRequest, PaymentRecord
from payment_service.core.rules import repeats_capture
from payment_service.core.states import CAPTURABLE, PaymentEvent, PaymentStatus, advance
from payment_service.storage import payment_sql as sql
from payment_service.storage.audit import write_audit
from payment_service.storage.errors import translated
from payment_service.storage.idempotency import claim_idempotency_key
from payment_service.storage.payments import load_payment
from payment_service.storage.rows import payment_from_row

S, E = PaymentStatus, PaymentEvent
_EPOCH: Final = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)

_SET_CAPTURING: Final = """UPDATE transactions SET status = $3, capture_requested_minor = $4,
    updated_at = now() WHERE transaction_id = $1 AND status = $2 RETURNING *"""
_SET_CANCELING: Final = """UPDATE transactions SET status = $3, cancellation_reason = $4,
    updated_at = now() WHERE transaction_id = $1 AND status = $2 RETURNING *"""
_SET_STATUS: Final = """UPDATE transactions SET status = $3, updated_at = now()
    WHERE transaction_id = $1 AND status = $2 RETURNING *"""
_EXPIRED_HOLDS: Final = """SELECT * FROM transactions WHERE status = 'requires_capture'
    AND authorized_at < now() - $1::interval AND (authorized_at, transaction_id) > ($2, $3)
    ORDER BY authorized_at, transaction_id LIMIT $4"""
_GIVE_UPS: Final = """SELECT * FROM transactions WHERE failure_code = 'not_processed_by_bank'
    AND hold_checked_at IS NULL AND updated_at < now() - $1::interval
    AND (updated_at, transaction_id) > ($2, $3) ORDER BY updated_at, transaction_id LIMIT $4"""
_CHECKED: Final = """UPDATE transactions SET hold_checked_at = now()
    WHERE transaction_id = $1 RETURNING merchant_id, status, currency"""


class PgCaptureRepository:
    """Manual capture's transitions on the transactions table."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def request_capture(
        self, request: CaptureRequest, *, correlation_id: str | None
    ) -> PaymentRecord:
        return await self._request(request, "capture", correlation_id)

    async def request_cancel(
        self, request: CaptureRequest, *, correlation_id: str | None
    ) -> PaymentRecord:
        return await self._request(request, "cancel", correlation_id)

    async def _request(
        self, request: CaptureRequest, kind: str, correlation_id: str | None
    ) -> PaymentRecord:
        txn = request.transaction_id
        with translated():
            async with self._pool.acquire() as conn, conn.transaction():
                payment = await load_payment(conn, txn, for_update=True)
                if payment is None or payment.merchant_id != request.merchant_id:
                    raise NotFound(f"no payment {txn!r}", param="transaction_id")
                if request.idempotency_key is not None:
                    await claim_idempotency_key(
                        conn, merchant_id=request.merchant_id, key=request.idempotency_key,
                        kind=kind, request_hash=request.request_hash, resource_id=txn,
                    )  # fmt: skip
                if repeats_capture(payment, kind, request.amount_minor):
                    return payment
                if payment.status not in CAPTURABLE:
                    raise PaymentNotCapturable(
                        f"payment {txn} is {payment.status.value}; {kind} needs requires_capture"
                    )
                value: int | str | None
                if kind == "capture":
                    amount = _capture_amount(payment, request.amount_minor)
                    update, event, value = _SET_CAPTURING, E.CAPTURE_REQUESTED, amount
                    details: dict[str, Any] = {"amount_minor": amount}
                else:
                    reason = request.cancellation_reason
                    update, event, value = _SET_CANCELING, E.CANCEL_REQUESTED, reason
                    details = {"cancellation_reason": reason}
                row = await _cas(conn, update, payment.status, event, txn, value,
                                 correlation_id=correlation_id, details=details)  # fmt: skip
        return payment_from_row(row)

    async def refuse_capture(
        self, transaction_id: str, *, reason: str, correlation_id: str | None
    ) -> PaymentRecord:
        return await self._outcome(
            transaction_id, S.CAPTURING, E.CAPTURE_REFUSED, {"reason": reason}, correlation_id
        )

    async def mark_canceled(
        self, transaction_id: str, *, void_id: str | None, correlation_id: str | None
    ) -> PaymentRecord:
        return await self._outcome(
            transaction_id, S.CANCELING, E.VOID_APPROVED, {"void_id": void_id}, correlation_id
        )

    async def refuse_void(
        self, transaction_id: str, *, reason: str, correlation_id: str | None
    ) -> PaymentRecord:
        return await self._outcome(
            transaction_id, S.CANCELING, E.VOID_REFUSED, {"reason": reason}, correlation_id
        )

    async def _outcome(
        self,
        transaction_id: str,
        expected: PaymentStatus,
        event: PaymentEvent,
        details: dict[str, Any],
        correlation_id: str | None,
    ) -> PaymentRecord:
        with translated():
            async with self._pool.acquire() as conn:
                row = await _cas(
                    conn, _SET_STATUS, expected, event, transaction_id,
                    correlation_id=correlation_id, details=details,
                )  # fmt: skip
        return payment_from_row(row)

    async def find_expired_holds(
        self, validity: dt.timedelta, limit: int, after: PaymentRecord | None = None
    ) -> list[PaymentRecord]:
        since = (after.authorized_at, after.transaction_id) if after else (_EPOCH, "")
        with translated():
            rows = await self._pool.fetch(_EXPIRED_HOLDS, validity, *since, limit)
        return [payment_from_row(r) for r in rows]

    async def find_unchecked_give_ups(
        self, older_than: dt.timedelta, limit: int, after: PaymentRecord | None = None
    ) -> list[PaymentRecord]:
        since = (after.updated_at, after.transaction_id) if after else (_EPOCH, "")
        with translated():
            rows = await self._pool.fetch(_GIVE_UPS, older_than, *since, limit)
        return [payment_from_row(r) for r in rows]

    async def record_hold_check(
        self, transaction_id: str, *, voided: tuple[str, ...], correlation_id: str | None
    ) -> None:
        with translated():
            async with self._pool.acquire() as conn, conn.transaction():
                row = await conn.fetchrow(_CHECKED, transaction_id)
                if row is None or not voided:
                    return
                await write_audit(
                    conn, transaction_id=transaction_id, merchant_id=row["merchant_id"],
                    action="payment.hold_released", from_status=row["status"],
                    to_status=row["status"], currency=row["currency"],
                    correlation_id=correlation_id, details={"authorization_ids": list(voided)},
                    actor="processor:reconciler",  # the hold check is the reconciler's own
                )  # fmt: skip

    async def idempotent_request(
        self, merchant_id: str, idempotency_key: str
    ) -> tuple[str, str, str | None] | None:
        with translated():
            row = await self._pool.fetchrow(
                "SELECT kind, resource_id, request_hash FROM idempotency_keys"
                " WHERE merchant_id = $1 AND idempotency_key = $2",
                merchant_id,
                idempotency_key,
            )
        return None if row is None else (row["kind"], row["resource_id"], row["request_hash"])


def _capture_amount(payment: PaymentRecord, amount_minor: int | None) -> int:
    """All that was authorized by default; never more (a smaller capture releases the rest)."""
    if amount_minor is None:
        return payment.amount_minor
    if amount_minor > payment.amount_minor:
        authorized = to_major_units(payment.amount_minor, payment.currency)
        raise CaptureExceedsAuthorized(
            f"capture exceeds the {authorized} {payment.currency} authorized", param="amount"
        )
    return amount_minor


async def _cas(
    conn: asyncpg.Connection,
    update_sql: str,
    expected: PaymentStatus,
    event: PaymentEvent,
    transaction_id: str,
    *args: Any,
    correlation_id: str | None,
    details: dict[str, Any],
) -> Any:
    new_status = advance(expected, event)  # InvalidTransition before any I/O
    audit = (uuid.uuid4(), f"payment.{new_status.value}", correlation_id,
             {"event": event.value, **details})  # fmt: skip
    row = await conn.fetchrow(
        sql.audited(update_sql, len(args)), transaction_id, expected.value, new_status.value,
        *args, *audit,
    )  # fmt: skip
    if row is None:
        current = await conn.fetchval(sql.SELECT_STATUS, transaction_id)
        raise TransitionConflict(current, resource_id=transaction_id)
    return row
