"""A sale lost before the bank had it is sent again with the same key, once its deadline passed."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from payment_service.cards.fingerprint import FingerprintKey
from payment_service.core.banking import BankResult
from payment_service.core.errors import BankOutcomeUnknown
from payment_service.core.ids import idempotency_key
from payment_service.core.masking import SecurityCode
from payment_service.core.records import CardDetails, NewPayment, PaymentRecord
from payment_service.core.states import PaymentStatus as S
from payment_service.streams.cards import CardSources
from payment_service.streams.payments import PaymentFlow
from payment_service.streams.resends import Resends
from tests.unit.fakes import (
    FixedCards,
    MemoryPaymentMethods,
    MemoryPayments,
    MemoryVault,
    ScriptedBank,
    executed_authorization,
)

pytestmark = pytest.mark.unit
GIVE_UP = dt.timedelta(minutes=15)
FINGERPRINTS = FingerprintKey.parse(
    "fpk1:" + "Zm9yIHRlc3RzIG9ubHk6IGEgZml4ZWQga2V5IG9mIDMyIGJ5dGVz"
)


def _new() -> NewPayment:
    card = CardDetails("unknown", "0000", 12, 2030, "Ada Lovelace")
    return NewPayment(
        f"txn_{uuid.uuid4().hex}",
        "merchant_1",
        10_000,
        "USD",
        "credit_card",
        card,
        number_envelope="envelope",
        security_code_in_vault=True,
    )


class Lost:
    """A flow whose first sale is lost (no answer, no record at the bank)."""

    def __init__(self, *, after_seconds: float = 0.0) -> None:
        self.bank = ScriptedBank(authorize_with=BankOutcomeUnknown("connection reset"))
        self.vault = MemoryVault()
        sources = CardSources(FixedCards(), MemoryPaymentMethods(), FINGERPRINTS)
        resends = Resends(after_seconds=after_seconds)
        self.flow = PaymentFlow(MemoryPayments(), self.bank, self.vault, sources, resends=resends)
        self.new = _new()

    async def lose_the_sale(self) -> PaymentRecord:
        await self.vault.put(self.new.transaction_id, SecurityCode("123"))
        outcome = await self.flow.run(self.new, correlation_id=None)
        assert outcome.payment is not None
        assert outcome.payment.status == S.UNKNOWN
        self.bank.authorize_with = BankResult(True, "00", "auth_1", "Approved")
        return outcome.payment

    def sales(self) -> list[str]:
        return [key for operation, key in self.bank.calls if operation == "sale"]


async def test_a_lost_sale_the_bank_never_saw_is_sent_again_with_the_same_key() -> None:
    lost = Lost()
    payment = await lost.lose_the_sale()
    settled = await lost.flow.reconcile(payment, give_up_after=GIVE_UP)
    assert settled.status == S.CAPTURED
    key = idempotency_key(lost.new.transaction_id, "sale")
    assert lost.sales() == [key, key]
    assert lost.vault.codes == {}  # settled: the code is discarded


async def test_it_is_sent_again_only_once_per_loss() -> None:
    lost = Lost()
    payment = await lost.lose_the_sale()
    lost.bank.authorize_with = BankOutcomeUnknown("reset again")
    again = await lost.flow.reconcile(payment, give_up_after=GIVE_UP)
    assert again.status == S.UNKNOWN
    lost.bank.authorize_with = BankResult(True, "00", "auth_1", "Approved")
    settled = await lost.flow.reconcile(again, give_up_after=GIVE_UP)
    assert settled.status == S.CAPTURED
    assert len(lost.sales()) == 3  # one per loss, each with the same key
    assert len(set(lost.sales())) == 1


async def test_before_its_deadline_a_lost_sale_is_not_sent_again() -> None:
    lost = Lost(after_seconds=3600.0)
    payment = await lost.lose_the_sale()
    still = await lost.flow.reconcile(payment, give_up_after=GIVE_UP)
    assert still.status == S.UNKNOWN
    assert len(lost.sales()) == 1


async def test_a_sale_the_bank_has_is_recorded_never_sent_again() -> None:
    lost = Lost()
    payment = await lost.lose_the_sale()
    txn = lost.new.transaction_id
    lost.bank.executed.append(
        executed_authorization(idempotency_key(txn, "sale"), operation="sale")
    )
    settled = await lost.flow.reconcile(payment, give_up_after=GIVE_UP)
    assert settled.status == S.CAPTURED
    assert len(lost.sales()) == 1


async def test_without_its_security_code_a_lost_sale_fails_expired_and_is_not_sent() -> None:
    lost = Lost()
    payment = await lost.lose_the_sale()
    await lost.vault.discard(lost.new.transaction_id)  # expired from the vault
    settled = await lost.flow.reconcile(payment, give_up_after=GIVE_UP)
    assert (settled.status, settled.failure_code) == (S.FAILED, "security_code_expired")
    assert len(lost.sales()) == 1
