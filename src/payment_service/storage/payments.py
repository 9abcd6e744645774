"""Payments in PostgreSQL: claim a payment once, then record each transition by name.

Every transition is a compare-and-set (`UPDATE ... WHERE transaction_id = $1 AND status = $2`)
whose new status comes from `app.states.advance`, written in one transaction together with its
audit row. Zero rows matched raises `TransitionConflict` with the status actually found.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from functools import cache
from typing import Any, Final, NamedTuple

import asyncpg

from payment_service.app.states import PaymentEvent, PaymentStatus, advance
from payment_service.schemas.messages import ProcessPayment
from payment_service.storage.db import claim_idempotency_key, write_audit
from payment_service.storage.errors import (
    IdempotencyConflict,
    StorageError,
    TransitionConflict,
    translated,
)
from payment_service.storage.records import PaymentRecord, RefundRecord

S, E = PaymentStatus, PaymentEvent
UNSETTLED: Final = (S.PROCESSING, S.AUTHORIZED, S.UNKNOWN, S.UNKNOWN_CAPTURE)

_INSERT_PAYMENT = """
INSERT INTO transactions (
    transaction_id, merchant_id, status, amount_minor, currency, payment_method,
    card_envelope, card_fingerprint, card_brand, card_last4, card_expiry_month,
    card_expiry_year, cardholder_name, description, metadata, idempotency_key, request_hash,
    correlation_id)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)
