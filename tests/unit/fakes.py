"""In-memory adapters of the core's ports, for fast tests of the flows' decisions (no I/O).

`MemoryPayments` keeps the rules that matter to the flows: a claim happens once per transaction
id, every transition goes through `core.states.advance` and is a compare-and-set on the expected
status (`TransitionConflict` otherwise). `ScriptedBank` answers each operation from a script and
records every call. The integration tests prove the real adapters against PostgreSQL and the bank
simulator; these prove what the flows decide.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from payment_service.core.banking import BankInquiry, BankOperation, BankResult
from payment_service.core.errors import (
    CardCryptoError,
    DecryptionError,
    IdempotencyConflict,
    TransitionConflict,
)
from payment_service.core.masking import CardNumber, SecurityCode
from payment_service.core.records import (
    Claim,
    NewPayment,
    NewPaymentMethod,
    PaymentMethodRecord,
    PaymentRecord,
)
from payment_service.core.states import PaymentEvent, PaymentStatus, advance

APPROVED = BankResult(True, "00", None, "Approved", authorization_id="auth_1")
DECLINED = BankResult(False, "51", "insufficient_funds", "Insufficient funds")
CARD = CardNumber("4242424242424242")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def record_of(new: NewPayment, **changes: Any) -> PaymentRecord:
    """The `processing` row a claim of `new` stores."""
    now = _now()
    assert new.card is not None, "the flow sets the card before the claim"
    record = PaymentRecord(
        transaction_id=new.transaction_id,
        merchant_id=new.merchant_id,
        status=PaymentStatus.PROCESSING,
        amount_minor=new.amount_minor,
        currency=new.currency,
        payment_method=new.payment_method,
        payment_method_id=new.payment_method_id,
        card_fingerprint=new.card.fingerprint,
        card_brand=new.card.brand,
        card_last4=new.card.last4,
        card_expiry_month=new.card.expiry_month,
        card_expiry_year=new.card.expiry_year,
        cardholder_name=new.card.holder_name,
        description=new.description,
        metadata=dict(new.metadata),
        idempotency_key=new.idempotency_key,
        request_hash=new.request_hash,
        authorization_id=None,
        captured_minor=0,
        refunded_minor=0,
        failure_code=None,
        decline_code=None,
        failure_message=None,
        correlation_id=None,
        created_at=now,
        updated_at=now,
        capture_method=new.capture_method,
    )
    return replace(record, **changes)


class MemoryPayments:
    """The `PaymentRepository` port in a dict; `events` lists every recorded transition."""

    def __init__(self) -> None:
        self.rows: dict[str, PaymentRecord] = {}
        self.events: list[tuple[str, PaymentEvent]] = []

    async def claim_payment(self, new: NewPayment, *, correlation_id: str | None) -> Claim:
        existing = self.rows.get(new.transaction_id)
        if existing is None:
            self.rows[new.transaction_id] = record_of(new)
            return Claim(created=True, payment=self.rows[new.transaction_id])
        if (existing.merchant_id, existing.request_hash) != (new.merchant_id, new.request_hash):
            raise IdempotencyConflict("this transaction id was already used")
        return Claim(created=False, payment=existing)

    async def _cas(
        self, transaction_id: str, expected: PaymentStatus, event: PaymentEvent, **fields: Any
    ) -> PaymentRecord:
        new_status = advance(expected, event)
        current = self.rows.get(transaction_id)
        if current is None or current.status != expected:
            raise TransitionConflict(current.status if current else None)
        self.rows[transaction_id] = replace(current, status=new_status, updated_at=_now(), **fields)
        self.events.append((transaction_id, event))
        return self.rows[transaction_id]

    async def mark_authorized(
        self,
        transaction_id: str,
        *,
        expected: PaymentStatus,
        authorization_id: str,
        correlation_id: str | None,
        event: PaymentEvent = PaymentEvent.AUTHORIZATION_APPROVED,
    ) -> PaymentRecord:
        return await self._cas(
            transaction_id, expected, event, authorization_id=authorization_id, authorized_at=_now()
        )

    async def mark_sold(
        self,
        transaction_id: str,
        *,
        expected: PaymentStatus,
        authorization_id: str,
        correlation_id: str | None,
    ) -> PaymentRecord:
        amount = self.rows[transaction_id].amount_minor
        return await self._cas(
            transaction_id,
            expected,
            PaymentEvent.SALE_APPROVED,
            authorization_id=authorization_id,
            captured_minor=amount,
            authorized_at=_now(),
        )

    async def mark_captured(
        self,
        transaction_id: str,
        *,
        expected: PaymentStatus,
        captured_minor: int,
        correlation_id: str | None,
    ) -> PaymentRecord:
        return await self._cas(
            transaction_id, expected, PaymentEvent.CAPTURE_APPROVED, captured_minor=captured_minor
        )

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
        return await self._cas(
            transaction_id,
            expected,
            event,
            failure_code=failure_code,
            decline_code=decline_code,
            failure_message=failure_message,
        )

    async def mark_unknown(
        self,
        transaction_id: str,
        *,
        expected: PaymentStatus,
        event: PaymentEvent,
        correlation_id: str | None,
        detail: str | None = None,
    ) -> PaymentRecord:
        return await self._cas(transaction_id, expected, event)

    async def get_payment(
        self, transaction_id: str, *, merchant_id: str | None = None
    ) -> PaymentRecord | None:
        row = self.rows.get(transaction_id)
        if row is None or (merchant_id is not None and row.merchant_id != merchant_id):
            return None
        return row

    async def find_unsettled(
        self, older_than: dt.timedelta, limit: int, after: PaymentRecord | None = None
    ) -> list[PaymentRecord]:
        raise NotImplementedError  # the reconciler's paging is tested against PostgreSQL


@dataclass
class ScriptedBank:
    """The `BankClient` port: each operation answers from its script (a result or an error);
    a sale (authorize and capture in one) answers from `authorize_with`."""

    authorize_with: BankResult | Exception = APPROVED
    capture_with: BankResult | Exception = field(
        default_factory=lambda: BankResult(True, "00", None, "Captured")
    )
    executed: list[BankOperation] = field(default_factory=list)
    calls: list[tuple[str, str]] = field(default_factory=list)

    def _answer(self, operation: str, key: str, script: BankResult | Exception) -> BankResult:
        self.calls.append((operation, key))
        if isinstance(script, Exception):
            raise script
        return script

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
        return self._answer("authorize", idempotency_key, self.authorize_with)

    async def capture(
        self,
        *,
        reference: str,
        idempotency_key: str,
        authorization_id: str,
        amount_minor: int,
        currency: str,
    ) -> BankResult:
        return self._answer("capture", idempotency_key, self.capture_with)

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
        return self._answer("sale", idempotency_key, self.authorize_with)

    async def void(
        self, *, reference: str, idempotency_key: str, authorization_id: str
    ) -> BankResult:
        raise NotImplementedError

    async def refund(
        self,
        *,
        reference: str,
        refund_reference: str,
        idempotency_key: str,
        amount_minor: int,
        currency: str,
    ) -> BankResult:
        raise NotImplementedError

    async def inquire(self, reference: str) -> BankInquiry:
        self.calls.append(("inquire", reference))
        return BankInquiry(reference=reference, operations=tuple(self.executed))

    async def close(self) -> None:
        return None


def executed_authorization(
    key: str, outcome: str = "approved", operation: str = "authorize"
) -> BankOperation:
    """What the bank's record shows for an authorization (or sale) an earlier delivery sent."""
    return BankOperation.model_validate(
        {
            "operation": operation,
            "idempotency_key": key,
            "outcome": outcome,
            "response_code": "00" if outcome == "approved" else "05",
            "http_status": 200,
            "message": outcome,
            "authorization_id": "auth_earlier",
            "amount_minor": 10_000,
            "currency": "USD",
            "created_at": _now(),
        }
    )


