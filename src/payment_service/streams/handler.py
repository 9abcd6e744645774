"""Handle one message from `payments.requests`: parse, run its flow, publish result and audit.

A message that is not a valid command goes to `payments.dlq` with its original bytes and the
reason in headers; it never reaches the bank and never stops the processor. Results go to the
`reply-partition` the waiting API instance reads (or by key when no API is waiting).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Mapping

from pydantic import ValidationError

from payment_service.app.config import KafkaSettings
from payment_service.app.telemetry import Metrics, span
from payment_service.cards.errors import VaultUnavailable
from payment_service.kafka.producer import AsyncProducer, ProduceFailed
from payment_service.schemas.messages import (
    HEADER_CORRELATION_ID,
    HEADER_DLQ_ERROR,
    HEADER_DLQ_REASON,
    HEADER_DLQ_SOURCE,
    HEADER_REPLY_ID,
    HEADER_REPLY_PARTITION,
    AuditEvent,
    AuditEventV1,
    PaymentResult,
    PaymentResultV1,
    ProcessPaymentV1,
    RefundPaymentV1,
    ResultError,
    parse_command,
)
from payment_service.storage.errors import StorageUnavailable
from payment_service.storage.payments import PgPaymentRepository
from payment_service.storage.records import PaymentRecord
from payment_service.streams.payments import PaymentFlow, PaymentOutcome
from payment_service.streams.refunds import RefundFlow, RefundOutcome

log = logging.getLogger(__name__)

# Outages of PostgreSQL, Redis or Kafka: the work is repeatable, so it waits and repeats.
TRANSIENT: tuple[type[Exception], ...] = (StorageUnavailable, VaultUnavailable, ProduceFailed)


class CommandHandler:
    def __init__(
        self,
        kafka: KafkaSettings,
        producer: AsyncProducer,
        payments: PaymentFlow,
        refunds: RefundFlow,
        payment_repo: PgPaymentRepository,
        metrics: Metrics,
        *,
        tracing: bool,
        transient_retry_seconds: float = 60.0,
    ) -> None:
        self._transient_retry_seconds = transient_retry_seconds
        self._metrics = metrics
        self._tracing = tracing
        self._kafka = kafka
        self._producer = producer
        self._payments = payments
        self._refunds = refunds
        self._payment_repo = payment_repo

    async def handle(self, raw: bytes | None, key: str | None, headers: Mapping[str, str]) -> None:
        """Process one message to completion: its effects are durable when this returns."""
        correlation_id = headers.get(HEADER_CORRELATION_ID)
        try:
            command = parse_command(raw or b"")
        except ValidationError as exc:
            await self.dead_letter(raw, key, headers, "invalid_command", _summary(exc))
            return
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
                await self.dead_letter(raw, key, headers, "processing_failed", type(exc).__name__)
                return
        outcome = result.error.code if result.error else _status(result)
        tags = {"kind": result.kind, "outcome": outcome, "final": str(result.final).lower()}
        self._metrics.increment("processed", tags)
        self._metrics.timing("process.duration_ms", (time.perf_counter() - started) * 1000, tags)

    async def _with_retries(
        self,
        command: ProcessPaymentV1 | RefundPaymentV1,
        headers: Mapping[str, str],
        correlation_id: str | None,
    ) -> PaymentResult:
        """Run and publish; on a transient outage of our own stores, wait and run it again.

        Safe because every step is idempotent (claims, compare-and-set, bank keys). Past the
        deadline the error propagates: the checkpoint fails and the message is redelivered.
        """
        deadline = time.monotonic() + self._transient_retry_seconds
        delay = 0.2
        while True:
            try:
                result = await self._execute(command, correlation_id)
                await self._publish(result, headers, correlation_id)
                return result
            except TRANSIENT as exc:
                if time.monotonic() + delay > deadline:
                    raise
                log.warning("transient error (%s); retrying in %.1fs", type(exc).__name__, delay)
                self._metrics.increment("transient_retries", {"error": type(exc).__name__})
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _execute(
        self, command: ProcessPaymentV1 | RefundPaymentV1, correlation_id: str | None
    ) -> PaymentResult:
        if isinstance(command, ProcessPaymentV1):
            outcome = await self._payments.run(command.data, correlation_id)
            return _payment_result(command.data.transaction_id, command.data.merchant_id, outcome)
        data = command.data
        refund_outcome = await self._refunds.run(data, correlation_id)
        result = await self._refund_result(data.transaction_id, data.merchant_id, refund_outcome)
        if result.refund_id is None:
            result = result.model_copy(update={"refund_id": data.refund_id})
        return result

    async def publish_payment(self, payment: PaymentRecord) -> None:
        """Publish a payment's current state when no command asked for it (reconciliation)."""
        outcome = PaymentOutcome(payment)
        result = _payment_result(payment.transaction_id, payment.merchant_id, outcome)
        await self._publish(result, {}, None)

    async def _refund_result(
        self, transaction_id: str, merchant_id: str, outcome: RefundOutcome
    ) -> PaymentResult:
        error = (
            ResultError(code=outcome.error_code, message=outcome.error_message or "")
            if outcome.error_code
            else None
        )
        # The payment as it stands after the refund, with the refund listed.
        payment = None if error else await self._payment_repo.get_payment(transaction_id)
        return PaymentResult(
            transaction_id=transaction_id,
            merchant_id=merchant_id,
            refund_id=outcome.refund.refund_id if outcome.refund else None,
            kind="refund",
            final=outcome.final,
            payment=payment.to_view().model_dump(mode="json") if payment else None,
            refund=outcome.refund.to_view().model_dump(mode="json") if outcome.refund else None,
            error=error,
        )

    async def _publish(
        self, result: PaymentResult, headers: Mapping[str, str], correlation_id: str | None
    ) -> None:
        reply_headers = {
            name: headers[name]
            for name in (HEADER_CORRELATION_ID, HEADER_REPLY_ID)
            if name in headers
        }
        partition = _reply_partition(headers, self._kafka.results_partitions)
        status = (result.payment or {}).get("status")
        audit = AuditEvent(
            event_id=str(uuid.uuid4()),
            transaction_id=result.transaction_id,
            refund_id=result.refund_id,
            merchant_id=result.merchant_id,
            action=f"{result.kind}.{result.error.code if result.error else 'processed'}",
            to_status=(result.refund or {}).get("status") if result.kind == "refund" else status,
            correlation_id=correlation_id,
            details={"final": result.final},
        )
        # Both are awaited before the offset can commit; in flight together, they cost one wait.
        await asyncio.gather(
            self._producer.produce(
                self._kafka.topic_results,
                PaymentResultV1(data=result).model_dump_json().encode(),
                key=result.transaction_id,
                headers=reply_headers,
                partition=partition,
            ),
            self._producer.produce(
                self._kafka.topic_audit,
                AuditEventV1(data=audit).model_dump_json().encode(),
                key=result.transaction_id,
                headers=reply_headers,
            ),
        )

    async def dead_letter(
        self,
        raw: bytes | None,
        key: str | None,
        headers: Mapping[str, str],
        reason: str,
        error: str,
    ) -> None:
        """Park a message on the DLQ with its original bytes and the reason in headers."""
        log.warning("message sent to DLQ: %s (%s)", reason, error)
        self._metrics.increment("dlq", {"reason": reason})
        dlq_headers = {
            **headers,
            HEADER_DLQ_REASON: reason,
            HEADER_DLQ_ERROR: error[:1000],
            HEADER_DLQ_SOURCE: self._kafka.topic_requests,
        }
        await self._producer.produce(
            self._kafka.topic_dlq, raw or b"", key=key, headers=dlq_headers
        )


def _payment_result(
    transaction_id: str, merchant_id: str, outcome: PaymentOutcome
) -> PaymentResult:
    error = (
        ResultError(code=outcome.error_code, message=outcome.error_message or "")
        if outcome.error_code
        else None
    )
    return PaymentResult(
        transaction_id=transaction_id,
        merchant_id=merchant_id,
        kind="payment",
        final=outcome.final,
        payment=outcome.payment.to_view().model_dump(mode="json") if outcome.payment else None,
        error=error,
    )


def _status(result: PaymentResult) -> str:
    view = result.refund if result.kind == "refund" else result.payment
    return str((view or {}).get("status", "unknown"))


def _reply_partition(headers: Mapping[str, str], partitions: int) -> int | None:
    value = headers.get(HEADER_REPLY_PARTITION)
    if value is None or not value.isdigit() or int(value) >= partitions:
        return None
    return int(value)


def _summary(exc: ValidationError) -> str:
    """Validation errors without input values: a message may carry card data."""
    parts = [
        f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
        for e in exc.errors(include_input=False, include_url=False, include_context=False)
    ]
    return "; ".join(parts[:10])
