"""The ports: what the flows and the API need from the outside, as Protocols.

Adapters live at the edges (`PgPaymentRepository`, `HttpBankClient`, `SecurityCodeVault`, ...) and
are handed in by the composition roots, so `streams` and `http` never import `storage` or `bank`,
and the flows can be run against in-memory fakes. The errors each port may raise are in
`core.errors` (storage, bank and card-data branches of the tree).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from contextlib import AbstractAsyncContextManager
from typing import Protocol

from payment_service.core.banking import BankInquiry, BankResult
from payment_service.core.masking import CardNumber, SecurityCode
from payment_service.core.producers import ProducerRecord
from payment_service.core.records import (
    Claim,
    NewPayment,
    NewPaymentMethod,
    NewRefund,
    PaymentMethodRecord,
    PaymentRecord,
    RefundRecord,
    RefundReservation,
)
from payment_service.core.states import PaymentEvent, PaymentStatus


class PaymentRepository(Protocol):
    """Payments, claimed once and then moved by named compare-and-set transitions.

    Every transition raises `InvalidTransition` (before any I/O) when `(expected, event)` is not in
    the table, and `TransitionConflict` when the stored status is not `expected`.
    """

    async def claim_payment(self, new: NewPayment, *, correlation_id: str | None) -> Claim:
        """Store `new` as `processing`, or return the stored one; `IdempotencyConflict` if the
        key or id is bound to another request."""
        ...

    async def mark_authorized(
        self,
        transaction_id: str,
        *,
        expected: PaymentStatus,
        authorization_id: str,
        correlation_id: str | None,
        event: PaymentEvent = ...,
    ) -> PaymentRecord:
        """An approved authorization: `authorization_approved` (-> authorized) or
        `authorization_held` (manual capture, -> requires_capture)."""
        ...

    async def mark_sold(
        self,
        transaction_id: str,
        *,
        expected: PaymentStatus,
        authorization_id: str,
        correlation_id: str | None,
    ) -> PaymentRecord:
        """An approved sale: authorized and captured in full, one transition."""
        ...

    async def mark_captured(
        self,
        transaction_id: str,
        *,
        expected: PaymentStatus,
        captured_minor: int,
        correlation_id: str | None,
    ) -> PaymentRecord: ...

    async def mark_failed(
        self,
        transaction_id: str,
        *,
        expected: PaymentStatus,
        event: PaymentEvent,
        failure_code: str,
        decline_code: str | None,
        failure_message: str | None,
        correlation_id: str | None,
    ) -> PaymentRecord:
        """A decline: `event` is authorization_declined or capture_declined."""
        ...

    async def mark_unknown(
        self,
        transaction_id: str,
        *,
        expected: PaymentStatus,
        event: PaymentEvent,
        correlation_id: str | None,
        detail: str | None = None,
    ) -> PaymentRecord:
        """The bank's answer was lost: `event` is authorization_unknown or capture_unknown."""
        ...

    async def get_payment(
        self, transaction_id: str, *, merchant_id: str | None = None
    ) -> PaymentRecord | None:
        """The payment with its refunds; None when missing or (with `merchant_id`) not theirs."""
        ...

    async def find_unsettled(
        self, older_than: dt.timedelta, limit: int, after: PaymentRecord | None = None
    ) -> list[PaymentRecord]:
        """Payments unsettled for longer than `older_than`, oldest first, past `after`."""
        ...


class RefundRepository(Protocol):
    """Refunds: reserved under the payment's row lock, then completed or failed."""

    async def reserve_refund(
        self, new: NewRefund, *, correlation_id: str | None
    ) -> RefundReservation:
        """Reserve the amount as `processing` (`core.rules.refundable_amount` decides). Raises
        `NotFound`, `IdempotencyConflict`, `PaymentNotRefundable` or `RefundExceedsRemaining`."""
        ...

    async def complete_refund(
        self, refund_id: str, *, bank_refund_id: str, correlation_id: str | None
    ) -> tuple[RefundRecord, PaymentRecord]: ...

    async def fail_refund(
        self,
        refund_id: str,
        *,
        failure_code: str,
        failure_message: str | None,
        correlation_id: str | None,
    ) -> RefundRecord: ...

    async def get_refund(
        self, refund_id: str, *, merchant_id: str | None = None
    ) -> RefundRecord | None: ...

    async def find_unsettled(
        self, older_than: dt.timedelta, limit: int, after: RefundRecord | None = None
    ) -> list[RefundRecord]: ...


