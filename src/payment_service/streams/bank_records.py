"""What the bank holds for one payment's sale or authorization, found by our idempotency keys.

A payment is sold (`<transaction>:sale`, automatic capture) or authorized
(`<transaction>:authorize`, manual capture, and payments from before the sale existed); an
inquiry looks for both.
"""

from __future__ import annotations

from payment_service.core.banking import BankOperation, BankResult
from payment_service.core.ids import idempotency_key
from payment_service.core.ports import BankClient

OPERATIONS = ("sale", "authorize")


def executed(operation: BankOperation | None) -> BankResult | None:
    """An operation's verdict, if the bank executed it (a rejection executed nothing)."""
    if operation is None or operation.outcome == "rejected":
        return None
    return operation.as_result()


async def earlier(bank: BankClient, txn: str) -> tuple[str, BankResult] | None:
    """The operation and the bank's answer to our sale or authorization (None: it has none);
    BankError if the bank is unreachable."""
    inquiry = await bank.inquire(txn)
    for operation in OPERATIONS:
        found = executed(inquiry.find(idempotency_key(txn, operation)))
        if found is not None:
            return operation, found
    return None


async def has_no_record(bank: BankClient, txn: str) -> bool:
    """The bank answered and holds nothing under either key (not even a rejection);
    BankError if the bank is unreachable."""
    inquiry = await bank.inquire(txn)
    return all(inquiry.find(idempotency_key(txn, op)) is None for op in OPERATIONS)
