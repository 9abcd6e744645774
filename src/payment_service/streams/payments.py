"""Carry one payment through the bank and into its repository, safely repeatable.

0. Resolve the card (`streams.cards`): open the sealed number, or look up the card on file.
1. Claim the transaction row (insert, or find the one a previous delivery made).
2. Automatic capture: one sale at the bank (authorize and capture in one message) with the key
   `<transaction>:sale`, recorded as one transition. Manual capture: authorize with the key
   `<transaction>:authorize` and stop at `requires_capture` (`streams.captures` goes on).
   Payments authorized before the sale existed are still captured with `<transaction>:capture`.
3. Discard the security code once the bank has answered for good (never charge without it).

Every step starts from the status in PostgreSQL, so a redelivered command (after a crash, a
rebalance or an operator's replay) resumes where the last one stopped; the bank's idempotency
keys turn a repeated call into a replay of its first answer, so nothing is charged twice.
An outcome the bank did not give us stays `unknown`, never `failed`. A card that cannot be
opened, a detached or expired card on file, or a security code under a key we no longer hold
fails the payment before the bank, with its own code; nothing is charged.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import replace

from payment_service.core.banking import BankResult
from payment_service.core.decisions import PaymentStep as Step
from payment_service.core.decisions import authorize_operation, payment_step
from payment_service.core.errors import (
    BankError,
    BankNotSent,
    BankOutcomeUnknown,
    BankRejected,
    CardCryptoError,
    IdempotencyConflict,
)
from payment_service.core.ids import idempotency_key
from payment_service.core.ports import BankClient, SecurityCodeStore
from payment_service.core.records import NewPayment, PaymentRecord, RecordedRefusal
from payment_service.core.refusal_ports import RefusingPaymentRepository
from payment_service.core.states import PAYMENT_SETTLED, PaymentEvent, PaymentStatus
from payment_service.ops.faults import crash_point
from payment_service.ops.telemetry import Metrics
from payment_service.streams import bank_records
from payment_service.streams.cards import CardSource, CardSources, Refusal
from payment_service.streams.legacy_capture import capture_authorized
from payment_service.streams.payment_outcome import PaymentOutcome
from payment_service.streams.recorder import PaymentRecorder
from payment_service.streams.resends import Resends

S, E = PaymentStatus, PaymentEvent
KEY_REUSED = "idempotency_key_reuse"


class PaymentFlow:
    """The payment workflow; the I/O it needs is handed in as ports."""

    def __init__(
        self,
        repo: RefusingPaymentRepository,
        bank: BankClient,
        vault: SecurityCodeStore,
        cards: CardSources,
        *,
        metrics: Metrics | None = None,
        on_unknown: Callable[[PaymentRecord], None] | None = None,
        resends: Resends | None = None,
    ) -> None:
        self._repo = repo
        self._bank = bank
        self._vault = vault
        self._cards = cards
        self._record = PaymentRecorder(repo, metrics, on_unknown)
        self._resends = resends

    async def run(self, new: NewPayment, correlation_id: str | None) -> PaymentOutcome:
        try:
            refusal = await self._refusal(new, correlation_id)
        except IdempotencyConflict as exc:
            return PaymentOutcome(None, "idempotency_key_reused", str(exc))
        if isinstance(refusal, RecordedRefusal):
            return PaymentOutcome(None, refusal.code, refusal.message)
        card = refusal
        new = replace(new, card=card.details)
        try:
            claim = await self._repo.claim_payment(new, correlation_id=correlation_id)
        except IdempotencyConflict as exc:
            return PaymentOutcome(None, "idempotency_key_reused", str(exc))
        payment = claim.payment
        # The next step comes from `core.decisions`, which `ops replay --dry-run` asks too.
        if payment_step(payment.status) == Step.RESOLVE:
            # An earlier attempt may have charged: ask the bank, never authorize again blindly.
            payment = await self._resolve(payment, correlation_id)
        if payment_step(payment.status) == Step.AUTHORIZE:
            # Only the delivery that created the row knows no earlier attempt reached the bank.
            payment = await self._authorize(new, card, payment, correlation_id, first=claim.created)
        payment = await self._finish(payment, correlation_id)
        return PaymentOutcome(payment)

    async def _refusal(
        self, new: NewPayment, correlation_id: str | None
    ) -> RecordedRefusal | CardSource:
        """The card to charge, or the payment's refusal: recorded earlier, or decided and
        recorded now. Only a card on file can refuse a payment with no row (not this merchant's,
        or missing), so only those pay for the lookup of an earlier refusal."""
        if new.payment_method_id is not None:
            earlier = await self._repo.payment_refusal(new)
            if earlier is not None:
                return earlier
        card = await self._cards.resolve(new)
        if card.refusal is None:
            return card
        refusal = RecordedRefusal(card.refusal.code, card.refusal.message)
        return await self._repo.refuse_payment(new, refusal, correlation_id=correlation_id)

    async def reconcile(
        self, payment: PaymentRecord, *, give_up_after: dt.timedelta
    ) -> PaymentRecord:
        """Settle a payment left unsettled (outcome unknown, or a delivery that never finished).

        Only the bank's own record decides. A payment the bank has no record of is failed only
        after `give_up_after`, long past any delivery that could still be sending it.
        """
        if payment.status in (S.PROCESSING, S.UNKNOWN):
            resolved = await self._resolve(payment, None)
            if resolved.status == S.UNKNOWN and self._resends is not None:
                resend = self._resends.due(payment.transaction_id)
                if resend is not None and await self._bank_has_no_record(payment):
                    # Lost before the bank had it (streams/resends.py): the same key again.
                    self._resends.forget(payment.transaction_id)
                    sent = await self._authorize(
                        resend.new, resend.card, resolved, None, first=False
                    )
                    return await self._finish(sent, None)
            if resolved.status == payment.status:
                age = dt.datetime.now(dt.UTC) - payment.created_at
                if age > give_up_after and await self._bank_has_no_record(payment):
                    message = "the bank has no record of this authorization"
                    return await self._decline(
                        payment, "not_processed_by_bank", None, message, None
                    )
                return payment
            payment = resolved
        return await self._finish(payment, None)

    async def _finish(self, payment: PaymentRecord, correlation_id: str | None) -> PaymentRecord:
        if payment_step(payment.status) == Step.CAPTURE:
            payment = await capture_authorized(self._bank, self._record, payment, correlation_id)
        if payment.status in PAYMENT_SETTLED:
            if self._resends is not None:
                self._resends.forget(payment.transaction_id)
            crash_point("after_capture_recorded")
            await self._vault.discard(payment.transaction_id)
        return payment

    async def _resolve(self, payment: PaymentRecord, correlation_id: str | None) -> PaymentRecord:
        """Record the bank's answer to our sale or authorization, if the bank has one (an
        unknown sale is inquired, never sent again)."""
        try:
            earlier = await bank_records.earlier(self._bank, payment.transaction_id)
        except BankError:
            return payment
        if earlier is None:
            return payment
        return await self._record_authorization(payment, earlier[1], earlier[0], correlation_id)

    async def _bank_has_no_record(self, payment: PaymentRecord) -> bool:
        try:
            return await bank_records.has_no_record(self._bank, payment.transaction_id)
        except BankError:
            return False

    async def _authorize(
        self,
        new: NewPayment,
        card: CardSource,
        payment: PaymentRecord,
        correlation_id: str | None,
        *,
        first: bool,
    ) -> PaymentRecord:
        """Sell (automatic capture) or authorize (manual) at the bank. `first`: this delivery
        created the payment, so no earlier attempt can have reached the bank, and "not sent"
        means "not charged"."""
        txn = payment.transaction_id
        operation: str = authorize_operation(payment)
        key = idempotency_key(txn, operation)
        call = self._bank.sale if operation == "sale" else self._bank.authorize
        if card.number is None or new.card is None:
            # Unopenable, detached or expired: nothing can be sent to the bank, ever.
            failure = card.failure or Refusal("card_data_unreadable", "the card was not opened")
            return await self._decline(payment, failure.code, None, failure.message, correlation_id)
        card_number = card.number
        try:
            security_code = await self._vault.take(txn)
        except CardCryptoError as exc:
            # Sealed under a key we no longer hold (retired), or damaged: fail this payment and
            # go on, never a crash loop on the message.
            message = f"security code: {exc}"
            return await self._decline(payment, exc.failure_code, None, message, correlation_id)
        if security_code is None and new.security_code_in_vault:
            # The code that should be there is gone (expired in a backlog). Never authorize
            # without it: an earlier delivery's authorization decides, else the payment fails.
            return await self._without_security_code(payment, correlation_id, first=first)
        try:
            result = await call(
                reference=txn,
                idempotency_key=key,
                amount_minor=payment.amount_minor,
                currency=payment.currency,
                card_number=card_number,
                security_code=security_code,
                expiry_month=new.card.expiry_month,
                expiry_year=new.card.expiry_year,
                holder_name=new.card.holder_name,
            )
        except BankRejected as exc:
            if exc.code != KEY_REUSED:
                return await self._decline(payment, "bank_rejected", None, str(exc), correlation_id)
            # Our key with another body: an earlier delivery's request (e.g. with a security code
            # that has since expired) reached the bank. Its outcome, not this refusal, decides;
            # if the bank cannot tell us now, the outcome is unknown, never failed.
            try:
                earlier = await bank_records.earlier(self._bank, txn)
            except BankError:
                earlier = None
            if earlier is None:
                return await self._record.unknown(
                    payment,
                    E.AUTHORIZATION_UNKNOWN,
                    "earlier authorization not found",
                    correlation_id,
                )
            operation, result = earlier
        except BankNotSent as exc:
            if first:
                # Nothing reached the bank, so nothing was charged: a definite, retryable failure.
                return await self._decline(
                    payment, "bank_unavailable", None, str(exc), correlation_id
                )
            # A redelivery: an earlier attempt may have charged. The reconciler asks the bank.
            return await self._record.unknown(
                payment, E.AUTHORIZATION_UNKNOWN, "bank unreachable on redelivery", correlation_id
            )
        except BankOutcomeUnknown:
            if self._resends is not None:
                self._resends.keep(new, card)
            return await self._record.unknown(
                payment, E.AUTHORIZATION_UNKNOWN, "authorization outcome unknown", correlation_id
            )
        crash_point("after_authorize")
        return await self._record_authorization(payment, result, operation, correlation_id)

    async def _without_security_code(
        self, payment: PaymentRecord, correlation_id: str | None, *, first: bool
    ) -> PaymentRecord:
        """Ask the bank for an earlier authorization (a redelivery's), else fail the payment."""
        message = "the card security code expired before the payment was processed"
        if first:  # this delivery created the row: nothing earlier can have reached the bank
            return await self._decline(
                payment, "security_code_expired", None, message, correlation_id
            )
        try:
            earlier = await bank_records.earlier(self._bank, payment.transaction_id)
        except BankError:
            return await self._record.unknown(
                payment, E.AUTHORIZATION_UNKNOWN, "bank unreachable, code expired", correlation_id
            )
        if earlier is not None:
            return await self._record_authorization(payment, earlier[1], earlier[0], correlation_id)
        return await self._decline(payment, "security_code_expired", None, message, correlation_id)

    async def _record_authorization(
        self,
        payment: PaymentRecord,
        result: BankResult,
        operation: str,
        correlation_id: str | None,
    ) -> PaymentRecord:
        if not result.approved:
            return await self._decline(
                payment, "card_declined", result.decline_code, result.message, correlation_id
            )
        authorization_id = result.authorization_id or ""
        if operation == "sale":
            return await self._record.sold(payment, authorization_id, correlation_id)
        event = E.AUTHORIZATION_HELD if payment.manual_capture else E.AUTHORIZATION_APPROVED
        return await self._record.authorized(payment, authorization_id, correlation_id, event)

    async def _decline(
        self,
        payment: PaymentRecord,
        failure_code: str,
        decline_code: str | None,
        message: str,
        correlation_id: str | None,
    ) -> PaymentRecord:
        """Fail a payment at (or instead of) its authorization."""
        return await self._record.failed(
            payment, E.AUTHORIZATION_DECLINED, failure_code, decline_code, message, correlation_id
        )
