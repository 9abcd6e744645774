"""The dispatcher's loop: read new events, then serve endpoints with due deliveries.

1. Read audit rows into events and pending deliveries (`EventReader.step`), until caught up.
2. Ask for endpoints with deliveries due, leaving out the ones being served, at most as many
   as there are free slots (`max_concurrent_endpoints`).
3. Serve each in its own task: its due deliveries one after another, oldest first. A slow or
   failing endpoint holds only its own task (and its attempts have explicit timeouts), so other
   merchants' endpoints are served beside it.
4. Every hour, purge events past their retention.

Only one dispatcher works at a time (a PostgreSQL advisory lock); another waits as a standby.
A failed attempt is due again after `retry_base * 2**(attempts-1)` (at most `retry_max`), until
its 3-day horizon; then the delivery is `failed`, and `POST /events/{id}/redeliver` can replay it.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from typing import Final

from payment_service.config.webhooks import WebhookSettings
from payment_service.core.errors import StorageError
from payment_service.core.ports import ExclusiveLock
from payment_service.core.webhook_ports import EventStore, WebhookStore
from payment_service.core.webhooks import DueDelivery
from payment_service.webhooks.delivery import AttemptResult, Sender
from payment_service.webhooks.events import BATCH, EventReader
from payment_service.webhooks.secrets import SecretUnreadable

log = logging.getLogger(__name__)

LOCK_ID: Final = 0x7765626B6F6F6B  # "webkook" in ASCII: one active dispatcher
PURGE_EVERY_SECONDS: Final = 3600.0


def backoff(settings: WebhookSettings, attempts: int) -> dt.timedelta:
    """How long after its `attempts`-th failed attempt a delivery is due again."""
    seconds = settings.retry_base_seconds * 2 ** min(attempts - 1, 40)
    return dt.timedelta(seconds=min(seconds, settings.retry_max_seconds))


class Dispatcher:
    def __init__(
        self,
        settings: WebhookSettings,
        reader: EventReader,
        events: EventStore,
        webhooks: WebhookStore,
        sender: Sender,
        lock: ExclusiveLock,
    ) -> None:
        self._settings = settings
        self._reader = reader
        self._events = events
        self._webhooks = webhooks
        self._sender = sender
        self._lock = lock
        self._serving: dict[str, asyncio.Task[None]] = {}
        self._last_purge = 0.0

    async def run_forever(self) -> None:
        while True:
            try:
                async with self._lock.held() as mine:
                    if mine:
                        log.info("dispatcher active")
                        await self._work()
            except StorageError as exc:
                log.warning("dispatcher: storage unavailable (%s); retrying", exc)
            except Exception:
                # A bug in one pass must not stop every merchant's deliveries: log, go on.
                log.exception("dispatcher pass failed; retrying")
            await asyncio.sleep(self._settings.poll_interval_seconds)

    async def _work(self) -> None:
        try:
            while True:
                await self.step()
                await asyncio.sleep(self._settings.poll_interval_seconds)
        finally:
            for task in self._serving.values():
                task.cancel()
            for task in list(self._serving.values()):
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def step(self) -> None:
        """One pass: steps 1, 2 and 4 above (step 3 runs in the tasks it starts)."""
        # Step 1
        while await self._reader.step() >= BATCH:
            pass
        # Step 2
        free = self._settings.max_concurrent_endpoints - len(self._serving)
        if free > 0:
            for endpoint_id in await self._webhooks.due_endpoints(list(self._serving), free):
                self._serving[endpoint_id] = asyncio.create_task(self._serve(endpoint_id))
        # Step 4
        if time.monotonic() - self._last_purge > PURGE_EVERY_SECONDS:
            self._last_purge = time.monotonic()
            purged = await self._events.purge()
            if purged:
                log.info("purged %s events past retention", purged)

    async def _serve(self, endpoint_id: str) -> None:
        # Step 3
        try:
            for delivery in await self._webhooks.due_for(
                endpoint_id, self._settings.endpoint_batch
            ):
                await self._attempt(delivery)
        except StorageError as exc:
            log.warning("endpoint %s: storage unavailable (%s)", endpoint_id, exc)
        finally:
            self._serving.pop(endpoint_id, None)  # its next due deliveries, in a later pass

    async def _attempt(self, delivery: DueDelivery) -> None:
        try:
            result = await self._sender.send(delivery)
        except SecretUnreadable:
            result = AttemptResult(False, error="the signing secret cannot be read (SECRET_KEY?)")
        now = dt.datetime.now(dt.UTC)
        next_at: dt.datetime | None = None
        if not result.succeeded:
            next_at = now + backoff(self._settings, delivery.attempts + 1)
            if next_at > delivery.give_up_at:
                next_at = None
            log.info(
                "webhook %s to %s failed (attempt %s): %s",
                delivery.event_id, delivery.endpoint_id, delivery.attempts + 1, result.error,
            )  # fmt: skip
        await self._webhooks.attempted(
            delivery,
            next_attempt_at=next_at,
            succeeded=result.succeeded,
            status_code=result.status_code,
            error=result.error,
        )
