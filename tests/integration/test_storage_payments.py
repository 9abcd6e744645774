"""PgPaymentRepository against a real PostgreSQL: idempotent claims, CAS transitions, audit."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import pytest

from payment_service.core.errors import (
    IdempotencyConflict,
    IdempotencyKeyReused,
    IntegrityViolation,
    TransitionConflict,
)
from payment_service.core.records import PaymentRecord
from payment_service.core.states import InvalidTransition, PaymentEvent, PaymentStatus
from payment_service.schemas.views import payment_view
from payment_service.storage.payments import PgPaymentRepository
from tests.fixtures.postgres import CANARY_ENVELOPE, new_id, new_payment

pytestmark = pytest.mark.integration
S, E = PaymentStatus, PaymentEvent


@pytest.fixture
def repo(pg_pool: asyncpg.Pool) -> PgPaymentRepository:
    return PgPaymentRepository(pg_pool)


async def _audit(pool: asyncpg.Pool, transaction_id: str) -> list[tuple[str, str | None, str]]:
    rows = await pool.fetch(
        "SELECT action, from_status, to_status FROM audit_log"
        " WHERE transaction_id = $1 ORDER BY id",
        transaction_id,
    )
    return [(r["action"], r["from_status"], r["to_status"]) for r in rows]


async def _claimed(repo: PgPaymentRepository, **overrides: Any) -> PaymentRecord:
    claim = await repo.claim_payment(new_payment(**overrides), correlation_id="corr-1")
    assert claim.created
    return claim.payment


async def test_claim_stores_a_processing_payment_with_its_audit_row(
    repo: PgPaymentRepository, pg_pool: asyncpg.Pool
) -> None:
    cmd = new_payment(idempotency_key=new_id("key"))
    claim = await repo.claim_payment(cmd, correlation_id="corr-1")
    assert claim.created
    payment = claim.payment
    assert (payment.status, payment.amount_minor, payment.currency) == (S.PROCESSING, 10_000, "USD")
    assert (payment.captured_minor, payment.refunded_minor, payment.refunds) == (0, 0, ())
    assert payment.metadata == {"order": "42"}
    assert payment == await repo.get_payment(cmd.transaction_id)
    assert await _audit(pg_pool, cmd.transaction_id) == [("payment.received", None, "processing")]
    bound = await pg_pool.fetchrow(
        "SELECT kind, request_hash, resource_id FROM idempotency_keys"
        " WHERE merchant_id = $1 AND idempotency_key = $2",
        cmd.merchant_id,
        cmd.idempotency_key,
    )
    assert tuple(bound) == ("payment", cmd.request_hash, cmd.transaction_id)


async def test_the_same_command_twice_stores_one_payment(
    repo: PgPaymentRepository, pg_pool: asyncpg.Pool
) -> None:
    cmd = new_payment(idempotency_key=new_id("key"))
    first = await repo.claim_payment(cmd, correlation_id="a")
    second = await repo.claim_payment(cmd, correlation_id="b")
    assert (first.created, second.created) == (True, False)
    assert second.payment == first.payment
    count = await pg_pool.fetchval(
        "SELECT count(*) FROM transactions WHERE transaction_id = $1", cmd.transaction_id
    )
    assert count == 1
    assert len(await _audit(pg_pool, cmd.transaction_id)) == 1


async def test_concurrent_claims_of_one_payment_create_it_exactly_once(
    repo: PgPaymentRepository,
) -> None:
    cmd = new_payment(idempotency_key=new_id("key"))
    claims = await asyncio.gather(*(repo.claim_payment(cmd, correlation_id=None) for _ in range(5)))
    assert sorted(c.created for c in claims) == [False, False, False, False, True]
    assert len({c.payment.created_at for c in claims}) == 1


async def test_an_idempotency_key_reused_with_another_body_is_a_conflict(
    repo: PgPaymentRepository,
) -> None:
    first = await _claimed(repo, idempotency_key="order-1", merchant_id=new_id("m"))
    other = new_payment(
        merchant_id=first.merchant_id, idempotency_key="order-1", request_hash="another-body"
    )
    with pytest.raises(IdempotencyConflict) as caught:
        await repo.claim_payment(other, correlation_id=None)
    assert isinstance(caught.value, IdempotencyKeyReused)
    assert caught.value.existing_resource_id == first.transaction_id
    assert not caught.value.same_request
    assert await repo.get_payment(other.transaction_id) is None


async def test_an_idempotency_key_is_scoped_to_its_merchant(repo: PgPaymentRepository) -> None:
    await _claimed(repo, idempotency_key="shared-key")
    await _claimed(repo, idempotency_key="shared-key")  # another merchant: no conflict


async def test_same_key_and_body_but_another_transaction_is_a_conflict_naming_the_first(
    repo: PgPaymentRepository,
) -> None:
    first = await _claimed(repo, idempotency_key="order-2", merchant_id=new_id("m"))
    again = new_payment(
        merchant_id=first.merchant_id, idempotency_key="order-2", request_hash=first.request_hash
    )
    with pytest.raises(IdempotencyConflict) as caught:
        await repo.claim_payment(again, correlation_id=None)
    assert caught.value.same_request
    assert caught.value.existing_resource_id == first.transaction_id


@pytest.mark.parametrize(
    "change", [{"merchant_id": "someone_else"}, {"amount_minor": 1}, {"request_hash": "other"}]
)
async def test_a_transaction_id_reused_for_another_payment_is_a_conflict(
    repo: PgPaymentRepository, change: dict[str, Any]
) -> None:
    first = await _claimed(repo)
    same = {"merchant_id": first.merchant_id, "request_hash": first.request_hash}
    again = new_payment(transaction_id=first.transaction_id, **{**same, **change})
    with pytest.raises(IdempotencyConflict):
        await repo.claim_payment(again, correlation_id=None)
    assert await repo.get_payment(first.transaction_id) == first


async def test_happy_path_transitions_are_recorded_with_audit_rows(
    repo: PgPaymentRepository, pg_pool: asyncpg.Pool
) -> None:
    payment = await _claimed(repo)
    tid = payment.transaction_id
    authorized = await repo.mark_authorized(
        tid, expected=S.PROCESSING, authorization_id="auth_1", correlation_id="c"
    )
    assert (authorized.status, authorized.authorization_id) == (S.AUTHORIZED, "auth_1")
    captured = await repo.mark_captured(
        tid, expected=S.AUTHORIZED, captured_minor=10_000, correlation_id="c"
    )
    assert (captured.status, captured.captured_minor) == (S.CAPTURED, 10_000)
    assert captured.updated_at >= payment.updated_at
    assert await _audit(pg_pool, tid) == [
        ("payment.received", None, "processing"),
        ("payment.authorized", "processing", "authorized"),
        ("payment.captured", "authorized", "captured"),
    ]
    view = payment_view(captured)
    assert (view.amount, view.refunded_amount, view.card.last4) == ("100.00", "0.00", "4242")
    assert CANARY_ENVELOPE not in view.model_dump_json()
    assert CANARY_ENVELOPE not in repr(captured)


async def test_unknown_outcomes_and_their_resolution(repo: PgPaymentRepository) -> None:
    tid = (await _claimed(repo)).transaction_id
    unknown = await repo.mark_unknown(
        tid, expected=S.PROCESSING, event=E.AUTHORIZATION_UNKNOWN, correlation_id=None,
        detail="timeout",
    )  # fmt: skip
    assert unknown.status == S.UNKNOWN
    await repo.mark_authorized(tid, expected=S.UNKNOWN, authorization_id="a", correlation_id=None)
    lost = await repo.mark_unknown(
        tid, expected=S.AUTHORIZED, event=E.CAPTURE_UNKNOWN, correlation_id=None, detail="reset"
    )
    assert lost.status == S.UNKNOWN_CAPTURE
    done = await repo.mark_captured(
        tid, expected=S.UNKNOWN_CAPTURE, captured_minor=10_000, correlation_id=None
    )
    assert done.status == S.CAPTURED


@pytest.mark.parametrize("expected", [S.PROCESSING, S.AUTHORIZED])
async def test_declines_record_their_codes(
    repo: PgPaymentRepository, pg_pool: asyncpg.Pool, expected: PaymentStatus
) -> None:
    tid = (await _claimed(repo)).transaction_id
    if expected == S.AUTHORIZED:
        await repo.mark_authorized(
            tid, expected=S.PROCESSING, authorization_id="a", correlation_id=None
        )
    event = E.CAPTURE_DECLINED if expected == S.AUTHORIZED else E.AUTHORIZATION_DECLINED
    failed = await repo.mark_failed(
        tid,
        expected=expected,
        event=event,
        failure_code="card_declined",
        decline_code="insufficient_funds",
        failure_message="Your card has insufficient funds.",
        correlation_id=None,
    )
    assert (failed.status, failed.failure_code, failed.decline_code) == (
        S.FAILED,
        "card_declined",
        "insufficient_funds",
    )
    audited = await pg_pool.fetchval(
        "SELECT details->>'event' FROM audit_log"
        " WHERE transaction_id = $1 AND to_status = 'failed'",
        tid,
    )
    assert audited == event.value


def _transitions(
    repo: PgPaymentRepository, tid: str
) -> dict[str, Callable[[PaymentStatus], Awaitable[PaymentRecord]]]:
    return {
        "authorize": lambda e: repo.mark_authorized(
            tid, expected=e, authorization_id="x", correlation_id=None
        ),
        "capture": lambda e: repo.mark_captured(
            tid, expected=e, captured_minor=10_000, correlation_id=None
        ),
        "fail": lambda e: repo.mark_failed(
            tid,
            expected=e,
            event=_decline_from(e),
            failure_code="x",
            decline_code=None,
            failure_message=None,
            correlation_id=None,
        ),
        "unknown": lambda e: repo.mark_unknown(
            tid, expected=e, event=_unknown_from(e), correlation_id=None, detail=None
        ),
    }


def _decline_from(status: PaymentStatus) -> PaymentEvent:
    """The decline the flow would name in `status`."""
    after_auth = status in (S.AUTHORIZED, S.UNKNOWN_CAPTURE)
    return E.CAPTURE_DECLINED if after_auth else E.AUTHORIZATION_DECLINED


def _unknown_from(status: PaymentStatus) -> PaymentEvent:
    """The lost answer the flow would name in `status`."""
    after_auth = status in (S.AUTHORIZED, S.UNKNOWN_CAPTURE)
    return E.CAPTURE_UNKNOWN if after_auth else E.AUTHORIZATION_UNKNOWN


@pytest.mark.parametrize("name", ["authorize", "capture", "fail", "unknown"])
async def test_a_wrong_expected_status_is_a_conflict_and_changes_nothing(
    repo: PgPaymentRepository, pg_pool: asyncpg.Pool, name: str
) -> None:
    # The row is `authorized`; each transition claims a legal but wrong current status.
    tid = (await _claimed(repo)).transaction_id
    await repo.mark_authorized(
        tid, expected=S.PROCESSING, authorization_id="a", correlation_id=None
    )
    before = await repo.get_payment(tid)
    wrong = {"authorize": S.PROCESSING, "capture": S.UNKNOWN_CAPTURE, "fail": S.PROCESSING}
    with pytest.raises(TransitionConflict) as caught:
        await _transitions(repo, tid)[name](wrong.get(name, S.PROCESSING))
    assert caught.value.current_status == "authorized"
    assert await repo.get_payment(tid) == before
    assert len(await _audit(pg_pool, tid)) == 2


@pytest.mark.parametrize("final", [S.FAILED, S.CAPTURED])
async def test_a_settled_payment_is_never_moved_by_a_payment_transition(
    repo: PgPaymentRepository, final: PaymentStatus
) -> None:
    tid = (await _claimed(repo)).transaction_id
    if final == S.FAILED:
        await _transitions(repo, tid)["fail"](S.PROCESSING)
    else:
        await _transitions(repo, tid)["authorize"](S.PROCESSING)
        await _transitions(repo, tid)["capture"](S.AUTHORIZED)
    before = await repo.get_payment(tid)
    for transition in _transitions(repo, tid).values():
        for expected in PaymentStatus:
            with pytest.raises((TransitionConflict, InvalidTransition)):
                await transition(expected)
    assert await repo.get_payment(tid) == before


async def test_a_transition_of_a_missing_payment_is_a_conflict_with_no_status(
    repo: PgPaymentRepository,
) -> None:
    with pytest.raises(TransitionConflict) as caught:
        await _transitions(repo, new_id("txn"))["authorize"](S.PROCESSING)
    assert caught.value.current_status is None


@pytest.mark.parametrize("event", [E.AUTHORIZATION_APPROVED, E.CAPTURE_UNKNOWN])
async def test_mark_failed_records_only_a_decline(
    repo: PgPaymentRepository, event: PaymentEvent
) -> None:
    payment = await _claimed(repo)
    with pytest.raises(ValueError, match="decline"):
        await repo.mark_failed(
            payment.transaction_id, expected=S.PROCESSING, event=event, failure_code="x",
            decline_code=None, failure_message=None, correlation_id=None,
        )  # fmt: skip
    assert await repo.get_payment(payment.transaction_id) == payment


async def test_capturing_more_than_the_amount_is_refused_by_the_database(
    repo: PgPaymentRepository,
) -> None:
    tid = (await _claimed(repo)).transaction_id
    await _transitions(repo, tid)["authorize"](S.PROCESSING)
    with pytest.raises(IntegrityViolation):
        await repo.mark_captured(
            tid, expected=S.AUTHORIZED, captured_minor=10_001, correlation_id=None
        )
    payment = await repo.get_payment(tid)
    assert payment is not None
    assert payment.status == S.AUTHORIZED


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_log SET action = 'edited' WHERE transaction_id = $1",
        "DELETE FROM audit_log WHERE transaction_id = $1",
    ],
)
async def test_the_audit_log_refuses_updates_and_deletes(
    repo: PgPaymentRepository, pg_pool: asyncpg.Pool, owner_pool: asyncpg.Pool, statement: str
) -> None:
    """Even its owner is refused by the triggers (the runtime role lacks the privilege: see
    tests/integration/test_audit_chain.py)."""
    tid = (await _claimed(repo)).transaction_id
    with pytest.raises(asyncpg.IntegrityConstraintViolationError, match="insert-only"):
        await owner_pool.execute(statement, tid)
    with pytest.raises(asyncpg.IntegrityConstraintViolationError, match="insert-only"):
        await owner_pool.execute("TRUNCATE audit_log")
    assert await _audit(pg_pool, tid) == [("payment.received", None, "processing")]


async def test_another_merchants_payment_is_not_found(repo: PgPaymentRepository) -> None:
    payment = await _claimed(repo)
    assert await repo.get_payment(payment.transaction_id, merchant_id="intruder") is None
    found = await repo.get_payment(payment.transaction_id, merchant_id=payment.merchant_id)
    assert found == payment
    assert await repo.get_payment(new_id("txn")) is None


async def test_find_unsettled_lists_payments_stuck_before_a_final_status(
    repo: PgPaymentRepository, pg_pool: asyncpg.Pool
) -> None:
    stuck = await _claimed(repo)
    settled = await _claimed(repo)
    fresh = await _claimed(repo)
    await _transitions(repo, settled.transaction_id)["fail"](S.PROCESSING)
    # Two hours old, set explicitly rather than waited for.
    await pg_pool.execute(
        "UPDATE transactions SET updated_at = now() - interval '2 hours'"
        " WHERE transaction_id = ANY($1::text[])",
        [stuck.transaction_id, settled.transaction_id],
    )
    found = {p.transaction_id for p in await repo.find_unsettled(dt.timedelta(hours=1), 10_000)}
    assert stuck.transaction_id in found
    assert settled.transaction_id not in found
    assert fresh.transaction_id not in found


async def test_a_payment_keeps_no_card_envelope(
    repo: PgPaymentRepository, pg_pool: asyncpg.Pool
) -> None:
    """Retention: brand, last four, expiry and fingerprint stay; the envelope is never stored."""
    payment = await _claimed(repo)
    row = await pg_pool.fetchrow(
        "SELECT card_last4, card_fingerprint, t::text AS whole FROM transactions t"
        " WHERE transaction_id = $1",
        payment.transaction_id,
    )
    assert row["card_last4"] == "4242"
    assert row["card_fingerprint"].startswith("fpk1:")
    assert CANARY_ENVELOPE not in row["whole"]
    assert "4242424242424242" not in row["whole"]
    columns = await pg_pool.fetch(
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'transactions'"
    )
    assert "card_envelope" not in {c["column_name"] for c in columns}
