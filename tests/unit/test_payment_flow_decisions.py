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

from payment_service.cards.fingerprint import FingerprintKey
from payment_service.core.errors import (
    BankNotSent,
    BankOutcomeUnknown,
    BankRejected,
    CardCryptoError,
    DecryptionError,
    EnvelopeMismatch,
    UnknownKeyId,
)
from payment_service.core.ids import idempotency_key
from payment_service.core.masking import SecurityCode
from payment_service.core.records import CardDetails, NewPayment
from payment_service.core.states import PaymentEvent, PaymentStatus
from payment_service.streams.cards import CardSources
from payment_service.streams.payments import PaymentFlow
from tests.unit.fakes import (
    CARD,
    DECLINED,
    FixedCards,
    MemoryPaymentMethods,
    MemoryPayments,
    MemoryVault,
    ScriptedBank,
    executed_authorization,
)

pytestmark = pytest.mark.unit
S, E = PaymentStatus, PaymentEvent


FINGERPRINTS = FingerprintKey.parse(
    "fpk1:" + "Zm9yIHRlc3RzIG9ubHk6IGEgZml4ZWQga2V5IG9mIDMyIGJ5dGVz"
)


def _new(**changes: Any) -> NewPayment:
    card = CardDetails("unknown", "0000", 12, 2030, "Ada Lovelace")
    new = NewPayment(
        f"txn_{uuid.uuid4().hex}",
        "merchant_1",
        10_000,
        "USD",
        "credit_card",
        card,
        number_envelope="envelope",
    )
    return replace(new, **changes)


class Harness:
    def __init__(self, bank: ScriptedBank | None = None, cards: FixedCards | None = None) -> None:
        self.repo = MemoryPayments()
        self.bank = bank or ScriptedBank()
        self.vault = MemoryVault()
        self.methods = MemoryPaymentMethods()
        self.cards = cards or FixedCards()
        sources = CardSources(self.cards, self.methods, FINGERPRINTS)
        self.flow = PaymentFlow(self.repo, self.bank, self.vault, sources)

    def operations(self) -> list[str]:
        return [operation for operation, _ in self.bank.calls]

    def events(self) -> list[PaymentEvent]:
        return [event for _, event in self.repo.events]


async def test_automatic_capture_is_one_sale_one_transition_and_the_code_discarded() -> None:
    h = Harness()
    new = _new(security_code_in_vault=True)
    await h.vault.put(new.transaction_id, SecurityCode("123"))
    outcome = await h.flow.run(new, correlation_id="c")
    assert outcome.payment is not None
    assert (outcome.payment.status, outcome.final) == (S.CAPTURED, True)
    assert outcome.payment.captured_minor == new.amount_minor
    txn = new.transaction_id
    assert h.bank.calls == [("sale", idempotency_key(txn, "sale"))]
    assert h.events() == [E.SALE_APPROVED]
    assert txn not in h.vault.codes


async def test_manual_capture_authorizes_only_and_waits_for_the_merchant() -> None:
    h = Harness()
    new = _new(security_code_in_vault=True, capture_method="manual")
    await h.vault.put(new.transaction_id, SecurityCode("123"))
    outcome = await h.flow.run(new, correlation_id="c")
    assert outcome.payment is not None
    assert (outcome.payment.status, outcome.final) == (S.REQUIRES_CAPTURE, True)
    assert (outcome.payment.captured_minor, outcome.payment.authorization_id) == (0, "auth_1")
    assert outcome.payment.authorized_at is not None
    assert h.bank.calls == [("authorize", idempotency_key(new.transaction_id, "authorize"))]
    assert h.events() == [E.AUTHORIZATION_HELD]
    assert new.transaction_id not in h.vault.codes  # the bank has answered for good


async def test_an_unknown_manual_authorization_found_by_inquiry_waits_for_capture() -> None:
    new = _new(capture_method="manual")
    h = Harness(ScriptedBank(authorize_with=BankOutcomeUnknown("timeout")))
    await h.flow.run(new, correlation_id=None)
    h.bank.executed.append(executed_authorization(idempotency_key(new.transaction_id, "authorize")))
    again = await h.flow.run(new, correlation_id=None)
    assert again.payment is not None
    assert again.payment.status == S.REQUIRES_CAPTURE
    assert h.operations() == ["authorize", "inquire"]
    assert h.events() == [E.AUTHORIZATION_UNKNOWN, E.AUTHORIZATION_HELD]


