"""Audit events come from the audit rows: complete, and each row under one event id (issue 12).

The relay is killed between producing a batch and saving its cursor (`relay_after_produce`).
After the restart, every audit row of the payments and the refund is on `payments.audit` under
its own event id; the batch the kill interrupted is there twice with the same ids (so consumers
deduplicate on `event_id`), and no row appears under two ids.
"""

from __future__ import annotations

import asyncio
import json
import signal
from collections import defaultdict
from typing import Any

import aiohttp
import pytest

from tests.e2e.helpers import db_audit, db_payment, topic_messages
from tests.fixtures.service import Merchant, Service, eventually, payment_body

pytestmark = [pytest.mark.e2e, pytest.mark.fault]

PAYMENTS = 6


async def _post(
    http: aiohttp.ClientSession, merchant: Merchant, path: str, body: dict[str, Any]
) -> tuple[int, dict[str, Any]]:
    async with http.post(path, json=body, headers=merchant.headers) as resp:
        return resp.status, await resp.json()


async def _status_is(service: Service, txn: str, wanted: str) -> None:
    async def reached() -> bool:
        row = await db_payment(service, txn)
        return row is not None and row["status"] == wanted

    await eventually(reached, timeout=60, what=f"payment {txn} to be {wanted}")


async def _published(service: Service, txns: set[str]) -> list[dict[str, Any]]:
    """The audit events of `txns` now on the topic (all of them, duplicates included)."""
    events = []
    for message in await topic_messages(service, service.topic("audit")):
        event = json.loads(message.value())
        if event["data"]["transaction_id"] in txns:
            assert message.key().decode() == event["data"]["transaction_id"]
            events.append(event)
    return events


@pytest.mark.timeout(300)  # a processor restart on a busy machine
async def test_a_relay_killed_before_its_cursor_loses_no_event_and_gives_no_row_two_ids(
    service: Service, merchant: Merchant, http: aiohttp.ClientSession
) -> None:
    processor = service.processes["processor"]
    processor.stop()
    processor.start(PROCESSOR_CRASH_AT="relay_after_produce")
    sent = asyncio.gather(
        *(
            _post(http, merchant, "/api/v1/payments/process", payment_body(merchant.merchant_id))
            for _ in range(PAYMENTS)
        )
    )
    # The point fires once the relay has produced its first batch of these payments' rows.
    assert await asyncio.to_thread(processor.wait_exit, 60) == -signal.SIGKILL
    processor.start()
    answers = await sent
    assert all(status in (200, 202) for status, _ in answers), answers
    txns = {body["transaction_id"] for _, body in answers}
    for txn in txns:
        await _status_is(service, txn, "captured")
    refunded = sorted(txns)[0]
    status, _ = await _post(
        http, merchant, f"/api/v1/payments/{refunded}/refund", {"amount": "10.00"}
    )
    assert status in (200, 202)
    await _status_is(service, refunded, "partially_refunded")

    rows = {str(r["event_id"]): r for txn in txns for r in await db_audit(service, txn)}
    assert any(r["refund_id"] for r in rows.values())  # the refund's own rows are among them

    async def all_published() -> list[dict[str, Any]] | None:
        events = await _published(service, txns)
        return events if set(rows) <= {e["data"]["event_id"] for e in events} else None

    events = await eventually(all_published, timeout=60, what="every audit row on the topic")
    ids_of_row: dict[tuple[Any, ...], set[str]] = defaultdict(set)
    copies: dict[str, int] = defaultdict(int)
    for event in events:
        data = event["data"]
        row = rows[data["event_id"]]  # no event that is not a row
        assert event["message_id"] == data["event_id"]
        assert (data["audit_id"], data["action"], data["actor"]) == (
            row["id"],
            row["action"],
            row["actor"],
        )
        assert (data["from_status"], data["to_status"]) == (row["from_status"], row["to_status"])
        ids_of_row[
            (data["transaction_id"], data["refund_id"], data["action"], data["created_at"])
        ].add(data["event_id"])
        copies[data["event_id"]] += 1
    assert all(len(ids) == 1 for ids in ids_of_row.values()), ids_of_row
    # The batch the kill interrupted was published again, under the same ids.
    assert max(copies.values()) >= 2, copies
