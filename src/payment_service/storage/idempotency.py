"""Binding a merchant's idempotency key to the payment or refund it created, once."""

from __future__ import annotations

import asyncpg

from payment_service.core.errors import IdempotencyConflict


async def claim_idempotency_key(
    conn: asyncpg.Connection,
    *,
    merchant_id: str,
    key: str,
    kind: str,
    request_hash: str | None,
    resource_id: str,
) -> None:
    """Bind (merchant, key) to `resource_id`, or check an existing binding is the same request."""
    inserted = await conn.fetchval(
        """INSERT INTO idempotency_keys (merchant_id, idempotency_key, kind, request_hash,
            resource_id) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING RETURNING true""",
        merchant_id, key, kind, request_hash, resource_id,
    )  # fmt: skip
    if inserted:
        return
    row = await conn.fetchrow(
        "SELECT kind, request_hash, resource_id FROM idempotency_keys"
        " WHERE merchant_id = $1 AND idempotency_key = $2",
        merchant_id,
        key,
    )
    same_request = row["kind"] == kind and row["request_hash"] == request_hash
    if not same_request or row["resource_id"] != resource_id:
        raise IdempotencyConflict(
            "this Idempotency-Key was already used with a different request",
            existing_resource_id=row["resource_id"],
            same_request=same_request,
        )