async def test_a_redelivery_after_an_unknown_sale_inquires_and_never_sells_twice() -> None:
    new = _new()
    h = Harness(ScriptedBank(authorize_with=BankOutcomeUnknown("timeout")))
    first = await h.flow.run(new, correlation_id=None)
    assert first.payment is not None
    assert first.payment.status == S.UNKNOWN
    again = await h.flow.run(new, correlation_id=None)  # the bank shows nothing yet
    assert again.payment is not None
    assert again.payment.status == S.UNKNOWN
    assert h.operations() == ["sale", "inquire"]


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
    assert h.operations() == ["sale"]
    assert h.events() == [E.AUTHORIZATION_DECLINED]


async def _authorized_before_the_sale(h: Harness, new: NewPayment) -> None:
    """A payment an older processor authorized (to capture next), before sales existed."""
    await h.repo.claim_payment(new, correlation_id=None)
    await h.repo.mark_authorized(
        new.transaction_id, expected=S.PROCESSING, authorization_id="auth_1", correlation_id=None
    )


async def test_a_capture_decline_is_named_as_one() -> None:
    h = Harness(ScriptedBank(capture_with=DECLINED))
    new = _new()
    await _authorized_before_the_sale(h, new)
    outcome = await h.flow.run(new, correlation_id=None)
    assert outcome.payment is not None
    assert (outcome.payment.status, outcome.payment.failure_code) == (S.FAILED, "capture_declined")
    assert h.events() == [E.AUTHORIZATION_APPROVED, E.CAPTURE_DECLINED]
    assert h.operations() == ["capture"]


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
    await _authorized_before_the_sale(h, new)
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


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (UnknownKeyId("ck_gone"), "card_key_unknown"),
        (DecryptionError("tampered"), "card_data_unreadable"),
        (EnvelopeMismatch("other transaction"), "card_data_mismatch"),
    ],
)
async def test_each_unopenable_card_has_its_own_code_and_no_bank_call(
    error: CardCryptoError, code: str
) -> None:
    h = Harness(cards=FixedCards(None, error))
    outcome = await h.flow.run(_new(), correlation_id=None)
    assert outcome.payment is not None
    assert (outcome.payment.status, outcome.payment.failure_code) == (S.FAILED, code)
    assert outcome.payment.card_fingerprint is None  # no one could compute it
    assert h.bank.calls == []


async def test_the_processor_takes_brand_last4_and_fingerprint_from_the_opened_number() -> None:
    h = Harness()
    outcome = await h.flow.run(_new(), correlation_id=None)
    assert outcome.payment is not None
    payment = outcome.payment
    assert (payment.card_brand, payment.card_last4) == ("visa", "4242")  # not "unknown"/"0000"
    assert payment.card_fingerprint == FINGERPRINTS.fingerprint(CARD)


async def test_a_security_code_under_a_removed_key_fails_the_payment_and_goes_on() -> None:
    h = Harness()
    new = _new(security_code_in_vault=True)
    h.vault.unreadable[new.transaction_id] = UnknownKeyId("ck_retired")
    outcome = await h.flow.run(new, correlation_id=None)
    assert outcome.payment is not None
    assert (outcome.payment.status, outcome.payment.failure_code) == (S.FAILED, "card_key_unknown")
    assert h.bank.calls == []
    assert new.transaction_id not in h.vault.unreadable  # discarded once settled


def _by_card_on_file(h: Harness, merchant: str = "merchant_1", **changes: Any) -> NewPayment:
    method = h.methods.add(merchant, **changes)
    return _new(card=None, number_envelope=None, payment_method_id=method.payment_method_id)


async def test_a_card_on_file_is_opened_for_its_id_and_copied_onto_the_payment() -> None:
    h = Harness()
    new = _by_card_on_file(h, last4="4242", fingerprint="fpk1:pm")
    outcome = await h.flow.run(new, correlation_id=None)
    assert outcome.payment is not None
    payment = outcome.payment
    assert payment.status == S.CAPTURED
    assert (payment.payment_method_id, payment.card_fingerprint) == (
        new.payment_method_id,
        "fpk1:pm",
    )
    assert h.cards.opened == [("card_on_file", new.payment_method_id)]