class BankClient(Protocol):
    """The acquirer. A decline is a `BankResult`; failures are the `BankError` tree.

    Every call carries its operation's one idempotency key (`core.ids.idempotency_key`); a call
    that could not be sent is retried inside the client for a budget before `BankNotSent`.
    """

    async def authorize(
        self,
        *,
        reference: str,
        idempotency_key: str,
        amount_minor: int,
        currency: str,
        card_number: CardNumber,
        security_code: SecurityCode | None,
        expiry_month: int,
        expiry_year: int,
        holder_name: str,
    ) -> BankResult:
        """Place a hold; an approval carries the `authorization_id` that capture and void take."""
        ...

    async def sale(
        self,
        *,
        reference: str,
        idempotency_key: str,
        amount_minor: int,
        currency: str,
        card_number: CardNumber,
        security_code: SecurityCode | None,
        expiry_month: int,
        expiry_year: int,
        holder_name: str,
    ) -> BankResult:
        """Authorize and capture in one message (automatic capture): one bank call, one key."""
        ...

    async def capture(
        self,
        *,
        reference: str,
        idempotency_key: str,
        authorization_id: str,
        amount_minor: int,
        currency: str,
    ) -> BankResult:
        """Capture at most the authorized amount, once; a smaller amount releases the rest."""
        ...

    async def void(
        self,
        *,
        reference: str,
        idempotency_key: str,
        authorization_id: str,
    ) -> BankResult:
        """Release an uncaptured hold. `BankRejected` `already_captured`: refund instead."""
        ...

    async def refund(
        self,
        *,
        reference: str,
        refund_reference: str,
        idempotency_key: str,
        amount_minor: int,
        currency: str,
    ) -> BankResult: ...

    async def inquire(self, reference: str) -> BankInquiry: ...

    async def close(self) -> None: ...


class SecurityCodeStore(Protocol):
    """Where a security code waits, sealed and short-lived, for the bank call (`VaultUnavailable`
    when the store fails; a bad envelope is a `CardCryptoError`)."""

    async def put(
        self,
        transaction_id: str,
        code: SecurityCode,
        *,
        also: Mapping[str, tuple[str, int]] | None = None,
    ) -> bool:
        """Store the code; False if one is stored already. `also` ({key: (value, ttl seconds)})
        is written in the same round trip (the API's "accepted" marker)."""
        ...

    async def take(self, transaction_id: str) -> SecurityCode | None:
        """The stored code, or None if it expired or was discarded; does not delete it."""
        ...

    async def discard(self, transaction_id: str) -> bool:
        """Delete the code once the bank has answered; True if there was one."""
        ...


class CardOpener(Protocol):
    """Opens card-number envelopes: a command's, sealed for its transaction, or a card on file's,
    sealed for its `pm_` id. Raises a `CardCryptoError` (its `failure_code` says which) if not."""

    def open_card_number(self, envelope: str, transaction_id: str) -> CardNumber: ...

    def open_card_on_file(self, envelope: str, payment_method_id: str) -> CardNumber: ...


class Fingerprints(Protocol):
    """The keyed, versioned fingerprint of a card number (`CARD_FINGERPRINT_KEY`)."""

    def fingerprint(self, card: CardNumber) -> str: ...


class PaymentMethodRepository(Protocol):
    """Cards on file, merchant-scoped: another merchant's id reads as missing (None)."""

    async def create(
        self, new: NewPaymentMethod, *, actor: str
    ) -> tuple[PaymentMethodRecord, bool]:
        """Store `new` (binding its Idempotency-Key), audited; `(stored, created)`. A key bound
        to another request raises `IdempotencyConflict`."""
        ...

    async def get(
        self, payment_method_id: str, *, merchant_id: str
    ) -> PaymentMethodRecord | None: ...

    async def detach(
        self, payment_method_id: str, *, merchant_id: str, actor: str
    ) -> PaymentMethodRecord | None:
        """Destroy the envelope for good and mark it detached (again: unchanged), audited."""
        ...


class MerchantKeys(Protocol):
    """Merchant API keys: which merchant a presented key belongs to (None: unknown or revoked)."""

    async def merchant_for_key(self, presented_key: str) -> str | None: ...


class ProducerDirectory(Protocol):
    """The producer registry as the processor reads it: one producer by name (None: unknown)."""

    async def producer(self, name: str) -> ProducerRecord | None: ...


class ExclusiveLock(Protocol):
    """A lock held by one process at a time across all of them; `held()` yields whether we got it
    (never waits for it)."""

    def held(self) -> AbstractAsyncContextManager[bool]: ...
