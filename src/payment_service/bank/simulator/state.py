"""What one simulator process holds, and how it is built from the settings.

The books live in the ledger file (`BANKSIM_LEDGER_PATH`) and survive a restart; faults, latency
and the request counters are the process's own and start afresh.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field

from aiohttp import web

from payment_service.bank.simulator.books import Books
from payment_service.bank.simulator.faults import FaultBook, FaultSpec, Latency
from payment_service.config.settings import BankSimSettings


@dataclass(slots=True)
class Simulator:
    settings: BankSimSettings
    books: Books
    faults: FaultBook
    latency: Latency
    # Requests received per operation, and faults injected per mode, since start or reset.
    received: Counter[str] = field(default_factory=Counter)
    injected: Counter[str] = field(default_factory=Counter)

    async def reset(self) -> None:
        """Back to the state at start: empty books, start-up faults and latency, zero counters."""
        await self.books.reset()
        self.faults.clear()
        _add_startup_faults(self.faults, self.settings)
        self.latency.set(self.settings.latency_ms, self.settings.jitter_ms)
        self.received.clear()
        self.injected.clear()


SIMULATOR = web.AppKey("simulator", Simulator)


def build_simulator(settings: BankSimSettings) -> Simulator:
    """A fresh simulator with the configured latency and start-up faults (invalid ones raise)."""
    # Not security: reproducible jitter and fault draws when a seed is given.
    rng = random.Random(settings.seed)  # noqa: S311
    faults = FaultBook(rng)
    _add_startup_faults(faults, settings)
    return Simulator(
        settings=settings,
        books=Books(settings.ledger_path),
        faults=faults,
        latency=Latency(rng, settings.latency_ms, settings.jitter_ms),
    )


def _add_startup_faults(faults: FaultBook, settings: BankSimSettings) -> None:
    for rule in settings.faults:
        faults.add(FaultSpec.model_validate(rule))
