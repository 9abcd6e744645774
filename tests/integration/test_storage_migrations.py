"""Migrations against a real PostgreSQL: in order, once, under a lock, and never silently edited.

Each test migrates its own fresh schema (via `search_path`), so it starts from an empty database
without needing the right to create databases.
"""

from __future__ import annotations

import asyncio
import shutil
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from pydantic import SecretStr

from payment_service.config.settings import DatabaseSettings
from payment_service.core.errors import MigrationError, StorageError
from payment_service.core.states import PaymentStatus, RefundStatus
from payment_service.storage.migrate import MIGRATIONS_DIR, load_migrations, migrate
from tests.fixtures.stack import StackInfo

pytestmark = pytest.mark.integration


@pytest.fixture
async def schema_settings(
    stack: StackInfo, owner_pool: asyncpg.Pool, pg_pool: asyncpg.Pool
) -> AsyncIterator[DatabaseSettings]:
    """Settings whose connections (the owner's: only it may create) see only a fresh schema."""
    schema = f"mig_{uuid.uuid4().hex[:12]}"
    await owner_pool.execute(f"CREATE SCHEMA {schema}")
    url = stack.owner_url
    url += ("&" if "?" in url else "?") + f"search_path={schema}"
    try:
        yield DatabaseSettings(url=SecretStr(url), pool_min_size=1, pool_max_size=2)
    finally:
        await owner_pool.execute(f"DROP SCHEMA {schema} CASCADE")


async def _applied(settings: DatabaseSettings) -> list[str]:
    conn = await asyncpg.connect(settings.url.get_secret_value())
    try:
        rows = await conn.fetch("SELECT version FROM schema_migrations ORDER BY version")
        return [r["version"] for r in rows]
    finally:
        await conn.close()


def _copy_migrations(tmp_path: Path) -> Path:
    target = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_DIR, target)
    return target


def _next(name: str) -> str:
    """A migration file named after the last real one, so new real files never collide."""
    # Past the highest number, not the count: numbers are handed out per branch, with gaps.
    last = max(int(m.version[:4]) for m in load_migrations())
    return f"{last + 1:04d}_{name}.sql"


SHIPPED = [m.version for m in load_migrations()]


async def test_migrations_apply_in_order_then_nothing_is_pending(
    schema_settings: DatabaseSettings,
) -> None:
    versions = [m.version for m in load_migrations()]
    assert versions[0] == "0001_initial"
    assert await migrate(schema_settings) == versions
    assert await migrate(schema_settings) == []
    assert await _applied(schema_settings) == versions


async def test_two_concurrent_migrators_apply_each_file_once(
    schema_settings: DatabaseSettings,
) -> None:
    results = await asyncio.gather(migrate(schema_settings), migrate(schema_settings))
    versions = [m.version for m in load_migrations()]
    assert sorted(results, key=len) == [[], versions]


async def test_changed_checksum_of_an_applied_file_is_refused(
    schema_settings: DatabaseSettings, tmp_path: Path
) -> None:
    directory = _copy_migrations(tmp_path)
    await migrate(schema_settings, directory)
    first = directory / "0001_initial.sql"
    first.write_text(first.read_text() + "\n-- edited after it was applied\n")
    (directory / _next("more")).write_text("CREATE TABLE should_not_exist (id int);")
    with pytest.raises(MigrationError, match="0001_initial was changed"):
        await migrate(schema_settings, directory)
    assert await _applied(schema_settings) == SHIPPED


async def test_a_failing_file_is_rolled_back_whole(
    schema_settings: DatabaseSettings, tmp_path: Path
) -> None:
    directory = _copy_migrations(tmp_path)
    broken = "CREATE TABLE half_done (id int);\nSELECT 1 / 0;\n"
    (directory / _next("broken")).write_text(broken)
    with pytest.raises(StorageError):
        await migrate(schema_settings, directory)
    assert await _applied(schema_settings) == SHIPPED
    conn = await asyncpg.connect(schema_settings.url.get_secret_value())
    try:
        assert await conn.fetchval("SELECT to_regclass('half_done')") is None
    finally:
        await conn.close()


async def test_an_applied_version_without_a_file_is_refused(
    schema_settings: DatabaseSettings, tmp_path: Path
) -> None:
    directory = _copy_migrations(tmp_path)
    await migrate(schema_settings, directory)
    (directory / "0001_initial.sql").rename(directory / "0001_renamed.sql")
    with pytest.raises(MigrationError, match="does not know: 0001_initial"):
        await migrate(schema_settings, directory)


def test_badly_named_or_duplicate_files_are_refused(tmp_path: Path) -> None:
    (tmp_path / "1_x.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError, match="NNNN_snake_case"):
        load_migrations(tmp_path)
    (tmp_path / "1_x.sql").unlink()
    (tmp_path / "0001_a.sql").write_text("SELECT 1;")
    (tmp_path / "0001_b.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError, match="used twice"):
        load_migrations(tmp_path)


@pytest.mark.parametrize(
    ("table", "values"),
    [("transactions", list(PaymentStatus)), ("refunds", list(RefundStatus))],
)
async def test_status_checks_list_exactly_the_state_machine_statuses(
    pg_pool: asyncpg.Pool, table: str, values: list[str]
) -> None:
    definition: str = await pg_pool.fetchval(
        "SELECT pg_get_constraintdef(oid) FROM pg_constraint"
        " WHERE conrelid = $1::regclass AND conname = $2",
        table,
        f"{table}_status_check",
    )
    listed = set(definition.split("'")[1::2])
    assert listed == {str(v) for v in values}


async def test_the_append_only_logs_sample_few_rows_for_their_statistics(
    schema_settings: DatabaseSettings,
) -> None:
    """Every column of audit_log and events has statistics target 10 (0008), so ANALYZE samples
    3,000 rows, not 30,000: one column left at the default would bring the full sample back."""
    await migrate(schema_settings)
    conn = await asyncpg.connect(schema_settings.url.get_secret_value())
    try:
        rows = await conn.fetch(
            """
            SELECT c.relname, a.attname, a.attstattarget
              FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
             WHERE c.oid IN (to_regclass('audit_log'), to_regclass('events'))
               AND a.attnum > 0 AND NOT a.attisdropped
            """
        )
        others = await conn.fetch(
            "SELECT attstattarget FROM pg_attribute"
            " WHERE attrelid = to_regclass('transactions') AND attnum > 0 AND NOT attisdropped"
        )
    finally:
        await conn.close()
    assert {r["relname"] for r in rows} == {"audit_log", "events"}
    assert {
        (r["relname"], r["attname"]): r["attstattarget"] for r in rows if r["attstattarget"] != 10
    } == {}
    assert {r["attstattarget"] for r in others} == {-1}  # transactions keeps the default
