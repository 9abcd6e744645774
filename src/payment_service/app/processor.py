"""The processor's composition root: build every resource from the settings and run Quix.

`build_processor` opens the connections on the side loop (the asyncio loop that owns them, see
`streams/sink.py`) and wires the flows to their adapters; `run_processor` gives the main thread
to Quix until SIGTERM/SIGINT, then closes everything in reverse order. A consumer that fails
(lost group membership, broker gone too long) is replaced by a new one, not by an exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import signal
import threading
import time
from collections.abc import Callable, Coroutine
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

from payment_service.app.custody import card_opener, fingerprint_key, warn_weak_secrets
from payment_service.app.signing_keys import command_verify_key, result_signer
from payment_service.bank.breaker import BankCircuitBreaker
from payment_service.bank.client import HttpBankClient
from payment_service.cards.vault import SecurityCodeVault
from payment_service.config.settings import Settings
from payment_service.http.idempotency import AcceptedMarkers
from payment_service.kafka.producer import AsyncProducer
from payment_service.ops import gauges
from payment_service.ops import metric_catalog as catalog
from payment_service.ops.gc_watch import GcWatch, freeze_startup
from payment_service.ops.heartbeat import Heartbeat, instance_name
from payment_service.ops.loop_watch import LoopWatch
from payment_service.ops.redis_client import redis_client
from payment_service.ops.step_timing import timed
from payment_service.ops.telemetry import Metrics
from payment_service.storage.audit_feed import PgAuditFeed
from payment_service.storage.captures import PgCaptureRepository
from payment_service.storage.db import create_pool
from payment_service.storage.locks import PgAdvisoryLock
from payment_service.storage.payment_methods import PgPaymentMethods
from payment_service.storage.payments import PgPaymentRepository
from payment_service.storage.producers import PgProducers
from payment_service.storage.refunds import PgRefundRepository
from payment_service.streams import audit_relay, reconciler
from payment_service.streams.authorize import CommandGate
from payment_service.streams.captures import CaptureFlow
from payment_service.streams.cards import CardSources
from payment_service.streams.fastlane import FastLane
from payment_service.streams.handler import CommandHandler
from payment_service.streams.payments import PaymentFlow
from payment_service.streams.pipeline import build_application, message_budget_seconds
from payment_service.streams.publisher import ResultPublisher
from payment_service.streams.recorder import PaymentRecorder
from payment_service.streams.refunds import RefundFlow
from payment_service.streams.resends import Resends
from payment_service.streams.sink import CommandSink, SideLoop

log = logging.getLogger(__name__)

BUILD_TIMEOUT_SECONDS = 60.0
RESTART_BACKOFF_CAP_SECONDS = 10.0
# A consumer that ran this long had recovered: the next failure starts the backoff afresh.
RESTART_RESET_SECONDS = 60.0


@dataclass
class Processor:
    handler: CommandHandler
    publisher: ResultPublisher
    metrics: Metrics
    heartbeat: Heartbeat
    close: Callable[[], Coroutine[Any, Any, None]]


async def build_processor(settings: Settings) -> Processor:
    """Open the processor's connections (on the side loop) and wire the flows."""
    stack = AsyncExitStack()
    opener = card_opener(settings)
    fingerprints = fingerprint_key(settings)
    signer, api_key = result_signer(settings), command_verify_key(settings)
    warn_weak_secrets(settings)
    pool = await create_pool(settings.database, application_name="payment-service-processor")
    stack.push_async_callback(pool.close)
    redis = redis_client(settings.redis)
    stack.push_async_callback(redis.aclose)
    metrics = Metrics(settings.datadog, "processor")
    stack.callback(metrics.close)
    gc_watch = stack.enter_context(GcWatch())

    def breaker_changed(old: str, new: str) -> None:
        metrics.gauge(catalog.BANK_BREAKER_OPEN, 1.0 if new != "closed" else 0.0, {"state": new})

    def limit_changed(limit: int) -> None:
        metrics.gauge(catalog.BANK_CONCURRENCY_LIMIT, float(limit))

    breaker = BankCircuitBreaker.from_settings(settings.bank, on_state_change=breaker_changed)
    # Each command's log line sums the time of these adapters' calls per step (step_timing).
    bank = timed(
        HttpBankClient(
            settings.bank, breaker=breaker, on_limit_change=limit_changed, metrics=metrics
        ),
        "bank",
    )
    stack.push_async_callback(bank.close)
    producer = AsyncProducer(settings.kafka, client_id="payment-processor")
    stack.callback(producer.close)
    payments = timed(PgPaymentRepository(pool), "db")
    vault = timed(SecurityCodeVault.from_settings(redis, settings.redis, opener=opener), "vault")
    cards = timed(CardSources(opener, PgPaymentMethods(pool), fingerprints), "cards")
    processing = settings.processor
    publisher = ResultPublisher(settings.kafka, timed(producer, "kafka"), metrics, signer)
    give_up_after = dt.timedelta(seconds=processing.reconcile_give_up_after_seconds)
    lane = FastLane(
        payments,
        publisher,
        window=dt.timedelta(seconds=processing.reconcile_stale_after_seconds),
        give_up_after=give_up_after,
        metrics=metrics,
    )
    stack.push_async_callback(lane.close)
    # A lost request cannot still arrive once its own deadline has passed (streams/resends.py).
    resends = Resends(after_seconds=settings.bank.total_timeout_seconds)
    flow = PaymentFlow(
        payments, bank, vault, cards, metrics=metrics, on_unknown=lane.offer, resends=resends
    )
    refunds_repo = timed(PgRefundRepository(pool), "db")
    refunds = RefundFlow(refunds_repo, bank, metrics=metrics)
    captures_repo = timed(PgCaptureRepository(pool), "db")
    captures = CaptureFlow(
        captures_repo, payments, bank, PaymentRecorder(payments, metrics, lane.offer)
    )
    lane.start(flow, captures)
    producers = timed(PgProducers(pool), "db")
    gate = CommandGate(producers, api_key, ttl_seconds=processing.producer_cache_seconds)
    handler = CommandHandler(
        publisher,
        flow,
        refunds,
        payments,
        metrics,
        gate,
        captures=captures,
        refusals=timed(AcceptedMarkers(redis), "redis"),
        tracing=settings.datadog.trace_enabled,
        transient_retry_seconds=processing.transient_retry_seconds,
    )
    settler = reconciler.Reconciler(
        PgAdvisoryLock(pool, reconciler.LOCK_ID),
        payments,
        flow,
        publisher,
        refunds_repo,
        refunds,
        stale_after=dt.timedelta(seconds=processing.reconcile_stale_after_seconds),
        give_up_after=give_up_after,
        captures_repo=captures_repo,
        captures=captures,
        authorization_validity=dt.timedelta(seconds=processing.authorization_validity_seconds),
        metrics=metrics,
    )
    task = asyncio.create_task(settler.run_forever(processing.reconcile_interval_seconds))
    stack.push_async_callback(_cancel, task)
    relay_lock = PgAdvisoryLock(pool, audit_relay.LOCK_ID)
    relay = audit_relay.AuditRelay(
        PgAuditFeed(pool), relay_lock, producer, settings.kafka, processing, metrics
    )
    relaying = asyncio.create_task(relay.run_forever())
    stack.push_async_callback(_cancel, relaying)
    sampling = asyncio.create_task(
        gauges.report_forever(
            metrics,
            [gauges.postgres_pool(pool), gauges.redis_pool(redis), gc_watch.sample],
            settings.datadog.metrics_interval_seconds,
        )
    )
    stack.push_async_callback(_cancel, sampling)
    heartbeat = Heartbeat(redis, instance_name(), metrics=metrics)
    beating = asyncio.create_task(heartbeat.run_forever())
    stack.push_async_callback(_cancel, beating)
    return Processor(
        handler=handler,
        publisher=publisher,
        metrics=metrics,
        heartbeat=heartbeat,
        close=stack.aclose,
    )


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def run_processor(settings: Settings) -> None:
    """`payment-service processor`: run until SIGTERM/SIGINT (logging, tracing: the CLI's)."""
    side = SideLoop()
    processor: Processor = side.run(build_processor(settings), timeout=BUILD_TIMEOUT_SECONDS)
    # Once, before the first consumer: a consumer rebuilt after a failure leaves garbage that a
    # second freeze would keep for ever, and what it allocates is not startup state.
    freeze_startup()
    watch = LoopWatch(side.loop, "processor-io").install()
    try:
        consume(settings, side, processor)
    finally:
        watch.remove()
        side.run(processor.close(), timeout=30.0)
        side.stop()


