"""Python's garbage collector, watched and kept short: how long each collection stops the process.

A collection runs inside whatever allocation triggered it and holds the GIL: every request of
the process waits. `GcWatch` times each one through `gc.callbacks`, logs those slower than
`slow_ms` (a pause worth naming when a p99 jumps), and hands the longest pause and the total
time of each interval to the gauges (`ops/gauges.py`).

`freeze_startup` moves everything alive once a process has started (modules, clients, settings:
objects that live as long as the process) out of the collector's reach (`gc.freeze`), so a full
collection traverses only what was allocated since. The bench found a 119 ms full collection in
the processor behind its only stall of a run (docs/benchmark.md, sixth wave).
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Iterable
from typing import Any

from payment_service.ops import metric_catalog as catalog
from payment_service.ops.metric_catalog import Metric

log = logging.getLogger(__name__)
# A pause shorter than this is noise beside a payment's ~20 ms; longer ones are logged.
SLOW_MS = 10.0


def freeze_startup() -> None:
    """Collect once, then exempt every surviving object from later collections (`gc.freeze`)."""
    gc.collect()
    gc.freeze()
    log.info("garbage collector: %d startup objects frozen", gc.get_freeze_count())


class GcWatch:
    """Times collections while installed; `sample` returns and resets the interval's figures."""

    def __init__(self, slow_ms: float = SLOW_MS) -> None:
        self._slow_s = slow_ms / 1000
        self._started = 0.0
        self._longest = 0.0
        self._total = 0.0

    def install(self) -> GcWatch:
        gc.callbacks.append(self._on_collection)
        return self

    def remove(self) -> None:
        gc.callbacks.remove(self._on_collection)

    def __enter__(self) -> GcWatch:
        return self.install()

    def __exit__(self, *exc: object) -> None:
        self.remove()

    def _on_collection(self, phase: str, info: dict[str, Any]) -> None:
        # Collections never overlap (the GIL and the collector's own flag), so one clock will do.
        if phase == "start":
            self._started = time.perf_counter()
            return
        pause = time.perf_counter() - self._started
        self._total += pause
        self._longest = max(self._longest, pause)
        if pause >= self._slow_s:
            log.info(
                "garbage collection of generation %d paused the process for %.1f ms",
                info["generation"], pause * 1000,
                extra={"gc_generation": info["generation"], "pause_ms": round(pause * 1000, 1),
                       "collected": info["collected"]},
            )  # fmt: skip

    def sample(self) -> Iterable[tuple[Metric, float]]:
        longest, total = self._longest, self._total
        self._longest = self._total = 0.0
        return ((catalog.GC_PAUSE_MAX, longest * 1000), (catalog.GC_TIME, total * 1000))
