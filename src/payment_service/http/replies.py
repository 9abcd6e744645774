"""Reply routing for sync over async: this API instance's partition of `payments.results`.

The instance assigns itself one partition (no consumer group), starting from the partition's end,
and reports ready only once it is positioned there. Handlers `expect()` a reply id before
producing their command, then `wait()` for the result or the deadline. A result nobody waits for
is dropped: PostgreSQL, not the reply, is the record.
"""

from __future__ import annotations

import asyncio
import logging
import threading

from confluent_kafka import Consumer, TopicPartition
from pydantic import ValidationError

from payment_service.config.settings import KafkaSettings
from payment_service.kafka.acls import API_REPLY_GROUP_PREFIX
from payment_service.kafka.security import client_config, diagnostics_config
from payment_service.schemas.messages import HEADER_REPLY_ID, PaymentResult, PaymentResultV1

log = logging.getLogger(__name__)

WATERMARK_TIMEOUT_SECONDS = 10.0


class ReplyRouter:
    def __init__(self, kafka: KafkaSettings, partition: int) -> None:
        if partition >= kafka.results_partitions:
            raise ValueError(
                f"API_INSTANCE={partition} but {kafka.topic_results} has only "
                f"{kafka.results_partitions} partitions: raise KAFKA_RESULTS_PARTITIONS"
            )
        self._kafka = kafka
        self.partition = partition
        self._waiting: dict[str, asyncio.Future[PaymentResult]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
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
        """Position at the end of our partition, then serve results on a thread."""
        self._loop = asyncio.get_running_loop()
        tp = TopicPartition(self._kafka.topic_results, self.partition)
        _low, high = await asyncio.to_thread(
            self._consumer.get_watermark_offsets, tp, WATERMARK_TIMEOUT_SECONDS
        )
        self._consumer.assign([TopicPartition(self._kafka.topic_results, self.partition, high)])
        self._thread = threading.Thread(target=self._serve, name="reply-router", daemon=True)
        self._thread.start()
        log.info("reading replies from %s[%s] at %s", tp.topic, self.partition, high)

    def _serve(self) -> None:
        assert self._loop is not None
        while not self._stop.is_set():
            first = self._consumer.poll(0.1)
            if first is None:
                continue
            # Then whatever else has arrived, without waiting (consume() with a timeout would
            # wait to fill its batch and delay every answer).
            batch: list[tuple[str, bytes]] = []
            for message in [first, *self._consumer.consume(num_messages=499, timeout=0)]:
                if message.error() is not None:
                    continue
                reply_id = dict(message.headers() or []).get(HEADER_REPLY_ID)
                if reply_id is not None:
                    batch.append((reply_id.decode(), message.value()))
            if batch:
                # One wake-up of the event loop per batch, not per message.
                self._loop.call_soon_threadsafe(self._deliver, batch)

    def _deliver(self, batch: list[tuple[str, bytes]]) -> None:
        for reply_id, raw in batch:
            future = self._waiting.get(reply_id)
            if future is None or future.done():
                continue
            try:
                future.set_result(PaymentResultV1.model_validate_json(raw).data)
            except ValidationError:
                log.warning("unreadable result for reply id %s", reply_id)

    def expect(self, reply_id: str) -> asyncio.Future[PaymentResult]:
        future: asyncio.Future[PaymentResult] = asyncio.get_running_loop().create_future()
        self._waiting[reply_id] = future
        return future

    def forget(self, reply_id: str) -> None:
        self._waiting.pop(reply_id, None)

    async def wait(self, reply_id: str, timeout: float) -> PaymentResult | None:
        """The result for `reply_id`, or None when the deadline passes first."""
        future = self._waiting.get(reply_id)
        if future is None:
            raise KeyError(reply_id)
        try:
            return await asyncio.wait_for(asyncio.shield(future), timeout)
        except TimeoutError:
            return None
        finally:
            self.forget(reply_id)

    @property
    def healthy(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    async def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, 5.0)
        self._consumer.close()
