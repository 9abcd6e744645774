"""The result of one command, typed, and its wire form (`payment.result/v1`'s `PaymentResult`).

The views are models until the message is built; the wire keeps them as JSON objects (the
committed JSON Schema says so), produced by the same `model_dump(mode="json")` as ever.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from payment_service.core.records import PaymentRecord
from payment_service.schemas.answers import PaymentView, RefundView
from payment_service.schemas.messages import PaymentResult, ResultError
from payment_service.schemas.views import payment_view, refund_view
from payment_service.streams.captures import CaptureOutcome
from payment_service.streams.payment_outcome import PaymentOutcome
from payment_service.streams.refunds import RefundOutcome


@dataclass(frozen=True)
class CommandResult:
    """What the processor publishes for a command: the payment as it now stands, the refund if
    any, or an error."""

    kind: Literal["payment", "refund"]
    transaction_id: str
    merchant_id: str
    final: bool
    refund_id: str | None = None
    payment: PaymentView | None = None
    refund: RefundView | None = None
    error: ResultError | None = None

    @property
    def status(self) -> str | None:
        """The status reported: the refund's for a refund, else the payment's."""
        view = self.refund if self.kind == "refund" else self.payment
        return view.status if view is not None else None

    def message(self) -> PaymentResult:
        return PaymentResult(
            transaction_id=self.transaction_id,
            merchant_id=self.merchant_id,
            refund_id=self.refund_id,
            kind=self.kind,
            final=self.final,
            payment=self.payment.model_dump(mode="json") if self.payment else None,
            refund=self.refund.model_dump(mode="json") if self.refund else None,
            error=self.error,
        )


def _error(code: str | None, message: str | None) -> ResultError | None:
    return ResultError(code=code, message=message or "") if code else None


def payment_result(
    transaction_id: str, merchant_id: str, outcome: PaymentOutcome | CaptureOutcome
) -> CommandResult:
    """A payment's result: of its payment command, or of a capture or cancel of it."""
    return CommandResult(
        kind="payment",
        transaction_id=transaction_id,
        merchant_id=merchant_id,
        final=outcome.final,
        payment=payment_view(outcome.payment) if outcome.payment else None,
        error=_error(outcome.error_code, outcome.error_message),
    )


def refund_result(
    transaction_id: str,
    merchant_id: str,
    refund_id: str,
    outcome: RefundOutcome,
    payment: PaymentRecord | None,
) -> CommandResult:
    """A refund's result; `payment` is the payment as it stands after it, with the refund listed."""
    return CommandResult(
        kind="refund",
        transaction_id=transaction_id,
        merchant_id=merchant_id,
        final=outcome.final,
        refund_id=outcome.refund.refund_id if outcome.refund else refund_id,
        payment=payment_view(payment) if payment else None,
        refund=refund_view(outcome.refund) if outcome.refund else None,
        error=_error(outcome.error_code, outcome.error_message),
    )
