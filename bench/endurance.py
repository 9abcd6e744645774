"""Scenarios 5-7 (issue 14): the same load three times (stability), ten minutes of it (memory),
and more than the stack can take (overload).

- **5-stability**: three runs in a row at one rate; their p99s should agree within ±30 % of
  their mean. Each run records the slowest answer of every second, so a pause shows where it
  happened; the report lists the seconds well above the run's p99.
- **6-soak**: one long run (default 10 minutes) while every process's memory (PSS, summed over
  its process tree, so PostgreSQL's shared buffers count once) is sampled every 10 s; flat means
  the last minute's average is within a few percent of the second minute's (the first is
  warm-up: caches, pools, JIT).
- **7-overload**: twice what the stack sustains, with no backlog limit on the generator: the
  service should answer 503 `overloaded` at once to what it cannot take, keep the latency of
  what it takes bounded, and lose nothing it accepted (the run's `verify`).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.run import RunSpec

FAST_BANK = (1.0, 0.5)
PAGE = os.sysconf("SC_PAGE_SIZE")


def _pss_kib(pid: int) -> int:
    """Proportional set size of one process (KiB): shared pages split among their users."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        return 0
    return 0


def _children() -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            raw = Path(f"/proc/{entry.name}/stat").read_text()
        except OSError:
            continue
        ppid = int(raw[raw.rindex(")") + 2 :].split()[1])
        out.setdefault(ppid, []).append(int(entry.name))
    return out


def memory_mib(pids: dict[str, list[int]]) -> dict[str, float]:
    """Each component's memory (MiB of PSS over its process trees)."""
    children = _children()
    out = {}
    for name, roots in pids.items():
        total, todo, seen = 0, list(roots), set()
        while todo:
            pid = todo.pop()
            if pid in seen:
                continue
            seen.add(pid)
            total += _pss_kib(pid)
            todo.extend(children.get(pid, ()))
        out[name] = round(total / 1024, 1)
    return out


@dataclass
class MemorySampler:
    """`memory_mib` every `interval` seconds on a thread."""

    pids: dict[str, list[int]]
    interval: float = 10.0
    samples: list[tuple[float, dict[str, float]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="memory-sampler", daemon=True)
        self._t0 = time.monotonic()

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        while True:
            self.samples.append((round(time.monotonic() - self._t0, 1), memory_mib(self.pids)))
            if self._stop.wait(self.interval):
                return

    def summary(self) -> dict[str, Any]:
        """Per component: the series, and the second and last minute's averages."""
        out: dict[str, Any] = {"interval_s": self.interval, "components": {}}
        if not self.samples:
            return out
        end = self.samples[-1][0]
        for name in self.pids:
            series = [(t, m[name]) for t, m in self.samples if name in m]
            early = [v for t, v in series if 60 <= t < 120] or [series[0][1]]
            late = [v for t, v in series if t >= end - 60] or [series[-1][1]]
            a, b = sum(early) / len(early), sum(late) / len(late)
            out["components"][name] = {
                "second_minute_mib": round(a, 1),
                "last_minute_mib": round(b, 1),
                "change_pct": round((b - a) / a * 100, 1) if a else None,
                "max_mib": max(v for _, v in series),
                "series": series,
            }
        return out


Run = Callable[[RunSpec], dict[str, Any]]


def stability(run: Run, rate: float, repeats: int, duration: float, warmup: float) -> list[Any]:
    records = []
    for i in range(repeats):
        spec = RunSpec("5-stability", f"{rate:g}/s #{i + 1}", rate, duration, warmup, *FAST_BANK)
        records.append(run(spec))
    return records


def stability_verdict(records: list[dict[str, Any]]) -> dict[str, Any]:
    p99s = [r["latency_ms"]["all"].get("p99") for r in records]
    if not p99s or any(p is None for p in p99s):
        return {"p99s_ms": p99s, "within_30pct": False}
    mean = sum(p99s) / len(p99s)
    worst = max(abs(p - mean) / mean for p in p99s)
    return {
        "p99s_ms": p99s,
        "mean_ms": round(mean, 1),
        "worst_deviation_pct": round(worst * 100, 1),
        "within_30pct": worst <= 0.30,
    }


def soak(
    run: Run, pids: dict[str, list[int]], rate: float, duration: float, warmup: float
) -> dict[str, Any]:
    spec = RunSpec("6-soak", f"{rate:g}/s for {duration / 60:g} min", rate, duration, warmup,
                   *FAST_BANK)  # fmt: skip
    with MemorySampler(pids) as memory:
        record = run(spec)
    record["memory"] = memory.summary()
    return record


def overload(run: Run, rate: float, duration: float, warmup: float) -> dict[str, Any]:
    spec = RunSpec("7-overload", f"{rate:g}/s", rate, duration, warmup, *FAST_BANK,
                   max_backlog_seconds=1e6)  # fmt: skip
    return run(spec)


def add_arguments(p: Any) -> None:
    p.add_argument("--stability-rate", type=float, default=300.0, help="scenario 5's rate")
    p.add_argument("--stability-runs", type=int, default=3, help="scenario 5's runs")
    p.add_argument("--soak-rate", type=float, default=300.0, help="scenario 6's rate")
    p.add_argument("--soak-seconds", type=float, default=600.0, help="scenario 6's length")
    p.add_argument(
        "--overload-rate",
        type=float,
        default=None,
        help="scenario 7's rate (default: twice scenario 1's best, else 400/s)",
    )


def run_wanted(
    wanted: set[str], run: Run, pids: Callable[[], dict[str, list[int]]], args: Any,
    results: dict[str, Any], best: float,
) -> None:  # fmt: skip
    """Scenarios 5-7 among `wanted`, their verdicts in `results["summary"]`-to-be."""
    verdicts = results.setdefault("endurance", {})
    if "5" in wanted:
        records = stability(
            run, args.stability_rate, args.stability_runs, args.duration, args.warmup
        )
        verdicts["stability"] = stability_verdict(records)
    if "6" in wanted:
        record = soak(run, pids(), args.soak_rate, args.soak_seconds, args.warmup)
        verdicts["soak"] = {k: v for k, v in record["memory"].items() if k != "series"}
    if "7" in wanted:
        overload(run, args.overload_rate or (2 * best if best else 400.0), args.duration,
                 args.warmup)  # fmt: skip
