"""Rows of `transactions` and `refunds` (`SELECT *`) as the core's records."""

from __future__ import annotations

from typing import Any

from payment_service.core.records import PaymentRecord, RefundRecord
from payment_service.core.states import PaymentStatus, RefundStatus


def refund_from_row(row: Any) -> RefundRecord:
    """A `RefundRecord` from an asyncpg row of `refunds`."""
    values = dict(row.items())
    values["status"] = RefundStatus(values["status"])
    return RefundRecord(**values)


def payment_from_row(row: Any, refunds: tuple[RefundRecord, ...] = ()) -> PaymentRecord:
    """A `PaymentRecord` from an asyncpg row of `transactions` and the payment's refunds."""
    values = dict(row.items())
    values["status"] = PaymentStatus(values["status"])
    return PaymentRecord(**values, refunds=refunds)
