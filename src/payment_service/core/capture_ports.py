"""The ports of manual capture and of the lists, beside `core.ports` (which would pass 300 lines).

`CaptureRepository` records a capture or cancel before the bank call (so a redelivery or the
reconciler repeats exactly that call), then its outcome; `PaymentLists` pages a merchant's
payments and a payment's refunds by keyset (Stripe's cursors). The errors are `core.errors`'.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from payment_service.core.records import CaptureRequest, PaymentRecord, RefundRecord
from payment_service.core.states import PaymentStatus

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ListQuery:
    """One page: `limit` items newest first, after `starting_after` or before `ending_before`
    (an id of the merchant's; at most one of the two), filtered by status and creation time."""

    limit: int = 10
    starting_after: str | None = None
    ending_before: str | None = None
    status: PaymentStatus | None = None
    created_gte: dt.datetime | None = None
    created_lt: dt.datetime | None = None


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """Items newest first; `has_more`: more lie past the page in the direction asked."""

    items: tuple[T, ...]
    has_more: bool


class CaptureRepository(Protocol):
    """Captures and voids of manual-capture payments, each a named, audited transition."""

    async def request_capture(
        self, request: CaptureRequest, *, correlation_id: str | None
    ) -> PaymentRecord:
        """requires_capture -> capturing with the amount (None: all authorized), binding the
        Idempotency-Key; a redelivery (already capturing under the same key) returns the row.
        Raises `NotFound`, `IdempotencyConflict`, `PaymentNotCapturable`,
        `CaptureExceedsAuthorized`."""
        ...

    async def request_cancel(
        self, request: CaptureRequest, *, correlation_id: str | None
    ) -> PaymentRecord:
        """requires_capture -> canceling, like `request_capture`."""
        ...

    async def refuse_capture(
        self, transaction_id: str, *, reason: str, correlation_id: str | None
    ) -> PaymentRecord:
        """capturing -> requires_capture: the bank refused the capture; the hold stands."""
        ...

    async def mark_canceled(
        self, transaction_id: str, *, void_id: str | None, correlation_id: str | None
    ) -> PaymentRecord:
        """canceling -> canceled: the bank released the hold."""
        ...

    async def refuse_void(
        self, transaction_id: str, *, reason: str, correlation_id: str | None
    ) -> PaymentRecord:
        """canceling -> requires_capture: the bank refused the void."""
        ...

    async def find_expired_holds(
        self, validity: dt.timedelta, limit: int, after: PaymentRecord | None = None
    ) -> list[PaymentRecord]:
        """requires_capture for longer than `validity` since the bank approved the hold."""
        ...

    async def find_unchecked_give_ups(
        self, older_than: dt.timedelta, limit: int, after: PaymentRecord | None = None
    ) -> list[PaymentRecord]:
        """Payments the reconciler failed for want of a bank record, not yet checked for a
        hold that reached the bank late, failed longer than `older_than` ago."""
        ...

    async def record_hold_check(
        self, transaction_id: str, *, voided: tuple[str, ...], correlation_id: str | None
    ) -> None:
        """Mark a give-up checked; `voided` names the late holds released (audited)."""
        ...

    async def idempotent_request(
        self, merchant_id: str, idempotency_key: str
    ) -> tuple[str, str, str | None] | None:
        """(kind, resource id, request hash) bound to the merchant's key, or None."""
        ...


class PaymentLists(Protocol):
    """Merchant-scoped pages; an id of another merchant's is unknown (`NotFound`)."""

    async def list_payments(self, merchant_id: str, query: ListQuery) -> Page[PaymentRecord]: ...

    async def list_refunds(
        self, merchant_id: str, transaction_id: str, query: ListQuery
    ) -> Page[RefundRecord]:
        """The payment's refunds, newest first; `NotFound` when the payment is not theirs."""
        ...
