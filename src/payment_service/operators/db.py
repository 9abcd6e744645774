"""The operators' reads of PostgreSQL: read-only transactions, every timeout explicit.

The tools connect as the runtime role (`DATABASE_URL`) and never write: each read runs in a
`READ ONLY` transaction, so a mistake in an operator's tool cannot change a payment.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Final

import asyncpg

from payment_service.config.settings import DatabaseSettings
from payment_service.core.records import RecordedRefusal
from payment_service.operators.chain import SELECT_CHAIN

Row = dict[str, Any]
# Whole-table reads of a day's traffic can take longer than one API statement.
READ_TIMEOUT_SECONDS: Final = 120.0
_PAYMENT_COLUMNS: Final = """transaction_id, merchant_id, status, amount_minor, currency,
    captured_minor, refunded_minor, idempotency_key, request_hash, authorization_id,
    failure_code, decline_code, correlation_id, created_at, updated_at"""
_REFUND_COLUMNS: Final = """refund_id, transaction_id, merchant_id, status, amount_minor,
    currency, idempotency_key, bank_refund_id, failure_code, correlation_id, created_at,
    updated_at"""
# Privileges that would let the runtime role rewrite the audit trail.
_AUDIT_PRIVILEGES: Final = """SELECT
    pg_get_userbyid(c.relowner) = current_user AS owner,
    has_table_privilege(current_user, c.oid, 'UPDATE') AS can_update,
    has_table_privilege(current_user, c.oid, 'DELETE') AS can_delete,
    has_table_privilege(current_user, c.oid, 'TRUNCATE') AS can_truncate,
    current_user AS role
FROM pg_class c WHERE c.oid = 'audit_log'::regclass"""


@asynccontextmanager
async def reading(settings: DatabaseSettings) -> AsyncIterator[asyncpg.Connection]:
    """One connection in a read-only, repeatable-read transaction (one consistent snapshot)."""
    conn: asyncpg.Connection = await asyncpg.connect(
        dsn=settings.url.get_secret_value(),
        timeout=settings.connect_timeout_seconds,
        command_timeout=READ_TIMEOUT_SECONDS,
        server_settings={
            "application_name": "payment-service-ops",
            "statement_timeout": str(int(READ_TIMEOUT_SECONDS * 1000)),
            "timezone": "UTC",
        },
    )
    try:
        await conn.set_type_codec(
            "jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog", format="text"
        )
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            yield conn
    finally:
        await conn.close()


@dataclass(frozen=True)
class Scope:
    """Which payments a whole-system read covers: all, or some merchants' and/or recent ones."""

    merchant_ids: Sequence[str] | None = None
    since: dt.datetime | None = None

    @property
    def everything(self) -> bool:
        return self.merchant_ids is None and self.since is None


EVERYTHING: Final = Scope()
# $1: merchant ids (NULL: all), $2: created at or after (NULL: any time).
_IN_SCOPE: Final = """(($1::text[] IS NULL OR merchant_id = ANY($1::text[]))
    AND ($2::timestamptz IS NULL OR created_at >= $2::timestamptz))"""


async def all_payments(conn: asyncpg.Connection, scope: Scope = EVERYTHING) -> list[Row]:
    rows = await conn.fetch(
        f"SELECT {_PAYMENT_COLUMNS} FROM transactions WHERE {_IN_SCOPE}",  # noqa: S608
        _merchants(scope),
        scope.since,
    )
    return [dict(r) for r in rows]


async def all_refunds(conn: asyncpg.Connection, scope: Scope = EVERYTHING) -> list[Row]:
    """The refunds of the payments in `scope`."""
    rows = await conn.fetch(
        f"SELECT {_REFUND_COLUMNS} FROM refunds WHERE transaction_id IN"  # noqa: S608
        f" (SELECT transaction_id FROM transactions WHERE {_IN_SCOPE})",
        _merchants(scope),
        scope.since,
    )
    return [dict(r) for r in rows]


def _merchants(scope: Scope) -> list[str] | None:
    return list(scope.merchant_ids) if scope.merchant_ids is not None else None


