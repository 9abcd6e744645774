"""Who may do what in the database: the owner migrates, the runtime role only works.

Migrations run as the owner role (`DATABASE_MIGRATION_URL`); the processes connect as the runtime
role (`DATABASE_URL`). After each run the migrator grants the runtime role, on every table of
the schema, what the service needs, and on the append-only tables (the audit logs: payments',
custody's, the producer registry's; recorded refusals) no more than INSERT and SELECT. Not
being their owner, the runtime role cannot disable their triggers, alter or drop them either.
The grants are repeated on every run, so tables that later migrations add are covered without
naming a role in any SQL file.
"""

from __future__ import annotations

from typing import Final
from urllib.parse import unquote, urlsplit

import asyncpg

# Rows here are evidence: written once, never changed (their triggers refuse it as well).
APPEND_ONLY: Final = ("audit_log", "custody_audit", "producer_audit", "refusals")
# The migrator's own bookkeeping: the runtime role may read it, never change it.
READ_ONLY: Final = ("schema_migrations",)


_REVOKED: Final = {False: "UPDATE, DELETE", True: "INSERT, UPDATE, DELETE"}


def role_of(url: str) -> str | None:
    """The user name in a PostgreSQL URL (None: the URL names none, libpq's default applies)."""
    user = urlsplit(url).username
    return unquote(user) if user else None


def quote_ident(name: str) -> str:
    """An SQL identifier quoted by PostgreSQL's rule (doubled quotes), so any name is safe."""
    if not name or "\x00" in name:
        raise ValueError(f"not an SQL identifier: {name!r}")
    return '"' + name.replace('"', '""') + '"'


async def grant_runtime(conn: asyncpg.Connection, runtime_role: str) -> None:
    """Give `runtime_role` read/write on the schema's tables, append-only where it must be."""
    role = quote_ident(runtime_role)
    schema = quote_ident(await conn.fetchval("SELECT current_schema()"))
    present = await conn.fetch(
        "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
        " AND tablename = ANY($1::text[])",
        [*APPEND_ONLY, *READ_ONLY],
    )
    # Identifiers only, each quoted; no value is ever spliced into these statements.
    statements = [
        f"GRANT USAGE ON SCHEMA {schema} TO {role}",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {schema} TO {role}",
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {schema} TO {role}",
        f"REVOKE TRUNCATE, REFERENCES, TRIGGER ON ALL TABLES IN SCHEMA {schema} FROM {role}",
        *(
            f"REVOKE {_REVOKED[r['tablename'] in READ_ONLY]} ON"
            f" {schema}.{quote_ident(r['tablename'])} FROM {role}"
            for r in present
        ),
    ]
    async with conn.transaction():
        for statement in statements:
            await conn.execute(statement)
