"""The domain's values: payments and refunds as asked for, and as stored.

`NewPayment` and `NewRefund` are what the repositories are asked to claim or reserve (the flows map
the Kafka commands onto them). `PaymentRecord` and `RefundRecord` are immutable records of stored
rows; they carry every column, including the card envelope (ciphertext, needed to retry the bank),
kept out of their reprs. Showing one to a merchant is `schemas.views`' job. Amounts are integer
minor units.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field

from payment_service.core.states import PaymentStatus, RefundStatus


@dataclass(frozen=True, slots=True)
class SealedCard:
    """The card as it travels and rests: the number sealed, the rest safe to show."""

    number_envelope: str = field(repr=False)
    fingerprint: str = field(repr=False)
    brand: str
    last4: str
    expiry_month: int
    expiry_year: int
    holder_name: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class NewPayment:
    """A payment to claim: the `processing` row a command creates (or finds, when redelivered)."""

    transaction_id: str
    merchant_id: str
    amount_minor: int
    currency: str
    payment_method: str
    card: SealedCard
    description: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)
    idempotency_key: str | None = None
    request_hash: str | None = None
    # True when the API left the security code in the vault for the bank call.
    security_code_in_vault: bool = False


@dataclass(frozen=True, slots=True)
class NewRefund:
    """A refund to reserve; `amount_minor` None asks for all that remains refundable."""

    refund_id: str
    transaction_id: str
    merchant_id: str
    amount_minor: int | None = None
    reason: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)
    idempotency_key: str | None = None
    request_hash: str | None = None


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


@dataclass(frozen=True)
class Claim:
    """`created` is False when the payment was already stored (a redelivered command)."""

    created: bool
    payment: PaymentRecord


@dataclass(frozen=True)
class RefundReservation:
    """`created` is False when this refund id was already reserved (a redelivered command)."""

    created: bool
    refund: RefundRecord
    payment: PaymentRecord
