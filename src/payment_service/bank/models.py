"""What a bank call returns: results, status inquiries, and the `BankClient` port.

No I/O here. `BankInquiry` doubles as the wire body of `GET /api/v1/transactions/{reference}`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict

from payment_service.bank.wire import Operation
from payment_service.cards.masking import CardNumber, SecurityCode

# How the client learned the result: the bank's own answer, the bank's replay of an earlier answer
# under the same idempotency key, or the status inquiry after the answer was lost.
ResultSource = Literal["response", "replay", "inquiry"]


@dataclass(frozen=True, slots=True)
class BankResult:
    """The bank's verdict on one operation. A decline is `approved=False`, not an exception.

    `response_code` is ISO 8583-style ("00" approved, "05", "51", ...); `decline_code` is
    Stripe-style ("insufficient_funds"). `authorization_id` is set by an approved authorize and is
    what capture needs; `bank_transaction_id` is the bank's id for this operation.
    """

    approved: bool
    response_code: str
    decline_code: str | None
    message: str
    authorization_id: str | None = None
    bank_transaction_id: str | None = None
    via: ResultSource = "response"


class BankOperation(BaseModel):
    """One operation the bank executed for a reference (a ledger row, without card data)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    operation: Operation
    idempotency_key: str
    outcome: Literal["approved", "declined", "rejected"]
    response_code: str | None = None
    decline_code: str | None = None
    error_code: str | None = None
    http_status: int
    message: str = ""
    authorization_id: str | None = None
    bank_transaction_id: str | None = None
    refund_reference: str | None = None
    amount_minor: int
    currency: str
    created_at: datetime


class BankInquiry(BaseModel):
    """Everything the bank knows about one of our references; no operations means nothing known.

    "Nothing known" does not prove nothing will be: a request still in flight may commit later.
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    reference: str
    authorized_minor: int = 0
    captured_minor: int = 0
    refunded_minor: int = 0
    operations: tuple[BankOperation, ...] = ()

    @property
    def found(self) -> bool:
        return bool(self.operations)

    def find(self, idempotency_key: str) -> BankOperation | None:
        """The operation executed under `idempotency_key`, if the bank executed it."""
        return next((op for op in self.operations if op.idempotency_key == idempotency_key), None)


class BankClient(Protocol):
    """The port the processor depends on; `HttpBankClient` is the adapter."""

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
    ) -> BankResult: ...

    async def capture(
        self,
        *,
        reference: str,
        idempotency_key: str,
        authorization_id: str,
        amount_minor: int,
        currency: str,
    ) -> BankResult: ...

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
