"""CPU accounting from /proc: seconds of CPU per component of the stack, and of the whole machine.

A component is one or more process trees: the pid `scripts/stack.py` recorded in
`.stack/pids/<name>.pid` (and `<name>-1.pid`, ... for the further instances of a scaled-out stack,
summed: the CPU of a process kind) and every descendant (PostgreSQL's backends and background
workers are children of the postmaster; Kafka's and the Python services' threads are inside their
process). For each process we read utime + stime from /proc/<pid>/stat, plus cutime + cstime (the
CPU of children it has already reaped, e.g. PostgreSQL backends that disconnected), so a
short-lived child is not lost.
The difference of two snapshots is the CPU spent in between.

`/proc/stat` gives the machine's total busy time, so what nobody of ours used (another program on
the same two cores) is reported as `other`: a benchmark shares the machine and should say so.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")

COMPONENTS = ("api", "processor", "dispatcher", "banksim", "kafka", "postgres", "redis")


def _stat(pid: int) -> tuple[int, float] | None:
    """(ppid, cpu seconds incl. reaped children) of one process, or None if it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may contain spaces and parentheses: split after its last ')'.
    fields = raw[raw.rindex(")") + 2 :].split()
    ppid = int(fields[1])
    utime, stime, cutime, cstime = (int(x) for x in fields[11:15])
    return ppid, (utime + stime + cutime + cstime) / TICK


def process_table() -> dict[int, tuple[int, float]]:
    table = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            info = _stat(int(entry.name))
            if info is not None:
                table[int(entry.name)] = info
    return table


def tree_cpu(table: dict[int, tuple[int, float]], root: int) -> float:
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    total, todo, seen = 0.0, [root], set()
    while todo:
        pid = todo.pop()
        if pid in seen or pid not in table:
            continue
        seen.add(pid)
        total += table[pid][1]
        todo.extend(children.get(pid, ()))
    return total


def machine_busy() -> float:
    """Busy CPU seconds of the whole machine since boot (all cores)."""
    with open("/proc/stat", encoding="ascii") as f:
        parts = f.readline().split()
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in parts[1:9])
    return (user + nice + system + irq + softirq + steal) / TICK


@dataclass
class Snapshot:
    at: float
    components: dict[str, float]
    bench: float
    machine: float


def read_pids(stack_dir: Path) -> dict[str, list[int]]:
    """Each component's recorded pids: `api.pid` and, scaled out, `api-1.pid`, `api-2.pid`, ..."""
    pids: dict[str, list[int]] = {}
    for name in COMPONENTS:
        files = [stack_dir / "pids" / f"{name}.pid", *_instance_files(stack_dir, name)]
        for path in files:
            try:
                pids.setdefault(name, []).append(int(path.read_text().strip()))
            except (OSError, ValueError):
                continue
    return {name: found for name, found in pids.items() if found}


def _instance_files(stack_dir: Path, name: str) -> list[Path]:
    """`<name>-<n>.pid` (not the supervisors' `.child.pid` records), by instance number."""
    found = [
        p for p in (stack_dir / "pids").glob(f"{name}-*.pid") if p.stem[len(name) + 1 :].isdigit()
    ]
    return sorted(found, key=lambda p: int(p.stem[len(name) + 1 :]))


def snapshot(pids: dict[str, list[int]], bench_pid: int | None) -> Snapshot:
    table = process_table()
    comps = {name: sum(tree_cpu(table, pid) for pid in roots) for name, roots in pids.items()}
    bench = tree_cpu(table, bench_pid) if bench_pid else 0.0
    return Snapshot(time.monotonic(), comps, bench, machine_busy())


def idle_cores(pids: dict[str, list[int]], seconds: float = 5.0) -> dict[str, float]:
    """Cores each component uses with no load at all (its fixed cost)."""
    a = snapshot(pids, None)
    time.sleep(seconds)
    b = snapshot(pids, None)
    span = b.at - a.at
    out = {k: round((b.components[k] - a.components[k]) / span, 4) for k in pids}
    out["stack"] = round(sum(out[k] for k in pids), 4)
    out["machine"] = round((b.machine - a.machine) / span, 4)
    return out


@dataclass
class Sampler:
    """Snapshots every `interval` seconds on a thread, for CPU over any window of a run."""

    pids: dict[str, list[int]]
    interval: float = 0.5
    bench_pid: int | None = None
    samples: list[Snapshot] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="cpu-sampler", daemon=True)

    def start(self) -> None:
        self.samples.append(snapshot(self.pids, self.bench_pid))
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.samples.append(snapshot(self.pids, self.bench_pid))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self.samples.append(snapshot(self.pids, self.bench_pid))

    def window(self, start: float, end: float) -> dict[str, float]:
        """CPU seconds per component between two monotonic times (nearest samples inside)."""
        inside = [s for s in self.samples if start <= s.at <= end]
        if len(inside) < 2:
            inside = [
                min(self.samples, key=lambda s: abs(s.at - start)),
                min(self.samples, key=lambda s: abs(s.at - end)),
            ]
        a, b = inside[0], inside[-1]
        out = {
            name: max(0.0, b.components.get(name, 0.0) - a.components.get(name, 0.0))
            for name in self.pids
        }
        out["stack"] = sum(out[name] for name in self.pids)
        out["bench"] = max(0.0, b.bench - a.bench)
        machine = b.machine - a.machine
        out["machine"] = machine
        out["other"] = max(0.0, machine - out["stack"] - out["bench"])
        out["seconds"] = b.at - a.at
        return out
