"""The audit relay: every `audit_log` row to `payments.audit`, outbox-style, from the row itself.

The rows are written in the same transactions as the changes they record (every writer, the
reconciler's included), so publishing them, not a summary beside each result, makes the topic
complete. Each event carries its row's event id and actor. One loop, in the processor that holds
the relay lock (`LOCK_ID`, a PostgreSQL advisory lock; one relay across all processors):

1. read a batch of rows past the cursor in commit order (storage/audit_feed.py);
2. produce them all and await every acknowledgement (acks=all, idempotent producer);
3. save the cursor past the batch.

A crash between 2 and 3 publishes the batch again with the same event ids: duplicates, never a
missing row nor a row under two ids; consumers deduplicate on `event_id`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Final

from payment_service.config.sections import KafkaSettings, ProcessorSettings
from payment_service.core.audit_ports import BEGINNING, AuditFeed, AuditRow, Position
from payment_service.core.ports import ExclusiveLock
from payment_service.kafka.producer import AsyncProducer
from payment_service.ops import metric_catalog as catalog
from payment_service.ops.faults import crash_point
from payment_service.ops.telemetry import Metrics
from payment_service.schemas.messages import HEADER_CORRELATION_ID, AuditEvent, AuditEventV1

log = logging.getLogger(__name__)

LOCK_ID: Final = 0x61756469  # "audi": one relay at a time across processors
CURSOR_NAME: Final = "audit_relay"
# The relay gives its lock up this often, so a lock lost with its connection is taken again.
TERM_SECONDS: Final = 30.0
# How often a processor without the lock tries for it: the relay's failover time.
STANDBY_SECONDS: Final = 2.0
LAG_BOUND: Final = 10000


def audit_message(row: AuditRow) -> AuditEventV1:
    """The event of one row: its own event id, so every publication of it is the same event."""
    event = AuditEvent(
        event_id=str(row.event_id),
        transaction_id=row.transaction_id,
        refund_id=row.refund_id,
        merchant_id=row.merchant_id,
        action=row.action,
        from_status=row.from_status,
        to_status=row.to_status,
        amount_minor=row.amount_minor,
        currency=row.currency,
        correlation_id=row.correlation_id,
        actor=row.actor,
        details=row.details,
        audit_id=row.id,
        created_at=row.created_at,
    )
    return AuditEventV1(message_id=str(row.event_id), occurred_at=row.created_at, data=event)


class AuditRelay:
    def __init__(
        self,
        feed: AuditFeed,
        lock: ExclusiveLock,
        producer: AsyncProducer,
        kafka: KafkaSettings,
        settings: ProcessorSettings,
        metrics: Metrics,
    ) -> None:
        self._feed = feed
        self._lock = lock
        self._producer = producer
        self._topic = kafka.topic_audit
        self._settings = settings
        self._metrics = metrics

    async def run_forever(self) -> None:
        while True:
            pause = STANDBY_SECONDS
            try:
                async with self._lock.held() as mine:
                    if mine:
                        await self._term()
                        pause = self._settings.audit_relay_interval_seconds
            except Exception:  # the loop must survive an outage; it logs and tries again
                log.exception("audit relay round failed")
            await asyncio.sleep(pause)

    async def _term(self) -> None:
        """Relay until the term ends: batches back to back, a pause when caught up."""
        position = await self.start_position()
        ends = time.monotonic() + TERM_SECONDS
        while time.monotonic() < ends:
            position, full = await self.relay_batch(position)
            if not full:
                await asyncio.sleep(self._settings.audit_relay_interval_seconds)

    async def start_position(self) -> Position:
        """The saved cursor; on the very first start, the upgrade (or the beginning if asked).

        `end` starts just past the rows written before the audit outbox (0007): the earlier
        version published those itself. Every row written since is published, however long the
        first relay took to start after the migration (a rolling deploy, the reconciler's rows).
        """
        saved = await self._feed.cursor(CURSOR_NAME)
        if saved is not None:
            return saved
        first = (
            BEGINNING
            if self._settings.audit_relay_from == "beginning"
            else await self._feed.upgrade()
        )
        await self._feed.save(CURSOR_NAME, first)
        log.info("audit relay starts at %s (%s)", first, self._settings.audit_relay_from)
        return first

    async def relay_batch(self, position: Position) -> tuple[Position, bool]:
        """Publish one batch past `position`; the new position, and whether the batch was full."""
        batch = self._settings.audit_relay_batch
        rows = await self._feed.after(position, batch)
        if rows:
            await self._publish(rows)
            crash_point("relay_after_produce")
            position = rows[-1].position
            await self._feed.save(CURSOR_NAME, position)
            self._metrics.increment(catalog.AUDIT_PUBLISHED, value=len(rows))
        lag = await self._feed.behind(position, LAG_BOUND)
        self._metrics.gauge(catalog.AUDIT_LAG_ROWS, float(lag.rows))
        self._metrics.gauge(catalog.AUDIT_LAG_SECONDS, lag.seconds)
        return position, len(rows) == batch

    async def _publish(self, rows: list[AuditRow]) -> None:
        """Every row produced, all acknowledged (or `ProduceFailed`: the batch is read again)."""
        timeout = self._settings.audit_relay_produce_timeout_seconds
        await asyncio.gather(
            *(
                self._producer.produce(
                    self._topic,
                    audit_message(row).model_dump_json().encode(),
                    key=row.transaction_id,
                    headers={HEADER_CORRELATION_ID: row.correlation_id}
                    if row.correlation_id
                    else None,
                    timeout=timeout,
                )
                for row in rows
            )
        )
