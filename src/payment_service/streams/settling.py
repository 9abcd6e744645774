"""One attempt to settle a payment left unsettled, the same for the reconciler and the fast lane.

A capture or void whose answer was lost (`capturing` / `canceling`) is repeated under its own key
(`<transaction>:capture` / `:void`): the bank replays what it recorded, and an answer lost again is
looked up by the bank client's status inquiry (`bank/resolution.py`); never a second capture.
Every other unsettled payment goes through the payment flow's reconcile (the inquiry for its sale
or authorization; the give-up after `give_up_after`).
"""

from __future__ import annotations

import datetime as dt

from payment_service.core.records import PaymentRecord
from payment_service.core.states import PaymentStatus
from payment_service.streams.captures import CaptureFlow
from payment_service.streams.payments import PaymentFlow

# Left by a capture or void command whose bank answer was lost.
CAPTURE_PENDING = frozenset({PaymentStatus.CAPTURING, PaymentStatus.CANCELING})


async def settle_once(
    payment: PaymentRecord,
    *,
    flow: PaymentFlow,
    captures: CaptureFlow | None,
    give_up_after: dt.timedelta,
) -> PaymentRecord:
    """The payment as the bank's answer leaves it (unchanged when the bank cannot say yet)."""
    if payment.status in CAPTURE_PENDING:
        if captures is None:
            return payment
        return await captures.finish(payment, None)
    return await flow.reconcile(payment, give_up_after=give_up_after)
