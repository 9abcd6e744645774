"""One benchmark run: set the bank, start the generator process, account CPU, then verify.

A run is measured by the generator (its own process, see loadgen.py) while this process samples
the CPU of every process of the stack. Afterwards it waits until every accepted payment is final
and compares PostgreSQL with the bank's ledger (verify.py).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import pauses, pgstats
from bench.cpu import COMPONENTS, Sampler, machine_busy, read_pids
from bench.loadgen import Config
from bench.stackctl import Stack
from bench.verify import verify


@dataclass
class RunSpec:
    scenario: str
    label: str
    rate: float
    duration: float
    warmup: float
    bank_ms: float
    bank_jitter_ms: float
    refund_fraction: float = 0.0
    p99_target_ms: float | None = None
    # Overload runs keep sending whatever the backlog (default: --max-backlog-seconds).
    max_backlog_seconds: float | None = None


def say(message: str) -> None:
    print(f"[bench] {message}", flush=True)


def wait_for_quiet(limit_cores: float, patience: float) -> float:
    """Wait (up to `patience` s) until the machine, with our stack idle, is below `limit_cores`.

    Our idle stack itself uses about 0.1 core (Kafka); the rest is other programs sharing the
    machine, which would make the run measure them too.
    """
    deadline = time.monotonic() + patience
    while True:
        busy0, t0 = machine_busy(), time.monotonic()
        time.sleep(1.0)
        busy = (machine_busy() - busy0) / (time.monotonic() - t0)
        if busy < limit_cores or time.monotonic() > deadline:
            return busy
        say(f"the machine is busy ({busy:.2f} cores while the stack is idle); waiting")
        time.sleep(2.0)


def execute(stack: Stack, spec: RunSpec, api_key: str, merchant: str, opts: Any) -> dict[str, Any]:
    """Run one spec and return its record (the JSON of one row of the report)."""
    idle_busy = wait_for_quiet(opts.quiet_cores, opts.quiet_wait) if opts.quiet_wait else None
    stack.reset_bank()
    # The bank forgets earlier runs, so `ops verify` compares this run's payments only.
    since = datetime.now(UTC).isoformat()
    stack.set_bank_latency(spec.bank_ms, spec.bank_jitter_ms)
    cfg = Config(
        base_url=stack.api_url,
        api_key=api_key,
        merchant_id=merchant,
        rate=spec.rate,
        duration=spec.duration,
        warmup=spec.warmup,
        refund_fraction=spec.refund_fraction,
        connections=opts.connections,
        idempotency_keys=opts.idempotency_keys,
        run_id=uuid.uuid4().hex[:10],
        max_outstanding=int(
            max(1000, spec.rate * (spec.max_backlog_seconds or opts.max_backlog_seconds))
        ),
    )
    sampler = Sampler(read_pids(stack.dir), interval=0.5, bench_pid=os.getpid())
    pg_before = pgstats.snapshot(stack.database_url)
    window_start = datetime.now(UTC).isoformat(timespec="milliseconds")
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        cfg_path, out_path = Path(tmp, "config.json"), Path(tmp, "out.json")
        cfg_path.write_text(json.dumps(asdict(cfg)))
        sampler.start()
        started = time.monotonic()
        proc = subprocess.run(  # noqa: S603
            [sys.executable, "-m", "bench.loadgen", str(cfg_path), str(out_path)],
            check=False,
            timeout=spec.warmup + spec.duration + 120,
        )
        if proc.returncode != 0:
            sampler.stop()
            raise RuntimeError(f"load generator failed (exit {proc.returncode})")
        gen = json.loads(out_path.read_text())
    verdict = asyncio.run(
        verify(
            stack.database_url,
            stack.banksim_url,
            gen["payments"],
            gen["refunds"],
            merchant_id=merchant,
            failed_keys=gen["failed_keys"],
            drain_timeout=opts.drain_timeout,
        )
    )
    sampler.stop()
    wall = time.monotonic() - started
    pg_after = pgstats.snapshot(stack.database_url)
    window_end = datetime.now(UTC).isoformat(timespec="milliseconds")
    # CPU from the first request until every accepted payment was final (warm-up included: same
    # rate), divided by the payments and refunds processed in that time. This counts the work
    # finished after the answers (a backlog, 202s) and is right for saturated runs too.
    t0 = gen["clock"]["t0"]
    cpu = sampler.window(t0, verdict.drained_at)
    requests = max(1, verdict.payments + verdict.refunds)
    processed_rps = requests / max(1e-9, verdict.drained_at - t0)
    record = _record(spec, gen, cpu, requests, verdict.to_json(), wall)
    record["ops_verify"] = ops_verify(merchant, since)
    record["postgres"] = pgstats.difference(pg_before, pg_after, requests)
    record["pauses"] = pauses.scan(stack.dir / "logs", window_start, window_end)
    record["processed"] = requests
    record["processed_rps"] = round(processed_rps, 1)
    record["machine_busy_before_cores"] = None if idle_busy is None else round(idle_busy, 2)
    idle = getattr(opts, "idle_cores", None)
    if idle:
        # What the load added: CPU above the idle stack's own (Kafka's polling, timers).
        record["cpu_ms_per_request_marginal"] = {
            k: round(max(0.0, cpu[k] - idle.get(k, 0.0) * cpu["seconds"]) / requests * 1000, 3)
            for k in (*COMPONENTS, "stack")
            if k in cpu
        }
    _say_result(record)
    return record


VERIFY_ARGS = ("--unsettled-after", "5m", "--json")


def ops_verify(merchant: str, since: str) -> dict[str, Any]:
    """`payment-service ops verify --merchant M --since T --json` on the run's payments: the
    system's own invariants (audit paths and chains included), beside this benchmark's check."""
    exe = Path(sys.executable).with_name("payment-service")
    proc = subprocess.run(  # noqa: S603
        [str(exe), "ops", "verify", "--merchant", merchant, "--since", since, *VERIFY_ARGS],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    if proc.returncode not in (0, 1) or not proc.stdout:
        return {"ok": False, "error": proc.stderr.strip()[-500:]}
    report = json.loads(proc.stdout)
    return {"ok": report["ok"], "checks": report["checks"], "counts": report["counts"]}


def _record(
    spec: RunSpec,
    gen: dict[str, Any],
    cpu: dict[str, float],
    requests: int,
    correctness: dict[str, Any],
    wall: float,
) -> dict[str, Any]:
    status = gen["status"]
    errors = sum(gen["errors"].values()) - sum(
        v for k, v in gen["errors"].items() if k.startswith("warmup_")
    )
    accepted_202 = sum(v for k, v in status.items() if k.endswith("_202"))
    lat = gen["latency_ms"]["all"]
    per = {k: round(cpu[k] / requests * 1000, 3) for k in (*COMPONENTS, "stack") if k in cpu}
    target = spec.p99_target_ms
    sustained = (
        gen["saturated_after_s"] is None
        and errors == 0
        and accepted_202 == 0
        and gen["achieved_rps"] >= 0.95 * spec.rate
        and correctness["ok"]
    )
    record = {
        **asdict(spec),
        "offered_rps": round(gen["offered_rps"], 1),
        "achieved_rps": round(gen["achieved_rps"], 1),
        "requests": gen["sent"],
        "scheduled": gen["scheduled"],
        "saturated_after_s": gen["saturated_after_s"],
        "latency_ms": gen["latency_ms"],
        "lag_ms": gen["lag_ms"],
        "generator_lagging": gen["generator_lagging"],
        "status": status,
        "errors": errors,
        "error_kinds": gen["errors"],
        "accepted_202": accepted_202,
        "cpu_seconds": {k: round(v, 3) for k, v in cpu.items()},
        "cpu_ms_per_request": per,
        "cores_used_by_stack": round(cpu["stack"] / max(cpu["seconds"], 1e-9), 2),
        "generator_cpu_ms_per_request": round(
            gen["generator_cpu_s"] / max(1, gen["sent_total"]) * 1000, 3
        ),
        "other_cores": round(cpu["other"] / max(cpu["seconds"], 1e-9), 2),
        "per_second": gen["per_second"],
        "latency_by_status_ms": gen["latency_by_status_ms"],
        "slowest_per_second_ms": gen["slowest_per_second_ms"],
        "correctness": correctness,
        "wall_s": round(wall, 1),
        "sustained": sustained,
        "meets_target": (
            None if target is None else bool(sustained and lat.get("p99", 1e9) < target)
        ),
        "histograms": gen["histograms"],
    }
    return record


def _say_result(r: dict[str, Any]) -> None:
    lat = r["latency_ms"]["all"]
    flags = []
    if r["saturated_after_s"] is not None and r["saturated_after_s"] < 0:
        flags.append("SATURATED during the warm-up: nothing measured")
    elif r["saturated_after_s"] is not None:
        flags.append(f"SATURATED after {r['saturated_after_s']:.1f}s")
    if r["generator_lagging"]:
        flags.append(f"generator lagging (p99 lag {r['lag_ms'].get('p99')} ms)")
    if not r["correctness"]["ok"]:
        flags.append(f"CORRECTNESS {r['correctness']['problems']}")
    say(
        f"{r['scenario']} {r['label']}: offered {r['offered_rps']}/s, answered 200 at"
        f" {r['achieved_rps']}/s, processed {r['processed_rps']}/s;"
        f" p50 {lat.get('p50')} p99 {lat.get('p99')} p99.9 {lat.get('p99.9')} ms,"
        f" errors {r['errors']} 202s {r['accepted_202']},"
        f" CPU {r['cpu_ms_per_request']['stack']} ms/req ({r['cores_used_by_stack']} cores),"
        f" other {r['other_cores']} cores; correctness"
        f" {'ok' if r['correctness']['ok'] else 'FAILED'} " + " ".join(flags)
    )
