"""What the processor writes to Kafka: results, audit events and dead letters.

Results go to the `reply-partition` the waiting API instance reads (or by key when no API is
waiting); the audit event of each result goes to `payments.audit`. A message that is not a valid
command goes to `payments.dlq` with its original bytes and the reason in headers.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Mapping

from payment_service.config.settings import KafkaSettings
from payment_service.core.records import PaymentRecord
from payment_service.kafka.producer import AsyncProducer
from payment_service.ops import metric_catalog as catalog
from payment_service.ops.telemetry import Metrics
from payment_service.schemas.messages import (
    HEADER_CORRELATION_ID,
    HEADER_DLQ_ERROR,
    HEADER_DLQ_REASON,
    HEADER_DLQ_SOURCE,
    HEADER_REPLAY_OF,
    HEADER_REPLY_ID,
    HEADER_REPLY_PARTITION,
    AuditEvent,
    AuditEventV1,
    PaymentResultV1,
)
from payment_service.streams.payments import PaymentOutcome
from payment_service.streams.results import CommandResult, payment_result

log = logging.getLogger(__name__)


class ResultPublisher:
    """Produces results, their audit events and dead letters; each call returns once acked."""

    def __init__(self, kafka: KafkaSettings, producer: AsyncProducer, metrics: Metrics) -> None:
        self._kafka = kafka
        self._producer = producer
        self._metrics = metrics

    async def publish(
        self, result: CommandResult, headers: Mapping[str, str], correlation_id: str | None
    ) -> None:
        """The result to its reply partition and its audit event, both awaited."""
        reply_headers = {
            name: headers[name]
            for name in (HEADER_CORRELATION_ID, HEADER_REPLY_ID, HEADER_REPLAY_OF)
            if name in headers
        }
        partition = _reply_partition(headers, self._kafka.results_partitions)
        action = result.error.code if result.error else "processed"
        audit = AuditEvent(
            event_id=str(uuid.uuid4()),
            transaction_id=result.transaction_id,
            refund_id=result.refund_id,
            merchant_id=result.merchant_id,
            action=f"{result.kind}.{action}",
            to_status=result.status,
            correlation_id=correlation_id,
            details={"final": result.final},
        )
        # Both are awaited before the offset can commit; in flight together, they cost one wait.
        await asyncio.gather(
            self._producer.produce(
                self._kafka.topic_results,
                PaymentResultV1(data=result.message()).model_dump_json().encode(),
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

    async def publish_payment(self, payment: PaymentRecord) -> None:
        """Publish a payment's current state when no command asked for it (reconciliation)."""
        outcome = PaymentOutcome(payment)
        await self.publish(
            payment_result(payment.transaction_id, payment.merchant_id, outcome), {}, None
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
        self._metrics.increment(catalog.DLQ, {"reason": reason})
        dlq_headers = {
            **headers,
            HEADER_DLQ_REASON: reason,
            HEADER_DLQ_ERROR: error[:1000],
            HEADER_DLQ_SOURCE: self._kafka.topic_requests,
        }
        await self._producer.produce(
            self._kafka.topic_dlq, raw or b"", key=key, headers=dlq_headers
        )


def _reply_partition(headers: Mapping[str, str], partitions: int) -> int | None:
    value = headers.get(HEADER_REPLY_PARTITION)
    if value is None or not value.isdigit() or int(value) >= partitions:
        return None
    return int(value)
