"""Cards on file in real PostgreSQL: merchant scope, idempotency, detach, rewrap swaps, audit."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import replace

import asyncpg
import pytest

from payment_service.core.errors import IdempotencyConflict, IntegrityViolation, StorageError
from payment_service.core.ids import new_payment_method_id
from payment_service.core.records import CardDetails, NewPaymentMethod
from payment_service.storage.errors import translated
from payment_service.storage.payment_methods import PgPaymentMethods, write_custody_audit
from tests.fixtures.postgres import new_id

pytestmark = pytest.mark.integration


@pytest.fixture
def methods(pg_pool: asyncpg.Pool) -> PgPaymentMethods:
    return PgPaymentMethods(pg_pool)


def _new(merchant: str | None = None, **changes: object) -> NewPaymentMethod:
    new = NewPaymentMethod(
        payment_method_id=new_payment_method_id("m", None),
        merchant_id=merchant or new_id("merchant"),
        envelope='{"v":2,"canary":"' + uuid.uuid4().hex + '"}',
        key_id="ck_old",
        card=CardDetails("visa", "4242", 12, 2031, "Ada Lovelace", "fpk1:" + uuid.uuid4().hex),
        metadata={"customer": "c1"},
        request_hash="h-" + uuid.uuid4().hex,
    )
    return replace(new, **changes)  # type: ignore[arg-type]


async def _audit(pool: asyncpg.Pool, method_id: str) -> list[str]:
    rows = await pool.fetch(
        "SELECT action FROM custody_audit WHERE payment_method_id = $1 ORDER BY id", method_id
    )
    return [r["action"] for r in rows]


async def test_create_read_is_merchant_scoped_and_audited(
    methods: PgPaymentMethods, pg_pool: asyncpg.Pool
) -> None:
    new = _new()
    stored, created = await methods.create(new, actor="api:key1")
    assert created
    assert (stored.last4, stored.key_id, stored.detached_at) == ("4242", "ck_old", None)
    assert new.envelope not in repr(stored)
    assert await methods.get(new.payment_method_id, merchant_id=new.merchant_id) == stored
    assert await methods.get(new.payment_method_id, merchant_id="someone_else") is None
    assert (
        await methods.detach(new.payment_method_id, merchant_id="someone_else", actor="api:x")
        is None
    )
    assert await _audit(pg_pool, new.payment_method_id) == ["payment_method.created"]


async def test_idempotency_key_binds_one_card_per_request(methods: PgPaymentMethods) -> None:
    merchant = new_id("merchant")
    key = "card-" + uuid.uuid4().hex
    method_id = new_payment_method_id(merchant, key)
    new = _new(merchant, payment_method_id=method_id, idempotency_key=key)
    first, again = await asyncio.gather(
        methods.create(new, actor="api"), methods.create(new, actor="api")
    )
    assert sorted([first[1], again[1]]) == [False, True]
    assert first[0].payment_method_id == again[0].payment_method_id == method_id
    with pytest.raises(IdempotencyConflict):
        await methods.create(replace(new, request_hash="other"), actor="api")


async def test_detach_destroys_the_envelope_for_good(
    methods: PgPaymentMethods, pg_pool: asyncpg.Pool
) -> None:
    new = _new()
    await methods.create(new, actor="api")
    detached = await methods.detach(new.payment_method_id, merchant_id=new.merchant_id, actor="a")
    assert detached is not None
    assert (detached.envelope, detached.key_id) == (None, None)
    assert detached.detached_at is not None
    again = await methods.detach(new.payment_method_id, merchant_id=new.merchant_id, actor="a")
    assert again == detached
    whole = await pg_pool.fetchval(
        "SELECT t::text FROM payment_methods t WHERE payment_method_id = $1",
        new.payment_method_id,
    )
    assert new.envelope not in whole
    assert "4242" in whole  # what may be shown stays
    assert await _audit(pg_pool, new.payment_method_id) == [
        "payment_method.created",
        "payment_method.detached",
    ]


async def test_rewrap_pages_past_rows_it_cannot_swap_and_swaps_by_compare_and_set(
    methods: PgPaymentMethods,
) -> None:
    merchant = new_id("merchant")
    created = [await methods.create(_new(merchant), actor="api") for _ in range(5)]
    mine = {record.payment_method_id for record, _ in created}
    seen: list[tuple[str, str]] = []
    after = ""
    while page := await methods.not_under("ck_new", after=after, limit=2):
        seen += [(i, e) for i, e in page if i in mine]
        after = page[-1][0]
    assert {i for i, _ in seen} == mine
    method_id, old = seen[0]
    assert await methods.swap_envelope(method_id, old=old, new='{"v":2}', new_kid="ck_new")
    assert not await methods.swap_envelope(method_id, old=old, new='{"x":1}', new_kid="ck_new")
    record = await methods.get(method_id, merchant_id=merchant)
    assert record is not None
    assert (record.envelope, record.key_id) == ('{"v":2}', "ck_new")
    remaining = await methods.not_under("ck_new", after="", limit=100_000)
    assert method_id not in {i for i, _ in remaining}
    usage = await methods.key_usage()
    assert usage["ck_old"] >= 4
    assert usage["ck_new"] >= 1


async def test_custody_audit_is_insert_only(pg_pool: asyncpg.Pool) -> None:
    await write_custody_audit(pg_pool, action="card_keys.rotated", actor="operator:t", key_id="k")
    for statement in ("UPDATE custody_audit SET actor = 'x'", "DELETE FROM custody_audit"):
        # The runtime role is refused by its privileges; the owner, by the trigger.
        with pytest.raises((IntegrityViolation, StorageError)), translated():
            await pg_pool.execute(statement)


async def test_constraints_keep_envelope_and_detach_consistent(pg_pool: asyncpg.Pool) -> None:
    with pytest.raises(IntegrityViolation), translated():
        await pg_pool.execute(
            "INSERT INTO payment_methods (payment_method_id, merchant_id, envelope, key_id,"
            " fingerprint, brand, last4, expiry_month, expiry_year, cardholder_name, detached_at)"
            " VALUES ('pm_constraint1', 'm', 'e', 'k', 'f', 'visa', '4242', 1, 2030, 'A', now())"
        )
