"""PgRefundRepository against a real PostgreSQL: refunds never exceed what was captured."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

import asyncpg
import pytest

from payment_service.core.errors import (
    IdempotencyConflict,
    NotFound,
    PaymentNotRefundable,
    RefundExceedsRemaining,
    TransitionConflict,
)
from payment_service.core.records import NewRefund, PaymentRecord, RefundReservation
from payment_service.core.states import PaymentEvent, PaymentStatus, RefundStatus
from payment_service.schemas.views import payment_view, refund_view
from payment_service.storage.payments import PgPaymentRepository
from payment_service.storage.refunds import PgRefundRepository
from tests.fixtures.postgres import new_id, new_payment

pytestmark = pytest.mark.integration
S = PaymentStatus


@pytest.fixture
def payments(pg_pool: asyncpg.Pool) -> PgPaymentRepository:
    return PgPaymentRepository(pg_pool)


@pytest.fixture
def refunds(pg_pool: asyncpg.Pool) -> PgRefundRepository:
    return PgRefundRepository(pg_pool)


async def _captured(payments: PgPaymentRepository, amount_minor: int = 10_000) -> PaymentRecord:
    cmd = new_payment(amount_minor=amount_minor)
    tid = (await payments.claim_payment(cmd, correlation_id=None)).payment.transaction_id
    await payments.mark_authorized(
        tid, expected=S.PROCESSING, authorization_id="auth", correlation_id=None
    )
    return await payments.mark_captured(
        tid, expected=S.AUTHORIZED, captured_minor=amount_minor, correlation_id=None
    )


def _refund(payment: PaymentRecord, amount_minor: int | None, **extra: Any) -> NewRefund:
    return NewRefund(
        refund_id=new_id("re"),
        transaction_id=payment.transaction_id,
        merchant_id=payment.merchant_id,
        amount_minor=amount_minor,
        **extra,
    )


async def _settle(refunds: PgRefundRepository, cmd: NewRefund) -> PaymentRecord:
    await refunds.reserve_refund(cmd, correlation_id=None)
    _, payment = await refunds.complete_refund(
        cmd.refund_id, bank_refund_id="bank_" + cmd.refund_id, correlation_id=None
    )
    return payment


async def test_partial_then_the_rest_then_nothing_more(
    payments: PgPaymentRepository, refunds: PgRefundRepository, pg_pool: asyncpg.Pool
) -> None:
    payment = await _captured(payments)
    first = _refund(payment, 3_000, reason="requested_by_customer")
    reservation = await refunds.reserve_refund(first, correlation_id="c1")
    assert reservation.created
    assert (reservation.refund.status, reservation.refund.amount_minor) == (
        RefundStatus.PROCESSING,
        3_000,
    )
    refund, after_first = await refunds.complete_refund(
        first.refund_id, bank_refund_id="bank_1", correlation_id="c2"
    )
    assert (refund.status, refund.bank_refund_id) == (RefundStatus.COMPLETED, "bank_1")
    assert (after_first.status, after_first.refunded_minor) == (S.PARTIALLY_REFUNDED, 3_000)

    rest = await refunds.reserve_refund(_refund(payment, None), correlation_id=None)
    assert rest.refund.amount_minor == 7_000
    _, after_rest = await refunds.complete_refund(
        rest.refund.refund_id, bank_refund_id="bank_2", correlation_id=None
    )
    assert (after_rest.status, after_rest.refunded_minor) == (S.REFUNDED, 10_000)
    assert [r.amount_minor for r in after_rest.refunds] == [3_000, 7_000]
    view = payment_view(after_rest)
    assert (view.refunded_amount, [r.amount for r in view.refunds]) == (
        "100.00",
        ["30.00", "70.00"],
    )

    for amount in (None, 1):
        with pytest.raises(PaymentNotRefundable, match="already fully refunded"):
            await refunds.reserve_refund(_refund(payment, amount), correlation_id=None)
    actions = await pg_pool.fetch(
        "SELECT action FROM audit_log WHERE transaction_id = $1 ORDER BY id",
        payment.transaction_id,
    )
    assert [a["action"] for a in actions][-6:] == [
        "refund.requested",
        "refund.completed",
        "payment.partially_refunded",
        "refund.requested",
        "refund.completed",
        "payment.refunded",
    ]


async def test_refunds_in_flight_are_reserved_and_a_failure_releases_them(
    payments: PgPaymentRepository, refunds: PgRefundRepository
) -> None:
    payment = await _captured(payments)
    held = await refunds.reserve_refund(_refund(payment, 6_000), correlation_id=None)
    with pytest.raises(RefundExceedsRemaining, match=r"40\.00 USD") as caught:
        await refunds.reserve_refund(_refund(payment, 5_000), correlation_id=None)
    assert caught.value.param == "amount"
    rest = await refunds.reserve_refund(_refund(payment, None), correlation_id=None)
    assert rest.refund.amount_minor == 4_000
    with pytest.raises(RefundExceedsRemaining, match=r"0\.00 USD"):
        await refunds.reserve_refund(_refund(payment, None), correlation_id=None)
    failed = await refunds.fail_refund(
        held.refund.refund_id,
        failure_code="bank_refused",
        failure_message="refused",
        correlation_id=None,
    )
    assert failed.status == RefundStatus.FAILED
    again = await refunds.reserve_refund(_refund(payment, 6_000), correlation_id=None)
    assert again.created


async def test_two_concurrent_refunds_of_sixty_percent_reserve_exactly_one(
    payments: PgPaymentRepository, refunds: PgRefundRepository, pg_pool: asyncpg.Pool
) -> None:
    for _ in range(5):
        payment = await _captured(payments)
        results = await asyncio.gather(
            refunds.reserve_refund(_refund(payment, 6_000), correlation_id=None),
            refunds.reserve_refund(_refund(payment, 6_000), correlation_id=None),
            return_exceptions=True,
        )
        reserved = [r for r in results if isinstance(r, RefundReservation)]
        refused = [r for r in results if isinstance(r, RefundExceedsRemaining)]
        assert (len(reserved), len(refused)) == (1, 1), results
        total = await pg_pool.fetchval(
            "SELECT sum(amount_minor) FROM refunds WHERE transaction_id = $1",
            payment.transaction_id,
        )
        assert total == 6_000


async def test_the_database_refuses_refunded_above_captured(
    payments: PgPaymentRepository, pg_pool: asyncpg.Pool
) -> None:
    payment = await _captured(payments)
    with pytest.raises(asyncpg.CheckViolationError, match="refunded_le_captured"):
        await pg_pool.execute(
            "UPDATE transactions SET refunded_minor = captured_minor + 1 WHERE transaction_id = $1",
            payment.transaction_id,
        )


async def test_a_redelivered_reservation_returns_the_first(
    payments: PgPaymentRepository, refunds: PgRefundRepository
) -> None:
    payment = await _captured(payments)
    cmd = _refund(payment, 2_500, idempotency_key=new_id("key"), request_hash="h1")
    first = await refunds.reserve_refund(cmd, correlation_id=None)
    second = await refunds.reserve_refund(cmd, correlation_id=None)
    assert (first.created, second.created) == (True, False)
    assert second.refund == first.refund
    other_body = replace(cmd, refund_id=new_id("re"), request_hash="h2")
    with pytest.raises(IdempotencyConflict):
        await refunds.reserve_refund(other_body, correlation_id=None)
    reused_id = replace(cmd, idempotency_key=None, amount_minor=100)
    with pytest.raises(IdempotencyConflict):
        await refunds.reserve_refund(reused_id, correlation_id=None)


async def test_completing_twice_or_after_failure_is_a_conflict_and_changes_nothing(
    payments: PgPaymentRepository, refunds: PgRefundRepository
) -> None:
    payment = await _captured(payments)
    done = _refund(payment, 1_000)
    after = await _settle(refunds, done)
    with pytest.raises(TransitionConflict) as caught:
        await refunds.complete_refund(done.refund_id, bank_refund_id="again", correlation_id=None)
    assert caught.value.current_status == "completed"
    with pytest.raises(TransitionConflict):
        await refunds.fail_refund(
            done.refund_id, failure_code="x", failure_message=None, correlation_id=None
        )
    assert await payments.get_payment(payment.transaction_id) == after

    failed = _refund(payment, 1_000)
    await refunds.reserve_refund(failed, correlation_id=None)
    await refunds.fail_refund(
        failed.refund_id, failure_code="x", failure_message=None, correlation_id=None
    )
    with pytest.raises(TransitionConflict) as caught:
        await refunds.complete_refund(failed.refund_id, bank_refund_id="b", correlation_id=None)
    assert caught.value.current_status == "failed"
    current = await payments.get_payment(payment.transaction_id)
    assert current is not None
    assert current.refunded_minor == 1_000
    with pytest.raises(TransitionConflict) as caught:
        await refunds.complete_refund(new_id("re"), bank_refund_id="b", correlation_id=None)
    assert caught.value.current_status is None


@pytest.mark.parametrize("status", [S.PROCESSING, S.AUTHORIZED, S.FAILED])
async def test_a_payment_that_was_not_captured_is_not_refundable(
    payments: PgPaymentRepository, refunds: PgRefundRepository, status: PaymentStatus
) -> None:
    payment = (await payments.claim_payment(new_payment(), correlation_id=None)).payment
    tid = payment.transaction_id
    if status == S.AUTHORIZED:
        await payments.mark_authorized(
            tid, expected=S.PROCESSING, authorization_id="a", correlation_id=None
        )
    if status == S.FAILED:
        await payments.mark_failed(
            tid,
            expected=S.PROCESSING,
            event=PaymentEvent.AUTHORIZATION_DECLINED,
            failure_code="card_declined",
            decline_code=None,
            failure_message=None,
            correlation_id=None,
        )
    with pytest.raises(PaymentNotRefundable):
        await refunds.reserve_refund(_refund(payment, None), correlation_id=None)


async def test_another_merchants_or_a_missing_payment_is_not_found(
    payments: PgPaymentRepository, refunds: PgRefundRepository
) -> None:
    payment = await _captured(payments)
    stolen = replace(_refund(payment, 100), merchant_id="intruder")
    with pytest.raises(NotFound):
        await refunds.reserve_refund(stolen, correlation_id=None)
    missing = replace(_refund(payment, 100), transaction_id=new_id("txn"))
    with pytest.raises(NotFound):
        await refunds.reserve_refund(missing, correlation_id=None)


async def test_reads_are_scoped_to_the_merchant(
    payments: PgPaymentRepository, refunds: PgRefundRepository
) -> None:
    payment = await _captured(payments)
    cmd = _refund(payment, 500, metadata={"ticket": "7"})
    reserved = (await refunds.reserve_refund(cmd, correlation_id=None)).refund
    assert reserved.metadata == {"ticket": "7"}
    assert await refunds.get_refund(cmd.refund_id) == reserved
    assert await refunds.get_refund(cmd.refund_id, merchant_id="intruder") is None
    listed = await payments.get_payment(payment.transaction_id, merchant_id=payment.merchant_id)
    assert listed is not None
    assert listed.refunds == (reserved,)
    assert await payments.get_payment(payment.transaction_id, merchant_id="intruder") is None
    assert refund_view(reserved).amount == "5.00"
