"""The simulator's records: ledger entries, answers as sent, and the per-key locks.

The ledger keeps the card's brand and last four digits only, never the number or the code.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Literal

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
        data = asdict(self)
        data["created_at"] = self.created_at.isoformat()
        return data


@dataclass(frozen=True, slots=True)
class Answer:
    """An HTTP answer as sent, so a replay is byte-for-byte the first one."""

    status: int
    body: bytes


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
