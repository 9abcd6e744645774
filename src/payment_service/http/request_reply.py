"""Request/reply over Kafka: produce a command, then await its result on our own partition.

The command carries `reply-partition` (this instance's partition of `payments.results`),
`reply-id` (fresh per HTTP request), `correlation-id` and the API's signature as producer `api`
(`producer-id`, `signed-at`, `signature`: `kafka/signing.py`); the waiter is registered, with
the ids a result must name, before the command is produced, so no result can arrive unseen.
Kafka not acknowledging the command is `NotAccepted` (503); no result within the sync timeout
is None (the caller answers 202). Each wait is measured: `api.replies` and `api.reply_wait_ms`,
by outcome (result, timeout, not_accepted).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable

from payment_service.core.errors import NotAccepted
from payment_service.http.replies import Expected, ReplyRouter
from payment_service.kafka.producer import AsyncProducer, ProduceFailed
from payment_service.kafka.signing import Signer
from payment_service.ops import metric_catalog as catalog
from payment_service.ops.telemetry import Metrics, inject_trace
from payment_service.schemas.messages import (
    HEADER_CORRELATION_ID,
    HEADER_MERCHANT_ID,
    HEADER_REPLY_ID,
    HEADER_REPLY_PARTITION,
    PaymentResult,
)

# A late acknowledgement is not a refusal: the broker may hold the command after all.
NOT_ACKNOWLEDGED = (
    "the outcome of this request is unknown: Kafka did not acknowledge it in time, so it may or "
    "may not be processed; retry with the same Idempotency-Key to learn it (never charged twice)"
)


class RequestReply:
    """Sends commands to `topic` and waits up to `timeout_seconds` for each one's result."""

    def __init__(
        self,
        producer: AsyncProducer,
        replies: ReplyRouter,
        signer: Signer,
        *,
        topic: str,
        timeout_seconds: float,
        tracing: bool,
        metrics: Metrics | None = None,
    ) -> None:
        self._metrics = metrics
        self._producer = producer
        self._replies = replies
        self._signer = signer
        self._topic = topic
        self._timeout = timeout_seconds
        self._tracing = tracing

    async def send(
        self,
        message: bytes,
        transaction_id: str,
        correlation_id: str,
        *,
        merchant_id: str,
        kind: str = "payment",
        refund_id: str | None = None,
        on_accepted: Callable[[], Awaitable[None]] | None = None,
    ) -> PaymentResult | None:
        """Produce a signed command and wait for its result; NotAccepted when Kafka did not ack.

        `on_accepted` runs once Kafka has acknowledged the command, before the wait.
        """
        started = time.perf_counter()
        reply_id = str(uuid.uuid4())
        self._replies.expect(reply_id, Expected(transaction_id, merchant_id, refund_id))
        headers = {
            HEADER_CORRELATION_ID: correlation_id,
            HEADER_REPLY_ID: reply_id,
            HEADER_REPLY_PARTITION: str(self._replies.partition),
            **self._signer.command_headers(transaction_id.encode(), message),
            HEADER_MERCHANT_ID: merchant_id,
        }
        if self._tracing:
            inject_trace(headers)
        try:
            await self._producer.produce(self._topic, message, key=transaction_id, headers=headers)
        except ProduceFailed:
            self._replies.forget(reply_id)
            self._measure(kind, "not_accepted", started)
            raise NotAccepted(NOT_ACKNOWLEDGED) from None
        if on_accepted is not None:
            await on_accepted()
        result = await self._replies.wait(reply_id, self._timeout)
        self._measure(kind, "timeout" if result is None else "result", started)
        return result

    def _measure(self, kind: str, outcome: str, started: float) -> None:
        if self._metrics is not None:
            tags = {"kind": kind, "outcome": outcome}
            self._metrics.increment(catalog.API_REPLIES, tags)
            waited = (time.perf_counter() - started) * 1000
            self._metrics.timing(catalog.API_REPLY_WAIT, waited, tags)
