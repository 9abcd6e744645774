"""`python -m bench profile`: where the CPU per payment goes, with py-spy, under a steady load.

The generator runs a fixed open-loop load; once it is warm, `py-spy record --nonblocking` samples
the API, the processor and the bank simulator at the same time (needs root or ptrace rights),
while /proc gives each process's CPU. A function's share of a process's samples times that
process's CPU per request estimates what the function costs per request.

Output in `<out>/profile/`: `<process>.collapsed.txt` (folded stacks, for flamegraph tools or
speedscope) and `summary.md` (top functions, self and inclusive, per process).
"""

from __future__ import annotations

import collections
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench.cpu import Sampler, read_pids
from bench.loadgen import Config
from bench.run import say
from bench.stackctl import PROJECT, Stack

PROFILED = ("api", "processor", "banksim")
SITE = re.compile(r"/[^ ;]*/site-packages/")


def _pyspy() -> str:
    exe = Path(sys.executable).parent / "py-spy"
    if exe.exists():
        return str(exe)
    found = shutil.which("py-spy")
    if not found:
        raise SystemExit("py-spy is not installed: make install (it is a dev dependency)")
    return found


def profile(stack: Stack, api_key: str, merchant: str, args: Any) -> Path:
    out: Path = args.out / "profile"
    out.mkdir(parents=True, exist_ok=True)
    stack.reset_bank()
    stack.set_bank_latency(args.bank_ms, args.bank_ms / 2)
    warm = 8.0
    cfg = Config(
        base_url=stack.api_url,
        api_key=api_key,
        merchant_id=merchant,
        rate=args.rate,
        duration=args.seconds + 4,
        warmup=warm,
        connections=args.connections,
        idempotency_keys=args.idempotency_keys,
        run_id=uuid.uuid4().hex[:10],
        max_outstanding=int(max(1000, args.rate * args.max_backlog_seconds)),
    )
    pids = read_pids(stack.dir)
    sampler = Sampler(pids, interval=0.5, bench_pid=os.getpid())
    with tempfile.TemporaryDirectory(prefix="bench-profile-") as tmp:
        cfg_path, gen_out = Path(tmp, "config.json"), Path(tmp, "out.json")
        cfg_path.write_text(json.dumps(asdict(cfg)))
        sampler.start()
        gen = subprocess.Popen(  # noqa: S603
            [sys.executable, "-m", "bench.loadgen", str(cfg_path), str(gen_out)], cwd=PROJECT
        )
        time.sleep(warm + 1)
        say(f"py-spy on {', '.join(PROFILED)} for {args.seconds:.0f}s at {args.rate:.0f}/s")
        spies = {}
        window_start = time.monotonic()
        for name in PROFILED:
            cmd = [
                _pyspy(),
                "record",
                "--pid",
                str(pids[name][0]),  # the first instance only
                # The pid is the stack's supervisor (scripts/stackctl/supervise.py), which only
                # waits: the service is its child, so without this py-spy records no samples.
                "--subprocesses",
                "--duration",
                str(int(args.seconds)),
                "--rate",
                "100",
                "--nonblocking",
                "--format",
                "raw",
                "--output",
                str(out / f"{name}.collapsed.txt"),
            ]
            if args.native:
                cmd.append("--native")
            spies[name] = subprocess.Popen(  # noqa: S603
                cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
            )
        for name, spy in spies.items():
            _, err = spy.communicate(timeout=args.seconds + 60)
            if spy.returncode != 0:
                say(f"py-spy on {name} failed: {err.decode(errors='replace')[-500:]}")
        window_end = time.monotonic()
        gen.wait(timeout=args.seconds + 120)
        sampler.stop()
        result = json.loads(gen_out.read_text())
    cpu = sampler.window(window_start, window_end)
    requests = result["offered_rps"] * cpu["seconds"]
    summary = _summary(out, cpu, requests, result, args)
    (out / "summary.md").write_text(summary)
    say(f"profile written to {out}/summary.md")
    return out


def load_folded(path: Path) -> list[tuple[list[str], int]]:
    rows = []
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if stack:
            rows.append((stack.split(";"), int(count)))
    return rows


def frame_name(frame: str) -> str:
    """'func (path/to/file.py:123)' -> 'func (pkg/file.py)' without line numbers or venv paths."""
    frame = re.sub(r":\d+\)$", ")", frame)
    frame = SITE.sub("", frame)
    return frame.replace(str(PROJECT / "src") + "/", "").replace(str(PROJECT) + "/", "")


