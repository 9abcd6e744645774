"""The simulator's books on disk: one SQLite file in WAL mode, written in group commits.

- **Writes run on the event loop, synchronously.** A write job's statements are point lookups and
  inserts of a few rows (tens of microseconds); running them inline keeps the amount rules
  check-then-commit with nothing in between (no await, no second writer), as the in-memory books
  had it. A thread would need the GIL for the same work: measured, it doubled the CPU per request.
- **Group commit.** The first write of a loop iteration opens a transaction and schedules its
  COMMIT for the next iteration; every write until then joins it, each in its own SAVEPOINT (a
  failing job rolls back only itself). A job's caller gets its result only after that COMMIT, so
  nothing is answered that a restart could lose. Reads may see a batch not yet committed: a
  reader that answers from them awaits `committed()` first.
- **Durability.** WAL with `synchronous=OFF`: a commit is a write() into the OS's cache, with no
  fsync, so a killed simulator (the restart the tests inject) loses nothing, and a power cut may.
  With `synchronous=NORMAL` each checkpoint fsyncs, and on this loop that stalled answers by up to
  70 ms; a background checkpointer cannot keep up under steady load, so the WAL grew without bound.
- **Bounded memory.** Everything lives in the file; the page cache is capped, and SQLite's automatic
  checkpoint (every 1000 pages) keeps the WAL file small.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")

SCHEMA_VERSION = "1"
_CACHE_KIB = 8 * 1024  # page cache (SQLite's default is 2 MiB)
_BUSY_TIMEOUT_MS = 5_000

_SCHEMA = """
-- Tables keyed by text are WITHOUT ROWID: one b-tree each instead of two.
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS ledger (
    seq INTEGER PRIMARY KEY,
    created_at TEXT NOT NULL,
    idempotency_key TEXT NOT NULL UNIQUE,
    fingerprint BLOB NOT NULL,
    answer_status INTEGER NOT NULL,
    answer_body BLOB NOT NULL,
    reference TEXT NOT NULL,
    operation TEXT NOT NULL,
    amount_minor INTEGER NOT NULL,
    currency TEXT NOT NULL,
    outcome TEXT NOT NULL,
    http_status INTEGER NOT NULL,
    response_code TEXT,
    decline_code TEXT,
    error_code TEXT,
    message TEXT NOT NULL,
    authorization_id TEXT,
    bank_transaction_id TEXT,
    refund_reference TEXT,
    card_brand TEXT,
    card_last4 TEXT,
    replays INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS ledger_by_reference ON ledger (reference, seq);
CREATE TABLE IF NOT EXISTS authorizations (
    authorization_id TEXT PRIMARY KEY,
    opened_seq INTEGER NOT NULL,  -- the ledger entry that placed the hold
    reference TEXT NOT NULL,
    amount_minor INTEGER NOT NULL,
    currency TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('open', 'captured', 'voided')),
    captured_minor INTEGER NOT NULL DEFAULT 0,
    released_minor INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS authorizations_by_reference ON authorizations (reference);
CREATE TABLE IF NOT EXISTS accounts (
    reference TEXT PRIMARY KEY,
    currency TEXT NOT NULL,
    authorized_minor INTEGER NOT NULL DEFAULT 0,
    captured_minor INTEGER NOT NULL DEFAULT 0,
    refunded_minor INTEGER NOT NULL DEFAULT 0,
    released_minor INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
"""


class LedgerSchemaError(RuntimeError):
    """The ledger file was written by another schema version."""


def _connect(path: Path) -> sqlite3.Connection:
    # Autocommit mode: transactions are begun and ended explicitly by the store.
    conn = sqlite3.connect(path, isolation_level=None)
    conn.row_factory = sqlite3.Row
    conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
    conn.execute(f"PRAGMA cache_size = -{_CACHE_KIB}")
    conn.execute("PRAGMA synchronous = OFF")
    return conn


def _prepare(conn: sqlite3.Connection, path: Path) -> bytes:
    """Create or check the schema; the body-fingerprint key, kept with the data it protects."""
    conn.execute("PRAGMA journal_mode = WAL")
    conn.executescript(_SCHEMA)
    conn.execute("BEGIN IMMEDIATE")
    rows = dict(conn.execute("SELECT name, value FROM meta").fetchall())
    version = rows.get("schema_version")
    if version is not None and version != SCHEMA_VERSION:
        conn.execute("ROLLBACK")
        raise LedgerSchemaError(
            f"{path} holds ledger schema {version}, this simulator writes {SCHEMA_VERSION}: "
            "move the file away (or set BANKSIM_LEDGER_PATH) to start empty"
        )
    if version is None:
        secret = secrets.token_bytes(32)
        conn.executemany(
            "INSERT INTO meta (name, value) VALUES (?, ?)",
            [("schema_version", SCHEMA_VERSION), ("fingerprint_key", secret)],
        )
    else:
        secret = bytes(rows["fingerprint_key"])
    conn.execute("COMMIT")
    return secret


class LedgerStore:
    """The SQLite file behind the books: `write` jobs in group commits, `read` at once."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._conn = _connect(path)
        self.fingerprint_key = _prepare(self._conn, path)
        self._batch: asyncio.Future[None] | None = None

    async def write(self, run: Callable[[sqlite3.Connection], T]) -> T:
        """Run `run(conn)` in the open transaction (no await inside); its result once committed.

        Cancelling the caller does not undo the job: what it wrote is committed with its batch.
        """
        batch = self._open_batch()
        conn = self._conn
        conn.execute("SAVEPOINT job")
        try:
            result = run(conn)
        except BaseException:
            conn.execute("ROLLBACK TO job")
            conn.execute("RELEASE job")
            raise
        conn.execute("RELEASE job")
        await asyncio.shield(batch)  # one caller's cancellation must not fail the whole batch
        return result

    def read(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        """A query at once (short, indexed queries only); may see the batch not yet committed."""
        return self._conn.execute(sql, params).fetchall()

    async def committed(self) -> None:
        """Wait until everything written so far is committed."""
        if self._batch is not None:
            await asyncio.shield(self._batch)

    def close(self) -> None:
        """Commit what is pending and close the file."""
        if self._batch is not None:
            self._commit()
        self._conn.close()

    def _open_batch(self) -> asyncio.Future[None]:
        if self._batch is None:
            loop = asyncio.get_running_loop()
            self._conn.execute("BEGIN IMMEDIATE")
            self._batch = loop.create_future()
            loop.call_soon(self._commit)
        return self._batch

    def _commit(self) -> None:
        batch, self._batch = self._batch, None
        if batch is None:
            return
        try:
            self._conn.execute("COMMIT")
        except sqlite3.Error as exc:
            logger.exception("bank simulator ledger: commit failed; the batch is lost")
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            batch.set_exception(exc)
            batch.exception()  # retrieved here: every waiter gets it, none must be left to warn
            return
        batch.set_result(None)
