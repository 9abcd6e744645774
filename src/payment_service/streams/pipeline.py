"""The processor's Quix Streams pipeline: one topic, one dataframe, one sink.

The pipeline only declares the dataframe and its sink; all side effects live in the sink, which
runs them on the side loop (`sink.py`). `Application.run()` owns the main thread.

Quix gives its Kafka clients loggers of its own, so librdkafka's lines reach our JSON handler;
`KAFKA_DEBUG` adds librdkafka's debug contexts. The consumer's statistics (every
`DD_METRICS_INTERVAL_SECONDS`) give the consumer lag per assigned partition (`consumer.lag`).
"""

from __future__ import annotations

import logging
from typing import Any

from quixstreams import Application
from quixstreams.kafka.configuration import ConnectionConfig

from payment_service.config.settings import KafkaSettings, Settings
from payment_service.kafka.security import client_config
from payment_service.kafka.stats import partition_lags
from payment_service.ops import metric_catalog as catalog
from payment_service.ops.heartbeat import Heartbeat
from payment_service.ops.telemetry import Metrics
from payment_service.streams.handler import CommandHandler
from payment_service.streams.publisher import ResultPublisher
from payment_service.streams.sink import CommandSink, SideLoop


def message_budget_seconds(settings: Settings) -> float:
    """The longest one message can take: authorize and capture at their worst, plus the
    handler's retries of store outages, plus a margin."""
    bank = settings.bank
    bank_worst = bank.total_timeout_seconds * (bank.max_attempts + 1) + (
        bank.backoff_cap_seconds * bank.max_attempts
    )
    return 2 * bank_worst + settings.processor.transient_retry_seconds + 30


def connection_config(kafka: KafkaSettings) -> ConnectionConfig:
    """Quix's connection (its consumer, producer and admin) from our one client configuration."""
    return ConnectionConfig.from_librdkafka_dict(client_config(kafka))


def lag_reporter(metrics: Metrics, heartbeat: Heartbeat | None = None) -> Any:
    """A librdkafka `stats_cb` gauging the lag of each assigned partition (on Quix's thread),
    and handing it to the heartbeat."""

    def on_stats(stats_json: str) -> None:
        lags = partition_lags(stats_json)
        for lag in lags:
            tags = {"topic": lag.topic, "partition": str(lag.partition)}
            metrics.gauge(catalog.CONSUMER_LAG, float(lag.lag), tags)
        if heartbeat is not None:
            heartbeat.lags = {(lag.topic, lag.partition): lag.lag for lag in lags}

    return on_stats


def build_application(
    settings: Settings,
    side: SideLoop,
    handler: CommandHandler,
    publisher: ResultPublisher,
    metrics: Metrics | None = None,
    heartbeat: Heartbeat | None = None,
) -> tuple[Application, CommandSink]:
    """The Quix application consuming `payments.requests` into a `CommandSink` (returned too,
    so that a restart can wait for what the old one still has in flight)."""
    kafka = settings.kafka
    debug = {"debug": kafka.debug} if kafka.debug else {}
    stats: dict[str, Any] = {}
    if metrics is not None:
        stats = {
            "statistics.interval.ms": int(settings.datadog.metrics_interval_seconds * 1000),
            "stats_cb": lag_reporter(metrics, heartbeat),
        }

    def on_consumer_error(exc: Exception, message: Any, logger: logging.Logger) -> bool:
        # A message the consumer cannot even read goes to the DLQ instead of stopping the app.
        if message is None:
            logger.error("kafka consumer error: %s", exc)
            return True
        headers = {k: (v or b"").decode("utf-8", "replace") for k, v in message.headers() or []}
        key = message.key().decode("utf-8", "replace") if message.key() else None
        side.run(
            publisher.dead_letter(
                message.value(),
                key,
                headers,
                "unreadable_message",
                type(exc).__name__,
                f"{message.topic()}:{message.partition()}:{message.offset()}",
            ),
            timeout=kafka.produce_timeout_seconds * 2,
        )
        return True

    app = Application(
        broker_address=connection_config(kafka),
        consumer_group=kafka.consumer_group,
        auto_offset_reset="earliest",
        commit_interval=settings.processor.commit_interval_seconds,
        auto_create_topics=False,
        use_changelog_topics=False,
        processing_guarantee="at-least-once",
        on_consumer_error=on_consumer_error,
        consumer_extra_config={
            # fetch.min.bytes=1 answers a fetch as soon as data arrives; the wait bounds idling.
            "fetch.wait.max.ms": 200,
            "session.timeout.ms": 10000,
            # On a rebalance Quix waits for the sink's flush for at most a fifth of this: it must
            # outlast any message still in flight, or its partition moves while the work runs.
            "max.poll.interval.ms": int(5 * message_budget_seconds(settings) * 1000) + 10_000,
            **debug,
            **stats,
        },
        producer_extra_config={
            "linger.ms": kafka.linger_ms,
            "enable.idempotence": True,
            **debug,
        },
        loglevel=None,  # our handler (JSON, card-data filter) takes Quix records too
    )
    topic = app.topic(kafka.topic_requests, value_deserializer="bytes", key_deserializer="str")
    sdf = app.dataframe(topic)
    sink = CommandSink(
        side,
        handler.handle,
        max_in_flight=settings.processor.max_in_flight,
        max_in_flight_per_merchant=settings.processor.max_in_flight_per_merchant,
        max_queued=settings.processor.max_queued,
        flush_timeout_seconds=message_budget_seconds(settings),
    )
    sdf.sink(sink)
    return app, sink
