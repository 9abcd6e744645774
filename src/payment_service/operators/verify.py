"""`ops verify`: every invariant of the system over one snapshot of the database and the bank.

1. Read payments, refunds and audit rows in one read-only snapshot (operators/db.py).
2. Read the bank's record of every payment: the simulator's ledger, or one status inquiry each.
3. Run the checks (operators/checks.py) and the audit chains (operators/chain.py).
4. Report counts per check and every violation with its ids; `ok` is False if any broke.

Run it when the system is quiet (after a benchmark, a fault test or a replay): a payment caught
between its capture at the bank and the row that records it shows as a mismatch.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from typing import Any

from payment_service.config.settings import DatabaseSettings
from payment_service.operators import db
from payment_service.operators.bank import BankRecord, SimulatorLedger
from payment_service.operators.chain import check_chain
from payment_service.operators.checks import (
    CHECKS,
    BankTotals,
    Violation,
    audit_paths,
    money_checks,
    unsettled,
)


@dataclass
class VerifyReport:
    counts: dict[str, int]  # payments, refunds, audit rows, bank references read
    violations: list[Violation]
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.violations

    def by_check(self) -> dict[str, int]:
        totals = dict.fromkeys(CHECKS, 0)
        for v in self.violations:
            totals[v.check] += 1
        return totals

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "counts": self.counts,
            "checks": self.by_check(),
            "violations": [asdict(v) for v in self.violations],
            "warnings": self.warnings,
        }


async def verify(
    database: DatabaseSettings,
    bank: BankRecord,
    *,
    unsettled_after: dt.timedelta,
    scope: db.Scope = db.EVERYTHING,
    now: dt.datetime | None = None,
) -> VerifyReport:
    """Check every invariant; see the module docstring for the steps. With a `scope` (some
    merchants, or payments since a time), only those payments and their bank records."""
    # Step 1
    async with db.reading(database) as conn:
        payments = await db.all_payments(conn, scope)
        refunds = await db.all_refunds(conn, scope)
        ids = None if scope.everything else [p["transaction_id"] for p in payments]
        audit = await db.audit_chain_rows(conn, ids)
        protection = await db.audit_protection(conn)
    # Step 2: everything the simulator holds, so a charge with no payment row shows too.
    if isinstance(bank, SimulatorLedger) and scope.everything:
        operations = await bank.all_operations()
    else:
        operations = await bank.operations(p["transaction_id"] for p in payments)
    totals = {ref: BankTotals.of(ops) for ref, ops in operations.items()}
    # Step 3
    found = money_checks(payments, refunds, totals)
    found += audit_paths(audit, payments, refunds)
    found += [
        Violation("audit_chain", b.transaction_id, f"audit row {b.audit_id}: {b.reason}")
        for b in check_chain(audit)
    ]
    found += unsettled(payments, refunds, now or dt.datetime.now(dt.UTC), unsettled_after)
    # Step 4
    counts = {
        "payments": len(payments),
        "refunds": len(refunds),
        "audit_rows": len(audit),
        "bank_references": len(operations),
    }
    return VerifyReport(counts, found, _protection_warnings(protection))


def _protection_warnings(protection: dict[str, Any]) -> list[str]:
    """The audit trail is tamper-evident only if this (runtime) role cannot rewrite it."""
    rights = [
        name
        for name in ("owner", "can_update", "can_delete", "can_truncate")
        if protection.get(name)
    ]
    if not rights:
        return []
    role = protection.get("role")
    return [
        f"role {role} may rewrite audit_log ({', '.join(rights)}): migrate as the owner"
        " (DATABASE_MIGRATION_URL) so the runtime role can only insert and read it"
    ]
