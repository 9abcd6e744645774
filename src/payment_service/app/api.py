"""The API's composition root: open resources in order with `cleanup_ctx`, close them in reverse.

The API is ready (and `/health` healthy) only after its reply consumer is positioned at the end
of its results partition, so no answer can be missed. It is encrypt-only: `build_api` refuses
settings that hold any private card key or the legacy `ENCRYPTION_KEY` (app/custody.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import AsyncIterator

import aiohttp
import asyncpg
import uvloop
from aiohttp import web

from payment_service.app.custody import (
    api_sealer,
    fingerprint_key,
    refuse_private_keys,
    request_hash_key,
    warn_weak_secrets,
)
from payment_service.app.signing_keys import api_signer, result_verify_key
from payment_service.cards.vault import SecurityCodeVault
from payment_service.config.settings import Settings
from payment_service.http.access import access_middleware, stamp_ids
from payment_service.http.admission import PaymentAdmission
from payment_service.http.captures import CaptureService
from payment_service.http.errors import error_middleware
from payment_service.http.events import EVENTS, Events
from payment_service.http.guards import ApiKeyAuth, RateLimiter
from payment_service.http.health import (
    CHECK_TIMEOUT_SECONDS,
    HealthCheck,
    bank_check,
    kafka_check,
    processor_check,
)
from payment_service.http.idempotency import AcceptedMarkers, IdempotencyLocks
from payment_service.http.lists import ListService
from payment_service.http.metrics import metrics_middleware
from payment_service.http.payment_methods import PaymentMethodService
from payment_service.http.payments import PaymentService
from payment_service.http.protection import (
    Protection,
    TokenBuckets,
    protection_middleware,
    server_limits,
)
from payment_service.http.refunds import RefundService
from payment_service.http.replies import ReplyRouter
from payment_service.http.request_reply import RequestReply
from payment_service.http.routes import PROCESSOR_OPERATIONS, add_routes
from payment_service.http.state import (
    AUTH,
    CAPTURES,
    HEALTH,
    LIMITER,
    LISTS,
    METRICS,
    PAYMENT_METHODS,
    PAYMENTS,
    PROTECTION,
    REFUNDS,
    SEALER,
    SETTINGS,
)
from payment_service.http.webhooks import WEBHOOKS, WebhookEndpoints
from payment_service.kafka.producer import AsyncProducer
from payment_service.ops import gauges
from payment_service.ops.gc_watch import GcWatch, freeze_startup
from payment_service.ops.loop_watch import LoopWatch
from payment_service.ops.redis_client import redis_client
from payment_service.ops.telemetry import Metrics
from payment_service.storage.api_keys import PgMerchantKeys
from payment_service.storage.captures import PgCaptureRepository
from payment_service.storage.db import create_pool
from payment_service.storage.events import PgEvents
from payment_service.storage.lists import PgPaymentLists
from payment_service.storage.payment_methods import PgPaymentMethods
from payment_service.storage.payments import PgPaymentRepository
from payment_service.storage.refunds import PgRefundRepository
from payment_service.storage.webhooks import PgWebhooks
from payment_service.webhooks.secrets import SecretBox
from payment_service.webhooks.ssrf import UrlGuard

log = logging.getLogger(__name__)


def build_api(settings: Settings) -> web.Application:
    """The API as an aiohttp application; its resources open when it starts.

    Raises `KeyConfigError` at once when the settings hold a private card key.
    """
    refuse_private_keys(settings)
    app = web.Application(
        # The access log and log context outermost, so every line of a request carries its ids;
        # then metrics, so they see the status the error middleware chose; protection
        # (admission, body deadline, in-flight cap) inside, so its refusals have our shape.
        middlewares=[
            access_middleware,
            metrics_middleware,
            error_middleware,
            protection_middleware,
        ],
        client_max_size=settings.api.max_body_bytes,
        handler_args=server_limits(settings.api),
    )
    app[SETTINGS] = settings
    app[PROTECTION] = Protection(settings.api, PROCESSOR_OPERATIONS)
    app.cleanup_ctx.append(_resources)
    app.on_response_prepare.append(stamp_ids)
    add_routes(app)
    if settings.datadog.trace_enabled:
        from ddtrace.contrib.aiohttp import trace_app

        trace_app(app, service=settings.datadog.service)  # type: ignore[no-untyped-call]
    return app


async def _resources(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    sealer = api_sealer(settings)
    fingerprints = fingerprint_key(settings)
    secret = request_hash_key(settings)
    signer, result_key = api_signer(settings), result_verify_key(settings)
    warn_weak_secrets(settings)
    pool = await create_pool(settings.database, application_name="payment-service-api")
    redis = redis_client(settings.redis)
    producer = AsyncProducer(settings.kafka, client_id=f"payment-api-{settings.api.instance}")
    session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=CHECK_TIMEOUT_SECONDS))
    metrics = app[METRICS] = Metrics(settings.datadog, "api")
    replies = ReplyRouter(settings.kafka, settings.api.instance, result_key, metrics)
    gc_watch = GcWatch().install()
    loop_watch: LoopWatch | None = None
    sampling = asyncio.create_task(
        gauges.report_forever(
            metrics,
            [gauges.postgres_pool(pool), gauges.redis_pool(redis), gc_watch.sample],
            settings.datadog.metrics_interval_seconds,
        )
    )
    try:
        await replies.start()
        payments = PgPaymentRepository(pool)
        methods = PgPaymentMethods(pool)
        locks = IdempotencyLocks(redis)
        sender = RequestReply(
            producer,
            replies,
            signer,
            topic=settings.kafka.topic_requests,
            timeout_seconds=settings.api.sync_timeout_seconds,
            tracing=settings.datadog.trace_enabled,
            metrics=metrics,
        )
        app[AUTH] = ApiKeyAuth(
            PgMerchantKeys(pool),
            lookups=TokenBuckets(
                settings.api.auth_lookup_rate_per_second, settings.api.auth_lookup_burst
            ),
            negative_cache_seconds=settings.api.auth_negative_cache_seconds,
        )
        limiter = RateLimiter(redis, settings.api.rate_limit_per_minute)
        app[LIMITER] = limiter
        app[SEALER] = sealer
        vault = SecurityCodeVault.from_settings(redis, settings.redis, sealer=sealer)
        markers = AcceptedMarkers(redis)
        app[PAYMENTS] = PaymentService(
            secret_key=secret,
            fingerprints=fingerprints,
            payments=payments,
            methods=methods,
            vault=vault,
            sealer=sealer,
            locks=locks,
            markers=markers,
            admission=PaymentAdmission(redis, limiter, vault, markers),
            sender=sender,
        )
        app[PAYMENT_METHODS] = PaymentMethodService(
            secret_key=secret,
            fingerprints=fingerprints,
            sealer=sealer,
            methods=methods,
            locks=locks,
        )
        app[REFUNDS] = RefundService(
            secret_key=secret,
            payments=payments,
            refunds=PgRefundRepository(pool),
            locks=locks,
            sender=sender,
        )
        app[CAPTURES] = CaptureService(
            secret_key=secret,
            payments=payments,
            captures=PgCaptureRepository(pool),
            locks=locks,
            sender=sender,
        )
        app[LISTS] = ListService(PgPaymentLists(pool))
        _webhooks(app, settings, pool, secret)
        app[HEALTH] = HealthCheck(
            {
                "postgres": lambda: pool.fetchval("SELECT 1"),
                "redis": lambda: redis.ping(),
                "kafka": kafka_check(producer, replies),
                "bank": bank_check(session, settings.bank.url),
                "processor": processor_check(
                    redis,
                    stale_seconds=settings.api.processor_stale_seconds,
                    max_lag=settings.api.processor_max_lag,
                ),
            },
            degrading=frozenset({"processor"}),
        )
        freeze_startup()  # what is alive now lives as long as the process
        loop_watch = LoopWatch(asyncio.get_running_loop(), "api").install()
        yield
    finally:
        sampling.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sampling
        await replies.close()
        producer.close()
        await session.close()
        await redis.aclose()
        await pool.close()
        gc_watch.remove()
        if loop_watch is not None:
            loop_watch.remove()
        app[METRICS].close()


def _webhooks(app: web.Application, settings: Settings, pool: asyncpg.Pool, secret: bytes) -> None:
    """Webhook endpoints and events; the signing secrets are sealed under SECRET_KEY."""
    hooks = settings.webhooks
    store = PgWebhooks(pool)
    guard = UrlGuard(allow_private=hooks.allow_private_urls)
    app[WEBHOOKS] = WebhookEndpoints(
        store, SecretBox(secret), guard, max_per_merchant=hooks.max_endpoints_per_merchant
    )
    retention = dt.timedelta(days=hooks.retention_days)
    app[EVENTS] = Events(
        PgEvents(pool, retention=retention),
        store,
        horizon=dt.timedelta(seconds=hooks.retry_horizon_seconds),
    )


def run_api(settings: Settings) -> None:
    """`payment-service api`: serve until SIGTERM/SIGINT (logging and tracing set up by the CLI)."""
    api = settings.api
    log.info(
        "API instance %s listening on http://%s:%s%s",
        api.instance, api.host, api.port, " (shared port)" if api.reuse_port else "",
    )  # fmt: skip
    web.run_app(
        build_api(settings),
        host=api.host,
        port=api.port,
        reuse_port=api.reuse_port or None,
        access_log=None,
        print=None,
        shutdown_timeout=settings.api.sync_timeout_seconds + 5,
        loop=uvloop.new_event_loop(),
    )
