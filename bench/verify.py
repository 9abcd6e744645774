"""The correctness check after each run: PostgreSQL and the bank's ledger, for every accepted id.

Checked for every payment the API accepted (answered 200 or 202) and every refund it accepted:
- it is in PostgreSQL and reached a final status (after waiting for the backlog to drain);
- the bank's ledger agrees with the database: a captured payment has exactly one approved capture
  of its amount, a failed one none; the refunded amount in the database is the sum of the bank's
  approved refunds; every completed refund has exactly one approved refund at the bank;
- nothing is charged twice: at most one approved authorization and one approved capture per
  payment, and no ledger entry for a payment we never accepted.
The simulator's books are reset before each run, so the full ledger is this run's.
"""

from __future__ import annotations

import asyncio
import collections
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import asyncpg

PAYMENT_FINAL = ("captured", "failed", "partially_refunded", "refunded")
REFUND_FINAL = ("completed", "failed")
MAX_EXAMPLES = 5


@dataclass
class Verdict:
    payments: int = 0
    refunds: int = 0
    drained_in_s: float = 0.0
    drained_at: float = 0.0  # time.monotonic() when the accepted ids were all final
    by_status: dict[str, int] = field(default_factory=dict)
    problems: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list[str]] = field(default_factory=dict)
    ledger_entries: int = 0
    # Payments answered with an error (5xx, timeout) that were nevertheless accepted: by status.
    error_answers_processed: dict[str, int] = field(default_factory=dict)

    def problem(self, name: str, example: str) -> None:
        self.problems[name] = self.problems.get(name, 0) + 1
        examples = self.examples.setdefault(name, [])
        if len(examples) < MAX_EXAMPLES:
            examples.append(example)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "payments_checked": self.payments,
            "refunds_checked": self.refunds,
            "drained_in_s": round(self.drained_in_s, 2),
            "payment_status": self.by_status,
            "ledger_entries": self.ledger_entries,
            "error_answers_processed": self.error_answers_processed,
            "problems": self.problems,
            "examples": self.examples,
        }


async def wait_drained(
    pool: asyncpg.Pool, payment_ids: list[str], refund_ids: list[str], timeout: float
) -> float:
    """Seconds until every accepted id is final in PostgreSQL (or the timeout passed)."""
    start = time.monotonic()
    while True:
        open_payments = await pool.fetchval(
            "SELECT count(*) FROM transactions WHERE transaction_id = ANY($1::text[])"
            " AND status <> ALL($2::text[])",
            payment_ids,
            list(PAYMENT_FINAL),
        )
        found = await pool.fetchval(
            "SELECT count(*) FROM transactions WHERE transaction_id = ANY($1::text[])",
            payment_ids,
        )
        open_refunds = await pool.fetchval(
            "SELECT count(*) FROM refunds WHERE refund_id = ANY($1::text[])"
            " AND status <> ALL($2::text[])",
            refund_ids,
            list(REFUND_FINAL),
        )
        if (open_payments == 0 and found == len(payment_ids) and open_refunds == 0) or (
            time.monotonic() - start > timeout
        ):
            return time.monotonic() - start
        await asyncio.sleep(0.5)


async def verify(
    database_url: str,
    banksim_url: str,
    payments: dict[str, str],
    refunds: dict[str, list[str]],
    *,
    merchant_id: str,
    failed_keys: dict[str, str],
    drain_timeout: float = 60.0,
) -> Verdict:
    verdict = Verdict(payments=len(payments), refunds=len(refunds))
    payment_ids = list(payments)
    refund_ids = list(refunds)
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    try:
        verdict.drained_in_s = await wait_drained(pool, payment_ids, refund_ids, drain_timeout)
        verdict.drained_at = time.monotonic()
        if failed_keys:
            # An error answer does not prove nothing happened: find what the processor claimed.
            await asyncio.sleep(1.0)
            bound = await pool.fetch(
                "SELECT k.resource_id, t.status FROM idempotency_keys k"
                " JOIN transactions t ON t.transaction_id = k.resource_id"
                " WHERE k.merchant_id = $1 AND k.idempotency_key = ANY($2::text[])",
                merchant_id,
                list(failed_keys),
            )
            late = [r["resource_id"] for r in bound]
            verdict.error_answers_processed = dict(collections.Counter(r["status"] for r in bound))
            payments = {**payments, **{txn: "error-answer" for txn in late}}
            payment_ids = list(payments)
            verdict.payments = len(payments)
            await wait_drained(pool, late, [], drain_timeout)
        rows = await pool.fetch(
            "SELECT transaction_id, status, amount_minor, captured_minor, refunded_minor"
            " FROM transactions WHERE transaction_id = ANY($1::text[])",
            payment_ids,
        )
        refund_rows = await pool.fetch(
            "SELECT refund_id, transaction_id, status, amount_minor FROM refunds"
            " WHERE refund_id = ANY($1::text[])",
            refund_ids,
        )
    finally:
        await pool.close()
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as session,
        session.get(f"{banksim_url}/sim/ledger") as resp,
    ):
        resp.raise_for_status()
        entries: list[dict[str, Any]] = (await resp.json())["entries"]
    verdict.ledger_entries = len(entries)
    _compare(verdict, payments, refunds, rows, refund_rows, entries)
    return verdict


