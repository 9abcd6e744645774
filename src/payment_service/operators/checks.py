"""The system's invariants, checked over rows and the bank's record (pure).

`verify` (operators/verify.py) reads the rows and the bank's operations and hands them here:

- `double_charge`: at most one approved capture (or sale) per payment at the bank, and never
  more captured there than the payment's amount. An authorization (a hold) or its void is no
  charge.
- `bank_vs_db`: the bank's captured and refunded totals equal the database's; nothing captured
  at the bank is failed or unknown in the database, and nothing captured in the database is
  missing at the bank. A late sale the reconciler reversed (`<transaction>:reversal`, after the
  payment was failed) nets to nothing captured.
- `refunds_exceed_captured`: the refunded total never passes the captured amount, and it is
  the sum of the completed refunds (refunds still in flight count against what remains).
- `audit_path`: each payment's and each refund's audit rows form a path of the transition
  table (`core.states`: the table itself, not a copy), from `processing` to the stored status;
  a note row (`payment.hold_released`) records a bank call, not a step, and stays in place.
- `unsettled`: nothing left unsettled longer than the threshold.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from payment_service.core.states import (
    PAYMENT_TRANSITIONS,
    PAYMENT_UNSETTLED,
    REFUND_TRANSITIONS,
    PaymentStatus,
)

Row = Mapping[str, Any]
CHECKS: Final = (
    "double_charge",
    "bank_vs_db",
    "refunds_exceed_captured",
    "audit_path",
    "audit_chain",
    "unsettled",
)
_CHARGES: Final = frozenset({"capture", "sale"})
_REVERSAL: Final = ":reversal"  # the key suffix of `CaptureFlow.release_late_hold`'s refund
# Audit rows that record what was done at the bank without a status change.
_NOTES: Final = frozenset({"payment.hold_released"})
_CAPTURED: Final = frozenset(
    {PaymentStatus.CAPTURED, PaymentStatus.PARTIALLY_REFUNDED, PaymentStatus.REFUNDED}
)
# (from, to) pairs some event allows, read from the tables.
_PAYMENT_STEPS: Final = frozenset(
    (src.value, dst.value) for (src, _), dst in PAYMENT_TRANSITIONS.items()
)
_REFUND_STEPS: Final = frozenset(
    (src.value, dst.value) for (src, _), dst in REFUND_TRANSITIONS.items()
)


@dataclass(frozen=True)
class Violation:
    check: str
    transaction_id: str
    detail: str
    refund_id: str | None = None


@dataclass(frozen=True)
class BankTotals:
    """What the bank executed for one reference (approved operations only)."""

    charges: int = 0  # approved captures and sales
    captured_minor: int = 0  # net of reversals
    refunded_minor: int = 0  # the merchant's refunds, not reversals

    @classmethod
    def of(cls, operations: Iterable[Row]) -> BankTotals:
        charges = captured = refunded = 0
        for op in operations:
            if op["outcome"] != "approved":
                continue
            if op["operation"] in _CHARGES:
                charges += 1
                captured += int(op["amount_minor"])
            elif op["operation"] == "refund":
                if str(op.get("idempotency_key") or "").endswith(_REVERSAL):
                    captured -= int(op["amount_minor"])
                else:
                    refunded += int(op["amount_minor"])
        return cls(charges, captured, refunded)


def money_checks(
    payments: Sequence[Row], refunds: Sequence[Row], bank: Mapping[str, BankTotals]
) -> list[Violation]:
    """double_charge, bank_vs_db and refunds_exceed_captured over every payment."""
    refunds_of: dict[str, list[Row]] = defaultdict(list)
    for refund in refunds:
        refunds_of[refund["transaction_id"]].append(refund)
    found: list[Violation] = []
    for p in payments:
        txn = p["transaction_id"]
        totals = bank.get(txn, BankTotals())
        found += _double_charge(p, totals)
        found += _bank_vs_db(p, totals)
        found += _refund_totals(p, refunds_of.get(txn, []))
    known = {p["transaction_id"] for p in payments}
    for txn in sorted(set(bank) - known):
        if bank[txn].charges:
            found.append(Violation("bank_vs_db", txn, "captured at the bank, no payment row"))
    return found


def _double_charge(p: Row, totals: BankTotals) -> list[Violation]:
    txn = p["transaction_id"]
    if totals.charges > 1:
        return [Violation("double_charge", txn, f"{totals.charges} approved captures at the bank")]
    if totals.captured_minor > p["amount_minor"]:
        detail = f"bank captured {totals.captured_minor} > amount {p['amount_minor']}"
        return [Violation("double_charge", txn, detail)]
    return []


def _bank_vs_db(p: Row, totals: BankTotals) -> list[Violation]:
    txn, status = p["transaction_id"], p["status"]
    if totals.captured_minor and status not in _CAPTURED:
        detail = f"captured at the bank ({totals.captured_minor}) but {status} in the database"
        return [Violation("bank_vs_db", txn, detail)]
    if status in _CAPTURED and totals.captured_minor != p["captured_minor"]:
        detail = (
            f"{status} with {p['captured_minor']} in the database,"
            f" bank captured {totals.captured_minor}"
        )
        return [Violation("bank_vs_db", txn, detail)]
    if totals.refunded_minor != p["refunded_minor"]:
        detail = (
            f"refunded {p['refunded_minor']} in the database, {totals.refunded_minor} at the bank"
        )
        return [Violation("bank_vs_db", txn, detail)]
    return []


def _refund_totals(p: Row, refunds: Sequence[Row]) -> list[Violation]:
    txn = p["transaction_id"]
    completed = sum(r["amount_minor"] for r in refunds if r["status"] == "completed")
    in_flight = sum(r["amount_minor"] for r in refunds if r["status"] == "processing")
    found = []
    if p["refunded_minor"] > p["captured_minor"]:
        detail = f"refunded {p['refunded_minor']} > captured {p['captured_minor']}"
        found.append(Violation("refunds_exceed_captured", txn, detail))
    if completed != p["refunded_minor"]:
        detail = f"completed refunds sum to {completed}, payment says {p['refunded_minor']}"
        found.append(Violation("refunds_exceed_captured", txn, detail))
    if completed + in_flight > p["captured_minor"]:
        detail = f"completed {completed} + in flight {in_flight} > captured {p['captured_minor']}"
        found.append(Violation("refunds_exceed_captured", txn, detail))
    return found


def audit_paths(
    audit: Sequence[Row], payments: Sequence[Row], refunds: Sequence[Row]
) -> list[Violation]:
    """Every payment's and refund's audit rows (in id order) walk the transition table from
    `processing` to the status stored now."""
    payment_rows: dict[str, list[Row]] = defaultdict(list)
    refund_rows: dict[str, list[Row]] = defaultdict(list)
    for row in sorted(audit, key=lambda r: r["id"]):
        if row["action"].startswith("payment."):
            payment_rows[row["transaction_id"]].append(row)
        elif row["action"].startswith("refund.") and row["refund_id"]:
            refund_rows[row["refund_id"]].append(row)
    found: list[Violation] = []
    for p in payments:
        txn = p["transaction_id"]
        reason = _walk(payment_rows.get(txn, []), _PAYMENT_STEPS, p["status"])
        if reason:
            found.append(Violation("audit_path", txn, f"payment: {reason}"))
    for r in refunds:
        reason = _walk(refund_rows.get(r["refund_id"], []), _REFUND_STEPS, r["status"])
        if reason:
            found.append(Violation("audit_path", r["transaction_id"], reason, r["refund_id"]))
    return found


def _walk(rows: Sequence[Row], steps: frozenset[tuple[str, str]], stored: str) -> str | None:
    """None when `rows` are a legal path ending in `stored`, else what is wrong."""
    if not rows:
        return "no audit rows"
    at: str | None = None
    for row in rows:
        src, dst = row["from_status"], row["to_status"]
        if row["action"] in _NOTES and src == dst == at:
            continue
        if src != at:
            return f"audit row {row['id']} leaves {src}, but the path is at {at}"
        if at is None and dst != "processing":
            return f"audit row {row['id']} starts at {dst}, not processing"
        if at is not None and (src, dst) not in steps:
            return f"audit row {row['id']}: {src} -> {dst} is not in the transition table"
        at = dst
    if at != stored:
        return f"audit path ends at {at}, the row says {stored}"
    return None


def unsettled(
    payments: Sequence[Row], refunds: Sequence[Row], now: dt.datetime, threshold: dt.timedelta
) -> list[Violation]:
    """Payments and refunds still not settled `threshold` after their last change."""
    stale = {s.value for s in PAYMENT_UNSETTLED}
    found = [
        Violation(
            "unsettled",
            p["transaction_id"],
            f"{p['status']} since {p['updated_at']:%Y-%m-%dT%H:%M:%SZ}",
        )
        for p in payments
        if p["status"] in stale and now - p["updated_at"] > threshold
    ]
    found += [
        Violation(
            "unsettled",
            r["transaction_id"],
            f"refund processing since {r['updated_at']:%Y-%m-%dT%H:%M:%SZ}",
            r["refund_id"],
        )
        for r in refunds
        if r["status"] == "processing" and now - r["updated_at"] > threshold
    ]
    return found
