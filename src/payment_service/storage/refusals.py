"""Refusals recorded like outcomes: the rule's decision, in the transaction that made it.

A refused refund (it exceeds what remains, the payment is not refundable) leaves no refund row,
so without a record a redelivery or a replay would decide again, and could now execute a refund
the merchant was told failed (an earlier in-flight refund has failed since). `record` writes the
refusal inside the deciding transaction (under the payment's row lock); `find` reads it back
first, so the same command is answered with the same refusal for ever.
"""

from __future__ import annotations

from typing import Final, Literal

import asyncpg

from payment_service.core.errors import (
    IdempotencyConflict,
    InvalidRequest,
    PaymentNotRefundable,
    RefundExceedsRemaining,
)
from payment_service.core.records import RecordedRefusal

Kind = Literal["payment", "refund"]
# The refusal codes a rule decides, and the error each is answered with again.
_ERRORS: Final[dict[str, type[InvalidRequest]]] = {
    PaymentNotRefundable.code: PaymentNotRefundable,
    RefundExceedsRemaining.code: RefundExceedsRemaining,
}
_INSERT: Final = """INSERT INTO refusals (command_id, kind, transaction_id, merchant_id, code,
    message, param, amount_minor, request_hash, correlation_id)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (command_id) DO NOTHING"""


def as_error(refusal: RecordedRefusal) -> InvalidRequest:
    """The error a refusal was answered with, to raise again."""
    cls = _ERRORS.get(refusal.code, InvalidRequest)
    return cls(refusal.message, code=refusal.code, param=refusal.param)


async def record(
    conn: asyncpg.Connection,
    *,
    command_id: str,
    kind: Kind,
    transaction_id: str,
    merchant_id: str,
    refusal: RecordedRefusal,
    amount_minor: int | None,
    request_hash: str | None,
    correlation_id: str | None,
) -> None:
    """Record `refusal` as the answer to the command `command_id`, in the caller's transaction
    (the first one recorded stays: a later call records nothing)."""
    await conn.execute(
        _INSERT, command_id, kind, transaction_id, merchant_id, refusal.code, refusal.message,
        refusal.param, amount_minor, request_hash, correlation_id,
    )  # fmt: skip


async def find(
    conn: asyncpg.Connection | asyncpg.Pool,
    command_id: str,
    *,
    transaction_id: str,
    merchant_id: str,
    request_hash: str | None,
) -> RecordedRefusal | None:
    """The recorded refusal of this command, if any; `IdempotencyConflict` when the id was
    refused for another request (another payment, merchant or body)."""
    row = await conn.fetchrow("SELECT * FROM refusals WHERE command_id = $1", command_id)
    if row is None:
        return None
    if (row["transaction_id"], row["merchant_id"], row["request_hash"]) != (
        transaction_id,
        merchant_id,
        request_hash,
    ):
        raise IdempotencyConflict(
            "this id was already used for a different request", existing_resource_id=command_id
        )
    return RecordedRefusal(code=row["code"], message=row["message"], param=row["param"])
