"""The webhook dispatcher's composition root: `payment-service dispatcher`.

It reads PostgreSQL only (the audit log, the events and deliveries tables) and posts to
merchants' endpoints; it needs no Kafka principal. Why a worker over the audit log rather than
a Kafka consumer: docs/webhooks.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import signal

import uvloop

from payment_service.app.custody import request_hash_key
from payment_service.config.settings import Settings
from payment_service.storage.db import create_pool
from payment_service.storage.events import PgEvents
from payment_service.storage.locks import PgAdvisoryLock
from payment_service.storage.payments import PgPaymentRepository
from payment_service.storage.refunds import PgRefundRepository
from payment_service.storage.webhooks import PgWebhooks
from payment_service.webhooks.delivery import Sender, http_session
from payment_service.webhooks.dispatcher import LOCK_ID, Dispatcher
from payment_service.webhooks.events import EventReader
from payment_service.webhooks.secrets import SecretBox

log = logging.getLogger(__name__)


async def run(settings: Settings) -> None:
    """Run until SIGTERM/SIGINT, then close the client and the pool."""
    hooks = settings.webhooks
    box = SecretBox(request_hash_key(settings))
    pool = await create_pool(settings.database, application_name="payment-service-dispatcher")
    session = http_session(hooks)
    try:
        retention = dt.timedelta(days=hooks.retention_days)
        events = PgEvents(pool, retention=retention)
        webhooks = PgWebhooks(pool)
        reader = EventReader(
            events,
            PgPaymentRepository(pool),
            PgRefundRepository(pool),
            give_up=dt.timedelta(seconds=hooks.retry_horizon_seconds),
        )
        sender = Sender(session, box, allow_private=hooks.allow_private_urls)
        dispatcher = Dispatcher(
            hooks, reader, events, webhooks, sender, PgAdvisoryLock(pool, LOCK_ID)
        )
        task = asyncio.create_task(dispatcher.run_forever())
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        log.info("dispatcher started")
        await stop.wait()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    finally:
        await session.close()
        await pool.close()


def run_dispatcher(settings: Settings) -> None:
    uvloop.run(run(settings))