class MemoryVault:
    """The `SecurityCodeStore` port in a dict; `unreadable` codes raise that error on take."""

    def __init__(self) -> None:
        self.codes: dict[str, SecurityCode] = {}
        self.unreadable: dict[str, CardCryptoError] = {}

    async def put(
        self,
        transaction_id: str,
        code: SecurityCode,
        *,
        also: Mapping[str, tuple[str, int]] | None = None,
    ) -> bool:
        return self.codes.setdefault(transaction_id, code) is code

    async def take(self, transaction_id: str) -> SecurityCode | None:
        if transaction_id in self.unreadable:
            raise self.unreadable[transaction_id]
        return self.codes.get(transaction_id)

    async def discard(self, transaction_id: str) -> bool:
        self.unreadable.pop(transaction_id, None)
        return self.codes.pop(transaction_id, None) is not None


class FixedCards:
    """The `CardOpener` port: every envelope opens to one card, or raises `error`."""

    def __init__(self, card: CardNumber | None = CARD, error: CardCryptoError | None = None):
        self._card = card
        self._error = error or DecryptionError("damaged")
        self.opened: list[tuple[str, str]] = []

    def _open(self, kind: str, subject: str) -> CardNumber:
        self.opened.append((kind, subject))
        if self._card is None:
            raise self._error
        return self._card

    def open_card_number(self, envelope: str, transaction_id: str) -> CardNumber:
        return self._open("card_number", transaction_id)

    def open_card_on_file(self, envelope: str, payment_method_id: str) -> CardNumber:
        return self._open("card_on_file", payment_method_id)


class MemoryPaymentMethods:
    """The `PaymentMethodRepository` port in a dict."""

    def __init__(self) -> None:
        self.rows: dict[str, PaymentMethodRecord] = {}

    def add(self, merchant_id: str, **changes: Any) -> PaymentMethodRecord:
        values: dict[str, Any] = {
            "payment_method_id": f"pm_{len(self.rows):08d}",
            "merchant_id": merchant_id,
            "envelope": "sealed",
            "key_id": "ck_1",
            "fingerprint": "fpk1:stored",
            "brand": "visa",
            "last4": "4242",
            "expiry_month": 12,
            "expiry_year": _now().year + 2,
            "cardholder_name": "Ada Lovelace",
            "metadata": {},
            "idempotency_key": None,
            "request_hash": None,
            "created_at": _now(),
            "detached_at": None,
            **changes,
        }
        record = PaymentMethodRecord(**values)
        self.rows[record.payment_method_id] = record
        return record

    async def create(
        self, new: NewPaymentMethod, *, actor: str
    ) -> tuple[PaymentMethodRecord, bool]:
        raise NotImplementedError

    async def get(self, payment_method_id: str, *, merchant_id: str) -> PaymentMethodRecord | None:
        row = self.rows.get(payment_method_id)
        return row if row is not None and row.merchant_id == merchant_id else None

    async def detach(
        self, payment_method_id: str, *, merchant_id: str, actor: str
    ) -> PaymentMethodRecord | None:
        raise NotImplementedError
