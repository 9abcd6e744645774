"""The port of refusals recorded before a payment had a row, beside `core.ports` (300 lines)."""

from __future__ import annotations

from typing import Protocol


class PaymentRefusals(Protocol):
    """Where a payment refused before it had a row keeps its final error, for GET and replays."""

    async def refuse(
        self,
        transaction_id: str,
        merchant_id: str,
        request_hash: str | None,
        code: str,
        message: str,
    ) -> None:
        """Record the refusal (it replaces the "accepted" marker); may raise on a store outage."""
