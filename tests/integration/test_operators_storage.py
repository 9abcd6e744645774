"""Durable refusals and the tamper-evident audit log, against a real PostgreSQL (issue 12).

- A refused refund is recorded with the decision: after the in-flight refund that made it
  exceed has failed, a redelivery of the refused command is refused again, the same way.
- The runtime role may only insert into and read `audit_log`; the owner can tamper, and the
  recomputed chain names exactly the payment whose row was edited.
"""

from __future__ import annotations

import asyncpg
import pytest

from payment_service.core.errors import RefundExceedsRemaining
from payment_service.core.records import NewRefund, PaymentRecord, RecordedRefusal
from payment_service.core.states import PaymentStatus
from payment_service.operators.chain import SELECT_CHAIN, check_chain
from payment_service.storage.payments import PgPaymentRepository
from payment_service.storage.refunds import PgRefundRepository
from tests.fixtures.postgres import new_id, new_payment
from tests.fixtures.stack import StackInfo

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


def _refund(payment: PaymentRecord, amount_minor: int) -> NewRefund:
    return NewRefund(
        refund_id=new_id("re"),
        transaction_id=payment.transaction_id,
        merchant_id=payment.merchant_id,
        amount_minor=amount_minor,
        request_hash="hash-" + new_id("h"),
    )


async def test_a_refused_refund_stays_refused_after_the_in_flight_one_fails(
    payments: PgPaymentRepository, refunds: PgRefundRepository, pg_pool: asyncpg.Pool
) -> None:
    payment = await _captured(payments)
    in_flight = _refund(payment, 10_000)
    await refunds.reserve_refund(in_flight, correlation_id=None)
    refused = _refund(payment, 5_000)
    with pytest.raises(RefundExceedsRemaining) as first:
        await refunds.reserve_refund(refused, correlation_id="c-refused")
    row = await pg_pool.fetchrow(
        "SELECT kind, code, transaction_id FROM refusals WHERE command_id = $1", refused.refund_id
    )
    assert row is not None
    assert dict(row) == {
        "kind": "refund",
        "code": "refund_exceeds_remaining",
        "transaction_id": payment.transaction_id,
    }
    # The earlier refund fails: 100.00 is refundable again, but the refused command was answered.
    await refunds.fail_refund(
        in_flight.refund_id, failure_code="refund_declined", failure_message=None,
        correlation_id=None,
    )  # fmt: skip
    with pytest.raises(RefundExceedsRemaining) as again:
        await refunds.reserve_refund(refused, correlation_id="c-redelivered")
    assert again.value.message == first.value.message
    assert await refunds.get_refund(refused.refund_id) is None
    # A new refund (another id) is decided on the state as it is now.
    fresh = await refunds.reserve_refund(_refund(payment, 5_000), correlation_id=None)
    assert fresh.created


async def test_a_refused_payment_answers_its_first_refusal(payments: PgPaymentRepository) -> None:
    cmd = new_payment(payment_method_id="pm_" + new_id("x").replace("_", ""))
    first = RecordedRefusal("payment_method_not_found", "no card on file for this merchant")
    assert await payments.refuse_payment(cmd, first, correlation_id=None) == first
    other = RecordedRefusal("card_expired", "decided differently later")
    assert await payments.refuse_payment(cmd, other, correlation_id=None) == first
    assert await payments.payment_refusal(cmd) == first
    assert await payments.get_payment(cmd.transaction_id) is None


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_log SET action = 'edited' WHERE transaction_id = $1",
        "DELETE FROM audit_log WHERE transaction_id = $1",
        "TRUNCATE audit_log",
        "ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_update_delete",
        "DROP TRIGGER audit_log_chain ON audit_log",
        "UPDATE refusals SET code = 'x' WHERE transaction_id = $1",
        "DELETE FROM schema_migrations WHERE version = '0006_operators'",
    ],
)
async def test_the_runtime_role_can_only_insert_and_read_the_audit_log(
    stack: StackInfo, payments: PgPaymentRepository, pg_pool: asyncpg.Pool, statement: str
) -> None:
    if stack.migration_url is None:
        pytest.skip("this database has one role for everything (no DATABASE_MIGRATION_URL)")
    tid = (await _captured(payments)).transaction_id
    args = (tid,) if "$1" in statement else ()
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await pg_pool.execute(statement, *args)
    assert await pg_pool.fetchval("SELECT count(*) FROM audit_log WHERE transaction_id = $1", tid)


async def test_an_edit_by_the_owner_breaks_exactly_that_payments_chain(
    payments: PgPaymentRepository, pg_pool: asyncpg.Pool, owner_pool: asyncpg.Pool
) -> None:
    edited, untouched = (
        (await _captured(payments)).transaction_id,
        (await _captured(payments)).transaction_id,
    )
    ids = [edited, untouched]
    query = SELECT_CHAIN + " WHERE transaction_id = ANY($1::text[]) ORDER BY transaction_id, id"
    assert check_chain([dict(r) for r in await pg_pool.fetch(query, ids)]) == []
    async with owner_pool.acquire() as conn, conn.transaction():
        await conn.execute("ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_update_delete")
        await conn.execute(
            "UPDATE audit_log SET amount_minor = 1 WHERE id = (SELECT min(id) FROM audit_log"
            " WHERE transaction_id = $1 AND action = 'payment.captured')",
            edited,
        )
        await conn.execute("ALTER TABLE audit_log ENABLE TRIGGER audit_log_no_update_delete")
    breaks = check_chain([dict(r) for r in await pg_pool.fetch(query, ids)])
    assert [(b.transaction_id, b.reason.split(" (")[0]) for b in breaks] == [
        (edited, "row hash does not match its columns")
    ]
