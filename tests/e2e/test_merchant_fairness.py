"""Two merchants on one processor: one merchant's flood of slow payments does not hold up the other.

The processor runs with a few slots (`PROCESSOR_MAX_IN_FLIGHT`) and a smaller share per merchant
(`PROCESSOR_MAX_IN_FLIGHT_PER_MERCHANT`). Merchant A sends more payments than there are slots, and
the bank holds each of them for seconds (a `delay` fault on their references); merchant B's
payments, sent while A's fill A's share, must all be answered 200 `captured` within the API's
synchronous wait. With the share equal to all the slots, A's payments take every slot and B's
wait behind them, past the API's wait (202) — docs/reliability.md and the `lanes` note show that
run failing.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import aiohttp
import pytest

from payment_service.core.ids import new_id
from tests.e2e.helpers import db_payment, executed, ledger
from tests.fixtures.service import Merchant, Service, eventually, payment_body

pytestmark = pytest.mark.e2e

SLOTS = 4
PER_MERCHANT = 2  # fairness off: SLOTS
FLOOD = 3 * SLOTS  # merchant A's payments: three rounds of every slot
BANK_HOLDS_MS = 6_000  # each of A's sales, at the bank: two rounds outlast the API's 10 s wait
OTHERS = 6  # merchant B's payments


async def _pay(
    http: aiohttp.ClientSession, merchant: Merchant, key: str
) -> tuple[int, dict[str, Any]]:
    headers = {**merchant.headers, "Idempotency-Key": key}
    body = payment_body(merchant.merchant_id)
    async with http.post("/api/v1/payments/process", json=body, headers=headers) as resp:
        return resp.status, await resp.json()


async def _ready(http: aiohttp.ClientSession, merchant: Merchant) -> None:
    """The restarted processor has joined its group and answers within the API's wait."""

    async def answered() -> bool:
        status, body = await _pay(http, merchant, f"warm-{uuid.uuid4().hex}")
        return (status, body.get("status")) == (200, "captured")

    await eventually(answered, timeout=90, what="the restarted processor to answer")


@pytest.mark.fault
@pytest.mark.timeout(400)  # a processor restart twice, and about 30 s of A's slow sales
async def test_one_merchants_flood_leaves_the_other_merchants_payments_on_time(
    service: Service,
    merchant_factory: Any,
    http: aiohttp.ClientSession,
) -> None:
    flooding, other = merchant_factory(), merchant_factory()
    keys = [f"flood-{uuid.uuid4().hex}" for _ in range(FLOOD)]
    slow = [new_id(flooding.merchant_id, key, "payment") for key in keys]
    processor = service.processes["processor"]
    processor.stop()
    processor.start(
        PROCESSOR_MAX_IN_FLIGHT=str(SLOTS),
        PROCESSOR_MAX_IN_FLIGHT_PER_MERCHANT=str(PER_MERCHANT),
        # The bank's hold on A's sales is slowness, not a lost answer.
        BANKING_API_READ_TIMEOUT_SECONDS="20",
        BANKING_API_TOTAL_TIMEOUT_SECONDS="30",
    )
    fault = {"mode": "delay", "operations": ["sale"], "references": slow,
             "delay_ms": BANK_HOLDS_MS}  # fmt: skip
    timeout = aiohttp.ClientTimeout(total=10)
    try:
        await _ready(http, other)
        async with aiohttp.ClientSession(timeout=timeout) as bank:
            async with bank.post(f"{service.bank_url}/sim/faults", json=fault) as resp:
                assert resp.status == 201
                fault_id = (await resp.json())["faults"][0]["id"]
            flood = [asyncio.create_task(_pay(http, flooding, key)) for key in keys]

            async def flood_at_the_bank() -> bool:
                rows = [await db_payment(service, txn) for txn in slow]
                return sum(row is not None for row in rows) >= PER_MERCHANT

            await eventually(flood_at_the_bank, timeout=60, what="A's payments to reach the bank")
            answers = await asyncio.gather(
                *(_pay(http, other, f"other-{uuid.uuid4().hex}") for _ in range(OTHERS))
            )
            for status, body in answers:
                assert (status, body.get("status")) == (200, "captured"), body
            for status, body in await asyncio.gather(*flood):
                assert status in (200, 202), body  # slow, not refused
            async with bank.delete(f"{service.bank_url}/sim/faults/{fault_id}") as resp:
                assert resp.status in (200, 204)
        for txn in slow:  # the flood settles too: slow is not lost, and charged once

            async def captured(txn: str = txn) -> bool:
                row = await db_payment(service, txn)
                return row is not None and row["status"] == "captured"

            await eventually(captured, timeout=120, what=f"A's payment {txn} to be captured")
            assert len(executed(await ledger(service, txn), "sale")) == 1
    finally:
        processor.stop()
        processor.start()
        await service.wait_healthy()
