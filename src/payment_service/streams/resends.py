"""Sales and authorizations lost before the bank had them: sent again, with the same key.

A request cut on the way (a proxy's reset, the bank killed mid-read) leaves the payment
`unknown` and the bank with no record of our key. The processor that sent it keeps what it needs
to send it again (the card, in memory only: never durable) while the fast lane follows the
payment. Once the lost request's own deadline has passed, so that it cannot still be arriving,
and the bank still has no record, the flow sends it again with the same idempotency key: a bank
with idempotency keys makes that safe even if the first arrives after all. Without the security
code it needed (expired from the vault), the payment fails `security_code_expired`, as a
redelivery would. After a restart nothing is kept, and the reconciler's give-up decides, as before.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from payment_service.core.records import NewPayment
from payment_service.streams.cards import CardSource


@dataclass(frozen=True)
class Resend:
    new: NewPayment
    card: CardSource
    not_before: float  # time.monotonic()


class Resends:
    """What this process may send again, per transaction; bounded (past `max_kept`: the sweep)."""

    def __init__(self, *, after_seconds: float, max_kept: int = 10_000) -> None:
        self._after = after_seconds
        self._max_kept = max_kept
        self._kept: dict[str, Resend] = {}

    def keep(self, new: NewPayment, card: CardSource) -> None:
        txn = new.transaction_id
        if txn in self._kept or len(self._kept) < self._max_kept:
            self._kept[txn] = Resend(new, card, time.monotonic() + self._after)

    def due(self, transaction_id: str) -> Resend | None:
        """The request to send again, once its deadline has passed (else None)."""
        kept = self._kept.get(transaction_id)
        if kept is None or time.monotonic() < kept.not_before:
            return None
        return kept

    def forget(self, transaction_id: str) -> None:
        self._kept.pop(transaction_id, None)
