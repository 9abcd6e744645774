"""The payment list is an index range scan, whatever the filters: checked on the plan of a
seeded table (the speed itself is measured by `bench/lists.py`, never asserted here)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
from bench.lists import BIG_MERCHANT, explain, seed

from payment_service.core.capture_ports import ListQuery
from payment_service.core.states import PaymentStatus
from payment_service.storage.migrate import apply_migrations, load_migrations
from tests.fixtures.stack import StackInfo

pytestmark = pytest.mark.integration
INDEX = "transactions_merchant_created_id"
STATUS_INDEX = "transactions_merchant_status_created"


@pytest.fixture
async def seeded(owner_pool: asyncpg.Pool, stack: StackInfo) -> AsyncIterator[asyncpg.Connection]:
    # A throwaway schema: the owner's to create (the runtime role may not).
    pg_pool = owner_pool
    schema = f"plan_{uuid.uuid4().hex[:12]}"
    await pg_pool.execute(f"CREATE SCHEMA {schema}")
    url = stack.owner_url
    conn = await asyncpg.connect(url + ("&" if "?" in url else "?") + f"search_path={schema}")
    try:
        await apply_migrations(conn, load_migrations())
        await seed(conn, 50_000, merchants=50)
        yield conn
    finally:
        await conn.close()
        await pg_pool.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.mark.parametrize(
    "query",
    [
        ListQuery(),
        ListQuery(limit=100),
        ListQuery(starting_after="txn_seed_25000"),
        ListQuery(ending_before="txn_seed_25000"),
        ListQuery(status=PaymentStatus.CAPTURED),
        ListQuery(status=PaymentStatus.REQUIRES_CAPTURE, starting_after="txn_seed_25000"),
    ],
    ids=["first", "limit100", "starting_after", "ending_before", "status", "status_after"],
)
async def test_the_list_reads_the_merchant_index_not_the_table(
    seeded: asyncpg.Connection, query: ListQuery
) -> None:
    plan = await explain(seeded, BIG_MERCHANT, query, analyze=False)
    assert (STATUS_INDEX if query.status else INDEX) in plan, plan
    assert "Seq Scan" not in plan, plan
    assert "Sort" not in plan, plan  # the index gives the order: no sort of the merchant's rows
