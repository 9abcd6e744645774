"""Fault injection and latency for the simulator: which request fails, and how.

A fault targets requests by operation (authorize, sale, capture, void, refund, inquiry),
optionally by our reference, with a probability, for at most `count` occurrences. The first
active fault that matches a request decides its fate; a request draws at most one fault.

Modes, and what the bank has done when the client sees them:
  error_before_commit  5xx, nothing executed
  reset                connection reset (TCP RST) before executing; nothing executed
  delay                wait `delay_ms` before executing, then answer normally
  error_after_commit   executed and recorded, then 5xx instead of the answer
  reset_after_commit   executed and recorded, then connection reset
  hang_after_commit    executed and recorded, then the answer waits `delay_ms` (default 10 min)
  slow_body            executed and recorded, headers at once, the body trickled in small chunks
                       every `delay_ms` (default 200 ms)
"""

from __future__ import annotations

import asyncio
import random
import secrets
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

FaultMode = Literal[
    "error_before_commit",
    "reset",
    "delay",
    "error_after_commit",
    "reset_after_commit",
    "hang_after_commit",
    "slow_body",
]
FaultOperation = Literal["authorize", "sale", "capture", "void", "refund", "inquiry"]
BEFORE_COMMIT: frozenset[str] = frozenset({"error_before_commit", "reset", "delay"})

_DEFAULT_DELAY_MS: dict[str, float] = {
    "delay": 1_000.0,
    "hang_after_commit": 600_000.0,
    "slow_body": 200.0,
}


class FaultSpec(BaseModel):
    """One fault rule, as posted to `POST /sim/faults` or listed in `BANKSIM_FAULTS`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: FaultMode
    operations: tuple[FaultOperation, ...] = (
        "authorize",
        "sale",
        "capture",
        "void",
        "refund",
        "inquiry",
    )
    references: tuple[str, ...] | None = None
    probability: float = Field(default=1.0, ge=0.0, le=1.0)
    count: int | None = Field(default=None, ge=1)
    status: int = Field(default=500, ge=500, le=599)
    delay_ms: float | None = Field(default=None, ge=0.0)

    @property
    def delay_seconds(self) -> float:
        ms = self.delay_ms if self.delay_ms is not None else _DEFAULT_DELAY_MS.get(self.mode, 0.0)
        return ms / 1000.0


@dataclass(slots=True)
class ActiveFault:
    id: str
    spec: FaultSpec
    remaining: int | None
    hits: int = 0

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "remaining": self.remaining,
            "hits": self.hits,
            **self.spec.model_dump(mode="json"),
        }


class FaultBook:
    """The active faults, in the order they were added."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._faults: list[ActiveFault] = []

    def add(self, spec: FaultSpec) -> ActiveFault:
        fault = ActiveFault(id=f"flt_{secrets.token_hex(6)}", spec=spec, remaining=spec.count)
        self._faults.append(fault)
        return fault

    def remove(self, fault_id: str) -> bool:
        before = len(self._faults)
        self._faults = [f for f in self._faults if f.id != fault_id]
        return len(self._faults) < before

    def clear(self) -> None:
        self._faults.clear()

    def active(self) -> list[ActiveFault]:
        return list(self._faults)

    def draw(self, operation: str, reference: str | None) -> FaultSpec | None:
        """The fault this request suffers, if any; counts it against the fault's budget."""
        for fault in self._faults:
            spec = fault.spec
            if fault.remaining == 0 or operation not in spec.operations:
                continue
            if spec.references is not None and reference not in spec.references:
                continue
            if spec.probability < 1.0 and self._rng.random() >= spec.probability:
                continue
            fault.hits += 1
            if fault.remaining is not None:
                fault.remaining -= 1
            return spec
        return None


class Latency:
    """The bank's processing time: uniform in [mean - jitter, mean + jitter] ms, never negative."""

    def __init__(self, rng: random.Random, mean_ms: float, jitter_ms: float) -> None:
        self._rng = rng
        self.set(mean_ms, jitter_ms)

    def set(self, mean_ms: float, jitter_ms: float) -> None:
        if mean_ms < 0 or jitter_ms < 0:
            raise ValueError("latency and jitter must be >= 0")
        self.mean_ms = mean_ms
        self.jitter_ms = jitter_ms

    def draw_seconds(self) -> float:
        spread = self._rng.uniform(-self.jitter_ms, self.jitter_ms) if self.jitter_ms else 0.0
        return max(0.0, self.mean_ms + spread) / 1000.0

    async def sleep(self) -> None:
        delay = self.draw_seconds()
        if delay > 0:
            await asyncio.sleep(delay)
