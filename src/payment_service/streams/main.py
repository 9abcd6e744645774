"""The processor's composition root: build every resource from the settings and run Quix.

The pipeline only declares the dataframe and its sink; all side effects live in the sink, which
runs them on the side loop (see `sink.py`). `app.run()` owns the main thread until SIGTERM/SIGINT.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Callable, Coroutine
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

from quixstreams import Application

from payment_service.app.config import Settings
from payment_service.app.logs import configure_logging
from payment_service.app.telemetry import Metrics, configure_tracing
from payment_service.bank.breaker import BankCircuitBreaker
from payment_service.bank.client import HttpBankClient
from payment_service.cards.crypto import KeyRing
from payment_service.cards.vault import SecurityCodeVault, redis_client
from payment_service.kafka.producer import AsyncProducer
from payment_service.storage.db import create_pool
from payment_service.storage.payments import PgPaymentRepository
from payment_service.storage.refunds import PgRefundRepository
from payment_service.streams.handler import CommandHandler
from payment_service.streams.payments import PaymentFlow
from payment_service.streams.reconciler import Reconciler
from payment_service.streams.refunds import RefundFlow
from payment_service.streams.sink import CommandSink, SideLoop

log = logging.getLogger(__name__)

BUILD_TIMEOUT_SECONDS = 60.0


@dataclass
class Processor:
    handler: CommandHandler
    close: Callable[[], Coroutine[Any, Any, None]]


async def build_processor(settings: Settings) -> Processor:
    """Open the processor's connections (on the side loop) and wire the flows."""
    stack = AsyncExitStack()
    keys = KeyRing.from_settings(settings)
    pool = await create_pool(settings.database)
    stack.push_async_callback(pool.close)
    redis = redis_client(settings.redis)
    stack.push_async_callback(redis.aclose)
    metrics = Metrics(settings.datadog, "processor")
    stack.callback(metrics.close)

    def breaker_changed(old: str, new: str) -> None:
        metrics.gauge("bank.breaker_open", 1.0 if new != "closed" else 0.0, {"state": new})

    breaker = BankCircuitBreaker.from_settings(settings.bank, on_state_change=breaker_changed)
    bank = HttpBankClient(settings.bank, breaker=breaker)
    stack.push_async_callback(bank.close)
    producer = AsyncProducer(settings.kafka, client_id="payment-processor")
    stack.callback(producer.close)
    payments = PgPaymentRepository(pool)
    vault = SecurityCodeVault.from_settings(redis, keys, settings.redis)
    flow = PaymentFlow(payments, bank, vault, keys)
    refunds_repo = PgRefundRepository(pool)
    refunds = RefundFlow(refunds_repo, bank)
    processing = settings.processor
    handler = CommandHandler(
        settings.kafka,
        producer,
        flow,
        refunds,
        payments,
        metrics,
        tracing=settings.datadog.trace_enabled,
        transient_retry_seconds=processing.transient_retry_seconds,
    )
    reconciler = Reconciler(
        pool,
        payments,
        flow,
        handler,
        refunds_repo,
        refunds,
        stale_after=dt.timedelta(seconds=processing.reconcile_stale_after_seconds),
        give_up_after=dt.timedelta(seconds=processing.reconcile_give_up_after_seconds),
    )
    task = asyncio.create_task(reconciler.run_forever(processing.reconcile_interval_seconds))
    stack.push_async_callback(_cancel, task)
    return Processor(handler=handler, close=stack.aclose)


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def message_budget_seconds(settings: Settings) -> float:
    """The longest one message can take: authorize and capture at their worst, plus the
    handler's retries of store outages, plus a margin."""
    bank = settings.bank
    bank_worst = bank.total_timeout_seconds * (bank.max_attempts + 1) + (
        bank.backoff_cap_seconds * bank.max_attempts
    )
    return 2 * bank_worst + settings.processor.transient_retry_seconds + 30


def build_application(settings: Settings, side: SideLoop, processor: Processor) -> Application:
    kafka = settings.kafka

    def on_consumer_error(exc: Exception, message: Any, logger: logging.Logger) -> bool:
        # A message the consumer cannot even read goes to the DLQ instead of stopping the app.
        if message is None:
            logger.error("kafka consumer error: %s", exc)
            return True
        headers = {k: (v or b"").decode("utf-8", "replace") for k, v in message.headers() or []}
        key = message.key().decode("utf-8", "replace") if message.key() else None
        side.run(
            processor.handler.dead_letter(
                message.value(), key, headers, "unreadable_message", type(exc).__name__
            ),
            timeout=kafka.produce_timeout_seconds * 2,
        )
        return True

    app = Application(
        broker_address=kafka.bootstrap_servers,
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
        },
        producer_extra_config={"linger.ms": kafka.linger_ms, "enable.idempotence": True},
        loglevel=None,  # our handler (JSON, card-data filter) takes Quix records too
    )
    topic = app.topic(kafka.topic_requests, value_deserializer="bytes", key_deserializer="str")
    sdf = app.dataframe(topic)
    sdf.sink(
        CommandSink(
            side,
            processor.handler.handle,
            max_in_flight=settings.processor.max_in_flight,
            flush_timeout_seconds=message_budget_seconds(settings),
        )
    )
    return app


def run_processor(settings: Settings) -> None:
    configure_logging(settings, "processor")
    configure_tracing(settings.datadog)
    side = SideLoop()
    processor: Processor = side.run(build_processor(settings), timeout=BUILD_TIMEOUT_SECONDS)
    try:
        app = build_application(settings, side, processor)
        log.info("processor consuming %s", settings.kafka.topic_requests)
        app.run()
    finally:
        side.run(processor.close(), timeout=30.0)
        side.stop()
