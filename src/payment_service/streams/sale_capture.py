"""The capture of a payment authorized before the sale existed (or whose capture was lost).

Always with the key `<transaction>:capture`, so the reconciler's repeat is the same call. A lost
answer leaves `unknown_capture` (the authorization holds the funds), never failed.
"""

from __future__ import annotations

from payment_service.core.errors import BankNotSent, BankOutcomeUnknown, BankRejected
from payment_service.core.ids import idempotency_key
from payment_service.core.ports import BankClient
from payment_service.core.records import PaymentRecord
from payment_service.core.states import PaymentEvent as E
from payment_service.streams.recorder import PaymentRecorder


async def capture(
    bank: BankClient, record: PaymentRecorder, payment: PaymentRecord, correlation_id: str | None
) -> PaymentRecord:
    """Capture an authorized payment (or one whose capture was lost), key `<txn>:capture`."""
    txn = payment.transaction_id
    try:
        result = await bank.capture(
            reference=txn,
            idempotency_key=idempotency_key(txn, "capture"),
            authorization_id=payment.authorization_id or "",
            amount_minor=payment.amount_minor,
            currency=payment.currency,
        )
    except (BankOutcomeUnknown, BankNotSent):
        # The authorization holds the funds; the reconciler captures with the same key.
        return await record.unknown(
            payment, E.CAPTURE_UNKNOWN, "capture outcome unknown", correlation_id
        )
    except BankRejected as exc:
        return await record.failed(
            payment, E.CAPTURE_DECLINED, "capture_rejected", None, str(exc), correlation_id
        )
    if not result.approved:
        return await record.failed(
            payment,
            E.CAPTURE_DECLINED,
            "capture_declined",
            result.decline_code,
            result.message,
            correlation_id,
        )
    return await record.captured(payment, correlation_id)