ON CONFLICT (transaction_id) DO NOTHING
RETURNING *
"""
# The common case of a claim in one statement (one round trip): bind the idempotency key, insert
# the payment, append its audit row. It inserts nothing when the key or the id is already taken;
# the caller then takes the careful path, which tells a redelivery from a conflict.
_CLAIM_NEW = """
WITH bound AS (
    INSERT INTO idempotency_keys (merchant_id, idempotency_key, kind, request_hash, resource_id)
    SELECT $2::text, $16::text, 'payment', $17::text, $1::text WHERE $16::text IS NOT NULL
    ON CONFLICT DO NOTHING RETURNING 1
), inserted AS (
    INSERT INTO transactions (
        transaction_id, merchant_id, status, amount_minor, currency, payment_method,
        card_envelope, card_fingerprint, card_brand, card_last4, card_expiry_month,
        card_expiry_year, cardholder_name, description, metadata, idempotency_key, request_hash,
        correlation_id)
    SELECT $1::text, $2::text, $3::text, $4::bigint, $5::text, $6::text, $7::text, $8::text,
        $9::text, $10::text, $11::smallint, $12::smallint, $13::text, $14::text, $15::jsonb,
        $16::text, $17::text, $18::text
    WHERE $16::text IS NULL OR EXISTS (SELECT 1 FROM bound)
    ON CONFLICT (transaction_id) DO NOTHING
    RETURNING *
), audited AS (
    INSERT INTO audit_log (event_id, transaction_id, merchant_id, action, from_status, to_status,
        amount_minor, currency, correlation_id, details)
    SELECT $19::uuid, transaction_id, merchant_id, 'payment.received', NULL, status,
        amount_minor, currency, correlation_id, '{}'::jsonb
    FROM inserted
)
SELECT * FROM inserted
"""
_SELECT_PAYMENT = "SELECT * FROM transactions WHERE transaction_id = $1"
_SELECT_FOR_UPDATE = "SELECT * FROM transactions WHERE transaction_id = $1 FOR UPDATE"
# Named transitions: $1 transaction id, $2 expected status, $3 new status, then the fields.
_SET_AUTHORIZED = """UPDATE transactions SET status = $3, authorization_id = $4, updated_at = now()
    WHERE transaction_id = $1 AND status = $2 RETURNING *"""
_SET_CAPTURED = """UPDATE transactions SET status = $3, captured_minor = $4, updated_at = now()
    WHERE transaction_id = $1 AND status = $2 RETURNING *"""
_SET_FAILED = """UPDATE transactions SET status = $3, failure_code = $4, decline_code = $5,
    failure_message = $6, updated_at = now()
    WHERE transaction_id = $1 AND status = $2 RETURNING *"""
_SET_UNKNOWN = """UPDATE transactions SET status = $3, updated_at = now()
    WHERE transaction_id = $1 AND status = $2 RETURNING *"""


@dataclass(frozen=True)
class Claim:
    """`created` is False when the payment was already stored (a redelivered command)."""

    created: bool
    payment: PaymentRecord


class IdempotencyRecord(NamedTuple):
    kind: str  # "payment" or "refund"
    request_hash: str | None
    resource_id: str


async def load_payment(
    conn: asyncpg.Connection, transaction_id: str, *, for_update: bool = False
) -> PaymentRecord | None:
    """The payment and its refunds (oldest first) as seen on `conn`; optionally row-locked."""
    sql = _SELECT_FOR_UPDATE if for_update else _SELECT_PAYMENT
    row = await conn.fetchrow(sql, transaction_id)
    if row is None:
        return None
    refunds = await conn.fetch(
        "SELECT * FROM refunds WHERE transaction_id = $1 ORDER BY created_at, refund_id",
        transaction_id,
    )
    return PaymentRecord.from_row(row, tuple(RefundRecord.from_row(r) for r in refunds))


class PgPaymentRepository:
    """The payments table behind named, audited compare-and-set transitions."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def claim_payment(self, cmd: ProcessPayment, *, correlation_id: str | None) -> Claim:
        """Store a new payment as `processing`, or return the stored one for the same command.

        Raises `IdempotencyConflict` when the idempotency key, or the transaction id, is already
        bound to a different request (other merchant, amount, currency or request hash).
        """
        card = cmd.card
        with translated():
            row = await self._pool.fetchrow(
                _CLAIM_NEW,
                cmd.transaction_id, cmd.merchant_id, S.PROCESSING.value, cmd.amount_minor,
                cmd.currency, cmd.payment_method, card.number_envelope, card.fingerprint,
                card.brand, card.last4, card.expiry_month, card.expiry_year, card.holder_name,
                cmd.description, dict(cmd.metadata), cmd.idempotency_key, cmd.request_hash,
                correlation_id, uuid.uuid4(),
            )  # fmt: skip
        if row is not None:
            return Claim(created=True, payment=PaymentRecord.from_row(row))
        return await self._claim_carefully(cmd, correlation_id=correlation_id)

    async def _claim_carefully(self, cmd: ProcessPayment, *, correlation_id: str | None) -> Claim:
        """The claim of a command whose key or id is taken: a redelivery, or a conflict."""
        card = cmd.card
        with translated():
            async with self._pool.acquire() as conn, conn.transaction():
                if cmd.idempotency_key is not None:
                    await claim_idempotency_key(
                        conn, merchant_id=cmd.merchant_id, key=cmd.idempotency_key,
                        kind="payment", request_hash=cmd.request_hash,
                        resource_id=cmd.transaction_id,
                    )  # fmt: skip
                row = await conn.fetchrow(
                    _INSERT_PAYMENT,
                    cmd.transaction_id, cmd.merchant_id, S.PROCESSING.value, cmd.amount_minor,
                    cmd.currency, cmd.payment_method, card.number_envelope, card.fingerprint,
                    card.brand, card.last4, card.expiry_month, card.expiry_year, card.holder_name,
                    cmd.description, dict(cmd.metadata), cmd.idempotency_key, cmd.request_hash,
                    correlation_id,
                )  # fmt: skip
                if row is None:
                    existing = await load_payment(conn, cmd.transaction_id)
                    if existing is None:  # committed by the other claim; rows are never deleted
                        raise StorageError(f"{cmd.transaction_id} vanished during its claim")
                    _check_same_payment(existing, cmd)
                    return Claim(created=False, payment=existing)
                await write_audit(
                    conn, transaction_id=cmd.transaction_id, merchant_id=cmd.merchant_id,
                    action="payment.received", from_status=None, to_status=S.PROCESSING.value,
                    amount_minor=cmd.amount_minor, currency=cmd.currency,
                    correlation_id=correlation_id,
                )  # fmt: skip
        return Claim(created=True, payment=PaymentRecord.from_row(row))

    async def mark_authorized(
        self,
        transaction_id: str,
        *,
        expected: PaymentStatus,
        authorization_id: str,
        correlation_id: str | None,
    ) -> PaymentRecord:
        """processing/unknown -> authorized, recording the bank's authorization id."""
        return await self._cas(
            _SET_AUTHORIZED, transaction_id, expected, E.AUTHORIZATION_APPROVED,
            authorization_id, correlation_id=correlation_id,
            details={"authorization_id": authorization_id},
        )  # fmt: skip

    async def mark_captured(
        self,
        transaction_id: str,
        *,
        expected: PaymentStatus,
        captured_minor: int,
        correlation_id: str | None,
    ) -> PaymentRecord:
        """authorized/unknown_capture -> captured; the CHECK keeps captured <= amount."""
        if captured_minor <= 0:
            raise ValueError("captured amount must be positive")
        return await self._cas(
            _SET_CAPTURED, transaction_id, expected, E.CAPTURE_APPROVED, captured_minor,
            correlation_id=correlation_id, details={"captured_minor": captured_minor},
        )  # fmt: skip

    async def mark_failed(
        self,
        transaction_id: str,
        *,
        expected: PaymentStatus,
        failure_code: str,
        decline_code: str | None,
        failure_message: str | None,
        correlation_id: str | None,
    ) -> PaymentRecord:
        """A decline: authorization_declined before authorization, capture_declined after."""
        event = E.CAPTURE_DECLINED if expected in _AFTER_AUTH else E.AUTHORIZATION_DECLINED
        return await self._cas(
            _SET_FAILED, transaction_id, expected, event,
            failure_code, decline_code, failure_message, correlation_id=correlation_id,
            details={"failure_code": failure_code, "decline_code": decline_code},
        )  # fmt: skip

    async def mark_unknown(
        self,
        transaction_id: str,
        *,
        expected: PaymentStatus,
        correlation_id: str | None,
        detail: str | None = None,
    ) -> PaymentRecord:
        """The bank's answer was lost: processing -> unknown, authorized -> unknown_capture."""
        event = E.CAPTURE_UNKNOWN if expected in _AFTER_AUTH else E.AUTHORIZATION_UNKNOWN
        return await self._cas(
            _SET_UNKNOWN, transaction_id, expected, event,
            correlation_id=correlation_id, details={"detail": detail},
        )  # fmt: skip

    async def get_payment(
        self, transaction_id: str, *, merchant_id: str | None = None
    ) -> PaymentRecord | None:
        """The payment with its refunds; None when missing or (with `merchant_id`) not theirs."""
        with translated():
            row = await self._pool.fetchrow(_SELECT_PAYMENT, transaction_id)
            if row is None or (merchant_id is not None and row["merchant_id"] != merchant_id):
                return None
            if row["captured_minor"] == 0:
                return PaymentRecord.from_row(row)  # never captured, so it has no refunds
            async with self._pool.acquire() as conn:
                return await _load_snapshot(conn, transaction_id)

    async def get_by_idempotency_key(self, merchant_id: str, key: str) -> IdempotencyRecord | None:
        """What (merchant, key) is bound to, if anything."""
        with translated():
            row = await self._pool.fetchrow(
                "SELECT kind, request_hash, resource_id FROM idempotency_keys"
                " WHERE merchant_id = $1 AND idempotency_key = $2",
                merchant_id,
                key,
            )
        return None if row is None else IdempotencyRecord(*row)

    async def find_unsettled(
        self, older_than: dt.timedelta, limit: int, after: PaymentRecord | None = None
    ) -> list[PaymentRecord]:
        """Payments stuck before a final status for longer than `older_than`, oldest first,
        from just past `after` (keyset paging, so rows that stay stuck cannot hide newer ones).

        These have no refunds (refunds need a captured payment), so `refunds` is empty.
        """
        since = (after.updated_at, after.transaction_id) if after else (_EPOCH, "")
        with translated():
            rows = await self._pool.fetch(
                "SELECT * FROM transactions WHERE status = ANY($1::text[])"
                " AND updated_at < now() - $2::interval AND (updated_at, transaction_id) > ($3, $4)"
                " ORDER BY updated_at, transaction_id LIMIT $5",
                [s.value for s in UNSETTLED],
                older_than,
                *since,
                limit,
            )
        return [PaymentRecord.from_row(r) for r in rows]

    async def _cas(
        self,
        sql: str,
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
            # The update and its audit row are one statement, hence one atomic round trip.
            row = await self._pool.fetchrow(
                _audited(sql, len(args)), transaction_id, expected.value, new_status.value,
                *args, *audit,
            )  # fmt: skip
            if row is None:
                current = await self._pool.fetchval(
                    "SELECT status FROM transactions WHERE transaction_id = $1", transaction_id
                )
                raise TransitionConflict(current, resource_id=transaction_id)
        # Transitions before capture: a payment here has no refunds yet.
        return PaymentRecord.from_row(row)


async def _load_snapshot(conn: asyncpg.Connection, transaction_id: str) -> PaymentRecord | None:
    # One snapshot for the payment and its refunds, so their amounts agree.
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        return await load_payment(conn, transaction_id)


_AFTER_AUTH: Final = frozenset({S.AUTHORIZED, S.UNKNOWN_CAPTURE})
_EPOCH: Final = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


@cache
def _audited(update_sql: str, n_args: int) -> str:
    """`update_sql` (a named transition, `RETURNING *`) plus the insert of its audit row.

    Parameters: $1 id, $2 expected, $3 new status, the transition's own `n_args`, then the audit
    row's event id, action, correlation id and details.
    """
    first = 4 + n_args
    event_id, action, correlation_id, details = (f"${first + i}" for i in range(4))
    # Built only from our constant SQL and numbered placeholders, never from values.
    return f"""
WITH updated AS ({update_sql}),
audited AS (
    INSERT INTO audit_log (event_id, transaction_id, merchant_id, action, from_status, to_status,
        amount_minor, currency, correlation_id, details)
    SELECT {event_id}::uuid, transaction_id, merchant_id, {action}::text, $2::text, status,
        amount_minor, currency, {correlation_id}::text, {details}::jsonb
    FROM updated
)
SELECT * FROM updated"""  # noqa: S608


def _check_same_payment(existing: PaymentRecord, cmd: ProcessPayment) -> None:
    """A transaction id seen again must carry the same request, or it is a conflict."""
    same = (
        existing.merchant_id == cmd.merchant_id
        and existing.amount_minor == cmd.amount_minor
        and existing.currency == cmd.currency
        and existing.request_hash == cmd.request_hash
    )
    if not same:
        raise IdempotencyConflict(
            "this transaction id was already used for a different payment",
            existing_resource_id=existing.transaction_id,
        )
