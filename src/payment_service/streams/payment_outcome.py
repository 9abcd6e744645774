"""What one run of the payment flow ends with: the payment, or an error before it had a row."""

from __future__ import annotations

from dataclasses import dataclass

from payment_service.core.records import PaymentRecord
from payment_service.core.states import PAYMENT_SETTLED


@dataclass(frozen=True)
class PaymentOutcome:
    payment: PaymentRecord | None
    error_code: str | None = None
    error_message: str | None = None

    @property
    def final(self) -> bool:
        return self.payment is None or self.payment.status in PAYMENT_SETTLED
