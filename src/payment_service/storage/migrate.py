"""Apply the versioned SQL files in `storage/migrations/` in order (our own small runner).

1. Take a session-level advisory lock, so two migrators started together run one after the other.
2. Read `schema_migrations(version, checksum, applied_at)`; refuse (`MigrationError`) when an
   applied file's SHA-256 changed or an applied version has no file any more.
3. Apply each pending file in its own transaction, together with its `schema_migrations` row: a
   failing file leaves the database at the previous version.
4. As the owner, grant the runtime role its rights (`storage.roles`), on every run.

Why no migration library: see docs/storage.md.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import asyncpg

from payment_service.config.settings import DatabaseSettings
from payment_service.core.errors import MigrationError
from payment_service.storage.db import connect
from payment_service.storage.errors import translated
from payment_service.storage.roles import grant_runtime, role_of

MIGRATIONS_DIR: Final = Path(__file__).with_name("migrations")
# Arbitrary constant shared by every migrator of this schema ("paymig" in ASCII).
ADVISORY_LOCK_KEY: Final = 0x7061796D6967
# Migrations may build indexes on big tables: a longer bound than ordinary statements.
MIGRATION_TIMEOUT_SECONDS: Final = 600.0
_FILE_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")

_CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    text        PRIMARY KEY,
    checksum   text        NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""


@dataclass(frozen=True)
class Migration:
    version: str  # the file name without ".sql", e.g. "0001_initial"
    checksum: str  # SHA-256 of the file's bytes
    sql: str


def load_migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """The migration files in order; refuses stray names and duplicate numbers."""
    migrations: dict[str, Migration] = {}
    for path in sorted(directory.glob("*.sql")):
        match = _FILE_NAME.match(path.name)
        if match is None:
            raise MigrationError(f"{path.name}: migration files are named NNNN_snake_case.sql")
        number = match.group(1)
        if number in migrations:
            raise MigrationError(f"{path.name}: number {number} is used twice")
        data = path.read_bytes()
        migrations[number] = Migration(
            version=path.stem, checksum=hashlib.sha256(data).hexdigest(), sql=data.decode()
        )
    return [migrations[n] for n in sorted(migrations)]


async def apply_migrations(conn: asyncpg.Connection, migrations: list[Migration]) -> list[str]:
    """Apply what is pending on `conn`; returns the versions applied now (empty: current)."""
    with translated():
        await conn.execute("SELECT pg_advisory_lock($1)", ADVISORY_LOCK_KEY)
        try:
            await conn.execute(_CREATE_TABLE)
            rows = await conn.fetch("SELECT version, checksum FROM schema_migrations")
            pending = _pending(migrations, {r["version"]: r["checksum"] for r in rows})
            for migration in pending:
                async with conn.transaction():
                    await conn.execute(migration.sql)
                    await conn.execute(
                        "INSERT INTO schema_migrations (version, checksum) VALUES ($1, $2)",
                        migration.version,
                        migration.checksum,
                    )
        finally:
            if not conn.is_closed():  # a lost connection has released the lock already
                await conn.execute("SELECT pg_advisory_unlock($1)", ADVISORY_LOCK_KEY)
    return [m.version for m in pending]


def _pending(migrations: list[Migration], applied: dict[str, str]) -> list[Migration]:
    known = {m.version for m in migrations}
    unknown = sorted(set(applied) - known)
    if unknown:
        raise MigrationError(
            f"the database has migrations this code does not know: {', '.join(unknown)}"
        )
    for m in migrations:
        if m.version in applied and applied[m.version] != m.checksum:
            raise MigrationError(
                f"{m.version} was changed after it was applied: add a new migration instead"
            )
    return [m for m in migrations if m.version not in applied]


async def migrate(settings: DatabaseSettings, directory: Path = MIGRATIONS_DIR) -> list[str]:
    """Bring the database to the latest schema; returns the versions applied now.

    As the owner (`settings.migration_url`) when one is set, then granting the runtime role of
    `settings.url` its rights (`storage.roles`); otherwise as the runtime role itself, which
    then owns the tables (a single-role setup: its audit log is not tamper-evident).
    """
    migrations = load_migrations(directory)
    runtime_role = role_of(settings.url.get_secret_value())
    owner = settings.migration_url
    conn = await connect(settings, statement_timeout_seconds=MIGRATION_TIMEOUT_SECONDS, url=owner)
    try:
        applied = await apply_migrations(conn, migrations)
        if owner is not None and runtime_role is not None:
            with translated():
                if runtime_role != await conn.fetchval("SELECT current_user"):
                    await grant_runtime(conn, runtime_role)
        return applied
    finally:
        with translated():
            await conn.close()
