"""The SQL of `PgPaymentRepository`: a claim's columns written once, and the named transitions.

Transitions are `UPDATE ... WHERE transaction_id = $1 AND status = $2 RETURNING *` with the new
status in $3 and the transition's own fields after it; `audited()` appends the audit row's
insert, so an update and its audit row are one statement, one atomic round trip.
"""

from __future__ import annotations

from functools import cache
from typing import Final

from payment_service.core.records import NewPayment
from payment_service.core.states import PaymentStatus
from payment_service.storage.audit import audit_insert

# The columns a claim writes, with their types, in parameter order ($1 ... $19). No card
# envelope: a payment keeps none (retention, DESIGN.md §5).
CLAIM_COLUMNS: Final = (
    ("transaction_id", "text"),
    ("merchant_id", "text"),
    ("status", "text"),
    ("amount_minor", "bigint"),
    ("currency", "text"),
    ("payment_method", "text"),
    ("payment_method_id", "text"),
    ("card_fingerprint", "text"),
    ("card_brand", "text"),
    ("card_last4", "text"),
    ("card_expiry_month", "smallint"),
    ("card_expiry_year", "smallint"),
    ("cardholder_name", "text"),
    ("description", "text"),
    ("metadata", "jsonb"),
    ("idempotency_key", "text"),
    ("request_hash", "text"),
    ("correlation_id", "text"),
    ("requested_by", "text"),
    ("capture_method", "text"),
)


def claim_args(new: NewPayment, correlation_id: str | None) -> tuple[object, ...]:
    """The values of `CLAIM_COLUMNS` for a new payment, in the same order."""
    card = new.card
    if card is None:
        raise ValueError("a payment is claimed with its card details (the flow sets them)")
    return (
        new.transaction_id, new.merchant_id, PaymentStatus.PROCESSING.value, new.amount_minor,
        new.currency, new.payment_method, new.payment_method_id, card.fingerprint, card.brand,
        card.last4, card.expiry_month, card.expiry_year, card.holder_name, new.description,
        dict(new.metadata), new.idempotency_key, new.request_hash, correlation_id,
        new.requested_by,
        new.capture_method,
    )  # fmt: skip


def _param(column: str) -> str:
    """The placeholder of a claim column (`$1` for transaction_id, ...)."""
    return f"${[name for name, _ in CLAIM_COLUMNS].index(column) + 1}"


_COLUMNS = ", ".join(name for name, _ in CLAIM_COLUMNS)
_TYPED = ", ".join(f"${i}::{kind}" for i, (_, kind) in enumerate(CLAIM_COLUMNS, 1))
_PLAIN = ", ".join(f"${i}" for i in range(1, len(CLAIM_COLUMNS) + 1))
_ID, _MERCHANT = _param("transaction_id"), _param("merchant_id")
_KEY, _HASH = _param("idempotency_key"), _param("request_hash")
# The claim's audit row has its event id in the parameter after the columns.
_EVENT_ID = f"${len(CLAIM_COLUMNS) + 1}"
_RECEIVED = {
    "event_id": _EVENT_ID,
    "transaction_id": "transaction_id",
    "merchant_id": "merchant_id",
    "action": "'payment.received'",
    "to_status": "status",
    "amount_minor": "amount_minor",
    "currency": "currency",
    "correlation_id": "correlation_id",
    "details": "'{}'",
    "actor": "requested_by",
}

