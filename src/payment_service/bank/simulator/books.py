"""The simulated acquirer's books: idempotent execution over the ledger on disk, and its reads.

A request executes at most once per idempotency key, across restarts. The per-key lock makes a
concurrent duplicate wait while the first takes its processing delay and commits, then replay
it. A first request cancelled while its batch commits has already written its entry, which the
next request under the key reads (the store's reads see the open batch), so it replays too; the
ledger's unique key is the last guard.

Request bodies are compared through a keyed HMAC whose key is kept in the ledger file, so a
stored fingerprint cannot be brute-forced back to a card, and a replay after a restart still
matches its first request.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import sqlite3
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import Any

from payment_service.bank.simulator.ledger import (
    ENTRY_COLUMNS,
    KEY_REUSE,
    Answer,
    KeyedLocks,
    LedgerEntry,
    Txn,
)
from payment_service.bank.simulator.store import LedgerStore
from payment_service.core.banking import BankAuthorization, BankInquiry, BankOperation

Commit = Callable[[Txn], Answer]

_STORED = "SELECT fingerprint, answer_status, answer_body FROM ledger WHERE idempotency_key = ?"
_TOTALS = ("authorized_minor", "captured_minor", "refunded_minor", "released_minor")
_ENTRIES = f"SELECT {', '.join(ENTRY_COLUMNS)} FROM ledger"  # noqa: S608 (constant columns)


class Books:
    """The acquirer's state, in the SQLite file at `path`. `reset()` empties it."""

    def __init__(self, path: Path) -> None:
        self._store = LedgerStore(path)
        self._secret = self._store.fingerprint_key
        self._locks = KeyedLocks()

    @property
    def path(self) -> Path:
        return self._store.path

    def close(self) -> None:
        self._store.close()

    async def reset(self) -> None:
        await self._store.write(_clear)

    def fingerprint(self, operation: str, body: Any) -> bytes:
        """A keyed digest of the request, insensitive to key order and whitespace."""
        canonical = json.dumps([operation, body], sort_keys=True, separators=(",", ":"))
        return hmac.new(self._secret, canonical.encode(), hashlib.sha256).digest()

    async def execute(
        self,
        key: str,
        fingerprint: bytes,
        commit: Commit,
        processing: Callable[[], Awaitable[None]],
    ) -> tuple[Answer, bool]:
        """Execute `commit` once per idempotency key; returns the answer and whether it is a replay.

        Same key and same request: the first answer again, no new ledger entry. Same key, other
        request: 422 `idempotency_key_reuse`, nothing executed. The processing delay is taken
        by first executions only.
        """
        async with self._locks.hold(key):
            stored = self._store.read(_STORED, (key,))
            if stored:
                first = stored[0]
                if not hmac.compare_digest(bytes(first["fingerprint"]), fingerprint):
                    return KEY_REUSE, False
                await self._store.write(partial(_count_replay, key))
                return Answer(first["answer_status"], bytes(first["answer_body"])), True
            await processing()
            answer = await self._store.write(lambda conn: commit(Txn(conn, key, fingerprint)))
            return answer, False

    async def inquiry(self, reference: str) -> BankInquiry | None:
        """What was executed for `reference`, or None when nothing was (once committed)."""
        entries = await self.entries(reference)
        if not entries:
            return None
        accounts = self._store.read("SELECT * FROM accounts WHERE reference = ?", (reference,))
        holds = self._store.read(
            "SELECT * FROM authorizations WHERE reference = ? ORDER BY opened_seq",
            (reference,),
        )
        totals = {name: accounts[0][name] for name in _TOTALS} if accounts else {}
        return BankInquiry(
            reference=reference,
            **totals,
            operations=tuple(BankOperation.model_validate(e.to_json()) for e in entries),
            authorizations=tuple(BankAuthorization.model_validate(dict(h)) for h in holds),
        )

    async def entries(
        self, reference: str | None = None, operation: str | None = None
    ) -> list[LedgerEntry]:
        """Ledger entries in execution order, filtered by reference and/or operation.

        Read at once, returned once committed: never an entry that a crash could still undo.
        """
        where, params = [], []
        if reference is not None:
            where.append("reference = ?")
            params.append(reference)
        if operation is not None:
            where.append("operation = ?")
            params.append(operation)
        sql = _ENTRIES + (f" WHERE {' AND '.join(where)}" if where else "") + " ORDER BY seq"
        entries = [LedgerEntry.from_row(row) for row in self._store.read(sql, params)]
        await self._store.committed()
        return entries

    async def count(self) -> int:
        count = int(self._store.read("SELECT count(*) FROM ledger")[0][0])
        await self._store.committed()
        return count


def _count_replay(key: str, conn: sqlite3.Connection) -> None:
    conn.execute("UPDATE ledger SET replays = replays + 1 WHERE idempotency_key = ?", (key,))


def _clear(conn: sqlite3.Connection) -> None:
    for table in ("ledger", "authorizations", "accounts"):
        conn.execute(f"DELETE FROM {table}")  # noqa: S608 (fixed table names)
