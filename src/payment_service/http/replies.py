"""Reply routing for sync over async: this API instance's partition of `payments.results`.

The instance assigns itself one partition (no consumer group), starting from the partition's end,
and reports ready only once it is positioned there. Handlers `expect()` a reply id, with the ids
its result must name, before producing their command, then `wait()` for the result or the
deadline. A result nobody waits for is dropped: PostgreSQL, not the reply, is the record.

Nothing unauthenticated reaches a client: a result is accepted only with the processor's valid
signature over its key, value and reply id (`kafka/signing.py`), and only when its transaction,
merchant and refund ids are the ones the command named. Anything else is dropped and counted
(`api.results_dropped`, by reason). The consumer thread survives any message (missing or
non-UTF-8 headers, tombstones, junk); should it die anyway, a supervisor starts it again
(`api.reply_consumer_restarts`), and `/health` reports its state (`state`, `restarts`).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Consumer, Message, TopicPartition
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import ValidationError

from payment_service.config.settings import KafkaSettings
from payment_service.kafka.acls import API_REPLY_GROUP_PREFIX
from payment_service.kafka.security import client_config, diagnostics_config
from payment_service.kafka.signing import verify_result
from payment_service.ops import metric_catalog as catalog
from payment_service.ops.telemetry import Metrics
from payment_service.schemas.messages import HEADER_REPLY_ID, PaymentResult, PaymentResultV1

log = logging.getLogger(__name__)

WATERMARK_TIMEOUT_SECONDS = 10.0
RESTART_DELAY_SECONDS = 0.5
MAX_HEADER_BYTES = 256


@dataclass(frozen=True)
class Expected:
    """What the result of one command must name."""

    transaction_id: str
    merchant_id: str
    refund_id: str | None = None


@dataclass(frozen=True)
class _Arrived:
    reply_id: str
    key: bytes
    value: bytes
    headers: dict[str, str]


def _text_headers(message: Message) -> dict[str, str] | None:
    """The headers as text, or None when one we read is not short UTF-8 (then: drop it)."""
    found: dict[str, str] = {}
    for name, value in message.headers() or []:
        if value is None or len(value) > MAX_HEADER_BYTES:
            continue
        try:
            found[name] = value.decode("utf-8", "strict")
        except UnicodeDecodeError:
            if name == HEADER_REPLY_ID:
                return None
    return found


def read_message(message: Message) -> _Arrived | str | None:
    """What a consumed message holds for the router; a drop reason; None for a Kafka event."""
    if message.error() is not None:
        return None
    headers = _text_headers(message)
    if headers is None:
        return "unreadable"
    reply_id, value = headers.get(HEADER_REPLY_ID), message.value()
    if reply_id is None or value is None:
        return "no_reply_id" if value is not None else "tombstone"
    return _Arrived(reply_id, message.key() or b"", value, headers)


def accept(key: Ed25519PublicKey, arrived: _Arrived, expected: Expected) -> PaymentResult | str:
    """The result, when the processor signed it and it answers this command; else why not."""
    if not verify_result(key, arrived.headers, arrived.reply_id, arrived.key, arrived.value):
        return "signature_invalid"
    try:
        result = PaymentResultV1.model_validate_json(arrived.value).data
    except ValidationError:
        return "unreadable"
    named = Expected(result.transaction_id, result.merchant_id, result.refund_id)
    if named != expected or arrived.key != expected.transaction_id.encode():
        return "ids_mismatch"
    return result


class ReplyRouter:
    def __init__(
        self,
        kafka: KafkaSettings,
        partition: int,
        verify_key: Ed25519PublicKey,
        metrics: Metrics | None = None,
    ) -> None:
        if partition >= kafka.results_partitions:
            raise ValueError(
                f"API_INSTANCE={partition} but {kafka.topic_results} has only "
                f"{kafka.results_partitions} partitions: raise KAFKA_RESULTS_PARTITIONS"
            )
        self._kafka = kafka
        self.partition = partition
        self._verify_key = verify_key
        self._metrics = metrics
        self._waiting: dict[str, tuple[asyncio.Future[PaymentResult], Expected]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.restarts = 0
        self.state = "starting"
        self._consumer = Consumer(
            client_config(
                kafka,
                **{
                    # Never joins or commits; the API's ACLs allow describing this prefix only.
                    # One id per instance, not per start: Data Streams Monitoring names the
                    # results pathway by it, and a fresh id each start would be a new pathway.
                    "group.id": f"{API_REPLY_GROUP_PREFIX}{partition}",
                    "enable.auto.commit": False,
                    "enable.auto.offset.store": False,
                    # The broker answers a fetch as soon as data arrives (fetch.min.bytes=1); the
                    # wait only bounds idle polling, which cost the broker CPU at 5 ms.
                    "fetch.wait.max.ms": 200,
                    "fetch.min.bytes": 1,
                    **diagnostics_config(kafka),
                },
            )
        )

    async def start(self) -> None:
        """Position at the end of our partition, then serve results on a supervised thread."""
        self._loop = asyncio.get_running_loop()
        tp = TopicPartition(self._kafka.topic_results, self.partition)
        _low, high = await asyncio.to_thread(
            self._consumer.get_watermark_offsets, tp, WATERMARK_TIMEOUT_SECONDS
        )
        self._consumer.assign([TopicPartition(self._kafka.topic_results, self.partition, high)])
        self._thread = threading.Thread(target=self._supervise, name="reply-router", daemon=True)
        self._thread.start()
        log.info("reading replies from %s[%s] at %s", tp.topic, self.partition, high)

    def _supervise(self) -> None:
        """Run `_serve`; when it dies of anything, count it, log it and run it again."""
        while not self._stop.is_set():
            self.state = "running"
            try:
                self._serve()
            except Exception as exc:  # the thread must outlive any failure of its loop
                self.restarts += 1
                self.state = "restarting"
                log.exception("reply consumer failed; restarting it")
                self._count(catalog.API_REPLY_CONSUMER_RESTARTS, {"error": type(exc).__name__})
                self._stop.wait(RESTART_DELAY_SECONDS)
        self.state = "stopped"

    def _serve(self) -> None:
        assert self._loop is not None
        while not self._stop.is_set():
            first = self._consumer.poll(0.1)
            if first is None:
                continue
            # Then whatever else has arrived, without waiting (consume() with a timeout would
            # wait to fill its batch and delay every answer).
            batch: list[_Arrived] = []
            for message in [first, *self._consumer.consume(num_messages=499, timeout=0)]:
                arrived = self._read(message)
                if arrived is not None:
                    batch.append(arrived)
            if batch:
                # One wake-up of the event loop per batch, not per message.
                self._loop.call_soon_threadsafe(self._deliver, batch)

    def _read(self, message: Message) -> _Arrived | None:
        found = read_message(message)
        if isinstance(found, str):
            self._drop(found)
            return None
        return found

    def _deliver(self, batch: list[_Arrived]) -> None:
        for arrived in batch:
            waiting = self._waiting.get(arrived.reply_id)
            if waiting is None or waiting[0].done():
                continue  # nobody waits (another instance's, or late): PostgreSQL has it
            future, expected = waiting
            result = accept(self._verify_key, arrived, expected)
            if isinstance(result, str):
                log.warning("result dropped (%s) for reply %s", result, arrived.reply_id)
                self._drop(result)
            else:
                future.set_result(result)

    def _drop(self, reason: str) -> None:
        self._count(catalog.API_RESULTS_DROPPED, {"reason": reason})

    def _count(self, metric: Any, tags: dict[str, str]) -> None:
        if self._metrics is not None:
            self._metrics.increment(metric, tags)

    def expect(self, reply_id: str, expected: Expected) -> asyncio.Future[PaymentResult]:
        future: asyncio.Future[PaymentResult] = asyncio.get_running_loop().create_future()
        self._waiting[reply_id] = (future, expected)
        return future

    def forget(self, reply_id: str) -> None:
        self._waiting.pop(reply_id, None)

    async def wait(self, reply_id: str, timeout: float) -> PaymentResult | None:
        """The result for `reply_id`, or None when the deadline passes first."""
        waiting = self._waiting.get(reply_id)
        if waiting is None:
            raise KeyError(reply_id)
        try:
            return await asyncio.wait_for(asyncio.shield(waiting[0]), timeout)
        except TimeoutError:
            return None
        finally:
            self.forget(reply_id)

    @property
    def healthy(self) -> bool:
        return self._thread is not None and self._thread.is_alive() and self.state == "running"

    async def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, 5.0)
        self._consumer.close()
