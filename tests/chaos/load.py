"""The chaos suite's load and its invariants: payments at a steady rate, clients that retry.

Each payment has its own Idempotency-Key; a client that gets a 5xx, a 409 or no answer at all
retries with the same key (backoff 0.2 s doubling to 2 s) until it gets 200, 202 or a 4xx, for
as long as the scenario lasts plus a recovery allowance. Every answer is counted by HTTP code.

After the repair, `check` waits until every payment the API accepted is settled in PostgreSQL
(`SETTLE_SECONDS`: "nothing unsettled 2 minutes after the repair"), then compares PostgreSQL
with the bank simulator's ledger.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import asyncpg

from tests.fixtures.service import Merchant, Service, eventually, payment_body

SETTLE_SECONDS = 120.0
RETRYABLE = {409, 429, 500, 502, 503, 504}


@dataclass
class Sent:
    """One payment as its client saw it: every answer's code, the last answer."""

    key: str
    codes: list[str] = field(default_factory=list)
    status: int | None = None
    body: dict[str, Any] = field(default_factory=dict)
    # 503 answers that did not say when to retry (every 503 should: Retry-After).
    unhinted_503s: int = 0


async def one_payment(http: aiohttp.ClientSession, merchant: Merchant, deadline: float) -> Sent:
    sent = Sent(key=f"chaos-{uuid.uuid4().hex}")
    headers = {**merchant.headers, "Idempotency-Key": sent.key}
    body = payment_body(merchant.merchant_id)
    delay = 0.2
    while True:
        try:
            async with http.post("/api/v1/payments/process", json=body, headers=headers) as resp:
                sent.status, sent.body = resp.status, await resp.json()
                sent.codes.append(str(resp.status))
                if resp.status == 503 and "Retry-After" not in resp.headers:
                    sent.unhinted_503s += 1
        except (aiohttp.ClientError, TimeoutError) as exc:
            sent.status = None
            sent.codes.append(type(exc).__name__)
        if sent.status is not None and sent.status not in RETRYABLE:
            return sent
        if time.monotonic() > deadline:
            return sent
        await asyncio.sleep(delay)
        delay = min(delay * 2, 2.0)


async def run_load(
    service: Service, merchant: Merchant, *, rate: float, seconds: float, retry_for: float
) -> list[Sent]:
    """`rate` new payments a second for `seconds`; each retried until `retry_for` past the end."""
    timeout = aiohttp.ClientTimeout(total=30)
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(service.api_url, timeout=timeout, connector=connector) as http:
        started = time.monotonic()
        deadline = started + seconds + retry_for
        tasks: list[asyncio.Task[Sent]] = []
        for n in range(int(rate * seconds)):
            await asyncio.sleep(max(0.0, started + n / rate - time.monotonic()))
            tasks.append(asyncio.create_task(one_payment(http, merchant, deadline)))
        return list(await asyncio.gather(*tasks))


@dataclass
class Outcome:
    """One scenario's numbers and invariants, as docs/reliability.md shows them."""

    scenario: str
    sent: int
    codes: dict[str, int]
    final_codes: dict[str, int]
    recovery_seconds: float
    failed: dict[str, int]
    invariants: dict[str, bool]
    problems: list[str]

    def as_row(self) -> dict[str, Any]:
        return self.__dict__


async def check(
    service: Service, merchant: Merchant, sent: list[Sent], *, repaired_at: float, scenario: str
) -> Outcome:
    accepted = {s.body["transaction_id"] for s in sent if s.status in (200, 202) and s.body}
    rows = await _settled_rows(service, merchant, accepted)
    recovery = time.monotonic() - repaired_at
    ledger = await _ledger(service)
    problems: list[str] = []
    by_ref: dict[str, Counter[str]] = {}
    for entry in ledger:
        if entry["outcome"] == "approved" and entry["reference"] in rows:
            by_ref.setdefault(entry["reference"], Counter())[entry["operation"]] += 1
    # A sale authorizes and captures in one operation (automatic capture since main's flows).
    captures = {r: ops["capture"] + ops["sale"] for r, ops in by_ref.items()}
    twice = [
        r for r, ops in by_ref.items() if ops["authorize"] + ops["sale"] > 1 or captures[r] > 1
    ]
    problems += [f"charged twice: {r}" for r in twice]
    answered_captured = {
        s.body["transaction_id"]
        for s in sent
        if s.status == 200 and s.body.get("status") == "captured"
    }
    lost = [t for t in answered_captured if rows.get(t, {}).get("status") != "captured"]
    lost += [t for t in answered_captured if captures.get(t, 0) != 1]
    problems += [f"answered captured, not captured: {t}" for t in lost]
    disagree = [
        t for t, row in rows.items() if (row["status"] == "captured") != (captures.get(t, 0) == 1)
    ]
    problems += [f"database and bank disagree: {t}" for t in disagree]
    unsettled = [t for t in accepted if rows.get(t, {}).get("status") not in ("captured", "failed")]
    problems += [f"unsettled after the repair: {t}" for t in unsettled]
    over_refunded = [t for t, row in rows.items() if row["refunded_minor"] > row["captured_minor"]]
    problems += [f"refunded more than captured: {t}" for t in over_refunded]
    failed = Counter(str(row["failure_code"]) for row in rows.values() if row["status"] == "failed")
    return Outcome(
        scenario=scenario,
        sent=len(sent),
        codes=dict(Counter(code for s in sent for code in s.codes)),
        final_codes=dict(Counter(str(s.status) for s in sent)),
        recovery_seconds=round(recovery, 1),
        failed=dict(failed),
        invariants={
            "no double charge": not twice,
            "every 200 captured is captured in DB and bank": not lost,
            "DB agrees with bank ledger": not disagree,
            "nothing unsettled 2 min after repair": not unsettled,
            "refunds <= captured": not over_refunded,
        },
        problems=problems[:20],
    )


async def _settled_rows(
    service: Service, merchant: Merchant, accepted: set[str]
) -> dict[str, dict[str, Any]]:
    """The merchant's payments, once every accepted one is settled (or at the deadline)."""

    async def rows() -> dict[str, dict[str, Any]]:
        conn = await asyncpg.connect(service.database_url, timeout=10)
        try:
            found = await conn.fetch(
                "SELECT transaction_id, status, failure_code, captured_minor, refunded_minor "
                "FROM transactions WHERE merchant_id = $1",
                merchant.merchant_id,
            )
        finally:
            await conn.close()
        return {r["transaction_id"]: dict(r) for r in found}

    async def all_settled() -> dict[str, dict[str, Any]] | None:
        current = await rows()
        settled = all(current.get(t, {}).get("status") in ("captured", "failed") for t in accepted)
        return current if settled else None

    try:
        return await eventually(all_settled, timeout=SETTLE_SECONDS, what="every payment settled")
    except AssertionError:
        return await rows()  # reported as unsettled, with the rest of the numbers


async def _ledger(service: Service) -> list[dict[str, Any]]:
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session,
        session.get(f"{service.bank_url}/sim/ledger") as resp,
    ):
        resp.raise_for_status()
        data = await resp.json()
    entries: list[dict[str, Any]] = data["entries"]
    return entries
