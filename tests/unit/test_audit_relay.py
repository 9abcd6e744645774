"""The audit relay against in-memory fakes: each row becomes one event under its own event id;
the cursor moves only once every event is acknowledged; a failed produce leaves the cursor where
it was, so the next round publishes the same rows under the same ids; the first start begins at
the end unless told to begin at the beginning."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, cast

import pytest

from payment_service.config.settings import DatadogSettings, KafkaSettings, ProcessorSettings
from payment_service.core.audit_ports import BEGINNING, AuditRow, Lag, Position
from payment_service.kafka.producer import AsyncProducer, ProduceFailed
from payment_service.ops.telemetry import Metrics
from payment_service.schemas.messages import AuditEventV1
from payment_service.streams.audit_relay import CURSOR_NAME, AuditRelay, audit_message

pytestmark = pytest.mark.unit


def _row(audit_id: int, xid: int, **changes: Any) -> AuditRow:
    values: dict[str, Any] = {
        "id": audit_id,
        "xid": xid,
        "event_id": uuid.uuid4(),
        "transaction_id": f"pay_{xid}",
        "refund_id": None,
        "merchant_id": "m_1",
        "action": "payment.captured",
        "from_status": "processing",
        "to_status": "captured",
        "amount_minor": 2500,
        "currency": "USD",
        "correlation_id": "corr-1",
        "actor": "processor:reconciler",
        "details": {"sale": True},
        "created_at": dt.datetime(2026, 12, 2, 12, 0, tzinfo=dt.UTC),
    }
    return AuditRow(**{**values, **changes})


class _Feed:
    def __init__(self, rows: list[AuditRow]) -> None:
        self.rows = sorted(rows, key=lambda r: r.position)
        self.cursors: dict[str, Position] = {}

    async def after(self, position: Position, limit: int) -> list[AuditRow]:
        return [r for r in self.rows if r.position > position][:limit]

    async def behind(self, position: Position, bound: int) -> Lag:
        return Lag(len([r for r in self.rows if r.position > position][:bound]), 0.0)

    async def end(self) -> Position:
        return self.rows[-1].position if self.rows else BEGINNING

    async def upgrade(self) -> Position:
        return max([r.position for r in self.rows if r.xid == 0], default=BEGINNING)

    async def cursor(self, name: str) -> Position | None:
        return self.cursors.get(name)

    async def save(self, name: str, position: Position) -> None:
        self.cursors[name] = max(position, self.cursors.get(name, BEGINNING))


class _Producer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any], str | None]] = []
        self.fails = False

    async def produce(self, topic: str, value: bytes, **kwargs: Any) -> None:
        if self.fails:
            raise ProduceFailed("no acknowledgement")
        self.sent.append((topic, json.loads(value), kwargs.get("key")))


class _Lock:
    @asynccontextmanager
    async def held(self) -> AsyncIterator[bool]:
        yield True


def _relay(feed: _Feed, producer: _Producer, **settings: Any) -> AuditRelay:
    metrics = Metrics(DatadogSettings.model_validate({"metrics_enabled": False}), "processor")
    return AuditRelay(
        feed,
        _Lock(),
        cast(AsyncProducer, producer),
        KafkaSettings.model_validate({"topic_audit": "t.audit"}),
        ProcessorSettings.model_validate(settings),
        metrics,
    )


def test_the_event_is_the_row_under_its_own_event_id() -> None:
    row = _row(7, 100, refund_id="re_1")
    event = audit_message(row)
    again = AuditEventV1.model_validate_json(audit_message(row).model_dump_json())
    assert event == again  # every publication of a row is the same event
    assert event.message_id == event.data.event_id == str(row.event_id)
    assert event.occurred_at == event.data.created_at == row.created_at
    data = event.data
    assert (data.audit_id, data.refund_id, data.actor, data.details) == (
        7, "re_1", "processor:reconciler", {"sale": True}
    )  # fmt: skip
    assert (data.from_status, data.to_status, data.amount_minor) == ("processing", "captured", 2500)


async def test_a_batch_is_published_in_commit_order_then_the_cursor_moves() -> None:
    # Row 3 was inserted first but its transaction (xid 20) ended after row 5's (xid 10).
    feed = _Feed([_row(5, 10), _row(3, 20), _row(4, 20)])
    producer = _Producer()
    relay = _relay(feed, producer, audit_relay_batch=2)
    position, full = await relay.relay_batch(BEGINNING)
    assert (position, full) == ((20, 3), True)
    assert feed.cursors[CURSOR_NAME] == (20, 3)
    position, full = await relay.relay_batch(position)
    assert (position, full) == ((20, 4), False)
    assert [(m["data"]["audit_id"], key) for _, m, key in producer.sent] == [
        (5, "pay_10"), (3, "pay_20"), (4, "pay_20")
    ]  # fmt: skip
    assert {topic for topic, _, _ in producer.sent} == {"t.audit"}


async def test_a_failed_produce_keeps_the_cursor_and_the_retry_repeats_the_same_ids() -> None:
    feed = _Feed([_row(1, 10), _row(2, 11)])
    producer = _Producer()
    relay = _relay(feed, producer)
    producer.fails = True
    with pytest.raises(ProduceFailed):
        await relay.relay_batch(BEGINNING)
    assert CURSOR_NAME not in feed.cursors
    producer.fails = False
    await relay.relay_batch(BEGINNING)
    ids = [m["data"]["event_id"] for _, m, _ in producer.sent]
    assert ids == [str(r.event_id) for r in feed.rows]


@pytest.mark.parametrize(("start", "expected"), [("end", (0, 2)), ("beginning", BEGINNING)])
async def test_the_first_start_begins_past_the_rows_from_before_the_upgrade_unless_told_otherwise(
    start: str, expected: Position
) -> None:
    # Rows 1-2 were written before 0007 (xid 0); row 3 after it, before any relay ran.
    feed = _Feed([_row(1, 0), _row(2, 0), _row(3, 11)])
    relay = _relay(feed, _Producer(), audit_relay_from=start)
    assert await relay.start_position() == expected
    feed.cursors[CURSOR_NAME] = (10, 1)
    assert await relay.start_position() == (10, 1)  # later starts resume from the cursor
