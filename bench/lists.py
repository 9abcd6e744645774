"""List latency at scale: seed a large payments table, time the list queries, show their plans.

    python -m bench.lists --rows 1000000            # DATABASE_URL, or --database-url
    python -m bench.lists --rows 10000000 --keep    # keep the schema for a later look

Everything happens in a fresh schema (`bench_lists_<id>`, via `search_path`), migrated with the
service's own migrations, seeded with `generate_series` in one statement (merchants of very
different sizes, statuses as a live table has them), then `ANALYZE`d. Each query is the one the
API runs (`storage.lists.PgPaymentLists`, asyncpg prepared statements), timed over `--repeat`
runs; the report gives p50/p99 and the `EXPLAIN (ANALYZE, BUFFERS)` of each, and is written to
`bench/results/lists.md`. Speed is reported here, never asserted in a test; the test
(`tests/integration/test_list_plan.py`) asserts only that the plan is the index range scan.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import statistics
import time
import uuid
from pathlib import Path

import asyncpg

from payment_service.core.capture_ports import ListQuery
from payment_service.core.states import PaymentStatus
from payment_service.storage.lists import PgPaymentLists, payments_sql
from payment_service.storage.migrate import apply_migrations, load_migrations

RESULTS = Path(__file__).resolve().parent / "results" / "lists.md"
BIG_MERCHANT = "m_seed_big"

# One in ten rows belongs to the big merchant, the rest spread over `merchants` small ones;
# statuses cycle independently of the merchant (every merchant has some of each).
SEED_SQL = """
INSERT INTO transactions (transaction_id, merchant_id, status, amount_minor, currency,
    payment_method, card_brand, card_last4, card_expiry_month, card_expiry_year,
    cardholder_name, captured_minor, capture_method, created_at, updated_at)
SELECT 'txn_seed_' || g,
       CASE WHEN g % 10 = 0 THEN 'm_seed_big' ELSE 'm_seed_' || (g % $2) END,
       (ARRAY['captured', 'captured', 'captured', 'failed', 'requires_capture',
              'canceled', 'captured', 'captured', 'refunded', 'captured'])[1 + (g / 7) % 10],
       1000 + g % 5000, 'USD', 'credit_card', 'visa', '4242', 12, 2030, 'Seed Holder',
       CASE WHEN (g / 7) % 10 IN (0, 1, 2, 6, 7, 8, 9) THEN 1000 + g % 5000 ELSE 0 END,
       CASE WHEN (g / 7) % 10 IN (4, 5) THEN 'manual' ELSE 'automatic' END,
       now() - make_interval(secs => ($1 - g) * 0.1), now()
FROM generate_series(1, $1::bigint) AS g
"""


async def seed(conn: asyncpg.Connection, rows: int, merchants: int = 1000) -> None:
    """`rows` payments, newest last; then ANALYZE so the planner knows the table's size."""
    await conn.execute(SEED_SQL, rows, merchants)
    await conn.execute("ANALYZE transactions")


def _queries(last_id: str) -> dict[str, ListQuery]:
    return {
        "first page (limit 10)": ListQuery(),
        "first page (limit 100)": ListQuery(limit=100),
        "after a cursor deep in the table": ListQuery(limit=10, starting_after=last_id),
        "before a cursor (ending_before)": ListQuery(limit=10, ending_before=last_id),
        "status=requires_capture": ListQuery(status=PaymentStatus.REQUIRES_CAPTURE),
        "status=unknown (none of them)": ListQuery(status=PaymentStatus.UNKNOWN),
        "created[gte] in the last hour": ListQuery(created_gte=_ago(3600), created_lt=_ago(0)),
    }


def _ago(seconds: float) -> dt.datetime:
    return dt.datetime.now(dt.UTC) - dt.timedelta(seconds=seconds)


async def explain(conn: asyncpg.Connection, merchant: str, query: ListQuery, analyze: bool) -> str:
    """The plan of the API's page query for `query` (cursor read from the table)."""
    cursor = None
    cursor_id = query.starting_after or query.ending_before
    if cursor_id is not None:
        row = await conn.fetchrow(
            "SELECT created_at, transaction_id FROM transactions WHERE transaction_id = $1",
            cursor_id,
        )
        cursor = (row["created_at"], row["transaction_id"])
    sql, args = payments_sql(query, cursor)
    options = "ANALYZE, BUFFERS, " if analyze else ""
    rows = await conn.fetch(f"EXPLAIN ({options}COSTS OFF) {sql}", merchant, query.limit + 1, *args)
    return "\n".join(r[0] for r in rows)


async def run(url: str, rows: int, repeat: int, keep: bool) -> str:
    schema = f"bench_lists_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(url, timeout=30)
    await admin.execute(f"CREATE SCHEMA {schema}")
    scoped = url + ("&" if "?" in url else "?") + f"search_path={schema}"
    try:
        conn = await asyncpg.connect(scoped, timeout=30, command_timeout=3600)
        await apply_migrations(conn, load_migrations())
        started = time.perf_counter()
        await seed(conn, rows)
        seeded = time.perf_counter() - started
        size = await conn.fetchval("SELECT pg_size_pretty(pg_total_relation_size('transactions'))")
        big = await conn.fetchval(
            "SELECT count(*) FROM transactions WHERE merchant_id = $1", BIG_MERCHANT
        )
        middle = await conn.fetchval(
            "SELECT transaction_id FROM transactions WHERE merchant_id = $1"
            " ORDER BY created_at, transaction_id OFFSET $2 LIMIT 1",
            BIG_MERCHANT,
            big // 2,
        )
        await conn.close()
        pool = await asyncpg.create_pool(scoped, min_size=1, max_size=2)
        lists = PgPaymentLists(pool)
        lines = [
            f"# List latency at {rows:,} payments",
            "",
            f"Seeded in {seeded:.1f} s; table with indexes {size}; the merchant listed has "
            f"{big:,} payments. {repeat} runs each, one connection, on this machine (shared "
            "2 cores). `python -m bench.lists --rows N` (bench/lists.py).",
            "",
            "| query | p50 ms | p99 ms |",
            "| --- | ---: | ---: |",
        ]
        plans = []
        for name, query in _queries(middle).items():
            times = []
            for _ in range(repeat):
                t0 = time.perf_counter()
                await lists.list_payments(BIG_MERCHANT, query)
                times.append((time.perf_counter() - t0) * 1000)
            times.sort()
            p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
            lines.append(f"| {name} | {statistics.median(times):.2f} | {p99:.2f} |")
            async with pool.acquire() as c:
                plans += ["", f"## {name}", "", "```", await explain(c, BIG_MERCHANT, query, True),
                          "```"]  # fmt: skip
        await pool.close()
        return "\n".join([*lines, *plans, ""])
    finally:
        if not keep:
            await admin.execute(f"DROP SCHEMA {schema} CASCADE")
        await admin.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL", ""))
    parser.add_argument("--keep", action="store_true", help="keep the seeded schema")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    if not args.database_url:
        parser.error("give --database-url or set DATABASE_URL")
    report = asyncio.run(run(args.database_url, args.rows, args.repeat, args.keep))
    args.out.write_text(report, encoding="utf-8")
    print(report)


if __name__ == "__main__":
    main()