# Cost centres: the first frame from the leaf up that matches names the library doing the work
# (a socket write inside redis-py is redis-py's cost). Frames of asyncio, selectors and threading
# are skipped in that search: what is left is the event loop itself (waking up, scheduling).
CATEGORIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("redis-py client", ("redis/",)),
    ("asyncpg client (PostgreSQL)", ("asyncpg/",)),
    (
        "Kafka client (confluent-kafka, Quix, producer/reply threads)",
        ("confluent_kafka", "quixstreams/", "kafka/producer.py", "http/replies.py"),
    ),
    ("pydantic (validation, models, JSON)", ("pydantic",)),
    (
        "aiohttp client (bank calls)",
        (
            "aiohttp/client",
            "aiohttp/connector",
            "bank/client.py",
            "bank/transport.py",
            "bank/breaker.py",
            "bank/retry.py",
            "aiobreaker/",
        ),
    ),
    ("aiohttp server (HTTP parsing, responses)", ("aiohttp/",)),
    ("cryptography (card envelopes)", ("cryptography/", "cards/crypto")),
    ("json / logging (stdlib)", ("json/", "logging/")),
    ("service code (payment_service)", ("payment_service/",)),
)
WAITING = "waiting in epoll (runnable or in the kernel; not counted in ms/req)"
# The event loops and threads themselves, and the entry points that start them (by file).
LOOP_FILES = (
    "asyncio/",
    "selectors.py",
    "threading.py",
    "concurrent/",
    "aiohttp/web.py",
    "payment_service/app/",
    "payment-service",
)
LOOP_FUNCTIONS = ("SideLoop._run", "run_api", "run_simulator", "<module>")


def _split(frame: str) -> tuple[str, str]:
    name = frame_name(frame)
    func, _, file = name.partition(" (")
    return func, file.rstrip(")")


def categorize(stack: list[str]) -> str:
    if stack and _split(stack[-1])[0] == "EpollSelector.select":
        return WAITING
    for frame in reversed(stack):
        func, file = _split(frame)
        if file.startswith(LOOP_FILES) or func in LOOP_FUNCTIONS:
            continue
        for name, marks in CATEGORIES:
            if any(mark in file for mark in marks):
                return name
        return "other (stdlib)"
    return "event loop (scheduling, wake-ups)"


def _categories(rows: list[tuple[list[str], int]]) -> collections.Counter[str]:
    counts: collections.Counter[str] = collections.Counter()
    for stack, count in rows:
        counts[categorize(stack)] += count
    return counts


def _top(rows: list[tuple[list[str], int]], n: int) -> tuple[int, list[Any], list[Any]]:
    rows = [(s, c) for s, c in rows if categorize(s) != WAITING]
    total = sum(c for _, c in rows)
    own: collections.Counter[str] = collections.Counter()
    incl: collections.Counter[str] = collections.Counter()
    for stack, count in rows:
        names = [frame_name(f) for f in stack]
        own[names[-1]] += count
        for name in set(names):
            incl[name] += count
    return total, own.most_common(n), incl.most_common(n * 2)


def _summary(
    out: Path, cpu: dict[str, float], requests: float, gen: dict[str, Any], args: Any
) -> str:
    lat = gen["latency_ms"]["all"]
    lines = [
        "# CPU profile under load",
        "",
        f"{args.rate:.0f} requests/s offered (achieved {gen['achieved_rps']:.0f}/s), bank "
        f"{args.bank_ms} ms; p50 {lat.get('p50')} ms, p99 {lat.get('p99')} ms. py-spy "
        f"{'--native ' if args.native else ''}--nonblocking at 100 Hz for {args.seconds:.0f} s "
        "(on-CPU samples only). CPU per request from /proc over the same window:",
        "",
        "| process | CPU ms/request | cores |",
        "|---|--:|--:|",
    ]
    for name in (*PROFILED, "dispatcher", "kafka", "postgres", "redis", "stack"):
        if name in cpu:
            lines.append(
                f"| {name} | {cpu[name] / requests * 1000:.2f} | {cpu[name] / cpu['seconds']:.2f} |"
            )
    for name in PROFILED:
        path = out / f"{name}.collapsed.txt"
        if not path.exists():
            continue
        rows = load_folded(path)
        total, own, incl = _top(rows, 25)
        per_req = cpu.get(name, 0.0) / requests * 1000
        categories = _categories(rows)
        waiting = categories.pop(WAITING, 0)
        if not total:
            lines += ["", f"## {name}: py-spy recorded no samples (see its output above)"]
            continue
        lines += [
            "",
            f"## {name} ({total} samples; {per_req:.2f} ms CPU per request)",
            "",
            f"{waiting} more samples ({waiting / (total + waiting) * 100:.0f} %) were in "
            "`EpollSelector.select`: py-spy counts a thread that is runnable but waiting for a "
            "core as active, and `perf` shows little kernel time there, so they are left out; "
            "the shares below are of the other samples, scaled to the process's CPU from /proc.",
            "",
            "By cost centre (the library doing the work, found from the leaf frame up):",
            "",
            "| % | ms/req | cost centre |",
            "|--:|--:|---|",
        ]
        lines += [
            f"| {c / total * 100:.1f} | {c / total * per_req:.3f} | {f} |"
            for f, c in categories.most_common()
        ]
        lines += [
            "",
            "Self time (the function itself), share of samples and estimated ms per request:",
            "",
            "| % | ms/req | function |",
            "|--:|--:|---|",
        ]
        lines += [f"| {c / total * 100:.1f} | {c / total * per_req:.3f} | `{f}` |" for f, c in own]
        lines += ["", "Inclusive time (the function and what it calls):", ""]
        lines += ["| % | ms/req | function |", "|--:|--:|---|"]
        lines += [f"| {c / total * 100:.1f} | {c / total * per_req:.3f} | `{f}` |" for f, c in incl]
    return "\n".join(lines) + "\n"
