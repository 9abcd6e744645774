"""What the apps' logs say about a run's pauses: collections, held loops, the processor's stalls.

The apps log every garbage collection longer than 10 ms (`ops/gc_watch.py`), every hold of
their event loop of 100 ms or more with the code that held it (`ops/loop_watch.py`), and the
processor logs each command's `duration_ms`. Within a run's window (ISO times, as the logs
write them): the collections and the held loops per process, and the processor's stalls, i.e.
the moments many commands finished together after one long wait (their common end is where the
process, or what it waited on, resumed).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

GC_LOGGER = "payment_service.ops.gc_watch"
LOOP_LOGGER = "payment_service.ops.loop_watch"
HANDLER_LOGGER = "payment_service.streams.handler"
PROCESSES = ("api", "processor", "dispatcher")
STALL_MS = 150.0


def _lines(path: Path, start: str, end: str) -> list[dict[str, Any]]:
    found = []
    try:
        with path.open(encoding="utf-8", errors="replace") as f:
            for line in f:
                if not line.startswith("{") or not start <= line[10:39] <= end:
                    continue
                try:
                    found.append(json.loads(line))
                except ValueError:
                    continue
    except OSError:
        return []
    return found


def scan(logs: Path, start: str, end: str) -> dict[str, Any]:
    """Collections per process and the processor's stalls between `start` and `end`."""
    out: dict[str, Any] = {"gc": {}, "loops": {}, "processor_stalls": []}
    for name in PROCESSES:
        lines = _lines(logs / f"{name}.log", start, end)
        pauses = [d for d in lines if d.get("logger") == GC_LOGGER]
        if pauses:
            out["gc"][name] = {
                "over_10ms": len(pauses),
                "max_ms": max(d["pause_ms"] for d in pauses),
                "total_ms": round(sum(d["pause_ms"] for d in pauses), 1),
                "generations": sorted({d["gc_generation"] for d in pauses}),
                "at": [d["time"][11:23] for d in pauses if d["pause_ms"] >= 50][:20],
            }
        holds = [d for d in lines if d.get("logger") == LOOP_LOGGER]
        if holds:
            worst = sorted(holds, key=lambda d: -d["held_ms"])[:5]
            out["loops"][name] = {
                "holds": len(holds),
                "max_ms": worst[0]["held_ms"],
                "worst": [
                    {"at": d["time"][11:23], "held_ms": d["held_ms"], "stacks": d["stacks"]}
                    for d in worst
                ],
            }
        if name == "processor":
            slow = [
                d for d in lines
                if d.get("logger") == HANDLER_LOGGER and d.get("duration_ms", 0) >= STALL_MS
            ]  # fmt: skip
            out["processor_stalls"] = _stalls(slow)
    return out


def _stalls(slow: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Group slow commands that ended within 100 ms of each other: one stall each."""
    stalls: list[dict[str, Any]] = []
    for d in sorted(slow, key=lambda d: d["time"]):
        ended = d["time"][11:23]
        if stalls and _ms(ended) - _ms(stalls[-1]["ended"]) <= 100:
            stalls[-1]["commands"] += 1
            stalls[-1]["longest_ms"] = max(stalls[-1]["longest_ms"], d["duration_ms"])
            stalls[-1]["ended"] = ended
        else:
            stalls.append({"ended": ended, "commands": 1, "longest_ms": d["duration_ms"]})
    return stalls


def _ms(clock: str) -> float:
    h, m, s = clock.split(":")
    return (int(h) * 3600 + int(m) * 60 + float(s)) * 1000


def describe(r: dict[str, Any]) -> str:
    found = r.get("pauses")
    if not found:
        return ""
    gc = "; ".join(
        f"{name} {g['over_10ms']} over 10 ms (longest {g['max_ms']:.0f} ms)"
        for name, g in found["gc"].items()
    )
    loops = "; ".join(
        f"{name} {h['holds']} (longest {h['max_ms']:.0f} ms)"
        for name, h in found.get("loops", {}).items()
    )
    stalls = found["processor_stalls"]
    worst = max(stalls, key=lambda s: s["longest_ms"]) if stalls else None
    stall = (
        f"{len(stalls)} processor stalls of 150 ms or more (worst {worst['longest_ms']:.0f} ms, "
        f"{worst['commands']} commands ending at {worst['ended']} UTC)"
        if worst
        else "no processor stall of 150 ms or more"
    )
    held = f"event loops held 100 ms or more: {loops or 'none'}"
    return f" Garbage collections: {gc or 'none over 10 ms'}; {held}; {stall}."
