"""An asyncio face on confluent-kafka's producer: `await produce(...)` returns once acknowledged.

Idempotence is on and `acks=all`, so an acknowledged message is durable and never duplicated by
the producer's own retries. A background thread serves delivery callbacks; each callback resolves
its future on the owning event loop. Every wait has a deadline.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Mapping
from typing import Any

from confluent_kafka import KafkaError, Message, Producer

from payment_service.config.settings import KafkaSettings
from payment_service.kafka.security import client_config, diagnostics_config

log = logging.getLogger(__name__)

REPORT_MARGIN_SECONDS = 2.0


class ProduceFailed(Exception):
    """The broker did not acknowledge the message in time; it may or may not be written."""


def producer_config(kafka: KafkaSettings, client_id: str) -> dict[str, Any]:
    return client_config(
        kafka,
        **{
            "client.id": client_id,
            "acks": "all",
            "enable.idempotence": True,
            "linger.ms": kafka.linger_ms,
            "compression.type": "none",
            "message.timeout.ms": int(kafka.produce_timeout_seconds * 1000),
            "socket.keepalive.enable": True,
            **diagnostics_config(kafka),
        },
    )


class AsyncProducer:
    def __init__(self, kafka: KafkaSettings, client_id: str) -> None:
        self._kafka = kafka
        self._producer = Producer(producer_config(kafka, client_id))
        self._stop = threading.Event()
        # Delivery reports gathered during one poll(), handed to the loop in one wake-up: a
        # cross-thread wake-up per message was a large share of the API's CPU under load.
        self._reports: list[tuple[asyncio.Future[None], KafkaError | None]] = []
        self._reports_lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=self._serve, name=f"{client_id}-poll", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            self._producer.poll(0.05)
            self._hand_over()

    def _hand_over(self) -> None:
        with self._reports_lock:
            reports, self._reports = self._reports, []
        if reports and self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(_settle_all, reports)

    async def produce(
        self,
        topic: str,
        value: bytes,
        *,
        key: str | None = None,
        headers: Mapping[str, str] | None = None,
        partition: int | None = None,
        timeout: float | None = None,
    ) -> None:
        """Send one message and wait for the broker's acknowledgement (or `ProduceFailed`)."""
        loop = asyncio.get_running_loop()
        self._loop = loop
        done: asyncio.Future[None] = loop.create_future()

        def on_delivery(err: KafkaError | None, _msg: Message) -> None:
            with self._reports_lock:
                self._reports.append((done, err))

        kwargs: dict[str, Any] = {"value": value, "on_delivery": on_delivery}
        if key is not None:
            kwargs["key"] = key.encode()
        if headers:
            # A dict, not a list of pairs: ddtrace's Data Streams Monitoring adds its pathway
            # header to it (it cannot to a list, and would fail the produce).
            kwargs["headers"] = {k: v.encode() for k, v in headers.items()}
        if partition is not None:
            kwargs["partition"] = partition
        # librdkafka gives up on the message after message.timeout.ms and reports it; waiting a
        # little longer lets that report, not our clock, decide what happened.
        deadline = (timeout or self._kafka.produce_timeout_seconds) + REPORT_MARGIN_SECONDS
        try:
            async with asyncio.timeout(deadline):
                while True:
                    try:
                        self._producer.produce(topic, **kwargs)
                        break
                    except BufferError:
                        await asyncio.sleep(0.005)  # local queue full: let the poll thread drain
                await done
        except TimeoutError:
            raise ProduceFailed(
                f"no acknowledgement from Kafka for {topic} in {deadline}s"
            ) from None

    def list_topics(self, timeout: float) -> None:
        """Ask the broker for metadata: proves it is reachable (blocking; run off the loop)."""
        self._producer.list_topics(timeout=timeout)

    def flush(self, timeout: float) -> int:
        """Wait for outstanding messages; returns how many are still undelivered."""
        remaining: int = self._producer.flush(timeout)
        return remaining

    def close(self, timeout: float = 5.0) -> None:
        left = self.flush(timeout)
        self._hand_over()
        if left:
            log.warning("kafka producer closed with %s undelivered messages", left)
        self._stop.set()
        self._thread.join(timeout)


def _settle_all(reports: list[tuple[asyncio.Future[None], KafkaError | None]]) -> None:
    for future, err in reports:
        if future.done():
            continue
        if err is None:
            future.set_result(None)
        else:
            future.set_exception(ProduceFailed(f"kafka delivery failed: {err.str()}"))
