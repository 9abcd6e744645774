"""Which card a payment command charges, decided before the claim: opened, or why it cannot be.

A command names its card one of two ways:

* a sealed card number (`card.number_envelope`): opened here with the processor's private keys.
  Brand and last four then come from the number itself and the fingerprint is computed here
  (a producer needs no secret, and cannot mislabel the card); what the command says is kept
  only when the envelope does not open (`card_key_unknown`, `card_data_unreadable`,
  `card_data_mismatch`), and the payment then fails before the bank.
* a card on file (`payment_method_id`): looked up for the command's merchant. Another
  merchant's id, or one that does not exist, refuses the command with nothing stored
  (`payment_method_not_found`); a detached card (`payment_method_detached`) or one past its
  expiry (`card_expired`) fails the payment before the bank. Otherwise its envelope is opened
  and the transaction copies its brand, last four, expiry and fingerprint.

Opening happens on every delivery, but a failure only matters to a payment still `processing`:
a redelivered command of a settled payment is answered from its row whatever became of its key
or its card on file since.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from payment_service.core.errors import CardCryptoError
from payment_service.core.masking import CardNumber
from payment_service.core.ports import CardOpener, Fingerprints, PaymentMethodRepository
from payment_service.core.records import CardDetails, NewPayment
from payment_service.core.rules import card_expired


@dataclass(frozen=True)
class Refusal:
    """Why nothing can be done with the card: a code and a message without card data."""

    code: str
    message: str


@dataclass(frozen=True)
class CardSource:
    """The card a payment charges: what its row keeps, and the number, or why not."""

    details: CardDetails | None
    number: CardNumber | None = field(default=None, repr=False)
    # The payment fails with this before the bank (the row is still stored).
    failure: Refusal | None = None
    # The command is refused: no row, no bank call.
    refusal: Refusal | None = None


def _today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


class CardSources:
    """Resolves a command's card with the ports the processor holds."""

    def __init__(
        self,
        opener: CardOpener,
        methods: PaymentMethodRepository,
        fingerprints: Fingerprints,
        *,
        today: Callable[[], dt.date] = _today,
    ) -> None:
        self._opener = opener
        self._methods = methods
        self._fingerprints = fingerprints
        self._today = today

    async def resolve(self, new: NewPayment) -> CardSource:
        if new.payment_method_id is not None:
            return await self._card_on_file(new, new.payment_method_id)
        return self._sealed_number(new)

    def _sealed_number(self, new: NewPayment) -> CardSource:
        claimed = new.card
        if claimed is None or new.number_envelope is None:
            raise ValueError("a payment without a card on file carries its sealed card")
        try:
            number = self._opener.open_card_number(new.number_envelope, new.transaction_id)
        except CardCryptoError as exc:
            failure = Refusal(exc.failure_code, f"card number: {exc}")
            return CardSource(replace(claimed, fingerprint=None), failure=failure)
        details = replace(
            claimed,
            brand=number.brand,
            last4=number.last4,
            fingerprint=self._fingerprints.fingerprint(number),
        )
        return CardSource(details, number)

    async def _card_on_file(self, new: NewPayment, payment_method_id: str) -> CardSource:
        method = await self._methods.get(payment_method_id, merchant_id=new.merchant_id)
        if method is None:
            message = f"no card on file {payment_method_id!r} for this merchant"
            return CardSource(None, refusal=Refusal("payment_method_not_found", message))
        details = method.card
        if method.envelope is None:
            message = "this card on file was detached: it can no longer be charged"
            return CardSource(details, failure=Refusal("payment_method_detached", message))
        if card_expired(method.expiry_month, method.expiry_year, self._today()):
            message = "this card on file has expired: store the customer's new card"
            return CardSource(details, failure=Refusal("card_expired", message))
        try:
            number = self._opener.open_card_on_file(method.envelope, payment_method_id)
        except CardCryptoError as exc:
            return CardSource(details, failure=Refusal(exc.failure_code, f"card on file: {exc}"))
        return CardSource(details, number)
