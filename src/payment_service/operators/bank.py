"""The bank's record, as the operators' tools read it: no call here ever moves money.

Two sources with one shape (a reference's executed operations as dicts with `operation`,
`idempotency_key`, `outcome`, `amount_minor`, ...):

- `SimulatorLedger`: the bank simulator's whole ledger in one `GET /sim/ledger`.
- `Inquiries`: one status inquiry per reference through the `BankClient` port (a real
  acquirer has no ledger endpoint), a few at a time.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Iterable
from typing import Any, Final, Protocol

import aiohttp

from payment_service.core.ports import BankClient

Operations = dict[str, list[dict[str, Any]]]
LEDGER_TIMEOUT_SECONDS: Final = 60.0
INQUIRY_CONCURRENCY: Final = 8


class BankRecord(Protocol):
    async def operations(self, references: Iterable[str]) -> Operations:
        """Executed operations by reference (a reference the bank does not know: absent)."""
        ...


class SimulatorLedger:
    def __init__(self, bank_url: str) -> None:
        self._url = bank_url.rstrip("/") + "/sim/ledger"

    async def operations(self, references: Iterable[str]) -> Operations:
        wanted = set(references)
        return {ref: ops for ref, ops in (await self.all_operations()).items() if ref in wanted}

    async def all_operations(self) -> Operations:
        """Every reference the ledger holds (verify also looks for charges with no row)."""
        timeout = aiohttp.ClientTimeout(total=LEDGER_TIMEOUT_SECONDS)
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.get(self._url) as response,
        ):
            response.raise_for_status()
            entries = (await response.json())["entries"]
        found: Operations = defaultdict(list)
        for entry in entries:
            found[entry["reference"]].append(entry)
        return dict(found)


class Inquiries:
    def __init__(self, bank: BankClient) -> None:
        self._bank = bank

    async def operations(self, references: Iterable[str]) -> Operations:
        slots = asyncio.Semaphore(INQUIRY_CONCURRENCY)

        async def one(reference: str) -> tuple[str, list[dict[str, Any]]]:
            async with slots:
                inquiry = await self._bank.inquire(reference)
            return reference, [op.model_dump(mode="json") for op in inquiry.operations]

        found = await asyncio.gather(*(one(r) for r in set(references)))
        return {reference: ops for reference, ops in found if ops}


async def simulator_answers(bank_url: str) -> bool:
    """Whether `bank_url` is our simulator (it has the ledger endpoint)."""
    try:
        timeout = aiohttp.ClientTimeout(total=5)
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.get(bank_url.rstrip("/") + "/sim/stats") as response,
        ):
            return response.status == 200
    except (aiohttp.ClientError, TimeoutError):
        return False


async def money_movements(bank_url: str) -> dict[str, int]:
    """The simulator's counters: requests received by operation (`/sim/stats`)."""
    timeout = aiohttp.ClientTimeout(total=10)
    async with (
        aiohttp.ClientSession(timeout=timeout) as session,
        session.get(bank_url.rstrip("/") + "/sim/stats") as response,
    ):
        response.raise_for_status()
        stats = await response.json()
    return {k: int(v) for k, v in stats["received"].items()} | {
        "ledger_entries": int(stats["ledger_entries"])
    }
