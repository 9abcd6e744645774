"""A manual capture or void whose bank answer was lost is settled by the fast lane in seconds.

The bank executes the capture (or void) but its answer and its status inquiries are lost (5xx
after commit), so the payment stays `capturing` / `canceling`. Once the bank answers again, the
fast lane repeats the call under the same key and the bank replays its first answer; this has to
happen well before the reconciler's sweep, which looks only at payments unsettled for 120 s.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import aiohttp
import pytest

from tests.e2e.helpers import db_audit, db_payment, executed, ledger, topic_messages
from tests.fixtures.service import Merchant, Service, eventually, payment_body

pytestmark = pytest.mark.e2e

# Bank operation, API action, the payment's status while the answer is lost, and once settled.
CASES = [
    ("capture", "capture", "capturing", "captured"),
    ("void", "cancel", "canceling", "canceled"),
]


async def _held(http: aiohttp.ClientSession, merchant: Merchant) -> str:
    body = payment_body(merchant.merchant_id, amount="100.00", capture_method="manual")
    async with http.post("/api/v1/payments/process", json=body, headers=merchant.headers) as resp:
        payment: dict[str, Any] = await resp.json()
        assert (resp.status, payment["status"]) == (200, "requires_capture"), payment
    return str(payment["transaction_id"])


@pytest.mark.fault
@pytest.mark.timeout(300)  # a busy machine
@pytest.mark.parametrize(("operation", "action", "pending", "settled"), CASES)
async def test_a_lost_capture_or_void_answer_is_settled_by_the_fast_lane(
    service: Service,
    merchant: Merchant,
    http: aiohttp.ClientSession,
    operation: str,
    action: str,
    pending: str,
    settled: str,
) -> None:
    txn = await _held(http, merchant)
    fault = {"mode": "error_after_commit", "operations": [operation, "inquiry"],
             "references": [txn]}  # fmt: skip

    async def status_is(wanted: str) -> bool:
        row = await db_payment(service, txn)
        return row is not None and row["status"] == wanted

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as bank:
        async with bank.post(f"{service.bank_url}/sim/faults", json=fault) as resp:
            assert resp.status == 201
            fault_id = (await resp.json())["faults"][0]["id"]
        headers = {**merchant.headers, "Idempotency-Key": f"lost-{operation}-{uuid.uuid4().hex}"}
        path = f"/api/v1/payments/{txn}/{action}"
        async with http.post(path, json={}, headers=headers) as resp:
            answer = await resp.json()
            assert resp.status in (200, 202), answer
        await eventually(lambda: status_is(pending), what=f"the {operation} to be {pending}")
        async with bank.delete(f"{service.bank_url}/sim/faults/{fault_id}") as resp:
            assert resp.status in (200, 204)
    # The bank answers again: the breaker's cool-down, then the fast lane's next attempt. 45 s
    # leaves room for a busy machine and is still far short of the sweep's 120 s.
    await eventually(lambda: status_is(settled), timeout=45, what=f"the lost {operation} settled")
    entries = await ledger(service, txn)
    assert len(executed(entries, operation)) == 1, entries  # repeated under its key, done once
    assert [e["operation"] for e in entries if e["operation"] in ("capture", "void")] == [
        operation
    ], entries

    # The settling transition was written outside any command (the fast lane's, the sweep's own
    # code); the relay publishes it from its row like every other, under the row's event id.
    (row,) = [r for r in await db_audit(service, txn) if r["to_status"] == settled]

    async def published() -> bool:
        events = [
            json.loads(m.value()) for m in await topic_messages(service, service.topic("audit"))
        ]
        return any(e["data"]["event_id"] == str(row["event_id"]) for e in events)

    await eventually(published, timeout=60, what=f"the {settled} row's audit event on the topic")
