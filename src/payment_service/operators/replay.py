"""`ops replay` (and `ops dlq redrive`): select commands, predict, and re-produce them unchanged.

1. Select: scan `requests` or the DLQ (operators/messages.py) with the selectors.
2. Dry run (the default): evaluate each command against the current database and the bank's
   record with the processor's own step functions (`core.decisions`); no bank call that moves
   money (the simulator's ledger, or a status inquiry), no write (a read-only repository read).
3. `--execute`: re-produce each selected command with its original bytes, key and headers
   (signature included, so it still verifies) plus `replay-of: <topic>:<partition>:<offset>`;
   DLQ headers (`dlq-*`) are dropped. A redrive re-produces the letters' originals
   (operators/dlq.originals), never the redacted letters. Then read the results topic for the
   results that carry those `replay-of` headers, until each has its result or the wait is over.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from confluent_kafka import Consumer, Producer, TopicPartition
from pydantic import ValidationError

from payment_service.config.settings import DatabaseSettings, KafkaSettings
from payment_service.core.decisions import (
    VERDICTS,
    Prediction,
    predict_capture,
    predict_payment,
    predict_refund,
)
from payment_service.core.ports import PaymentRepository
from payment_service.core.states import RefundStatus
from payment_service.kafka.security import client_config
from payment_service.operators import db
from payment_service.operators.bank import BankRecord
from payment_service.operators.messages import Bound, Message, partitions_of, scan
from payment_service.schemas.messages import (
    HEADER_DLQ_ERROR,
    HEADER_DLQ_ORIGIN,
    HEADER_DLQ_REASON,
    HEADER_DLQ_SOURCE,
    HEADER_REPLAY_OF,
    AnyCommand,
    CancelPaymentV1,
    CapturePaymentV1,
    ProcessPaymentV1,
    RefundPaymentV1,
    parse_command,
)

PRODUCE_TIMEOUT_SECONDS: Final = 30.0
_DLQ_HEADERS: Final = frozenset(
    {HEADER_DLQ_REASON, HEADER_DLQ_ERROR, HEADER_DLQ_SOURCE, HEADER_DLQ_ORIGIN}
)


@dataclass(frozen=True)
class Selector:
    """Which messages: each field None selects all."""

    start: Bound | None = None
    end: Bound | None = None
    partitions: Sequence[int] | None = None
    transaction_id: str | None = None
    merchant_id: str | None = None
    type: str | None = None
    producer: str | None = None

    def keeps(self, message: Message) -> bool:
        if self.transaction_id is not None and message.key != self.transaction_id:
            return False
        if self.type is not None and message.type != self.type:
            return False
        if self.producer is not None and message.header("producer-id") != self.producer:
            return False
        if self.merchant_id is not None:
            data = (message.envelope() or {}).get("data")
            if not isinstance(data, dict) or data.get("merchant_id") != self.merchant_id:
                return False
        return True


@dataclass(frozen=True)
class Evaluation:
    message: Message
    kind: str  # payment, refund, capture, cancel, invalid
    command_id: str | None  # transaction id or refund id
    prediction: Prediction
    result: str | None = None  # after --execute: the result's status or error code

    def to_json(self) -> dict[str, Any]:
        m = self.message
        return {
            "source": f"{m.topic}:{m.partition}:{m.offset}",
            "key": m.key,
            "type": m.type,
            "kind": self.kind,
            "id": self.command_id,
            "verdict": self.prediction.verdict,
            "reason": self.prediction.reason,
            "result": self.result,
        }


@dataclass
class ReplayReport:
    evaluations: list[Evaluation] = field(default_factory=list)
    executed: bool = False
    unanswered: int = 0  # --execute: results not seen within the wait
    left_out: list[str] = field(default_factory=list)  # redrive: letters whose original is gone

    def counts(self) -> dict[str, int]:
        counted = Counter(e.prediction.verdict for e in self.evaluations)
        return {v: counted.get(v, 0) for v in VERDICTS}

    def to_json(self) -> dict[str, Any]:
        return {
            "executed": self.executed,
            "selected": len(self.evaluations),
            "counts": self.counts(),
            "unanswered": self.unanswered,
            "left_out": self.left_out,
            "commands": [e.to_json() for e in self.evaluations],
        }


def select(
    kafka: KafkaSettings, topic: str, selector: Selector, on_message: Callable[[], None] | None
) -> list[Message]:
    return list(
        scan(
            kafka,
            topic,
            start=selector.start,
            end=selector.end,
            partitions=selector.partitions,
            keep=selector.keeps,
            on_message=on_message,
        )
    )


async def evaluate(
    messages: Sequence[Message],
    payments: PaymentRepository,
    database: DatabaseSettings,
    bank: BankRecord,
    on_done: Callable[[], None] | None = None,
) -> list[Evaluation]:
    """What processing each message would do now (step 2 of the module docstring)."""
    operations = await bank.operations({m.key for m in messages if m.key})
    found: list[Evaluation] = []
    async with db.reading(database) as conn:
        for message in messages:
            keys = {op["idempotency_key"] for op in operations.get(message.key or "", [])}
            try:
                command = parse_command(message.value)
            except ValidationError:
                verdict = Prediction("noop", "invalid command: it would be dead-lettered again")
                found.append(Evaluation(message, "invalid", None, verdict))
            else:
                refusal = await db.refusal(conn, _command_id(command))
                found.append(await _predict(command, message, payments, refusal, keys))
            if on_done is not None:
                on_done()
    return found


def _command_id(command: AnyCommand) -> str:
    if isinstance(command, RefundPaymentV1):
        return command.data.refund_id
    return command.data.transaction_id


async def _predict(
    command: AnyCommand,
    message: Message,
    payments: PaymentRepository,
    refusal: Any,
    keys: set[str],
) -> Evaluation:
    data = command.data
    payment = await payments.get_payment(data.transaction_id, merchant_id=data.merchant_id)
    if isinstance(command, ProcessPaymentV1):
        prediction = predict_payment(
            data.transaction_id, command.data.request_hash, payment, refusal, keys
        )
        return Evaluation(message, "payment", data.transaction_id, prediction)
    if isinstance(command, CapturePaymentV1):
        prediction = predict_capture("capture", command.data.amount_minor, payment, keys)
        return Evaluation(message, "capture", data.transaction_id, prediction)
    if isinstance(command, CancelPaymentV1):
        prediction = predict_capture("cancel", None, payment, keys)
        return Evaluation(message, "cancel", data.transaction_id, prediction)
    refund = command.data
    in_flight = sum(
        r.amount_minor
        for r in (payment.refunds if payment else ())
        if r.status == RefundStatus.PROCESSING and r.refund_id != refund.refund_id
    )
    prediction = predict_refund(
        refund.refund_id, refund.amount_minor, payment, refusal, keys, in_flight
    )
    return Evaluation(message, "refund", refund.refund_id, prediction)


def execute(
    kafka: KafkaSettings,
    evaluations: Sequence[Evaluation],
    *,
    wait_seconds: float,
    on_result: Callable[[], None] | None = None,
    left_out: Sequence[str] = (),
) -> ReplayReport:
    """Re-produce the evaluated commands unchanged (step 3) and collect their results."""
    marks = _ends(kafka, kafka.topic_results)
    producer = Producer(client_config(kafka, **{"enable.idempotence": True, "linger.ms": 5}))
    sources: dict[str, int] = {}
    for i, evaluation in enumerate(evaluations):
        m = evaluation.message
        source = f"{m.topic}:{m.partition}:{m.offset}"
        sources[source] = i
        headers = [(k, v) for k, v in m.headers if k not in _DLQ_HEADERS and k != HEADER_REPLAY_OF]
        headers.append((HEADER_REPLAY_OF, source.encode()))
        producer.produce(kafka.topic_requests, value=m.value, key=m.key, headers=headers)
        producer.poll(0)
    left = producer.flush(PRODUCE_TIMEOUT_SECONDS)
    if left:
        raise TimeoutError(f"{left} replayed command(s) not acknowledged by Kafka")
    results = _results(kafka, marks, set(sources), wait_seconds, on_result)
    done = [
        _with_result(e, results.get(f"{e.message.topic}:{e.message.partition}:{e.message.offset}"))
        for e in evaluations
    ]
    # Invalid commands get a result only when they name their payment: not counted as missing.
    expected = sum(1 for e in evaluations if e.kind != "invalid")
    answered = sum(1 for e in done if e.kind != "invalid" and e.result is not None)
    unanswered = expected - answered
    return ReplayReport(done, executed=True, unanswered=unanswered, left_out=list(left_out))


def _with_result(evaluation: Evaluation, result: str | None) -> Evaluation:
    return Evaluation(
        evaluation.message, evaluation.kind, evaluation.command_id, evaluation.prediction, result
    )


def _ends(kafka: KafkaSettings, topic: str) -> dict[int, int]:
    consumer = Consumer(client_config(kafka, **{"group.id": "payment-ops-marks"}))
    try:
        return {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
            for p in partitions_of(consumer, topic)
        }
    finally:
        consumer.close()


def _results(
    kafka: KafkaSettings,
    marks: dict[int, int],
    wanted: set[str],
    wait_seconds: float,
    on_result: Callable[[], None] | None,
) -> dict[str, str]:
    """replay-of -> the result's status or error code, read from the results topic."""
    found: dict[str, str] = {}
    deadline = time.monotonic() + wait_seconds
    while wanted - set(found) and time.monotonic() < deadline:
        for partition, start in list(marks.items()):
            for message in scan(
                kafka, kafka.topic_results, start=Bound(offset=start), partitions=[partition]
            ):
                marks[partition] = message.offset + 1
                source = message.header(HEADER_REPLAY_OF)
                if source in wanted and source not in found:
                    found[source] = _outcome(message)
                    if on_result is not None:
                        on_result()
        if wanted - set(found):
            time.sleep(1.0)
    return found


def _outcome(message: Message) -> str:
    data = (message.envelope() or {}).get("data") or {}
    error = data.get("error")
    if isinstance(error, dict):
        return f"error:{error.get('code')}"
    view = data.get("refund") if data.get("kind") == "refund" else data.get("payment")
    return str((view or {}).get("status", "unknown"))
