"""PaymentFlow's decisions against in-memory ports: what it records for each bank answer.

Fast and without servers; `tests/integration/test_payment_flow_recovery.py` runs the same flow
against the real PostgreSQL, Redis and bank simulator.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import replace
from typing import Any

import pytest

from payment_service.core.errors import (
    BankNotSent,
    BankOutcomeUnknown,
    BankRejected,
)
from payment_service.core.ids import idempotency_key
from payment_service.core.masking import SecurityCode
from payment_service.core.records import NewPayment, SealedCard
from payment_service.core.states import PaymentEvent, PaymentStatus
from payment_service.streams.payments import PaymentFlow
from tests.unit.fakes import (
    DECLINED,
    FixedCards,
    MemoryPayments,
    MemoryVault,
    ScriptedBank,
    executed_authorization,
)

pytestmark = pytest.mark.unit
S, E = PaymentStatus, PaymentEvent


def _new(**changes: Any) -> NewPayment:
    card = SealedCard("envelope", "fp", "visa", "4242", 12, 2030, "Ada Lovelace")
    new = NewPayment(f"txn_{uuid.uuid4().hex}", "merchant_1", 10_000, "USD", "credit_card", card)
    return replace(new, **changes)


class Harness:
    def __init__(self, bank: ScriptedBank | None = None, cards: FixedCards | None = None) -> None:
        self.repo = MemoryPayments()
        self.bank = bank or ScriptedBank()
        self.vault = MemoryVault()
        self.flow = PaymentFlow(self.repo, self.bank, self.vault, cards or FixedCards())

    def operations(self) -> list[str]:
        return [operation for operation, _ in self.bank.calls]

    def events(self) -> list[PaymentEvent]:
        return [event for _, event in self.repo.events]


async def test_approved_then_captured_with_keys_from_our_ids_and_the_code_discarded() -> None:
    h = Harness()
    new = _new(security_code_in_vault=True)
    await h.vault.put(new.transaction_id, SecurityCode("123"))
    outcome = await h.flow.run(new, correlation_id="c")
    assert outcome.payment is not None
    assert (outcome.payment.status, outcome.final) == (S.CAPTURED, True)
    txn = new.transaction_id
    keys = [idempotency_key(txn, "authorize"), idempotency_key(txn, "capture")]
    assert h.bank.calls == list(zip(["authorize", "capture"], keys, strict=True))
    assert h.events() == [E.AUTHORIZATION_APPROVED, E.CAPTURE_APPROVED]
    assert txn not in h.vault.codes


async def test_a_decline_fails_the_payment_with_its_codes_and_nothing_is_captured() -> None:
    h = Harness(ScriptedBank(authorize_with=DECLINED))
    outcome = await h.flow.run(_new(), correlation_id=None)
    assert outcome.payment is not None
    payment = outcome.payment
    assert (payment.status, payment.failure_code, payment.decline_code) == (
        S.FAILED,
        "card_declined",
        "insufficient_funds",
    )
    assert h.operations() == ["authorize"]
    assert h.events() == [E.AUTHORIZATION_DECLINED]


async def test_a_capture_decline_is_named_as_one() -> None:
    h = Harness(ScriptedBank(capture_with=DECLINED))
    outcome = await h.flow.run(_new(), correlation_id=None)
    assert outcome.payment is not None
    assert (outcome.payment.status, outcome.payment.failure_code) == (S.FAILED, "capture_declined")
    assert h.events() == [E.AUTHORIZATION_APPROVED, E.CAPTURE_DECLINED]


async def test_not_sent_on_the_first_delivery_fails_as_not_charged() -> None:
    h = Harness(ScriptedBank(authorize_with=BankNotSent("refused")))
    outcome = await h.flow.run(_new(), correlation_id=None)
    assert outcome.payment is not None
    assert (outcome.payment.status, outcome.payment.failure_code) == (S.FAILED, "bank_unavailable")


async def test_not_sent_on_a_redelivery_is_unknown_never_failed() -> None:
    h = Harness(ScriptedBank(authorize_with=BankNotSent("refused")))
    new = _new()
    await h.repo.claim_payment(new, correlation_id=None)  # an earlier delivery claimed it
    outcome = await h.flow.run(new, correlation_id=None)
    assert outcome.payment is not None
    assert (outcome.payment.status, outcome.final) == (S.UNKNOWN, False)
    assert h.events() == [E.AUTHORIZATION_UNKNOWN]


async def test_an_unknown_authorization_outcome_stays_unknown() -> None:
    h = Harness(ScriptedBank(authorize_with=BankOutcomeUnknown("read timeout")))
    outcome = await h.flow.run(_new(), correlation_id=None)
    assert outcome.payment is not None
    assert outcome.payment.status == S.UNKNOWN


async def test_an_unknown_capture_outcome_is_unknown_capture_and_keeps_the_code() -> None:
    h = Harness(ScriptedBank(capture_with=BankOutcomeUnknown("reset")))
    new = _new()
    await h.vault.put(new.transaction_id, SecurityCode("123"))
    outcome = await h.flow.run(new, correlation_id=None)
    assert outcome.payment is not None
    assert outcome.payment.status == S.UNKNOWN_CAPTURE
    assert h.events() == [E.AUTHORIZATION_APPROVED, E.CAPTURE_UNKNOWN]
    assert new.transaction_id in h.vault.codes  # a redelivery may still need it


async def test_an_unreadable_card_fails_before_the_bank_is_asked() -> None:
    h = Harness(cards=FixedCards(None))
    outcome = await h.flow.run(_new(), correlation_id=None)
    assert outcome.payment is not None
    assert outcome.payment.failure_code == "card_data_unreadable"
    assert h.bank.calls == []


async def test_an_expired_security_code_fails_before_the_bank_is_asked() -> None:
    h = Harness()
    outcome = await h.flow.run(_new(security_code_in_vault=True), correlation_id=None)
    assert outcome.payment is not None
    assert outcome.payment.failure_code == "security_code_expired"
    assert h.bank.calls == []


async def test_a_refused_key_reuse_takes_the_earlier_authorization_from_the_bank() -> None:
    new = _new()
    earlier = executed_authorization(idempotency_key(new.transaction_id, "authorize"))
    bank = ScriptedBank(
        authorize_with=BankRejected("key reused", code="idempotency_key_reuse", status=422),
        executed=[earlier],
    )
    h = Harness(bank)
    outcome = await h.flow.run(new, correlation_id=None)
    assert outcome.payment is not None
    assert (outcome.payment.status, outcome.payment.authorization_id) == (
        S.CAPTURED,
        "auth_earlier",
    )
    assert h.operations() == ["authorize", "inquire", "capture"]


async def test_a_refused_key_reuse_the_bank_cannot_explain_is_unknown() -> None:
    rejected = BankRejected("key reused", code="idempotency_key_reuse", status=422)
    h = Harness(ScriptedBank(authorize_with=rejected))
    outcome = await h.flow.run(_new(), correlation_id=None)
    assert outcome.payment is not None
    assert outcome.payment.status == S.UNKNOWN


async def test_another_rejection_fails_the_payment() -> None:
    rejected = BankRejected("bad request", code="invalid_request", status=422)
    h = Harness(ScriptedBank(authorize_with=rejected))
    outcome = await h.flow.run(_new(), correlation_id=None)
    assert outcome.payment is not None
    assert outcome.payment.failure_code == "bank_rejected"


async def test_a_conflicting_claim_is_an_error_with_no_bank_call() -> None:
    h = Harness()
    new = _new(request_hash="first")
    await h.repo.claim_payment(new, correlation_id=None)
    outcome = await h.flow.run(replace(new, request_hash="other"), correlation_id=None)
    assert (outcome.payment, outcome.error_code, outcome.final) == (
        None,
        "idempotency_key_reused",
        True,
    )
    assert h.bank.calls == []


async def test_a_redelivered_unknown_payment_asks_the_bank_instead_of_authorizing_again() -> None:
    new = _new()
    h = Harness(ScriptedBank(authorize_with=BankOutcomeUnknown("timeout")))
    await h.flow.run(new, correlation_id=None)
    h.bank.executed.append(executed_authorization(idempotency_key(new.transaction_id, "authorize")))
    again = await h.flow.run(new, correlation_id=None)
    assert again.payment is not None
    assert again.payment.status == S.CAPTURED
    assert h.operations() == ["authorize", "inquire", "capture"]


async def test_a_settled_payment_replayed_calls_nothing() -> None:
    h = Harness()
    new = _new()
    first = await h.flow.run(new, correlation_id=None)
    calls = list(h.bank.calls)
    again = await h.flow.run(new, correlation_id=None)
    assert again.payment == first.payment
    assert h.bank.calls == calls


async def test_the_reconciler_fails_what_the_bank_never_saw_only_after_giving_up() -> None:
    h = Harness()
    claim = await h.repo.claim_payment(_new(), correlation_id=None)
    young = await h.flow.reconcile(claim.payment, give_up_after=dt.timedelta(hours=1))
    assert young.status == S.PROCESSING
    old = await h.flow.reconcile(claim.payment, give_up_after=dt.timedelta(0))
    assert (old.status, old.failure_code) == (S.FAILED, "not_processed_by_bank")
    assert "authorize" not in h.operations()


async def test_a_transition_another_delivery_made_first_is_taken_as_it_stands() -> None:
    new = _new()
    key = idempotency_key(new.transaction_id, "authorize")
    h = Harness(ScriptedBank(executed=[executed_authorization(key)]))
    claim = await h.repo.claim_payment(new, correlation_id=None)
    # Another delivery recorded the authorization; the reconciler still holds the stale row.
    await h.repo.mark_authorized(
        new.transaction_id, expected=S.PROCESSING, authorization_id="auth_earlier",
        correlation_id=None,
    )  # fmt: skip
    settled = await h.flow.reconcile(claim.payment, give_up_after=dt.timedelta(hours=1))
    assert settled.status == S.CAPTURED
    assert h.events() == [E.AUTHORIZATION_APPROVED, E.CAPTURE_APPROVED]  # each recorded once
