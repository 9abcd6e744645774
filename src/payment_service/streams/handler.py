"""Handle one message from `payments.requests`: parse it, run its flow, publish its result.

A message that is not a valid command is dead-lettered; it never reaches the bank and never stops
the processor. When it still names its payment (type, transaction and merchant ids), it is also
answered with a final `invalid_command` error result, so a caller waiting for it (the API) gets an
answer instead of "processing" (a NUL in a description used to end that way: PostgreSQL refuses
it, and nothing else ever answered). An outage of our own stores (PostgreSQL, Redis, Kafka) is
retried for a while, then raised so that the offset is not committed; any other failure parks the
message on the DLQ, and a payment it left without a row is answered `command_not_stored` (nothing
reached the bank: the claim comes first). Every payment refused before it had a row has its final
error recorded (`PaymentRefusals`, beside the API's "accepted" marker), so that GET and a replay
answer it too, not only the request still waiting: accepted means it ends.

Each message runs in its own asyncio task (`sink.py`), so the ids bound here for its log lines
(correlation, transaction, merchant, refund, command type) are its own, however many run at once.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import TypeAdapter, ValidationError

from payment_service.core.errors import StorageUnavailable, VaultUnavailable
from payment_service.core.ports import PaymentRefusals, PaymentRepository
from payment_service.kafka.producer import ProduceFailed
from payment_service.ops import metric_catalog as catalog
from payment_service.ops.logcontext import bind
from payment_service.ops.telemetry import Metrics, span
from payment_service.schemas.messages import (
    HEADER_CORRELATION_ID,
    Id,
    ProcessPayment,
    ProcessPaymentV1,
    RefundPaymentV1,
    ResultError,
    parse_command,
)
from payment_service.streams.commands import new_payment, new_refund
from payment_service.streams.payments import PaymentFlow
from payment_service.streams.publisher import ResultPublisher
from payment_service.streams.refunds import RefundFlow
from payment_service.streams.results import CommandResult, payment_result, refund_result

log = logging.getLogger(__name__)

# Outages of PostgreSQL, Redis or Kafka: the work is repeatable, so it waits and repeats.
TRANSIENT: tuple[type[Exception], ...] = (StorageUnavailable, VaultUnavailable, ProduceFailed)
INVALID_COMMAND = "invalid_command"
NOT_STORED = "command_not_stored"
# A refusal that names another request's payment: nothing of this command's to record.
_NOT_OURS = frozenset({"idempotency_key_reused"})
_KINDS: dict[object, Literal["payment", "refund"]] = {
    "payment.process/v1": "payment",
    "payment.refund/v1": "refund",
}
_ID_ADAPTER: TypeAdapter[str] = TypeAdapter(Id)


class CommandHandler:
    def __init__(
        self,
        publisher: ResultPublisher,
        payments: PaymentFlow,
        refunds: RefundFlow,
        payment_repo: PaymentRepository,
        metrics: Metrics,
        *,
        refusals: PaymentRefusals,
        tracing: bool,
        transient_retry_seconds: float = 60.0,
    ) -> None:
        self._refusals = refusals
        self._publisher = publisher
        self._payments = payments
        self._refunds = refunds
        self._payment_repo = payment_repo
        self._metrics = metrics
        self._tracing = tracing
        self._transient_retry_seconds = transient_retry_seconds

    async def handle(self, raw: bytes | None, key: str | None, headers: Mapping[str, str]) -> None:
        """Process one message to completion: its effects are durable when this returns."""
        correlation_id = headers.get(HEADER_CORRELATION_ID)
        bind(correlation_id=correlation_id, transaction_id=key)
        try:
            command = parse_command(raw or b"")
        except ValidationError as exc:
            summary = _summary(exc)
            await self._publisher.dead_letter(raw, key, headers, INVALID_COMMAND, summary)
            refusal = refused(raw, summary)
            if refusal is not None:
                await self._answer_refusal(refusal, _request_hash(raw), headers, correlation_id)
            return
        bind(
            command=command.type,
            transaction_id=command.data.transaction_id,
            merchant_id=command.data.merchant_id,
            refund_id=command.data.refund_id if isinstance(command, RefundPaymentV1) else None,
        )
        started = time.perf_counter()
        with span(
            "payment.command",
            resource=command.type,
            headers=headers,
            enabled=self._tracing,
            transaction_id=command.data.transaction_id,
            merchant_id=command.data.merchant_id,
        ):
            try:
                result = await self._with_retries(command, headers, correlation_id)
            except TRANSIENT:
                raise  # past its retry deadline: stop, and let redelivery try again
            except Exception as exc:
                # A bug or a message we cannot handle: park it rather than crash on it forever.
                # A payment it left unsettled is settled by the reconciler from the bank's record.
                log.exception("processing failed; message parked on the DLQ")
                await self._publisher.dead_letter(
                    raw, key, headers, "processing_failed", type(exc).__name__
                )
                await self._not_stored(command, headers, correlation_id)
                return
            outcome = result.error.code if result.error else result.status or "unknown"
            elapsed = (time.perf_counter() - started) * 1000
            # The processor's access log: one line per command, inside its span and context.
            log.info(
                "%s processed: %s",
                command.type,
                outcome,
                extra={"final": result.final, "duration_ms": round(elapsed, 1)},
            )
        tags = {"kind": result.kind, "outcome": outcome, "final": str(result.final).lower()}
        self._metrics.increment(catalog.PROCESSED, tags)
        self._metrics.timing(catalog.PROCESS_DURATION, elapsed, tags)

    async def _with_retries(
        self,
        command: ProcessPaymentV1 | RefundPaymentV1,
        headers: Mapping[str, str],
        correlation_id: str | None,
    ) -> CommandResult:
        """Run and publish; on a transient outage of our own stores, wait and run it again.

        Safe because every step is idempotent (claims, compare-and-set, bank keys). Past the
        deadline the error propagates: the checkpoint fails and the message is redelivered.
        """
        deadline = time.monotonic() + self._transient_retry_seconds
        delay = 0.2
        while True:
            try:
                result = await self._execute(command, correlation_id)
                await self._record_refusal(result, command)
                await self._publisher.publish(result, headers, correlation_id)
                return result
            except TRANSIENT as exc:
                if time.monotonic() + delay > deadline:
                    raise
                log.warning("transient error (%s); retrying in %.1fs", type(exc).__name__, delay)
                self._metrics.increment(catalog.TRANSIENT_RETRIES, {"error": type(exc).__name__})
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _record_refusal(
        self, result: CommandResult, command: ProcessPaymentV1 | RefundPaymentV1
    ) -> None:
        """A payment refused before it had a row: its final error, for GET and replays."""
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

    async def _answer_refusal(
        self,
        refusal: CommandResult,
        request_hash: str | None,
        headers: Mapping[str, str],
        correlation_id: str | None,
    ) -> None:
        """Record and publish the final error of a command refused outright (best effort: the
        message is already parked, and a store outage must not stop the partition)."""
        try:
            if refusal.kind == "payment" and refusal.error is not None:
                await self._refusals.refuse(
                    refusal.transaction_id,
                    refusal.merchant_id,
                    request_hash,
                    refusal.error.code,
                    refusal.error.message,
                )
            await self._publisher.publish(refusal, headers, correlation_id)
        except TRANSIENT as exc:
            log.warning("could not answer a refused command (%s)", type(exc).__name__)

    async def _not_stored(
        self,
        command: ProcessPaymentV1 | RefundPaymentV1,
        headers: Mapping[str, str],
        correlation_id: str | None,
    ) -> None:
        """A parked payment with no row: answer it `command_not_stored` (it never reached the
        bank). With a row, the row answers, and the reconciler settles it from the bank."""
        if not isinstance(command, ProcessPaymentV1):
            return
        data = command.data
        try:
            if await self._payment_repo.get_payment(data.transaction_id) is not None:
                return
        except TRANSIENT:
            return  # cannot tell: the row (if any) answers once the database is back
        message = "the payment could not be stored and was not processed; nothing was charged"
        result = CommandResult(
            kind="payment",
            transaction_id=data.transaction_id,
            merchant_id=data.merchant_id,
            final=True,
            error=ResultError(code=NOT_STORED, message=message),
        )
        await self._answer_refusal(result, data.request_hash, headers, correlation_id)

    async def _execute(
        self, command: ProcessPaymentV1 | RefundPaymentV1, correlation_id: str | None
    ) -> CommandResult:
        if isinstance(command, ProcessPaymentV1):
            payment_cmd = command.data
            outcome = await self._payments.run(new_payment(payment_cmd), correlation_id)
            return payment_result(payment_cmd.transaction_id, payment_cmd.merchant_id, outcome)
        refund = command.data
        refunded = await self._refunds.run(new_refund(refund), correlation_id)
        # The payment as it stands after the refund, with the refund listed.
        payment = (
            None
            if refunded.error_code
            else await self._payment_repo.get_payment(refund.transaction_id)
        )
        return refund_result(
            refund.transaction_id, refund.merchant_id, refund.refund_id, refunded, payment
        )


def refused(raw: bytes | None, summary: str) -> CommandResult | None:
    """The final error result for an invalid command that names its payment, else None."""
    try:
        envelope: Any = json.loads(raw or b"")
    except (ValueError, RecursionError):
        return None
    data = envelope.get("data") if isinstance(envelope, dict) else None
    kind = _KINDS.get(envelope.get("type")) if isinstance(data, dict) else None
    if kind is None or not isinstance(data, dict):
        return None
    names = ("transaction_id", "merchant_id", *(("refund_id",) if kind == "refund" else ()))
    try:
        ids = {name: _ID_ADAPTER.validate_python(data.get(name), strict=True) for name in names}
    except ValidationError:
        return None  # not a payment anyone can be waiting for
    return CommandResult(
        kind=kind,
        transaction_id=ids["transaction_id"],
        merchant_id=ids["merchant_id"],
        refund_id=ids.get("refund_id"),
        final=True,
        error=ResultError(code=INVALID_COMMAND, message=f"the command was refused: {summary}"),
    )


def _request_hash(raw: bytes | None) -> str | None:
    """The request hash an invalid payment command carries, if it carries a well-formed one."""
    try:
        data = json.loads(raw or b"").get("data")
        value = data.get("request_hash") if isinstance(data, dict) else None
    except (ValueError, RecursionError, AttributeError):
        return None
    if isinstance(value, str) and len(value) == 64 and value.isalnum():
        return value
    return None


def _summary(exc: ValidationError) -> str:
    """Validation errors without input values: a message may carry card data."""
    parts = [
        f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
        for e in exc.errors(include_input=False, include_url=False, include_context=False)
    ]
    return "; ".join(parts[:10])
