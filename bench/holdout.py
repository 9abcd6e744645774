"""The hold-out run: the bench's figures checked with a load generator we did not write.

    python -m bench holdout --rate 80 --seconds 60 --pairs 3

Each pair is one run of our own generator (bench/loadgen.py, through `run.execute`) and one run
of vegeta (github.com/tsenart/vegeta, built here from the Go module proxy), at the same rate,
against the same bank latency, back to back, the order alternating. Vegeta is open loop too: its
pacer starts each request on schedule and adds workers when the earlier ones are busy, and it
times each request from its start. Both runs end with the same checks: every accepted payment
final in PostgreSQL and equal to the bank's ledger (verify.py), and `ops verify --since`.

The targets file holds one request per line, each with its own Idempotency-Key, and the test
card of the simulator (never a real one); it lives in a temporary directory removed afterwards.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import resource
import shutil
import subprocess
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from bench import pauses
from bench.cpu import COMPONENTS, Sampler, read_pids
from bench.run import RunSpec, execute, ops_verify, say, wait_for_quiet
from bench.stackctl import PROJECT, Stack
from bench.verify import verify

VEGETA_MODULE = "github.com/tsenart/vegeta/v12@v12.13.0"
TOOLS = PROJECT / ".stack" / "tools" / "bin"
PERCENTILES = (50.0, 90.0, 99.0, 99.9)


def ensure_vegeta() -> Path:
    """The vegeta binary: on PATH, or built once into .stack/tools/bin with `go install`."""
    found = shutil.which("vegeta")
    if found:
        return Path(found)
    binary = TOOLS / "vegeta"
    if binary.exists():
        return binary
    go = shutil.which("go")
    if go is None:
        raise SystemExit(
            "the hold-out run needs vegeta: install Go (https://go.dev/doc/install) or put a "
            "vegeta binary on PATH"
        )
    say(f"building vegeta ({VEGETA_MODULE}) into {TOOLS}, about a minute the first time")
    TOOLS.mkdir(parents=True, exist_ok=True)
    subprocess.run(  # noqa: S603
        [go, "install", VEGETA_MODULE],
        env={**os.environ, "GOBIN": str(TOOLS)},
        check=True,
        timeout=900,
    )
    return binary


def payment_body(merchant: str) -> dict[str, Any]:
    """The same payment our generator sends (bench/loadgen.py), so the two runs compare."""
    return {
        "merchant_id": merchant,
        "amount": "25.00",
        "currency": "USD",
        "card_data": {
            "card_number": "4242424242424242",  # the simulator's test card
            "expiry_month": 12,
            "expiry_year": 2030,
            "cvv": "123",
            "cardholder_name": "Bench Load",
        },
        "description": "benchmark payment",
    }


def targets(base_url: str, api_key: str, merchant: str, count: int, run_id: str) -> Iterator[bytes]:
    """Vegeta's JSON targets, one line each: a payment with its own Idempotency-Key."""
    body = base64.b64encode(orjson.dumps(payment_body(merchant))).decode()
    url = base_url.rstrip("/") + "/api/v1/payments/process"
    for i in range(count):
        yield orjson.dumps(
            {
                "method": "POST",
                "url": url,
                "header": {
                    "Authorization": [f"Bearer {api_key}"],
                    "Content-Type": ["application/json"],
                    "Idempotency-Key": [f"holdout-{run_id}-{i}"],
                },
                "body": body,
            }
        )


