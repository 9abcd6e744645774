"""Pages of a merchant's payments and of a payment's refunds: keyset paging, newest first.

The keyset is `(created_at, id)`, read from the cursor's own row, which must be the merchant's
(another merchant's id is `NotFound`, exactly like an unknown one). Payments are served by the
index `transactions_merchant_created_id (merchant_id, created_at DESC, transaction_id DESC)`
(migration 0004): each page is one index range scan of `limit + 1` rows whatever the table's
size (docs/benchmark.md has the plan at 10 million rows). `ending_before` reads the other way
and turns the page round. The page's refunds come in one more query.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Final

import asyncpg

from payment_service.core.capture_ports import ListQuery, Page
from payment_service.core.errors import NotFound
from payment_service.core.records import PaymentRecord, RefundRecord
from payment_service.storage.errors import translated
from payment_service.storage.rows import payment_from_row, refund_from_row

_PAYMENT_CURSOR: Final = (
    "SELECT created_at, transaction_id FROM transactions"
    " WHERE transaction_id = $1 AND merchant_id = $2"
)
_REFUND_CURSOR: Final = (
    "SELECT created_at, refund_id FROM refunds"
    " WHERE refund_id = $1 AND transaction_id = $2 AND merchant_id = $3"
)
_REFUNDS_OF: Final = (
    "SELECT * FROM refunds WHERE transaction_id = ANY($1::text[]) ORDER BY created_at, refund_id"
)


def payments_sql(query: ListQuery, cursor: tuple[dt.datetime, str] | None) -> tuple[str, list[Any]]:
    """The page's SELECT and its arguments after $1 (merchant) and $2 (limit + 1): only the
    filters given, so the plan is the same index range scan whichever they are. Newest first,
    or oldest first (then turned round) for `ending_before`."""
    newer = query.ending_before is not None
    where, args = ["merchant_id = $1"], []
    for condition, value in (
        ("status = ${}", query.status.value if query.status else None),
        ("created_at >= ${}", query.created_gte),
        ("created_at < ${}", query.created_lt),
    ):
        if value is not None:
            args.append(value)
            where.append(condition.format(len(args) + 2))
    if cursor is not None:
        args += list(cursor)
        first, sign = len(args) + 1, ">" if newer else "<"
        where.append(f"(created_at, transaction_id) {sign} (${first}, ${first + 1})")
    order = "ASC" if newer else "DESC"
    sql = (
        f"SELECT * FROM transactions WHERE {' AND '.join(where)}"  # noqa: S608 (constants only)
        f" ORDER BY created_at {order}, transaction_id {order} LIMIT $2"
    )
    return sql, args


class PgPaymentLists:
    """The `PaymentLists` port on PostgreSQL."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def list_payments(self, merchant_id: str, query: ListQuery) -> Page[PaymentRecord]:
        cursor_id = query.starting_after or query.ending_before
        with translated():
            async with self._pool.acquire() as conn:
                cursor: tuple[dt.datetime, str] | None = None
                if cursor_id is not None:
                    row = await conn.fetchrow(_PAYMENT_CURSOR, cursor_id, merchant_id)
                    if row is None:
                        raise NotFound(f"no payment {cursor_id!r}", param=_cursor_param(query))
                    cursor = (row["created_at"], row["transaction_id"])
                sql, args = payments_sql(query, cursor)
                rows = await conn.fetch(sql, merchant_id, query.limit + 1, *args)
                rows, has_more = _page(rows, query)
                captured = [r["transaction_id"] for r in rows if r["captured_minor"] > 0]
                refunds = await conn.fetch(_REFUNDS_OF, captured) if captured else []
        by_payment: dict[str, list[RefundRecord]] = {}
        for r in refunds:
            by_payment.setdefault(r["transaction_id"], []).append(refund_from_row(r))
        items = tuple(
            payment_from_row(r, tuple(by_payment.get(r["transaction_id"], ()))) for r in rows
        )
        return Page(items, has_more)

    async def list_refunds(
        self, merchant_id: str, transaction_id: str, query: ListQuery
    ) -> Page[RefundRecord]:
        cursor_id = query.starting_after or query.ending_before
        newer = query.ending_before is not None
        with translated():
            async with self._pool.acquire() as conn:
                owner = await conn.fetchval(
                    "SELECT merchant_id FROM transactions WHERE transaction_id = $1",
                    transaction_id,
                )
                if owner != merchant_id:
                    raise NotFound(f"no payment {transaction_id!r}", param="transaction_id")
                args: list[Any] = [transaction_id, query.limit + 1]
                keyset = ""
                if cursor_id is not None:
                    row = await conn.fetchrow(
                        _REFUND_CURSOR, cursor_id, transaction_id, merchant_id
                    )
                    if row is None:
                        raise NotFound(f"no refund {cursor_id!r}", param=_cursor_param(query))
                    keyset = f" AND (created_at, refund_id) {'>' if newer else '<'} ($3, $4)"
                    args += [row["created_at"], row["refund_id"]]
                order = "ASC" if newer else "DESC"
                rows = await conn.fetch(
                    f"SELECT * FROM refunds WHERE transaction_id = $1{keyset}"  # noqa: S608
                    f" ORDER BY created_at {order}, refund_id {order} LIMIT $2",
                    *args,
                )
        page, has_more = _page(rows, query)
        return Page(tuple(refund_from_row(r) for r in page), has_more)


def _page(rows: list[Any], query: ListQuery) -> tuple[list[Any], bool]:
    """At most `limit` rows newest first, and whether more lay beyond them."""
    has_more = len(rows) > query.limit
    rows = list(rows[: query.limit])
    if query.ending_before is not None:
        rows.reverse()
    return rows, has_more


def _cursor_param(query: ListQuery) -> str:
    return "starting_after" if query.starting_after is not None else "ending_before"