async def audit_chain_rows(
    conn: asyncpg.Connection, transaction_ids: Sequence[str] | None = None
) -> list[Row]:
    """Audit rows with their hashes, by payment then id (all, or those of `transaction_ids`)."""
    if transaction_ids is None:
        rows = await conn.fetch(SELECT_CHAIN + " ORDER BY transaction_id, id")
    else:
        rows = await conn.fetch(
            SELECT_CHAIN + " WHERE transaction_id = ANY($1::text[]) ORDER BY transaction_id, id",
            list(transaction_ids),
        )
    return [dict(r) for r in rows]


async def audit_protection(conn: asyncpg.Connection) -> Row:
    """Whether this role could rewrite audit_log (it should only INSERT and SELECT)."""
    row = await conn.fetchrow(_AUDIT_PRIVILEGES)
    return dict(row) if row else {}


async def payment(conn: asyncpg.Connection, transaction_id: str) -> Row | None:
    row = await conn.fetchrow(
        f"SELECT {_PAYMENT_COLUMNS} FROM transactions WHERE transaction_id = $1",  # noqa: S608
        transaction_id,
    )
    return dict(row) if row else None


async def refunds_of(conn: asyncpg.Connection, transaction_id: str) -> list[Row]:
    rows = await conn.fetch(
        f"SELECT {_REFUND_COLUMNS} FROM refunds WHERE transaction_id = $1"  # noqa: S608
        " ORDER BY created_at, refund_id",
        transaction_id,
    )
    return [dict(r) for r in rows]


async def audit_of(conn: asyncpg.Connection, transaction_id: str) -> list[Row]:
    rows = await conn.fetch(
        "SELECT id, event_id::text AS event_id, transaction_id, refund_id, action, from_status,"
        " to_status, amount_minor, correlation_id, details, created_at FROM audit_log"
        " WHERE transaction_id = $1 ORDER BY id",
        transaction_id,
    )
    return [dict(r) for r in rows]


async def refusals_of(conn: asyncpg.Connection, transaction_id: str) -> list[Row]:
    rows = await conn.fetch(
        "SELECT command_id, kind, code, message, amount_minor, correlation_id, created_at"
        " FROM refusals WHERE transaction_id = $1 ORDER BY created_at",
        transaction_id,
    )
    return [dict(r) for r in rows]


async def refusal(conn: asyncpg.Connection, command_id: str) -> RecordedRefusal | None:
    row = await conn.fetchrow(
        "SELECT code, message, param FROM refusals WHERE command_id = $1", command_id
    )
    return RecordedRefusal(row["code"], row["message"], row["param"]) if row else None


async def find_transaction(
    conn: asyncpg.Connection,
    *,
    merchant_id: str | None = None,
    idempotency_key: str | None = None,
    correlation_id: str | None = None,
) -> str | None:
    """The transaction named by merchant + Idempotency-Key, or by a correlation id."""
    if merchant_id is not None and idempotency_key is not None:
        row = await conn.fetchrow(
            "SELECT kind, resource_id FROM idempotency_keys WHERE merchant_id = $1"
            " AND idempotency_key = $2",
            merchant_id,
            idempotency_key,
        )
        if row is None or row["kind"] == "payment":
            return None if row is None else str(row["resource_id"])
        found = await conn.fetchval(
            "SELECT transaction_id FROM refunds WHERE refund_id = $1"
            " UNION ALL SELECT transaction_id FROM refusals WHERE command_id = $1 LIMIT 1",
            row["resource_id"],
        )
        return str(found) if found else None
    if correlation_id is not None:
        for sql in (
            "SELECT transaction_id FROM transactions WHERE correlation_id = $1 LIMIT 1",
            "SELECT transaction_id FROM refunds WHERE correlation_id = $1 LIMIT 1",
            "SELECT transaction_id FROM audit_log WHERE correlation_id = $1 LIMIT 1",
        ):
            found = await conn.fetchval(sql, correlation_id)
            if found is not None:
                return str(found)
    return None