# The claim's careful path, inside a transaction after the key is bound (no audit row: the
# caller writes it only when this inserted a row).
INSERT_PAYMENT: Final = f"""
INSERT INTO transactions ({_COLUMNS})
VALUES ({_PLAIN})
ON CONFLICT (transaction_id) DO NOTHING
RETURNING *
"""  # noqa: S608
# The common case of a claim in one statement (one round trip): bind the idempotency key, insert
# the payment, append its audit row. It inserts nothing when the key or the id is already taken;
# the caller then takes the careful path, which tells a redelivery from a conflict.
CLAIM_NEW: Final = f"""
WITH bound AS (
    INSERT INTO idempotency_keys (merchant_id, idempotency_key, kind, request_hash, resource_id)
    SELECT {_MERCHANT}::text, {_KEY}::text, 'payment', {_HASH}::text, {_ID}::text
    WHERE {_KEY}::text IS NOT NULL
    ON CONFLICT DO NOTHING RETURNING 1
), inserted AS (
    INSERT INTO transactions ({_COLUMNS})
    SELECT {_TYPED}
    WHERE {_KEY}::text IS NULL OR EXISTS (SELECT 1 FROM bound)
    ON CONFLICT (transaction_id) DO NOTHING
    RETURNING *
), audited AS (
    {audit_insert(_RECEIVED, "inserted")}
)
SELECT * FROM inserted
"""  # noqa: S608

SELECT_PAYMENT: Final = "SELECT * FROM transactions WHERE transaction_id = $1"
SELECT_FOR_UPDATE: Final = "SELECT * FROM transactions WHERE transaction_id = $1 FOR UPDATE"
SELECT_REFUNDS: Final = (
    "SELECT * FROM refunds WHERE transaction_id = $1 ORDER BY created_at, refund_id"
)
SELECT_STATUS: Final = "SELECT status FROM transactions WHERE transaction_id = $1"
SELECT_UNSETTLED: Final = (
    "SELECT * FROM transactions WHERE status = ANY($1::text[])"
    " AND updated_at < now() - $2::interval AND (updated_at, transaction_id) > ($3, $4)"
    " ORDER BY updated_at, transaction_id LIMIT $5"
)

# Named transitions: $1 transaction id, $2 expected status, $3 new status, then the fields.
SET_AUTHORIZED: Final = """UPDATE transactions SET status = $3, authorization_id = $4,
    authorized_at = now(), updated_at = now()
    WHERE transaction_id = $1 AND status = $2 RETURNING *"""
# A sale: authorized and captured in one bank call, so in one transition.
SET_SOLD: Final = """UPDATE transactions SET status = $3, authorization_id = $4,
    captured_minor = amount_minor, authorized_at = now(), updated_at = now()
    WHERE transaction_id = $1 AND status = $2 RETURNING *"""
SET_CAPTURED: Final = """UPDATE transactions SET status = $3, captured_minor = $4,
    updated_at = now() WHERE transaction_id = $1 AND status = $2 RETURNING *"""
SET_FAILED: Final = """UPDATE transactions SET status = $3, failure_code = $4, decline_code = $5,
    failure_message = $6, updated_at = now()
    WHERE transaction_id = $1 AND status = $2 RETURNING *"""
SET_UNKNOWN: Final = """UPDATE transactions SET status = $3, updated_at = now()
    WHERE transaction_id = $1 AND status = $2 RETURNING *"""


@cache
def audited(update_sql: str, n_args: int) -> str:
    """`update_sql` (a named transition, `RETURNING *`) plus the insert of its audit row.

    Parameters: $1 id, $2 expected, $3 new status, the transition's own `n_args`, then the audit
    row's event id, action, correlation id and details.
    """
    first = 4 + n_args
    event_id, action, correlation_id, details = (f"${first + i}" for i in range(4))
    audit = audit_insert(
        {
            "event_id": event_id,
            "transaction_id": "transaction_id",
            "merchant_id": "merchant_id",
            "action": action,
            "from_status": "$2",
            "to_status": "status",
            "amount_minor": "amount_minor",
            "currency": "currency",
            "correlation_id": correlation_id,
            "details": details,
            # Who asked for the payment: its transitions finish what that actor asked for.
            "actor": "requested_by",
        },
        "updated",
    )
    # Built only from our constant SQL and numbered placeholders, never from values.
    return f"""
WITH updated AS ({update_sql}),
audited AS ({audit})
SELECT * FROM updated"""  # noqa: S608
