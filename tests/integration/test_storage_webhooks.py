"""Events and deliveries in the real PostgreSQL: one event per audit row however often it is
read, an audit row that commits after a later one still becomes its event, deliveries only to
the merchant's subscribed endpoints, and the purge of events past their retention."""

from __future__ import annotations

import datetime as dt
import uuid

import asyncpg
import pytest

from payment_service.core.webhooks import EndpointRecord, NewEvent, new_endpoint_id
from payment_service.storage.audit import write_audit
from payment_service.storage.events import PgEvents
from payment_service.storage.payments import PgPaymentRepository
from payment_service.storage.refunds import PgRefundRepository
from payment_service.storage.webhooks import PgWebhooks
from payment_service.webhooks.events import BATCH, EventReader
from tests.fixtures.postgres import new_payment

pytestmark = pytest.mark.integration
DAYS_3 = dt.timedelta(days=3)


async def _endpoint(hooks: PgWebhooks, merchant: str, events: tuple[str, ...]) -> str:
    record = EndpointRecord(
        new_endpoint_id(), merchant, "https://example.com/hooks", events, None,
        dt.datetime.now(dt.UTC), "v1:sealed",
    )  # fmt: skip
    return (await hooks.create_endpoint(record)).endpoint_id


async def _catch_up(reader: EventReader) -> None:
    while await reader.step() >= BATCH:
        pass


async def _audit(conn: asyncpg.Connection, txn: str, merchant: str, to_status: str) -> None:
    await write_audit(
        conn, transaction_id=txn, merchant_id=merchant, action=f"test_{to_status}",
        from_status="authorized", to_status=to_status,
    )  # fmt: skip


async def test_late_commits_redelivery_and_subscriptions(pg_pool: asyncpg.Pool) -> None:
    payments = PgPaymentRepository(pg_pool)
    events = PgEvents(pg_pool, retention=dt.timedelta(days=30))
    hooks = PgWebhooks(pg_pool)
    new = new_payment()
    txn, merchant = new.transaction_id, new.merchant_id
    await payments.claim_payment(new, correlation_id=None)
    # Late commits happen across payments: one payment's audit rows are serialised by its row
    # lock (and its hash chain), so the quick row belongs to another payment of the merchant.
    other = new_payment(merchant_id=merchant)
    await payments.claim_payment(other, correlation_id=None)
    everything = await _endpoint(hooks, merchant, ("*",))
    captured_only = await _endpoint(hooks, merchant, ("payment.captured",))
    refunds_only = await _endpoint(hooks, merchant, ("refund.failed",))
    stranger = await _endpoint(hooks, f"other_{uuid.uuid4().hex[:8]}", ("*",))
    reader = EventReader(events, payments, PgRefundRepository(pg_pool), give_up=DAYS_3)
    await _catch_up(reader)
    start = reader._cursor

    # A transition's audit row is written but not committed; a later one commits first.
    async with pg_pool.acquire() as slow:
        tx = slow.transaction()
        await tx.start()
        await _audit(slow, txn, merchant, "captured")
        async with pg_pool.acquire() as quick:
            await _audit(quick, other.transaction_id, merchant, "failed")
        await _catch_up(reader)
        # The reader waits for the open transaction (commit order): nothing is skipped.
        page, _ = await events.page(merchant, limit=10)
        assert [e.type for e in page] == []
        await tx.commit()
    await _catch_up(reader)
    page, has_more = await events.page(merchant, limit=10)
    assert sorted(e.type for e in page) == ["payment.captured", "payment.failed"]
    assert not has_more
    assert all(e.data["card"]["last4"] == "4242" for e in page)

    # Read these rows again (a restart from an older cursor): nothing new.
    again = EventReader(events, payments, PgRefundRepository(pg_pool), give_up=DAYS_3)
    again._cursor = start
    await _catch_up(again)
    assert len((await events.page(merchant, limit=10))[0]) == 2

    async def deliveries(endpoint: str) -> list[str]:
        found = await hooks.deliveries(endpoint, limit=10)
        assert found is not None
        return sorted(d.event_id for d in found[0])

    ids = {e.type: e.event_id for e in page}
    assert await deliveries(everything) == sorted(ids.values())
    assert await deliveries(captured_only) == [ids["payment.captured"]]
    assert await deliveries(refunds_only) == []
    assert await deliveries(stranger) == []
    # Redelivery is the merchant's own: another merchant's id queues nothing.
    wrong = await hooks.redeliver(ids["payment.failed"], merchant_id="someone", horizon=DAYS_3)
    assert wrong == []
    redone = await hooks.redeliver(ids["payment.failed"], merchant_id=merchant, horizon=DAYS_3)
    assert [d.endpoint_id for d in redone] == [everything]


async def test_events_past_retention_are_hidden_then_purged(pg_pool: asyncpg.Pool) -> None:
    events = PgEvents(pg_pool, retention=dt.timedelta(days=30))
    hooks = PgWebhooks(pg_pool)
    merchant = f"m_{uuid.uuid4().hex[:12]}"
    endpoint = await _endpoint(hooks, merchant, ("*",))
    old, recent = f"evt_{uuid.uuid4().hex}", f"evt_{uuid.uuid4().hex}"
    now = dt.datetime.now(dt.UTC)
    await events.record(
        [
            NewEvent(old, merchant, "payment.captured", "t1", {"status": "captured"}, now),
            NewEvent(recent, merchant, "payment.failed", "t2", {"status": "failed"}, now),
        ],
        (0, 0),  # behind the saved cursor: it stays where it is
        DAYS_3,
    )
    async with pg_pool.acquire() as conn:
        await conn.execute(
            "UPDATE events SET created_at = now() - interval '31 days' WHERE event_id = $1", old
        )
    assert await events.get(old, merchant_id=merchant) is None
    assert [e.event_id for e in (await events.page(merchant, limit=10))[0]] == [recent]
    while await events.purge():
        pass
    async with pg_pool.acquire() as conn:
        left = await conn.fetch(
            "SELECT event_id FROM webhook_deliveries WHERE endpoint_id = $1", endpoint
        )
        assert [r["event_id"] for r in left] == [recent]
        assert await conn.fetchval("SELECT count(*) FROM events WHERE event_id = $1", old) == 0
