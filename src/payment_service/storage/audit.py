"""The audit log's one INSERT, and appending a row inside the caller's transaction.

Every audit row is written by the statement `audit_insert()` builds: on its own (`write_audit`),
or as the last step of a claim or transition statement, reading the row that statement wrote.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any, Final

import asyncpg

# The columns an audit row is written with, and their types, in one place.
AUDIT_COLUMNS: Final = (
    ("event_id", "uuid"),
    ("transaction_id", "text"),
    ("refund_id", "text"),
    ("merchant_id", "text"),
    ("action", "text"),
    ("from_status", "text"),
    ("to_status", "text"),
    ("amount_minor", "bigint"),
    ("currency", "char(3)"),
    ("correlation_id", "text"),
    ("details", "jsonb"),
    ("actor", "text"),
)


def audit_insert(values: Mapping[str, str], source: str | None = None) -> str:
    """`INSERT INTO audit_log ... SELECT ...`: each column from the SQL expression in `values`
    (a placeholder, or a column of `source`), cast to its type; columns not named are NULL.

    Built only from our constant SQL fragments and numbered placeholders, never from values.
    """
    unknown = set(values) - {name for name, _ in AUDIT_COLUMNS}
    if unknown:
        raise ValueError(f"not audit columns: {sorted(unknown)}")
    columns = ", ".join(name for name, _ in AUDIT_COLUMNS)
    exprs = ", ".join(f"({values.get(name, 'NULL')})::{kind}" for name, kind in AUDIT_COLUMNS)
    origin = f" FROM {source}" if source else ""
    return f"INSERT INTO audit_log ({columns}) SELECT {exprs}{origin}"


_WRITE_AUDIT: Final = audit_insert({name: f"${i}" for i, (name, _) in enumerate(AUDIT_COLUMNS, 1)})


async def write_audit(
    conn: asyncpg.Connection,
    *,
    transaction_id: str,
    merchant_id: str,
    action: str,
    from_status: str | None,
    to_status: str | None,
    amount_minor: int | None = None,
    currency: str | None = None,
    refund_id: str | None = None,
    correlation_id: str | None = None,
    details: dict[str, Any] | None = None,
    actor: str | None = None,
) -> None:
    """Append one audit row on `conn`, inside the caller's transaction; `actor` is who asked."""
    await conn.execute(
        _WRITE_AUDIT,
        uuid.uuid4(), transaction_id, refund_id, merchant_id, action, from_status, to_status,
        amount_minor, currency, correlation_id, details or {}, actor,
    )  # fmt: skip
