"""The simulator's records: ledger entries, answers as sent, the per-key locks, the write handle.

The ledger keeps the card's brand and last four digits only, never the number or the code.
Each entry also holds its idempotency record: the request's keyed fingerprint and the answer as
sent, so a replay after a restart is byte for byte the first answer.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Any, Literal

from payment_service.bank.simulator.issuer import Verdict

Outcome = Literal["approved", "declined", "rejected"]


@dataclass(slots=True)
class LedgerEntry:
    """One executed operation. Replays of it add to `replays`, never a new entry."""

    seq: int
    created_at: datetime
    idempotency_key: str
    reference: str
    operation: str
    amount_minor: int
    currency: str
    outcome: Outcome
    http_status: int
    response_code: str | None = None
    decline_code: str | None = None
    error_code: str | None = None
    message: str = ""
    authorization_id: str | None = None
    bank_transaction_id: str | None = None
    refund_reference: str | None = None
    card_brand: str | None = None
    card_last4: str | None = None
    replays: int = 0

    def to_json(self) -> dict[str, Any]:
        # Not dataclasses.asdict: its deep copy was the simulator's largest CPU cost per entry.
        data = {name: getattr(self, name) for name in ENTRY_COLUMNS}
        data["created_at"] = self.created_at.isoformat()
        return data

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> LedgerEntry:
        values = {name: row[name] for name in ENTRY_COLUMNS}
        values["created_at"] = datetime.fromisoformat(values["created_at"])
        return cls(**values)


ENTRY_COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(LedgerEntry))
_INSERT_COLUMNS = (*ENTRY_COLUMNS[1:], "fingerprint", "answer_status", "answer_body")
# Constant column names; the values are bound as parameters.
_COLUMN_LIST = ", ".join(_INSERT_COLUMNS)
_PLACEHOLDERS = ", ".join("?" for _ in _INSERT_COLUMNS)
_INSERT = f"INSERT INTO ledger ({_COLUMN_LIST}) VALUES ({_PLACEHOLDERS})"  # noqa: S608


@dataclass(frozen=True, slots=True)
class Answer:
    """An HTTP answer as sent, so a replay is byte-for-byte the first one."""

    status: int
    body: bytes


@dataclass(frozen=True, slots=True)
class Rejection:
    """A refused operation: executed and recorded, answered with this error."""

    status: int
    code: str
    message: str


class Txn:
    """One request's writes inside the writer's transaction: it records the entry under its key."""

    def __init__(self, conn: sqlite3.Connection, key: str, fingerprint: bytes) -> None:
        self.conn = conn
        self.key = key
        self.fingerprint = fingerprint
        self.seq = 0  # the entry's, once recorded

    def one(self, sql: str, *params: Any) -> sqlite3.Row | None:
        row: sqlite3.Row | None = self.conn.execute(sql, params).fetchone()
        return row

    def run(self, sql: str, *params: Any) -> None:
        self.conn.execute(sql, params)

    def record(
        self,
        operation: str,
        reference: str,
        amount_minor: int,
        currency: str,
        verdict: Verdict | Rejection,
        **extra: Any,
    ) -> Answer:
        """Append the ledger entry with its idempotency record; the answer to send."""
        if isinstance(verdict, Rejection):
            extra.update(
                outcome="rejected",
                http_status=verdict.status,
                error_code=verdict.code,
                message=verdict.message,
            )
        else:
            extra.update(
                outcome="approved" if verdict.approved else "declined",
                http_status=200,
                response_code=verdict.response_code,
                decline_code=verdict.decline_code,
                message=verdict.message,
            )
        entry = LedgerEntry(
            seq=0,  # assigned by the insert
            created_at=datetime.now(UTC),
            idempotency_key=self.key,
            reference=reference,
            operation=operation,
            amount_minor=amount_minor,
            currency=currency,
            **extra,
        )
        if isinstance(verdict, Rejection):
            answer = error_answer(verdict.status, verdict.code, verdict.message)
        else:
            answer = _result(entry)
        values = [*_entry_values(entry), self.fingerprint, answer.status, answer.body]
        self.seq = self.conn.execute(_INSERT, values).lastrowid or 0
        return answer


def _entry_values(entry: LedgerEntry) -> list[Any]:
    return [
        entry.created_at.isoformat() if name == "created_at" else getattr(entry, name)
        for name in ENTRY_COLUMNS[1:]
    ]


def _result(entry: LedgerEntry) -> Answer:
    body: dict[str, Any] = {
        "reference": entry.reference,
        "operation": entry.operation,
        "approved": entry.outcome == "approved",
        "status": entry.outcome,
        "response_code": entry.response_code,
        "decline_code": entry.decline_code,
        "message": entry.message,
        "authorization_id": entry.authorization_id,
        "bank_transaction_id": entry.bank_transaction_id,
        "refund_reference": entry.refund_reference,
        "amount_minor": entry.amount_minor,
        "currency": entry.currency,
    }
    if entry.card_last4 is not None:
        body["card"] = {"brand": entry.card_brand, "last4": entry.card_last4}
    return Answer(200, json_bytes(body))


@dataclass(slots=True)
class _Slot:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0


class KeyedLocks:
    """One asyncio lock per key, dropped when nobody holds or waits for it."""

    def __init__(self) -> None:
        self._slots: dict[str, _Slot] = {}

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        slot = self._slots.setdefault(key, _Slot())
        slot.users += 1
        try:
            async with slot.lock:
                yield
        finally:
            slot.users -= 1
            if slot.users == 0:
                del self._slots[key]


def json_bytes(data: Any) -> bytes:
    return json.dumps(data, separators=(",", ":")).encode()


def error_answer(status: int, code: str, message: str) -> Answer:
    return Answer(status, json_bytes({"error": {"code": code, "message": message}}))


KEY_REUSE = error_answer(
    422, "idempotency_key_reuse", "this Idempotency-Key was already used with a different request"
)
