"""What the processor writes to Kafka: results, audit events and dead letters.

Results of the API's commands go to the `reply-partition` the waiting API instance reads (or by
key when no API is waiting); a registered producer's go to its own topic, `payments.results.
<name>`, which only it may read. Every result is signed by the processor (`kafka/signing.py`),
so the API can tell it from a forgery. Audit events are not published here: the relay publishes
the audit rows themselves (streams/audit_relay.py). A message the processor will not run goes to
`payments.dlq` with the reason in headers and its bytes without card data (`dlq.redacted`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from payment_service.config.settings import KafkaSettings
from payment_service.core.producers import API_PRODUCER
from payment_service.core.records import PaymentRecord
from payment_service.kafka.acls import results_topic_of
from payment_service.kafka.producer import AsyncProducer
from payment_service.kafka.signing import Signer
from payment_service.ops import metric_catalog as catalog
from payment_service.ops.telemetry import Metrics
from payment_service.schemas.messages import (
    HEADER_CORRELATION_ID,
    HEADER_DLQ_ERROR,
    HEADER_DLQ_ORIGIN,
    HEADER_DLQ_REASON,
    HEADER_DLQ_SOURCE,
    HEADER_REPLAY_OF,
    HEADER_REPLY_ID,
    HEADER_REPLY_PARTITION,
    PaymentResultV1,
)
from payment_service.streams.dlq import redacted, redacted_key
from payment_service.streams.payment_outcome import PaymentOutcome
from payment_service.streams.results import CommandResult, payment_result

log = logging.getLogger(__name__)


class ResultPublisher:
    """Produces results and dead letters; each call returns once acked."""

    def __init__(
        self, kafka: KafkaSettings, producer: AsyncProducer, metrics: Metrics, signer: Signer
    ) -> None:
        self._kafka = kafka
        self._producer = producer
        self._metrics = metrics
        self._signer = signer

    async def publish(
        self,
        result: CommandResult,
        headers: Mapping[str, str],
        *,
        producer: str | None = API_PRODUCER,
    ) -> None:
        """The result, signed, to its producer's destination, awaited.

        `producer` None or `api`: the API's results topic (reply partition, else by key).
        """
        reply_headers = {
            name: headers[name]
            for name in (HEADER_CORRELATION_ID, HEADER_REPLY_ID, HEADER_REPLAY_OF)
            if name in headers
        }
        if producer in (None, API_PRODUCER):
            topic = self._kafka.topic_results
            partition = _reply_partition(headers, self._kafka.results_partitions)
        else:
            topic, partition = results_topic_of(producer, self._kafka), None
        value = PaymentResultV1(data=result.message()).model_dump_json().encode()
        signed = {
            **reply_headers,
            **self._signer.result_headers(
                reply_headers.get(HEADER_REPLY_ID), result.transaction_id.encode(), value
            ),
        }
        # Its audit events are the audit rows, published by the relay (streams/audit_relay.py).
        await self._producer.produce(
            topic, value, key=result.transaction_id, headers=signed, partition=partition
        )

    async def publish_payment(self, payment: PaymentRecord) -> None:
        """Publish a payment's current state when no command asked for it (reconciliation)."""
        outcome = PaymentOutcome(payment)
        asked = payment.requested_by or ""
        # A registered producer's payment is answered on its own topic, as its command was.
        producer = asked.removeprefix("producer:") if asked.startswith("producer:") else None
        await self.publish(
            payment_result(payment.transaction_id, payment.merchant_id, outcome),
            {},
            producer=producer,
        )

    async def dead_letter(
        self,
        raw: bytes | None,
        key: str | None,
        headers: Mapping[str, str],
        reason: str,
        error: str,
        origin: str | None = None,
    ) -> None:
        """Park a message on the DLQ, its bytes and headers without card data, with the reason
        and, when known, the original's `<topic>:<partition>:<offset>` in headers."""
        log.warning("message sent to DLQ: %s (%s)", reason, error)
        self._metrics.increment(catalog.DLQ, {"reason": reason})
        value, kept = redacted(raw, headers)
        dlq_headers = {
            **kept,
            HEADER_DLQ_REASON: reason,
            HEADER_DLQ_ERROR: error[:1000],
            HEADER_DLQ_SOURCE: self._kafka.topic_requests,
            **({HEADER_DLQ_ORIGIN: origin} if origin else {}),
        }
        await self._producer.produce(
            self._kafka.topic_dlq, value, key=redacted_key(key), headers=dlq_headers
        )


def _reply_partition(headers: Mapping[str, str], partitions: int) -> int | None:
    value = headers.get(HEADER_REPLY_PARTITION)
    if value is None or not value.isdigit() or int(value) >= partitions:
        return None
    return int(value)
