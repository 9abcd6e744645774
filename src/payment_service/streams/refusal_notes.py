"""Final errors of payments refused before they had a row: kept for GET and replays.

Every payment refused before it had a row (invalid command, refused producer, no row after a
parked failure) has its final error recorded (`PaymentRefusals`, over the API's "accepted"
marker), so that GET and a replay answer it too, not only the request still waiting: accepted
means it ends. A parked payment with no row is answered `command_not_stored`: nothing reached the
bank (the claim comes first). With a row, the row answers, and the reconciler settles it.
"""

from __future__ import annotations

import json
import logging

from payment_service.core.errors import StorageUnavailable, VaultUnavailable
from payment_service.core.ports import PaymentRepository
from payment_service.core.refusal_ports import PaymentRefusals
from payment_service.kafka.producer import ProduceFailed
from payment_service.schemas.messages import (
    AnyCommand,
    ProcessPayment,
    ProcessPaymentV1,
    ResultError,
)
from payment_service.streams.results import CommandResult

log = logging.getLogger(__name__)

NOT_STORED = "command_not_stored"
# A refusal that names another request's payment: nothing of this command's to record.
_NOT_OURS = frozenset({"idempotency_key_reused"})
_TRANSIENT = (StorageUnavailable, VaultUnavailable, ProduceFailed)


class RefusalNotes:
    def __init__(self, refusals: PaymentRefusals, payment_repo: PaymentRepository) -> None:
        self._refusals = refusals
        self._payment_repo = payment_repo

    async def record(self, result: CommandResult, command: AnyCommand) -> None:
        """A payment refused before it had a row: its final error (may raise on an outage)."""
        error = result.error
        if result.kind != "payment" or result.payment is not None or error is None:
            return
        if error.code in _NOT_OURS:
            return
        data = command.data
        request_hash = data.request_hash if isinstance(data, ProcessPayment) else None
        await self._refusals.refuse(
            result.transaction_id, result.merchant_id, request_hash, error.code, error.message
        )

    async def note(self, refusal: CommandResult, raw: bytes | None) -> None:
        """Record a command refused outright (best effort: the message is already parked, and a
        store outage must not stop the partition)."""
        if refusal.kind != "payment" or refusal.error is None:
            return
        try:
            await self._refusals.refuse(
                refusal.transaction_id,
                refusal.merchant_id,
                request_hash(raw),
                refusal.error.code,
                refusal.error.message,
            )
        except _TRANSIENT as exc:
            log.warning("could not record a refused command (%s)", type(exc).__name__)

    async def not_stored(self, command: AnyCommand) -> CommandResult | None:
        """For a parked payment with no row: its `command_not_stored` answer, else None."""
        if not isinstance(command, ProcessPaymentV1):
            return None
        data = command.data
        try:
            if await self._payment_repo.get_payment(data.transaction_id) is not None:
                return None
        except _TRANSIENT:
            return None  # cannot tell: the row (if any) answers once the database is back
        message = "the payment could not be stored and was not processed; nothing was charged"
        return CommandResult(
            kind="payment",
            transaction_id=data.transaction_id,
            merchant_id=data.merchant_id,
            final=True,
            error=ResultError(code=NOT_STORED, message=message),
        )


def request_hash(raw: bytes | None) -> str | None:
    """The request hash an invalid payment command carries, if it carries a well-formed one."""
    try:
        data = json.loads(raw or b"").get("data")
        value = data.get("request_hash") if isinstance(data, dict) else None
    except (ValueError, RecursionError, AttributeError):
        return None
    if isinstance(value, str) and len(value) == 64 and value.isalnum():
        return value
    return None
