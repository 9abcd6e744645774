"""The audit log's hash chain, recomputed from the columns (pure).

Each row's `row_hash` is SHA-256 over the previous row's hash (of the same payment; empty for
the first) and the row's text form: its columns joined by the unit separator (0x1F), NULL as
`\\N`, `details` as PostgreSQL prints jsonb, `created_at` as microseconds since the epoch,
then the `actor` (who asked is evidence too). The migration's trigger (0006_operators.sql,
`audit_log_chain_text`) builds the same text; this module does not trust the database's
function, it recomputes from the values.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

NULL: Final = "\\N"
SEPARATOR: Final = "\x1f"
# The columns in chain order, as `SELECT_CHAIN` names them.
CHAIN_FIELDS: Final = (
    "id", "event_id", "transaction_id", "refund_id", "merchant_id", "action", "from_status",
    "to_status", "amount_minor", "currency", "correlation_id", "details_text", "created_us",
    "actor",
)  # fmt: skip
SELECT_CHAIN: Final = """SELECT id, event_id::text AS event_id, transaction_id, refund_id,
    merchant_id, action, from_status, to_status, amount_minor, currency::text AS currency,
    correlation_id, details::text AS details_text,
    (extract(epoch FROM created_at) * 1000000)::bigint AS created_us, actor, prev_hash, row_hash
FROM audit_log"""


@dataclass(frozen=True)
class ChainBreak:
    transaction_id: str
    audit_id: int
    reason: str


def row_text(row: Mapping[str, Any]) -> str:
    """The text a row's hash covers."""
    return SEPARATOR.join(NULL if row[name] is None else str(row[name]) for name in CHAIN_FIELDS)


def row_hash(prev_hash: bytes, row: Mapping[str, Any]) -> bytes:
    return hashlib.sha256(prev_hash + row_text(row).encode()).digest()


def check_chain(rows: Iterable[Mapping[str, Any]]) -> list[ChainBreak]:
    """The breaks in the chains of `rows` (ordered by transaction id, then id): the first row
    of each payment whose stored links or hash disagree with the recomputation."""
    breaks: list[ChainBreak] = []
    current: str | None = None
    expected_prev = b""
    broken = False
    for row in rows:
        txn = row["transaction_id"]
        if txn != current:
            current, expected_prev, broken = txn, b"", False
        if broken:
            continue
        reason = _disagreement(row, expected_prev)
        if reason is not None:
            breaks.append(ChainBreak(txn, int(row["id"]), reason))
            broken = True  # every later row of this payment follows from the broken one
            continue
        expected_prev = bytes(row["row_hash"])
    return breaks


def _disagreement(row: Mapping[str, Any], expected_prev: bytes) -> str | None:
    stored_prev, stored = row["prev_hash"], row["row_hash"]
    if stored_prev is None or stored is None:
        return "row has no hash"
    if bytes(stored_prev) != expected_prev:
        return "previous-row link broken (a row was removed, reordered or edited before it)"
    if bytes(stored) != row_hash(expected_prev, row):
        return "row hash does not match its columns (the row was edited)"
    return None
