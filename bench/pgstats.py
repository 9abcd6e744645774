"""What PostgreSQL did during a run: checkpoints, autovacuum and autoanalyze, transactions.

Two snapshots of the statistics views (PostgreSQL 15: `pg_stat_bgwriter`), before and after a
run, and their difference: the candidates for a pause that the slowest answers of a second point
at, and the commits per payment (each is a WAL flush).
"""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg

_CHECKPOINTS = "SELECT checkpoints_timed + checkpoints_req FROM pg_stat_bgwriter"
_TABLES = (
    "SELECT relname, autovacuum_count, autoanalyze_count FROM pg_stat_user_tables"
    " WHERE autovacuum_count + autoanalyze_count > 0"
)
_DATABASE = (
    "SELECT xact_commit, xact_rollback, deadlocks FROM pg_stat_database"
    " WHERE datname = current_database()"
)


async def _snapshot(database_url: str) -> dict[str, Any]:
    conn = await asyncpg.connect(database_url, timeout=10)
    try:
        db = await conn.fetchrow(_DATABASE)
        return {
            "checkpoints": await conn.fetchval(_CHECKPOINTS),
            "tables": {
                r["relname"]: (r["autovacuum_count"], r["autoanalyze_count"])
                for r in await conn.fetch(_TABLES)
            },
            "commits": db["xact_commit"],
            "rollbacks": db["xact_rollback"],
            "deadlocks": db["deadlocks"],
        }
    finally:
        await conn.close()


def snapshot(database_url: str) -> dict[str, Any]:
    return asyncio.run(_snapshot(database_url))


def difference(before: dict[str, Any], after: dict[str, Any], payments: int) -> dict[str, Any]:
    """What happened in between; table counters of (autovacuum, autoanalyze) runs."""
    tables = {}
    for name, (vac, ana) in after["tables"].items():
        vac0, ana0 = before["tables"].get(name, (0, 0))
        if vac - vac0 or ana - ana0:
            tables[name] = {"autovacuum": vac - vac0, "autoanalyze": ana - ana0}
    commits = after["commits"] - before["commits"]
    return {
        "checkpoints": after["checkpoints"] - before["checkpoints"],
        "autovacuum": tables,
        "commits": commits,
        "commits_per_request": round(commits / max(1, payments), 2),
        "rollbacks": after["rollbacks"] - before["rollbacks"],
        "deadlocks": after["deadlocks"] - before["deadlocks"],
    }


def describe(r: dict[str, Any]) -> str:
    pg = r.get("postgres")
    if not pg:
        return ""
    vacuums = ", ".join(
        f"{t} ({v['autovacuum']} vacuum, {v['autoanalyze']} analyze)"
        for t, v in pg["autovacuum"].items()
    )
    return (
        f" PostgreSQL during the run: {pg['checkpoints']} checkpoints; autovacuum "
        f"{vacuums or 'none'}; {pg['commits_per_request']} transactions per request (with "
        "read-only ones: polls, this check)."
    )
