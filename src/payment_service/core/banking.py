"""What a bank call returns: results and status inquiries, the values of the `BankClient` port.

No I/O here. `BankInquiry` doubles as the wire body of `GET /api/v1/transactions/{reference}`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

# The operations that move money (or hold it); the status inquiry is not one of them. A sale is
# authorize and capture in one message; a void releases an authorization's hold.
Operation = Literal["authorize", "sale", "capture", "void", "refund"]

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

    def as_result(self) -> BankResult:
        """This operation's verdict as a `BankResult` learned by inquiry (not for "rejected")."""
        return BankResult(
            approved=self.outcome == "approved",
            response_code=self.response_code or "",
            decline_code=self.decline_code,
            message=self.message,
            authorization_id=self.authorization_id,
            bank_transaction_id=self.bank_transaction_id,
            via="inquiry",
        )


class BankAuthorization(BaseModel):
    """One authorization hold as the bank has it now.

    `open` holds `amount_minor`; `captured` took `captured_minor` and released the rest
    (`released_minor`, a partial capture); `voided` released all of it.
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    authorization_id: str
    amount_minor: int
    currency: str
    status: Literal["open", "captured", "voided"]
    captured_minor: int = 0
    released_minor: int = 0


class BankInquiry(BaseModel):
    """Everything the bank knows about one of our references; no operations means nothing known.

    Totals: `authorized_minor` (approved authorizations and sales), `captured_minor`,
    `refunded_minor`, and `released_minor` (holds given back by voids and partial captures).
    "Nothing known" does not prove nothing will be: a request still in flight may commit later.
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    reference: str
    authorized_minor: int = 0
    captured_minor: int = 0
    refunded_minor: int = 0
    released_minor: int = 0
    operations: tuple[BankOperation, ...] = ()
    authorizations: tuple[BankAuthorization, ...] = ()

    @property
    def found(self) -> bool:
        return bool(self.operations)

    def find(self, idempotency_key: str) -> BankOperation | None:
        """The operation executed under `idempotency_key`, if the bank executed it."""
        return next((op for op in self.operations if op.idempotency_key == idempotency_key), None)
