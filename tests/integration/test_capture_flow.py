"""Manual capture against the real bank simulator, PostgreSQL and Redis: capture (all or part),
void, their repeats, a lost bank answer, and the late hold the reconciler's give-up leaves.

Each outcome is checked against the bank's own record (its inquiry: holds, captured and
released totals; its ledger: one entry per idempotency key).
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
from payment_service.core.records import CaptureRequest, NewPayment, PaymentRecord
from payment_service.core.states import PaymentStatus
from payment_service.storage.captures import PgCaptureRepository
from payment_service.storage.payments import PgPaymentRepository
from payment_service.streams.captures import CaptureFlow
from payment_service.streams.payments import PaymentFlow
from payment_service.streams.recorder import PaymentRecorder
from tests.fixtures.custody import Custody
from tests.fixtures.postgres import new_payment

pytestmark = pytest.mark.integration
S = PaymentStatus
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


def _captures(pool: asyncpg.Pool, bank: HttpBankClient) -> CaptureFlow:
    payments = PgPaymentRepository(pool)
    return CaptureFlow(PgCaptureRepository(pool), payments, bank, PaymentRecorder(payments))


@pytest.fixture
def captures(pg_pool: asyncpg.Pool, bank: HttpBankClient) -> CaptureFlow:
    return _captures(pg_pool, bank)


async def _ledger(url: str, reference: str) -> list[dict[str, Any]]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{url}/sim/ledger", params={"reference": reference}) as resp,
    ):
        return list((await resp.json())["entries"])


def _command(ring: Custody, **changes: Any) -> NewPayment:
    cmd = new_payment(capture_method="manual", **changes)
    return replace(cmd, number_envelope=ring.sealer.seal_card_number(CARD, cmd.transaction_id))


async def _held(flow: PaymentFlow, ring: Custody, redis: Redis) -> PaymentRecord:
    cmd = _command(ring)
    await ring.vault(redis).put(cmd.transaction_id, SecurityCode("123"))
    outcome = await flow.run(cmd, correlation_id="c")
    assert outcome.payment is not None
    assert outcome.payment.status == S.REQUIRES_CAPTURE
    return outcome.payment


def _ask(payment: PaymentRecord, **changes: Any) -> CaptureRequest:
    return CaptureRequest(payment.transaction_id, payment.merchant_id, **changes)


async def _audit(pool: asyncpg.Pool, txn: str) -> list[tuple[str | None, str | None]]:
    rows = await pool.fetch(
        "SELECT from_status, to_status FROM audit_log WHERE transaction_id = $1 ORDER BY id", txn
    )
    return [(r["from_status"], r["to_status"]) for r in rows]


async def test_manual_capture_holds_then_captures_all_once(
    flow: PaymentFlow,
    captures: CaptureFlow,
    bank: HttpBankClient,
    ring: Custody,
    redis: Redis,
    pg_pool: asyncpg.Pool,
    bank_sim_url: str,
) -> None:
    held = await _held(flow, ring, redis)
    inquiry = await bank.inquire(held.transaction_id)
    assert [(h.status, h.amount_minor) for h in inquiry.authorizations] == [("open", 10_000)]
    assert not await redis.exists(f"cvv:{held.transaction_id}")  # answered for good

    done = await captures.capture(_ask(held, idempotency_key="cap-1"), correlation_id="c")
    assert done.payment is not None
    assert (done.payment.status, done.payment.captured_minor) == (S.CAPTURED, 10_000)
    # The same request again (a redelivery or a retry) answers the capture; nothing moves.
    again = await captures.capture(_ask(held, idempotency_key="cap-1"), correlation_id="c")
    assert again.payment is not None
    assert again.payment.status == S.CAPTURED
    assert again.payment.updated_at == done.payment.updated_at
    other = await captures.capture(_ask(held, amount_minor=5), correlation_id="c")
    assert (other.payment, other.error_code) == (None, "payment_not_capturable")

    inquiry = await bank.inquire(held.transaction_id)
    assert (inquiry.captured_minor, inquiry.released_minor) == (10_000, 0)
    entries = await _ledger(bank_sim_url, held.transaction_id)
    assert [(e["operation"], e["outcome"]) for e in entries] == [
        ("authorize", "approved"),
        ("capture", "approved"),
    ]
    assert entries[1]["idempotency_key"] == idempotency_key(held.transaction_id, "capture")
    assert await _audit(pg_pool, held.transaction_id) == [
        (None, "processing"),
        ("processing", "requires_capture"),
        ("requires_capture", "capturing"),
        ("capturing", "captured"),
    ]


async def test_partial_capture_releases_the_rest_at_the_bank(
    flow: PaymentFlow, captures: CaptureFlow, bank: HttpBankClient, ring: Custody, redis: Redis
) -> None:
    held = await _held(flow, ring, redis)
    done = await captures.capture(_ask(held, amount_minor=4_000), correlation_id=None)
    assert done.payment is not None
    assert (done.payment.status, done.payment.captured_minor) == (S.CAPTURED, 4_000)
    inquiry = await bank.inquire(held.transaction_id)
    assert (inquiry.captured_minor, inquiry.released_minor) == (4_000, 6_000)
    assert [h.status for h in inquiry.authorizations] == ["captured"]


async def test_capture_above_the_hold_is_refused_with_no_bank_call(
    flow: PaymentFlow, captures: CaptureFlow, ring: Custody, redis: Redis, bank_sim_url: str
) -> None:
    held = await _held(flow, ring, redis)
    refused = await captures.capture(_ask(held, amount_minor=10_001), correlation_id=None)
    assert (refused.payment, refused.error_code) == (None, "capture_exceeds_authorized")
    entries = await _ledger(bank_sim_url, held.transaction_id)
    assert [e["operation"] for e in entries] == ["authorize"]


async def test_cancel_voids_the_hold_once(
    flow: PaymentFlow,
    captures: CaptureFlow,
    bank: HttpBankClient,
    ring: Custody,
    redis: Redis,
    bank_sim_url: str,
) -> None:
    held = await _held(flow, ring, redis)
    ask = _ask(held, cancellation_reason="requested_by_customer")
    done = await captures.cancel(ask, correlation_id=None)
    assert done.payment is not None
    assert (done.payment.status, done.payment.cancellation_reason) == (
        S.CANCELED,
        "requested_by_customer",
    )
    again = await captures.cancel(ask, correlation_id=None)
    assert again.payment is not None
    assert again.payment.status == S.CANCELED
    late = await captures.capture(_ask(held), correlation_id=None)
    assert late.error_code == "payment_not_capturable"
    inquiry = await bank.inquire(held.transaction_id)
    assert (inquiry.captured_minor, inquiry.released_minor) == (0, 10_000)
    assert [h.status for h in inquiry.authorizations] == ["voided"]
    entries = await _ledger(bank_sim_url, held.transaction_id)
    assert [e["operation"] for e in entries] == ["authorize", "void"]


async def test_another_merchant_cannot_capture_or_cancel(
    flow: PaymentFlow, captures: CaptureFlow, ring: Custody, redis: Redis, bank_sim_url: str
) -> None:
    held = await _held(flow, ring, redis)
    for call in (captures.capture, captures.cancel):
        outcome = await call(replace(_ask(held), merchant_id="someone_else"), None)
        assert (outcome.payment, outcome.error_code) == (None, "resource_missing")
    assert [e["operation"] for e in await _ledger(bank_sim_url, held.transaction_id)] == [
        "authorize"
    ]


async def test_a_lost_capture_answer_stays_capturing_then_is_repeated_under_its_key(
    flow: PaymentFlow,
    pg_pool: asyncpg.Pool,
    bank: HttpBankClient,
    ring: Custody,
    redis: Redis,
    bank_sim_url: str,
) -> None:
    held = await _held(flow, ring, redis)
    impatient = HttpBankClient(
        BankSettings(url=bank_sim_url, max_attempts=1, read_timeout_seconds=0.3,
                     total_timeout_seconds=0.5, breaker_fail_max=100)
    )  # fmt: skip
    refs = [held.transaction_id]
    async with SimulatorControl(bank_sim_url) as control:
        # The bank captures, but neither its answer nor a status inquiry gets back to us.
        hang = await control.add_fault(
            "hang_after_commit", operations=["capture"], references=refs, delay_ms=5000
        )
        dark = await control.add_fault("error_before_commit", operations=["inquiry"],
                                       references=refs)  # fmt: skip
        try:
            pending = await _captures(pg_pool, impatient).capture(
                _ask(held, amount_minor=2_500), correlation_id=None
            )
        finally:
            await control.remove_fault(hang)
            await control.remove_fault(dark)
            await impatient.close()
    assert pending.payment is not None
    assert (pending.payment.status, pending.final) == (S.CAPTURING, False)  # never "failed"
    assert pending.payment.capture_requested_minor == 2_500
    # The reconciler's (or a redelivery's) repeat: the same amount under the same key.
    settled = await _captures(pg_pool, bank).finish(pending.payment, None)
    assert (settled.status, settled.captured_minor) == (S.CAPTURED, 2_500)
    entries = await _ledger(bank_sim_url, held.transaction_id)
    assert [e["operation"] for e in entries] == ["authorize", "capture"]  # one capture
    inquiry = await bank.inquire(held.transaction_id)
    assert (inquiry.captured_minor, inquiry.released_minor) == (2_500, 7_500)


async def test_a_late_hold_of_a_given_up_payment_is_voided(
    flow: PaymentFlow,
    captures: CaptureFlow,
    pg_pool: asyncpg.Pool,
    bank: HttpBankClient,
    ring: Custody,
    bank_sim_url: str,
) -> None:
    repo = PgPaymentRepository(pg_pool)
    cmd = _command(ring)
    claim = await repo.claim_payment(cmd, correlation_id=None)
    failed = await flow.reconcile(claim.payment, give_up_after=dt.timedelta(0))
    assert (failed.status, failed.failure_code) == (S.FAILED, "not_processed_by_bank")
    assert cmd.card is not None
    late = await bank.authorize(  # a redelivery's authorization reaches the bank just after
        reference=cmd.transaction_id,
        idempotency_key=idempotency_key(cmd.transaction_id, "authorize"),
        amount_minor=cmd.amount_minor, currency=cmd.currency, card_number=CARD,
        security_code=None, expiry_month=cmd.card.expiry_month,
        expiry_year=cmd.card.expiry_year, holder_name=cmd.card.holder_name,
    )  # fmt: skip
    assert late.approved
    repo_captures = PgCaptureRepository(pg_pool)
    unchecked = await repo_captures.find_unchecked_give_ups(dt.timedelta(0), 1000)
    assert cmd.transaction_id in {p.transaction_id for p in unchecked}
    released = await captures.release_late_hold(failed)
    assert released == (late.authorization_id,)
    await repo_captures.record_hold_check(cmd.transaction_id, voided=released, correlation_id=None)
    unchecked = await repo_captures.find_unchecked_give_ups(dt.timedelta(0), 1000)
    assert cmd.transaction_id not in {p.transaction_id for p in unchecked}
    inquiry = await bank.inquire(cmd.transaction_id)
    assert [h.status for h in inquiry.authorizations] == ["voided"]
    action = await pg_pool.fetchval(
        "SELECT action FROM audit_log WHERE transaction_id = $1 ORDER BY id DESC LIMIT 1",
        cmd.transaction_id,
    )
    assert action == "payment.hold_released"
    stored = await repo.get_payment(cmd.transaction_id)
    assert stored is not None
    assert stored.status == S.FAILED  # the payment's answer stands; only the hold is released


async def test_expired_holds_are_found_by_authorization_time(
    flow: PaymentFlow, pg_pool: asyncpg.Pool, ring: Custody, redis: Redis
) -> None:
    held = await _held(flow, ring, redis)
    repo = PgCaptureRepository(pg_pool)
    young = await repo.find_expired_holds(dt.timedelta(days=7), 1000)
    assert held.transaction_id not in {p.transaction_id for p in young}
    old = await repo.find_expired_holds(dt.timedelta(0), 1000)
    assert held.transaction_id in {p.transaction_id for p in old}
