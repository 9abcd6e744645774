"""The audit feed's port: audit rows in commit order past a cursor (storage/audit_feed.py).

A position is `(xid, id)`: the writing transaction's id, then the row's. The relay
(streams/audit_relay.py) publishes what the feed returns and saves its cursor past it.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any, Final, Protocol

Position = tuple[int, int]
BEGINNING: Final[Position] = (0, 0)


@dataclass(frozen=True)
class AuditRow:
    """One audit row as it is published."""

    id: int
    xid: int
    event_id: uuid.UUID
    transaction_id: str
    refund_id: str | None
    merchant_id: str
    action: str
    from_status: str | None
    to_status: str | None
    amount_minor: int | None
    currency: str | None
    correlation_id: str | None
    actor: str | None
    details: dict[str, Any]
    created_at: dt.datetime

    @property
    def position(self) -> Position:
        """Its place in commit order: the cursor after it."""
        return self.xid, self.id


@dataclass(frozen=True)
class Lag:
    rows: int
    seconds: float


class AuditFeed(Protocol):
    async def after(self, position: Position, limit: int) -> list[AuditRow]: ...

    async def behind(self, position: Position, bound: int) -> Lag: ...

    async def end(self) -> Position: ...

    async def upgrade(self) -> Position: ...

    async def cursor(self, name: str) -> Position | None: ...

    async def save(self, name: str, position: Position) -> None: ...