def percentile(sorted_values: list[float], p: float) -> float | None:
    """The nearest-rank percentile of sorted values (None when there are none)."""
    if not sorted_values:
        return None
    rank = max(1, -(-len(sorted_values) * p // 100))
    return sorted_values[int(rank) - 1]


def summarize(results: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Vegeta's per-request results (`vegeta encode --to json`) as the bench's record fields."""
    latencies: list[float] = []
    status: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    payments: dict[str, str] = {}
    # The slowest request started in each wall-clock second, to line up with vmstat or the logs.
    slowest: dict[str, float] = {}
    first = last = None
    for r in results:
        code = int(r.get("code", 0))
        status[f"payment_{code}"] += 1
        took_ms = r["latency"] / 1e6
        latencies.append(took_ms)
        moment = datetime.fromisoformat(r["timestamp"])
        second = moment.astimezone(UTC).strftime("%H:%M:%S")
        slowest[second] = round(max(slowest.get(second, 0.0), took_ms), 1)
        started = moment.timestamp()
        first = started if first is None else min(first, started)
        last = started if last is None else max(last, started)
        if code in (200, 202):
            answer = json.loads(base64.b64decode(r.get("body") or b"") or b"{}")
            payments[answer["transaction_id"]] = answer.get("status", "?")
        else:
            errors[f"http_{code}" if code else (r.get("error") or "no answer")[:80]] += 1
    latencies.sort()
    sent = len(latencies)
    span = (last - first) if first is not None and last is not None else 0.0
    return {
        "sent": sent,
        "sent_rps": round((sent - 1) / span, 1) if span > 0 else None,
        "latency_ms": {
            **{f"p{p:g}": _ms(percentile(latencies, p)) for p in PERCENTILES},
            "max": _ms(latencies[-1] if latencies else None),
        },
        "status": dict(status),
        "errors": dict(errors),
        "payments": payments,
        "slowest_by_second_ms": dict(sorted(slowest.items())),
    }


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def attack(
    vegeta: Path, stack: Stack, api_key: str, merchant: str, rate: float, seconds: float
) -> dict[str, Any]:
    """One vegeta attack; returns its summary and the monotonic time it started."""
    run_id = uuid.uuid4().hex[:10]
    with tempfile.TemporaryDirectory(prefix="holdout-") as tmp:
        target_file, out = Path(tmp, "targets.jsonl"), Path(tmp, "results.bin")
        with target_file.open("wb") as f:
            for line in targets(stack.api_url, api_key, merchant, round(rate * seconds), run_id):
                f.write(line + b"\n")
        started = time.monotonic()
        children0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run(  # noqa: S603
            [
                str(vegeta), "attack", "-format=json", f"-targets={target_file}",
                f"-rate={rate:g}/1s", f"-duration={seconds:g}s", "-timeout=30s",
                "-redirects=-1", f"-output={out}",
            ],
            check=True,
            timeout=seconds + 120,
        )  # fmt: skip
        children1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        encoded = subprocess.run(  # noqa: S603
            [str(vegeta), "encode", "--to=json", str(out)],
            check=True,
            capture_output=True,
            timeout=120,
        ).stdout
    summary = summarize(json.loads(line) for line in encoded.splitlines() if line.strip())
    summary["t0"] = started
    cpu_s = (children1.ru_utime - children0.ru_utime) + (children1.ru_stime - children0.ru_stime)
    summary["generator_cpu_ms_per_request"] = round(cpu_s / max(1, summary["sent"]) * 1000, 3)
    return summary


def run_vegeta(
    vegeta: Path, stack: Stack, api_key: str, merchant: str, spec: RunSpec, opts: Any
) -> dict[str, Any]:
    """A measured vegeta run with the bench's CPU accounting and both correctness checks."""
    if opts.quiet_wait:
        wait_for_quiet(opts.quiet_cores, opts.quiet_wait)
    stack.reset_bank()
    since = datetime.now(UTC).isoformat()
    stack.set_bank_latency(spec.bank_ms, spec.bank_jitter_ms)
    window_start = datetime.now(UTC).isoformat(timespec="milliseconds")
    sampler = Sampler(read_pids(stack.dir), interval=0.5, bench_pid=os.getpid())
    sampler.start()
    try:
        gen = attack(vegeta, stack, api_key, merchant, spec.rate, spec.duration)
        verdict = asyncio.run(
            verify(
                stack.database_url,
                stack.banksim_url,
                gen.pop("payments"),
                {},
                merchant_id=merchant,
                failed_keys={},
                drain_timeout=opts.drain_timeout,
            )
        )
    finally:
        sampler.stop()
    cpu = sampler.window(gen.pop("t0"), verdict.drained_at)
    processed = max(1, verdict.payments)
    return {
        "generator": "vegeta",
        "rate": spec.rate,
        "bank_ms": spec.bank_ms,
        **gen,
        "errors_total": sum(gen["errors"].values()),
        "cpu_ms_per_request": {
            k: round(cpu[k] / processed * 1000, 3) for k in (*COMPONENTS, "stack") if k in cpu
        },
        "other_cores": round(cpu["other"] / max(cpu["seconds"], 1e-9), 2),
        "correctness": verdict.to_json(),
        "ops_verify": ops_verify(merchant, since),
        "pauses": pauses.scan(
            stack.dir / "logs", window_start, datetime.now(UTC).isoformat(timespec="milliseconds")
        ),
    }


def own_summary(record: dict[str, Any]) -> dict[str, Any]:
    """The fields of our generator's record that the hold-out table compares."""
    lat = record["latency_ms"]["all"]
    return {
        "generator": "bench.loadgen",
        "rate": record["rate"],
        "bank_ms": record["bank_ms"],
        "sent": record["requests"],
        "sent_rps": record["achieved_rps"],
        "latency_ms": {k: lat.get(k) for k in ("p50", "p90", "p99", "p99.9", "max")},
        "status": record["status"],
        "errors_total": record["errors"],
        "cpu_ms_per_request": record["cpu_ms_per_request"],
        "generator_cpu_ms_per_request": record["generator_cpu_ms_per_request"],
        "other_cores": record["other_cores"],
        "correctness": record["correctness"],
        "ops_verify": record["ops_verify"],
        "pauses": record["pauses"],
    }


def run_pairs(stack: Stack, api_key: str, merchant: str, args: Any) -> dict[str, Any]:
    """Warm up, then `args.pairs` pairs of runs (ours and vegeta's, order alternating)."""
    vegeta = ensure_vegeta()
    spec = RunSpec(
        "holdout", f"{args.rate:g}/s", args.rate, args.seconds, 0.0, args.bank_ms, args.bank_ms / 2
    )
    say("warm-up with vegeta (not recorded)")
    stack.set_bank_latency(spec.bank_ms, spec.bank_jitter_ms)
    attack(vegeta, stack, api_key, merchant, args.rate, 5)
    runs: list[dict[str, Any]] = []
    for pair in range(args.pairs):
        order = ("vegeta", "own") if pair % 2 else ("own", "vegeta")
        for generator in order:
            say(f"pair {pair + 1}/{args.pairs}: {generator}, {args.rate:g}/s for {args.seconds:g}s")
            if generator == "own":
                record = own_summary(execute(stack, spec, api_key, merchant, args))
            else:
                record = run_vegeta(vegeta, stack, api_key, merchant, spec, args)
            record["pair"] = pair + 1
            runs.append(record)
            lat = record["latency_ms"]
            say(
                f"{record['generator']}: sent {record['sent']} ({record['sent_rps']}/s),"
                f" p50 {lat['p50']} p99 {lat['p99']} max {lat['max']} ms,"
                f" errors {record['errors_total']},"
                f" CPU {record['cpu_ms_per_request'].get('stack')} ms/req"
                f" (generator {record['generator_cpu_ms_per_request']}),"
                f" checks {'ok' if record['correctness']['ok'] else 'FAILED'}"
                f"/{'ok' if record['ops_verify'].get('ok') else 'FAILED'}"
            )
    return {"rate": args.rate, "seconds": args.seconds, "bank_ms": args.bank_ms, "runs": runs}
