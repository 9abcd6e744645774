"""The domain's values: payments and refunds as asked for, and as stored.

`NewPayment` and `NewRefund` are what the repositories are asked to claim or reserve (the flows map
the Kafka commands onto them). `PaymentRecord` and `RefundRecord` are immutable records of stored
rows. A payment keeps no card envelope (DESIGN.md §5: only cards on file hold long-lived ones):
brand, last four, expiry, holder name and the keyed fingerprint, the last two kept out of reprs.
`NewPaymentMethod` and `PaymentMethodRecord` are cards on file, whose envelope (ciphertext) is
kept out of reprs too. Showing any of them to a merchant is `schemas.views`' job. Amounts are
integer minor units.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field

from payment_service.core.states import PaymentStatus, RefundStatus


@dataclass(frozen=True, slots=True)
class CardDetails:
    """What a payment or card on file keeps of its card: safe to show, plus the fingerprint
    (None when the card could not be opened, so no one could compute it)."""

    brand: str
    last4: str
    expiry_month: int
    expiry_year: int
    holder_name: str = field(repr=False)
    fingerprint: str | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class NewPayment:
    """A payment to claim: the `processing` row a command creates (or finds, when redelivered).

    The card is named one of two ways: `number_envelope` (sealed for this transaction, never
    stored) or `payment_method_id` (a card on file). `card` is what the row keeps; the flow sets
    it from the opened card or the card on file before the claim.
    """

    transaction_id: str
    merchant_id: str
    amount_minor: int
    currency: str
    payment_method: str
    card: CardDetails | None = None
    number_envelope: str | None = field(default=None, repr=False)
    payment_method_id: str | None = None
    description: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)
    idempotency_key: str | None = None
    request_hash: str | None = None
    # True when the API left the security code in the vault for the bank call.
    security_code_in_vault: bool = False
    # Who asked (`api:<key id>`, `producer:<name>`): kept on the row, named by its audit rows.
    requested_by: str | None = None
    # "automatic": one bank call (a sale); "manual": authorize, then wait for capture or cancel.
    capture_method: str = "automatic"


@dataclass(frozen=True, slots=True)
class NewPaymentMethod:
    """A card on file to store: its number sealed for its own `pm_` id, and what may be shown."""

    payment_method_id: str
    merchant_id: str
    envelope: str = field(repr=False)
    key_id: str
    card: CardDetails
    metadata: Mapping[str, str] = field(default_factory=dict)
    idempotency_key: str | None = None
    request_hash: str | None = None


@dataclass(frozen=True)
class PaymentMethodRecord:
    """A stored card on file. Once detached, its envelope is gone (None) for good."""

    payment_method_id: str
    merchant_id: str
    envelope: str | None = field(repr=False)
    key_id: str | None
    fingerprint: str = field(repr=False)
    brand: str
    last4: str
    expiry_month: int
    expiry_year: int
    cardholder_name: str = field(repr=False)
    metadata: dict[str, str]
    idempotency_key: str | None
    request_hash: str | None
    created_at: dt.datetime
    detached_at: dt.datetime | None

    @property
    def card(self) -> CardDetails:
        return CardDetails(
            brand=self.brand,
            last4=self.last4,
            expiry_month=self.expiry_month,
            expiry_year=self.expiry_year,
            holder_name=self.cardholder_name,
            fingerprint=self.fingerprint,
        )


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
    requested_by: str | None = None


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
    requested_by: str | None = None


@dataclass(frozen=True)
class PaymentRecord:
    transaction_id: str
    merchant_id: str
    status: PaymentStatus
    amount_minor: int
    currency: str
    payment_method: str
    # The fingerprint (None if the card could not be opened) and the name: kept out of reprs.
    card_fingerprint: str | None = field(repr=False)
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
    payment_method_id: str | None = None
    requested_by: str | None = None
    capture_method: str = "automatic"
    authorized_at: dt.datetime | None = None
    # The amount of the capture in flight (status capturing), repeated exactly on retry.
    capture_requested_minor: int | None = None
    cancellation_reason: str | None = None
    hold_checked_at: dt.datetime | None = None
    refunds: tuple[RefundRecord, ...] = ()

    @property
    def manual_capture(self) -> bool:
        return self.capture_method == "manual"


@dataclass(frozen=True, slots=True)
class CaptureRequest:
    """A merchant's capture (`amount_minor` None: all that was authorized) or cancel of a
    manual-capture payment, as the repository is asked to record it before the bank call."""

    transaction_id: str
    merchant_id: str
    amount_minor: int | None = None
    cancellation_reason: str | None = None
    idempotency_key: str | None = None
    request_hash: str | None = None


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
