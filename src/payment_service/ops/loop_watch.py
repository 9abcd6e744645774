"""An event loop watched from outside: how long it was held, and by what code.

Every command of the processor runs on one loop (`processor-io`), every request of the API on
another; while one callback runs, everything else on that loop waits. `LoopWatch` schedules a
beat on the loop every `period_s`, and a daemon thread checks it. A beat later than `held_ms`
means the loop is held: the thread then samples the loop thread's stack (`sys._current_frames`:
code locations only, never a value) each period until the beat comes back, and logs one line
per hold with its length and the stacks it saw most.

A hold has two shapes, and the samples tell them apart: one callback running long (the same
stack in every sample: a blocking call, a long computation) or a loop saturated by many short
ones (different stacks). A watch thread that cannot get the GIL samples late, which is itself
a finding: something held the GIL, not just the loop.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import threading
import time
from collections import Counter
from types import FrameType

log = logging.getLogger(__name__)
# A command takes ~20 ms of CPU; a loop held 5 times that is a pause worth naming.
HELD_MS = 100.0
PERIOD_S = 0.02
_FRAMES = 6  # innermost frames kept per sample


class LoopWatch:
    """Watches `loop` while installed (install from any thread; the loop must be running)."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        name: str,
        *,
        held_ms: float = HELD_MS,
        period_s: float = PERIOD_S,
    ) -> None:
        self._loop = loop
        self._name = name
        self._held_s = held_ms / 1000
        self._period = period_s
        self._stop = threading.Event()
        self._last = time.monotonic()
        self._loop_thread: int | None = None
        self._beat_handle: asyncio.TimerHandle | None = None
        self._watcher = threading.Thread(target=self._watch, name=f"{name}-watch", daemon=True)

    def install(self) -> LoopWatch:
        self._loop.call_soon_threadsafe(self._first_beat)
        self._watcher.start()
        return self

    def remove(self) -> None:
        self._stop.set()
        self._watcher.join(1.0)
        if self._beat_handle is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._beat_handle.cancel)

    def _first_beat(self) -> None:
        self._loop_thread = threading.get_ident()
        self._beat()

    def _beat(self) -> None:
        self._last = time.monotonic()
        if not self._stop.is_set():
            self._beat_handle = self._loop.call_later(self._period, self._beat)

    def _watch(self) -> None:
        due: float | None = None  # when the late beat was due, while the loop is held
        beat_seen = 0.0
        samples: Counter[str] = Counter()
        while not self._stop.wait(self._period):
            last = self._last
            if due is None and time.monotonic() - last - self._period >= self._held_s:
                due, beat_seen = last + self._period, last
            if due is None:
                continue
            if last == beat_seen:  # still held
                samples[self._sample()] += 1
                continue
            self._report(last - due, samples)
            due, samples = None, Counter()

    def _sample(self) -> str:
        frame = sys._current_frames().get(self._loop_thread or -1)
        return _where(frame) if frame is not None else "(no frame)"

    def _report(self, held_s: float, samples: Counter[str]) -> None:
        if held_s < self._held_s:
            return
        seen = sum(samples.values())
        top = [f"{count}/{seen} {stack}" for stack, count in samples.most_common(3)]
        log.info(
            "event loop %s held for %.0f ms", self._name, held_s * 1000,
            extra={"loop": self._name, "held_ms": round(held_s * 1000, 1), "samples": seen,
                   "stacks": top},
        )  # fmt: skip


def _where(frame: FrameType) -> str:
    """The innermost frames as `file:line function`, innermost first."""
    parts: list[str] = []
    current: FrameType | None = frame
    while current is not None and len(parts) < _FRAMES:
        code = current.f_code
        parts.append(f"{os.path.basename(code.co_filename)}:{current.f_lineno} {code.co_name}")
        current = current.f_back
    return " < ".join(parts)
