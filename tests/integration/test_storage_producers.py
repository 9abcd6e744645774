"""The producer registry in real PostgreSQL: registered once, revoked once, every change audited,
and every audit row of a payment naming who asked for it."""

from __future__ import annotations

import asyncpg
import pytest

from payment_service.core.errors import IntegrityViolation, StorageError
from payment_service.core.states import PaymentStatus
from payment_service.storage.errors import translated
from payment_service.storage.payments import PgPaymentRepository
from payment_service.storage.producers import PgProducers, ProducerExists
from tests.fixtures.postgres import new_id, new_payment

pytestmark = pytest.mark.integration


def _name() -> str:
    return new_id("team").lower().replace("_", "-")[:60]


async def test_a_producer_is_registered_once_and_revoked_once_with_its_audit(
    pg_pool: asyncpg.Pool,
) -> None:
    registry, name = PgProducers(pg_pool), _name()
    record = await registry.register(
        name, merchants=["m_b", "m_a", "m_a"], commands=["refund", "payment"],
        public_key="k" * 44, actor="operator:test",
    )  # fmt: skip
    assert record.merchants == frozenset({"m_a", "m_b"})
    assert record.commands == frozenset({"payment", "refund"})
    assert record.revoked_at is None
    assert await registry.producer(name) == record
    with pytest.raises(ProducerExists):
        await registry.register(
            name, merchants=["m_c"], commands=["payment"], public_key="x", actor="operator:test"
        )
    revoked = await registry.revoke(name, actor="operator:other")
    assert revoked is not None
    assert revoked.revoked_at is not None
    assert await registry.revoke(name, actor="operator:other") is None  # once
    with pytest.raises(ProducerExists):  # a revoked name is never registered again
        await registry.register(
            name, merchants=["m_a"], commands=["payment"], public_key="y", actor="operator:test"
        )
    trail = await registry.audit_trail(name)
    assert [(t["action"], t["actor"]) for t in trail] == [
        ("producer.registered", "operator:test"),
        ("producer.revoked", "operator:other"),
    ]
    assert trail[0]["details"] == {"merchants": ["m_a", "m_b"], "commands": ["payment", "refund"]}
    assert name in {p.name for p in await registry.all()}


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE producers SET merchants = ARRAY['m_x'] WHERE name = $1",
        "UPDATE producers SET public_key = 'attacker' WHERE name = $1",
        "DELETE FROM producers WHERE name = $1",
        "UPDATE producer_audit SET actor = 'nobody' WHERE producer = $1",
        "DELETE FROM producer_audit WHERE producer = $1",
    ],
)
async def test_a_registration_changes_only_by_revocation(
    pg_pool: asyncpg.Pool, statement: str
) -> None:
    registry, name = PgProducers(pg_pool), _name()
    await registry.register(
        name, merchants=["m_a"], commands=["payment"], public_key="k", actor="operator:test"
    )
    # The runtime role is refused by its privileges; the owner, by the trigger.
    with pytest.raises((IntegrityViolation, StorageError)), translated():
        await pg_pool.execute(statement, name)
    stored = await registry.producer(name)
    assert stored is not None
    assert (stored.merchants, stored.public_key) == (frozenset({"m_a"}), "k")


async def test_every_audit_row_of_a_payment_names_who_asked(pg_pool: asyncpg.Pool) -> None:
    repo = PgPaymentRepository(pg_pool)
    claim = await repo.claim_payment(
        new_payment(requested_by="producer:team-a"), correlation_id="c"
    )
    txn = claim.payment.transaction_id
    assert claim.payment.requested_by == "producer:team-a"
    await repo.mark_authorized(
        txn, expected=PaymentStatus.PROCESSING, authorization_id="auth_1", correlation_id="c"
    )
    actors = await pg_pool.fetch(
        "SELECT action, actor FROM audit_log WHERE transaction_id = $1", txn
    )
    assert len(actors) == 2
    assert {a["actor"] for a in actors} == {"producer:team-a"}