async def test_another_merchants_card_on_file_is_refused_with_nothing_stored() -> None:
    h = Harness()
    new = _by_card_on_file(h, merchant="merchant_2")
    outcome = await h.flow.run(new, correlation_id=None)
    assert (outcome.payment, outcome.error_code) == (None, "payment_method_not_found")
    assert h.repo.rows == {}
    assert h.bank.calls == []
    assert h.cards.opened == []


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        (
            {"envelope": None, "key_id": None, "detached_at": dt.datetime.now(dt.UTC)},
            "payment_method_detached",
        ),
        ({"expiry_month": 1, "expiry_year": 2020}, "card_expired"),
    ],
)
async def test_a_detached_or_expired_card_on_file_fails_before_the_bank(
    changes: dict[str, Any], code: str
) -> None:
    h = Harness()
    outcome = await h.flow.run(_by_card_on_file(h, **changes), correlation_id=None)
    assert outcome.payment is not None
    assert (outcome.payment.status, outcome.payment.failure_code) == (S.FAILED, code)
    assert h.bank.calls == []
    assert h.cards.opened == []


async def test_a_replay_of_a_settled_payment_is_answered_after_its_card_was_detached() -> None:
    h = Harness()
    new = _by_card_on_file(h)
    first = await h.flow.run(new, correlation_id=None)
    assert new.payment_method_id is not None
    method = h.methods.rows[new.payment_method_id]
    h.methods.rows[method.payment_method_id] = replace(
        method, envelope=None, key_id=None, detached_at=dt.datetime.now(dt.UTC)
    )
    again = await h.flow.run(new, correlation_id=None)
    assert first.payment is not None
    assert again.payment is not None
    assert again.payment.status == S.CAPTURED
    assert h.operations() == ["sale"]


async def test_an_expired_security_code_fails_before_the_bank_is_asked() -> None:
    h = Harness()
    outcome = await h.flow.run(_new(security_code_in_vault=True), correlation_id=None)
    assert outcome.payment is not None
    assert outcome.payment.failure_code == "security_code_expired"
    assert h.bank.calls == []


async def test_a_redelivery_whose_code_expired_never_authorizes_without_it() -> None:
    h = Harness()
    new = _new(security_code_in_vault=True)
    await h.repo.claim_payment(new, correlation_id=None)  # the first delivery never sent it
    outcome = await h.flow.run(new, correlation_id=None)
    assert outcome.payment is not None
    assert (outcome.payment.status, outcome.payment.failure_code) == (
        S.FAILED,
        "security_code_expired",
    )
    assert h.operations() == ["inquire"]


async def test_a_redelivery_whose_code_expired_takes_the_earlier_sale() -> None:
    new = _new(security_code_in_vault=True)
    earlier = executed_authorization(idempotency_key(new.transaction_id, "sale"), operation="sale")
    h = Harness(ScriptedBank(executed=[earlier]))
    await h.repo.claim_payment(new, correlation_id=None)
    outcome = await h.flow.run(new, correlation_id=None)
    assert outcome.payment is not None
    assert outcome.payment.status == S.CAPTURED
    assert h.operations() == ["inquire"]  # the sale captured already: no capture call


async def test_a_refused_key_reuse_takes_the_earlier_sale_from_the_bank() -> None:
    new = _new()
    earlier = executed_authorization(idempotency_key(new.transaction_id, "sale"), operation="sale")
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
    assert h.operations() == ["sale", "inquire"]


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


async def test_a_redelivered_unknown_payment_asks_the_bank_instead_of_selling_again() -> None:
    new = _new()
    h = Harness(ScriptedBank(authorize_with=BankOutcomeUnknown("timeout")))
    await h.flow.run(new, correlation_id=None)
    sale = executed_authorization(idempotency_key(new.transaction_id, "sale"), operation="sale")
    h.bank.executed.append(sale)
    again = await h.flow.run(new, correlation_id=None)
    assert again.payment is not None
    assert (again.payment.status, again.payment.captured_minor) == (S.CAPTURED, 10_000)
    assert h.operations() == ["sale", "inquire"]
    assert h.events() == [E.AUTHORIZATION_UNKNOWN, E.SALE_APPROVED]


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
    assert not {"authorize", "sale"} & set(h.operations())


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
