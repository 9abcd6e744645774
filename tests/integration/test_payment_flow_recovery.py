"""PaymentFlow recovery against the real bank simulator, PostgreSQL and Redis.

These are the redelivery cases a crash leaves behind: the bank already answered a request the
database never recorded. The flow must find that answer, never charge again.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import aiohttp
import asyncpg
import pytest
from redis.asyncio import Redis

from payment_service.bank.client import HttpBankClient
from payment_service.bank.simulator.control import SimulatorControl
from payment_service.config.settings import BankSettings
from payment_service.core.ids import idempotency_key
from payment_service.core.masking import CardNumber, SecurityCode
from payment_service.core.records import NewPayment, NewRefund
from payment_service.core.states import PaymentStatus, RefundStatus
from payment_service.storage.payments import PgPaymentRepository
from payment_service.storage.refunds import PgRefundRepository
from payment_service.streams.payments import PaymentFlow
from payment_service.streams.refunds import RefundFlow
from tests.fixtures.custody import Custody
from tests.fixtures.postgres import new_payment
from tests.fixtures.stack import free_ports

pytestmark = pytest.mark.integration

CARD = CardNumber("4242424242424242")


@pytest.fixture
def ring() -> Custody:
    return Custody()


@pytest.fixture
async def bank(bank_sim_url: str) -> AsyncIterator[HttpBankClient]:
    client = HttpBankClient(BankSettings(url=bank_sim_url, max_attempts=2))
    yield client
    await client.close()


@pytest.fixture
def flow(pg_pool: asyncpg.Pool, bank: HttpBankClient, redis: Redis, ring: Custody) -> PaymentFlow:
    return PaymentFlow(PgPaymentRepository(pg_pool), bank, ring.vault(redis), ring.cards(pg_pool))


async def _ledger(url: str, reference: str) -> list[dict[str, Any]]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{url}/sim/ledger", params={"reference": reference}) as resp,
    ):
        return list((await resp.json())["entries"])


def _command(ring: Custody) -> NewPayment:
    cmd = new_payment()
    return replace(cmd, number_envelope=ring.sealer.seal_card_number(CARD, cmd.transaction_id))


def _unreachable_bank() -> HttpBankClient:
    (port,) = free_ports(1)  # nothing listens there: every call is "not sent"
    # A short not-sent budget: an outage longer than it, so the client gives up quickly.
    settings = BankSettings(
        url=f"http://127.0.0.1:{port}", max_attempts=1, not_sent_budget_seconds=0.5
    )
    return HttpBankClient(settings)


async def _sell_directly(bank: HttpBankClient, cmd: NewPayment) -> None:
    """What an earlier delivery did before it died: the bank approved our sale."""
    assert cmd.card is not None
    result = await bank.sale(
        reference=cmd.transaction_id,
        idempotency_key=idempotency_key(cmd.transaction_id, "sale"),
        amount_minor=cmd.amount_minor,
        currency=cmd.currency,
        card_number=CARD,
        security_code=SecurityCode("123"),
        expiry_month=cmd.card.expiry_month,
        expiry_year=cmd.card.expiry_year,
        holder_name=cmd.card.holder_name,
    )
    assert result.approved


def _impatient_bank(url: str) -> HttpBankClient:
    """A client that gives up fast and never opens its breaker: for outcome-unknown faults."""
    settings = BankSettings(
        url=url, max_attempts=1, read_timeout_seconds=0.3, total_timeout_seconds=0.5,
        breaker_fail_max=100,
    )  # fmt: skip
    return HttpBankClient(settings)


async def test_redelivery_after_bank_approved_resumes_and_charges_once(
    flow: PaymentFlow, bank: HttpBankClient, redis: Redis, ring: Custody, bank_sim_url: str
) -> None:
    cmd = _command(ring)
    vault = ring.vault(redis)
    await vault.put(cmd.transaction_id, SecurityCode("123"))
    # An earlier delivery sold at the bank, then died before the database write.
    await _sell_directly(bank, cmd)

    outcome = await flow.run(cmd, correlation_id="c-1")
    assert outcome.payment is not None
    assert outcome.payment.status == PaymentStatus.CAPTURED
    assert not await redis.exists(f"cvv:{cmd.transaction_id}")
    entries = await _ledger(bank_sim_url, cmd.transaction_id)
    assert [e["operation"] for e in entries] == ["sale"]


async def test_security_code_gone_earlier_sale_found_by_inquiry(
    flow: PaymentFlow, bank: HttpBankClient, ring: Custody, bank_sim_url: str
) -> None:
    cmd = _command(ring)
    await _sell_directly(bank, cmd)
    # The code has expired from the vault: the retried request differs, the bank refuses the key
    # reuse, and the flow must take the earlier approval instead of failing or charging again.
    outcome = await flow.run(cmd, correlation_id="c-2")
    assert outcome.payment is not None
    assert outcome.payment.status == PaymentStatus.CAPTURED
    entries = await _ledger(bank_sim_url, cmd.transaction_id)
    assert [e["operation"] for e in entries if e["outcome"] == "approved"] == ["sale"]


async def test_replayed_settled_payment_changes_nothing(
    flow: PaymentFlow, ring: Custody, bank_sim_url: str
) -> None:
    cmd = _command(ring)
    first = await flow.run(cmd, correlation_id="c-3")
    again = await flow.run(cmd, correlation_id="c-3")
    assert first.payment is not None
    assert again.payment is not None
    assert again.payment.status == first.payment.status == PaymentStatus.CAPTURED
    assert again.payment.updated_at == first.payment.updated_at
    assert len(await _ledger(bank_sim_url, cmd.transaction_id)) == 1  # one sale


async def test_unknown_outcome_is_settled_by_the_reconciler(
    pg_pool: asyncpg.Pool, redis: Redis, ring: Custody, bank_sim_url: str
) -> None:
    client = _impatient_bank(bank_sim_url)
    vault = ring.vault(redis)
    repo = PgPaymentRepository(pg_pool)
    flow = PaymentFlow(repo, client, vault, ring.cards(pg_pool))
    cmd = _command(ring)
    await vault.put(cmd.transaction_id, SecurityCode("123"))
    refs = [cmd.transaction_id]
    async with SimulatorControl(bank_sim_url) as control:
        # The bank sells, but neither its answer nor a status inquiry gets back to us.
        hang = await control.add_fault(
            "hang_after_commit", operations=["sale"], references=refs, delay_ms=5000
        )
        dark = await control.add_fault(
            "error_before_commit", operations=["inquiry"], references=refs
        )
        try:
            outcome = await flow.run(cmd, correlation_id="c-4")
        finally:
            await control.remove_fault(hang)
            await control.remove_fault(dark)
    assert outcome.payment is not None
    assert outcome.payment.status == PaymentStatus.UNKNOWN  # never "failed": it may have charged
    settled = await flow.reconcile(outcome.payment, give_up_after=dt.timedelta(hours=1))
    await client.close()
    assert settled.status == PaymentStatus.CAPTURED
    entries = await _ledger(bank_sim_url, cmd.transaction_id)
    assert [e["operation"] for e in entries if e["outcome"] == "approved"] == ["sale"]


async def test_reconciler_fails_a_payment_the_bank_never_saw_only_after_give_up(
    flow: PaymentFlow, pg_pool: asyncpg.Pool, ring: Custody, bank_sim_url: str
) -> None:
    repo = PgPaymentRepository(pg_pool)
    cmd = _command(ring)
    claim = await repo.claim_payment(cmd, correlation_id=None)  # a delivery died right after
    young = await flow.reconcile(claim.payment, give_up_after=dt.timedelta(hours=1))
    assert young.status == PaymentStatus.PROCESSING
    old = await flow.reconcile(claim.payment, give_up_after=dt.timedelta(0))
    assert old.status == PaymentStatus.FAILED
    assert old.failure_code == "not_processed_by_bank"
    assert await _ledger(bank_sim_url, cmd.transaction_id) == []


async def test_refund_with_unknown_outcome_stays_reserved_then_reconciles(
    flow: PaymentFlow, pg_pool: asyncpg.Pool, ring: Custody, bank_sim_url: str
) -> None:
    cmd = _command(ring)
    paid = await flow.run(cmd, correlation_id=None)
    assert paid.payment is not None
    assert paid.payment.status == PaymentStatus.CAPTURED
    client = _impatient_bank(bank_sim_url)
    repo = PgRefundRepository(pg_pool)
    refunds = RefundFlow(repo, client)
    refund_cmd = NewRefund(
        refund_id=f"rf-{cmd.transaction_id}",
        transaction_id=cmd.transaction_id,
        merchant_id=cmd.merchant_id,
        amount_minor=4000,
    )
    refs = [cmd.transaction_id]
    async with SimulatorControl(bank_sim_url) as control:
        hang = await control.add_fault(
            "hang_after_commit", operations=["refund"], references=refs, delay_ms=5000
        )
        dark = await control.add_fault(
            "error_before_commit", operations=["inquiry"], references=refs
        )
        try:
            pending = await refunds.run(refund_cmd, correlation_id=None)
        finally:
            await control.remove_fault(hang)
            await control.remove_fault(dark)
    assert pending.refund is not None
    assert pending.refund.status == RefundStatus.PROCESSING  # never "completed" without knowing
    settled = await refunds.reconcile(pending.refund, give_up_after=dt.timedelta(hours=1))
    await client.close()
    assert settled.refund is not None
    assert settled.refund.status == RefundStatus.COMPLETED
    assert settled.payment is not None
    assert settled.payment.refunded_minor == 4000
    entries = await _ledger(bank_sim_url, cmd.transaction_id)
    assert len([e for e in entries if e["operation"] == "refund"]) == 1


async def test_redelivery_that_cannot_reach_the_bank_is_unknown_not_failed(
    pg_pool: asyncpg.Pool, redis: Redis, ring: Custody, bank: HttpBankClient, bank_sim_url: str
) -> None:
    repo = PgPaymentRepository(pg_pool)
    vault = ring.vault(redis)
    cmd = _command(ring)
    await vault.put(cmd.transaction_id, SecurityCode("123"))
    await repo.claim_payment(cmd, correlation_id=None)  # the first delivery claimed it...
    await _sell_directly(bank, cmd)  # ...the bank approved, then the process died
    unreachable = _unreachable_bank()
    outcome = await PaymentFlow(repo, unreachable, vault, ring.cards(pg_pool)).run(
        cmd, correlation_id=None
    )
    await unreachable.close()
    assert outcome.payment is not None
    assert outcome.payment.status == PaymentStatus.UNKNOWN  # may have charged: never "failed"
    settled = await PaymentFlow(repo, bank, vault, ring.cards(pg_pool)).reconcile(
        outcome.payment, give_up_after=dt.timedelta(hours=1)
    )
    assert settled.status == PaymentStatus.CAPTURED
    entries = await _ledger(bank_sim_url, cmd.transaction_id)
    assert [e["operation"] for e in entries if e["outcome"] == "approved"] == ["sale"]


async def test_first_delivery_that_cannot_reach_the_bank_fails_as_not_charged(
    pg_pool: asyncpg.Pool, redis: Redis, ring: Custody, bank_sim_url: str
) -> None:
    vault = ring.vault(redis)
    cmd = _command(ring)
    await vault.put(cmd.transaction_id, SecurityCode("123"))
    unreachable = _unreachable_bank()
    flow = PaymentFlow(PgPaymentRepository(pg_pool), unreachable, vault, ring.cards(pg_pool))
    outcome = await flow.run(cmd, correlation_id=None)
    await unreachable.close()
    assert outcome.payment is not None
    assert outcome.payment.status == PaymentStatus.FAILED
    assert outcome.payment.failure_code == "bank_unavailable"
    assert await _ledger(bank_sim_url, cmd.transaction_id) == []


async def test_expired_security_code_fails_before_the_bank_is_asked(
    flow: PaymentFlow, ring: Custody, bank_sim_url: str
) -> None:
    cmd = replace(_command(ring), security_code_in_vault=True)  # but it is gone
    outcome = await flow.run(cmd, correlation_id=None)
    assert outcome.payment is not None
    assert outcome.payment.failure_code == "security_code_expired"
    assert await _ledger(bank_sim_url, cmd.transaction_id) == []


async def test_refund_redelivery_that_cannot_reach_the_bank_stays_reserved(
    flow: PaymentFlow, pg_pool: asyncpg.Pool, ring: Custody, bank: HttpBankClient, bank_sim_url: str
) -> None:
    cmd = _command(ring)
    paid = await flow.run(cmd, correlation_id=None)
    assert paid.payment is not None
    repo = PgRefundRepository(pg_pool)
    half = cmd.amount_minor // 2
    first = NewRefund(
        refund_id=f"rf-{cmd.transaction_id}",
        transaction_id=cmd.transaction_id,
        merchant_id=cmd.merchant_id,
        amount_minor=half,
    )
    reserved = await repo.reserve_refund(first, correlation_id=None)
    refunded = await bank.refund(  # an earlier delivery refunded at the bank, then died
        reference=cmd.transaction_id,
        refund_reference=first.refund_id,
        idempotency_key=idempotency_key(first.refund_id, "refund"),
        amount_minor=half,
        currency=cmd.currency,
    )
    assert refunded.approved
    unreachable = _unreachable_bank()
    redelivered = await RefundFlow(repo, unreachable).run(first, correlation_id=None)
    await unreachable.close()
    assert redelivered.refund is not None
    assert (
        redelivered.refund.status == RefundStatus.PROCESSING
    )  # still reserved: never released blindly
    # So a refund of the other half plus one minor unit is refused: the first half is held.
    greedy = NewRefund(
        refund_id=f"rf2-{cmd.transaction_id}",
        transaction_id=cmd.transaction_id,
        merchant_id=cmd.merchant_id,
        amount_minor=cmd.amount_minor - half + 1,
    )
    refused = await RefundFlow(repo, bank).run(greedy, correlation_id=None)
    assert refused.error_code == "refund_exceeds_remaining"
    settled = await RefundFlow(repo, bank).reconcile(
        reserved.refund, give_up_after=dt.timedelta(hours=1)
    )
    assert settled.refund is not None
    assert settled.refund.status == RefundStatus.COMPLETED
    entries = await _ledger(bank_sim_url, cmd.transaction_id)
    assert sum(e["amount_minor"] for e in entries if e["operation"] == "refund") == half
