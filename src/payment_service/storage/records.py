"""What the repositories return: immutable records of stored payments and refunds.

Records carry every column, including the card envelope (ciphertext, needed to retry the bank);
`to_view()` is the only way to show one to a merchant, and it shows the card as brand, last four
digits and expiry only. Amounts are integer minor units; the views format them as decimals.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from payment_service.app.money import to_major_units
from payment_service.app.states import PaymentStatus, RefundStatus
from payment_service.schemas.payments import CardView, PaymentView, RefundView


def _amount(amount_minor: int, currency: str) -> str:
    return str(to_major_units(amount_minor, currency))


@dataclass(frozen=True)
class RefundRecord:
    refund_id: str
    transaction_id: str
    merchant_id: str
    status: RefundStatus
    amount_minor: int
    currency: str
    reason: str | None
    metadata: dict[str, str]
    idempotency_key: str | None
    request_hash: str | None
    bank_refund_id: str | None
    failure_code: str | None
    failure_message: str | None
    correlation_id: str | None
    created_at: dt.datetime
    updated_at: dt.datetime

    @classmethod
    def from_row(cls, row: Any) -> RefundRecord:
        """Build from an asyncpg row of `refunds` (`SELECT *`)."""
        values = dict(row.items())
        values["status"] = RefundStatus(values["status"])
        return cls(**values)

    def to_view(self) -> RefundView:
        return RefundView(
            refund_id=self.refund_id,
            transaction_id=self.transaction_id,
            status=self.status.value,
            amount=_amount(self.amount_minor, self.currency),
            amount_minor=self.amount_minor,
            currency=self.currency,
            reason=self.reason,
            metadata=dict(self.metadata),
            failure_code=self.failure_code,
            failure_message=self.failure_message,
            created_at=self.created_at,
            updated_at=self.updated_at,
        )


@dataclass(frozen=True)
class PaymentRecord:
    transaction_id: str
    merchant_id: str
    status: PaymentStatus
    amount_minor: int
    currency: str
    payment_method: str
    # Ciphertext, but still kept out of reprs and logs; the fingerprint and name too.
    card_envelope: str = field(repr=False)
    card_fingerprint: str = field(repr=False)
    card_brand: str
    card_last4: str
    card_expiry_month: int
    card_expiry_year: int
    cardholder_name: str = field(repr=False)
    description: str | None
    metadata: dict[str, str]
    idempotency_key: str | None
    request_hash: str | None
    authorization_id: str | None
    captured_minor: int
    refunded_minor: int
    failure_code: str | None
    decline_code: str | None
    failure_message: str | None
    correlation_id: str | None
    created_at: dt.datetime
    updated_at: dt.datetime
    refunds: tuple[RefundRecord, ...] = ()

    @classmethod
    def from_row(cls, row: Any, refunds: tuple[RefundRecord, ...] = ()) -> PaymentRecord:
        """Build from an asyncpg row of `transactions` (`SELECT *`) and its refunds."""
        values = dict(row.items())
        values["status"] = PaymentStatus(values["status"])
        return cls(**values, refunds=refunds)

    @property
    def refundable_minor(self) -> int:
        """Captured minus refunded; refunds still in flight are not subtracted here."""
        return self.captured_minor - self.refunded_minor

    def to_view(self) -> PaymentView:
        return PaymentView(
            transaction_id=self.transaction_id,
            merchant_id=self.merchant_id,
            status=self.status.value,
            amount=_amount(self.amount_minor, self.currency),
            amount_minor=self.amount_minor,
            currency=self.currency,
            payment_method=self.payment_method,
            card=CardView(
                brand=self.card_brand,
                last4=self.card_last4,
                expiry_month=self.card_expiry_month,
                expiry_year=self.card_expiry_year,
            ),
            description=self.description,
            metadata=dict(self.metadata),
            authorization_code=self.authorization_id,
            failure_code=self.failure_code,
            decline_code=self.decline_code,
            failure_message=self.failure_message,
            refunded_amount=_amount(self.refunded_minor, self.currency),
            refunded_amount_minor=self.refunded_minor,
            refunds=[r.to_view() for r in self.refunds],
            created_at=self.created_at,
            updated_at=self.updated_at,
        )