def _compare(
    verdict: Verdict,
    payments: dict[str, str],
    refunds: dict[str, list[str]],
    rows: list[Any],
    refund_rows: list[Any],
    entries: list[dict[str, Any]],
) -> None:
    db = {r["transaction_id"]: r for r in rows}
    statuses = collections.Counter(r["status"] for r in rows)
    verdict.by_status = dict(statuses)
    auths: collections.Counter[str] = collections.Counter()
    captures: collections.Counter[str] = collections.Counter()
    captured_minor: collections.Counter[str] = collections.Counter()
    refunded_minor: collections.Counter[str] = collections.Counter()
    bank_refunds: collections.Counter[str] = collections.Counter()
    for e in entries:
        ref = e["reference"]
        if ref not in payments:
            verdict.problem("ledger_entry_for_unknown_payment", f"{e['operation']} {ref}")
            continue
        if e["outcome"] != "approved":
            continue
        # A sale (automatic capture, one bank call) is an authorization and a capture at once.
        if e["operation"] in ("authorize", "sale"):
            auths[ref] += 1
        if e["operation"] in ("capture", "sale"):
            captures[ref] += 1
            captured_minor[ref] += e["amount_minor"]
        elif e["operation"] == "refund":
            refunded_minor[ref] += e["amount_minor"]
            bank_refunds[e.get("refund_reference") or ""] += 1

    for txn in payments:
        row = db.get(txn)
        if row is None:
            verdict.problem("accepted_payment_missing_in_db", txn)
            continue
        if row["status"] not in PAYMENT_FINAL:
            verdict.problem("payment_not_final", f"{txn} {row['status']}")
        if auths[txn] > 1:
            verdict.problem("authorized_twice", txn)
        if captures[txn] > 1:
            verdict.problem("charged_twice", txn)
        if row["captured_minor"] != captured_minor[txn]:
            verdict.problem(
                "captured_amount_db_vs_bank",
                f"{txn} db={row['captured_minor']} bank={captured_minor[txn]}",
            )
        if row["refunded_minor"] != refunded_minor[txn]:
            verdict.problem(
                "refunded_amount_db_vs_bank",
                f"{txn} db={row['refunded_minor']} bank={refunded_minor[txn]}",
            )
        if row["status"] in ("captured", "partially_refunded", "refunded") and captures[txn] != 1:
            verdict.problem("captured_in_db_without_bank_capture", txn)
        if row["status"] == "failed" and captures[txn]:
            verdict.problem("failed_in_db_but_captured_at_bank", txn)

    db_refunds = {r["refund_id"]: r for r in refund_rows}
    for refund_id, (txn, _answer) in refunds.items():
        row = db_refunds.get(refund_id)
        if row is None:
            verdict.problem("accepted_refund_missing_in_db", refund_id)
            continue
        if row["transaction_id"] != txn:
            verdict.problem("refund_on_wrong_payment", refund_id)
        if row["status"] not in REFUND_FINAL:
            verdict.problem("refund_not_final", f"{refund_id} {row['status']}")
        expected = 1 if row["status"] == "completed" else 0
        if bank_refunds[refund_id] != expected:
            verdict.problem(
                "refund_db_vs_bank",
                f"{refund_id} db={row['status']} bank_approved={bank_refunds[refund_id]}",
            )
