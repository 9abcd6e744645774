"""Handle one message from `payments.requests`: verify it, parse it, run its flow, publish.

Step 1 is who sent it (`authorize.CommandGate`): an unsigned or badly signed command, one from an
unknown or revoked producer, or one for a merchant or command type its producer is not allowed,
is refused before anything else happens: no bank call, no row. It is dead-lettered (without card
data), counted (`commands.refused`), logged, and answered with a final error result on its
producer's destination when it names its payment.

A message that is not a valid command is dead-lettered; it never reaches the bank and never stops
the processor. When it still names its payment (type, transaction and merchant ids), it is also
answered with a final `invalid_command` error result, so a caller waiting for it (the API) gets an
answer instead of "processing" (a NUL in a description used to end that way: PostgreSQL refuses
it, and nothing else ever answered). An outage of our own stores (PostgreSQL, Redis, Kafka) is
retried for a while, then raised so that the offset is not committed; any other failure parks the
message on the DLQ. Payments refused before they had a row keep their final error for GET and
replays (`refusal_notes.py`).

Each message runs in its own asyncio task (`sink.py`), so the ids bound here for its log lines
(correlation, transaction, merchant, refund, command type) are its own, however many run at once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import TypeVar

from pydantic import ValidationError

from payment_service.core.errors import StorageUnavailable, VaultUnavailable
from payment_service.core.ports import PaymentRepository
from payment_service.core.producers import (
    API_PRODUCER,
    PRODUCER_NOT_AUTHORIZED,
    Refusal,
    actor_of,
)
from payment_service.core.refusal_ports import PaymentRefusals
from payment_service.kafka.producer import ProduceFailed
from payment_service.ops import metric_catalog as catalog
from payment_service.ops import step_timing
from payment_service.ops.logcontext import bind
from payment_service.ops.telemetry import Metrics, span
from payment_service.schemas.messages import (
    HEADER_CORRELATION_ID,
    AnyCommand,
    CancelPaymentV1,
    CapturePaymentV1,
    ProcessPaymentV1,
    RefundPaymentV1,
    parse_command,
)
from payment_service.streams.authorize import CommandGate, Verified
from payment_service.streams.captures import CaptureFlow
from payment_service.streams.commands import capture_request, new_payment, new_refund
from payment_service.streams.dlq import redacted_key
from payment_service.streams.payments import PaymentFlow
from payment_service.streams.publisher import ResultPublisher
from payment_service.streams.refunds import RefundFlow
from payment_service.streams.refusal_notes import RefusalNotes
from payment_service.streams.refusals import KINDS, refused, summary
from payment_service.streams.results import CommandResult, payment_result, refund_result

log = logging.getLogger(__name__)

# Outages of PostgreSQL, Redis or Kafka: the work is repeatable, so it waits and repeats.
TRANSIENT: tuple[type[Exception], ...] = (StorageUnavailable, VaultUnavailable, ProduceFailed)
INVALID_COMMAND = "invalid_command"
T = TypeVar("T")


class CommandHandler:
    def __init__(
        self,
        publisher: ResultPublisher,
        payments: PaymentFlow,
        refunds: RefundFlow,
        payment_repo: PaymentRepository,
        metrics: Metrics,
        gate: CommandGate,
        *,
        captures: CaptureFlow,
        refusals: PaymentRefusals,
        tracing: bool,
        transient_retry_seconds: float = 60.0,
    ) -> None:
        self._gate = gate
        self._notes = RefusalNotes(refusals, payment_repo)
        self._captures = captures
        self._publisher = publisher
        self._payments = payments
        self._refunds = refunds
        self._payment_repo = payment_repo
        self._metrics = metrics
        self._tracing = tracing
        self._transient_retry_seconds = transient_retry_seconds

    async def handle(
        self,
        raw: bytes | None,
        key: str | None,
        headers: Mapping[str, str],
        origin: str | None = None,
    ) -> None:
        """Process one message to completion: its effects are durable when this returns.

        `origin` (`<topic>:<partition>:<offset>`) goes onto a dead letter, to find the original by.
        """
        correlation_id = headers.get(HEADER_CORRELATION_ID)
        # The key is unverified bytes yet (a producer may key junk by a card number, any layout).
        bind(correlation_id=redacted_key(correlation_id), transaction_id=redacted_key(key))
        # Step 1: who signed it, before anything else reads it.
        checked = await self._with_store_retries(
            lambda: self._gate.check((key or "").encode(), raw or b"", headers)
        )
        if isinstance(checked, Refusal):
            await self._refuse(raw, key, headers, checked, origin)
            return
        producer = checked.producer.name
        try:
            command = parse_command(raw or b"")
        except ValidationError as exc:
            what = summary(exc)
            await self._publisher.dead_letter(raw, key, headers, INVALID_COMMAND, what, origin)
            refusal = refused(raw, INVALID_COMMAND, f"the command was refused: {what}")
            if refusal is not None:
                await self._notes.note(refusal, raw)
                await self._publish_refusal(refusal, headers, producer)
            return
        # Step 2: may this producer send this command for this merchant?
        not_allowed = self._not_allowed(checked, command)
        if not_allowed is not None:
            await self._refuse(raw, key, headers, not_allowed, origin)
            return
        actor = actor_of(producer, command.data.requested_by)
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
                result = await self._with_retries(
                    command, headers, correlation_id, producer=producer, actor=actor
                )
            except TRANSIENT:
                raise  # past its retry deadline: stop, and let redelivery try again
            except Exception as exc:
                # A bug or a message we cannot handle: park it rather than crash on it forever.
                # A payment it left unsettled is settled by the reconciler from the bank's record.
                log.exception("processing failed; message parked on the DLQ")
                await self._publisher.dead_letter(
                    raw, key, headers, "processing_failed", type(exc).__name__, origin
                )
                unstored = await self._notes.not_stored(command)
                if unstored is not None:
                    await self._notes.note(unstored, raw)
                    await self._publish_refusal(unstored, headers, producer)
                return
            outcome = result.error.code if result.error else result.status or "unknown"
            elapsed = (time.perf_counter() - started) * 1000
            # The processor's access log: one line per command, inside its span and context.
            log.info(
                "%s processed: %s",
                command.type,
                outcome,
                extra={
                    "final": result.final,
                    "duration_ms": round(elapsed, 1),
                    "steps_ms": step_timing.current(),
                },
            )
        tags = {"kind": result.kind, "outcome": outcome, "final": str(result.final).lower()}
        self._metrics.increment(catalog.PROCESSED, tags)
        self._metrics.timing(catalog.PROCESS_DURATION, elapsed, tags)

    def _not_allowed(self, verified: Verified, command: AnyCommand) -> Refusal | None:
        if verified.producer.name != API_PRODUCER and command.data.requested_by is not None:
            message = "only the API may name requested_by"
            return Refusal(PRODUCER_NOT_AUTHORIZED, message, verified.producer.name)
        kind = KINDS[command.type]
        return self._gate.allowed(verified, kind, command.data.merchant_id)

    async def _refuse(
        self,
        raw: bytes | None,
        key: str | None,
        headers: Mapping[str, str],
        refusal: Refusal,
        origin: str | None,
    ) -> None:
        """A refused command: DLQ, metric, log line, and a final error result to the registered
        producer it names, if any (unsigned, or from an unknown producer: no one to tell)."""
        name = refusal.answer_to
        producer_tag = name or "unregistered"
        log.warning(
            "command refused: %s (%s)",
            refusal.code,
            refusal.message,
            extra={"producer": producer_tag, "refusal": refusal.code},
        )
        self._metrics.increment(
            catalog.COMMANDS_REFUSED, {"code": refusal.code, "producer": producer_tag}
        )
        await self._publisher.dead_letter(raw, key, headers, refusal.code, refusal.message, origin)
        answer = refused(raw, refusal.code, f"the command was refused: {refusal.message}")
        if answer is not None and name:
            await self._notes.note(answer, raw)
            await self._publish_refusal(answer, headers, name)

    async def _publish_refusal(
        self, answer: CommandResult, headers: Mapping[str, str], producer: str
    ) -> None:
        """Answer a refused command to its producer (best effort: it is parked already)."""
        try:
            await self._publisher.publish(answer, headers, producer=producer)
        except ProduceFailed:
            # The dead letter is written; a lost answer to a refused command must not stop
            # the processor (the producer's topic may be gone, e.g. deleted after revoking).
            log.warning("the refusal could not be answered to producer %s", producer)

    async def _with_store_retries(self, step: Callable[[], Awaitable[T]]) -> T:
        """`step()`, repeated on an outage of our own stores until the retry deadline."""
        deadline = time.monotonic() + self._transient_retry_seconds
        delay = 0.2
        while True:
            try:
                return await step()
            except TRANSIENT as exc:
                if time.monotonic() + delay > deadline:
                    raise
                log.warning("transient error (%s); retrying in %.1fs", type(exc).__name__, delay)
                self._metrics.increment(catalog.TRANSIENT_RETRIES, {"error": type(exc).__name__})
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _with_retries(
        self,
        command: AnyCommand,
        headers: Mapping[str, str],
        correlation_id: str | None,
        *,
        producer: str,
        actor: str,
    ) -> CommandResult:
        """Run and publish; on a transient outage of our own stores, wait and run it again.

        Safe because every step is idempotent (claims, compare-and-set, bank keys). Past the
        deadline the error propagates: the checkpoint fails and the message is redelivered.
        """

        async def run_and_publish() -> CommandResult:
            result = await self._execute(command, correlation_id, actor)
            await self._notes.record(result, command)
            await self._publisher.publish(result, headers, producer=producer)
            return result

        return await self._with_store_retries(run_and_publish)

    async def _execute(
        self, command: AnyCommand, correlation_id: str | None, actor: str
    ) -> CommandResult:
        if isinstance(command, CapturePaymentV1 | CancelPaymentV1):
            request = capture_request(command.data)
            if isinstance(command, CapturePaymentV1):
                captured = await self._captures.capture(request, correlation_id)
            else:
                captured = await self._captures.cancel(request, correlation_id)
            return payment_result(request.transaction_id, request.merchant_id, captured)
        if isinstance(command, ProcessPaymentV1):
            payment_cmd = command.data
            outcome = await self._payments.run(new_payment(payment_cmd, actor), correlation_id)
            return payment_result(payment_cmd.transaction_id, payment_cmd.merchant_id, outcome)
        refund = command.data
        refunded = await self._refunds.run(new_refund(refund, actor), correlation_id)
        # The payment as it stands after the refund, with the refund listed.
        payment = (
            None
            if refunded.error_code
            else await self._payment_repo.get_payment(refund.transaction_id)
        )
        return refund_result(
            refund.transaction_id, refund.merchant_id, refund.refund_id, refunded, payment
        )