def consume(settings: Settings, side: SideLoop, processor: Processor) -> None:
    """Run Quix until a signal stops it; when it fails instead, start it again, with backoff.

    Quix stops on a failed commit ("Unknown member" after a SIGSTOP or a long pause: the group
    moved on), on a broker unavailable past its timeout, or on a sink that could not finish
    (our stores down past the handler's retries). None of these is a reason for the process to
    exit: nothing uncommitted is lost (it is redelivered, and every step is idempotent), so a
    fresh consumer rejoins the group and resumes from the committed offsets.
    """
    stopping = threading.Event()
    failures = 0
    while not stopping.is_set():
        started = time.monotonic()
        sink: CommandSink | None = None
        try:
            # Building asks the broker for the topic: it fails too while Kafka is down.
            app, sink = build_application(
                settings,
                side,
                processor.handler,
                processor.publisher,
                processor.metrics,
                processor.heartbeat,
            )
            log.info("processor consuming %s", settings.kafka.topic_requests)
            processor.heartbeat.consuming = True
            app.run()
            return  # stopped by SIGTERM/SIGINT
        except Exception:
            log.exception("the consumer stopped on an error; starting a new one")
        processor.heartbeat.consuming = False
        failures = 1 if time.monotonic() - started > RESTART_RESET_SECONDS else failures + 1
        processor.metrics.increment(catalog.CONSUMER_RESTARTS)
        _on_signals(stopping)
        left = sink.drain(message_budget_seconds(settings)) if sink is not None else 0
        if left:
            log.warning("%d messages of the old consumer still in flight", left)
        stopping.wait(min(RESTART_BACKOFF_CAP_SECONDS, 0.5 * 2 ** (failures - 1)))


def _on_signals(stopping: threading.Event) -> None:
    """Between two consumers, SIGTERM/SIGINT end the loop (Quix's handlers are gone then)."""

    def stop(*_: object) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
