"""The open-loop load generator, in its own process: `python -m bench.loadgen CONFIG OUT`.

Requests are fired on a fixed schedule (request i is due at t0 + i / rate), whatever happened to
the earlier ones: a slow answer never delays the next request (no coordinated omission). Each
request's latency is measured from its *scheduled* start, so time spent queueing anywhere (in this
client's connection pool, in the kernel, in the service) counts. Latencies go into HDR histograms
(microseconds, 3 significant digits).

The generator checks itself: `lag` is how late each request left compared to its schedule. When
this process cannot keep up (CPU starved, event loop blocked), the lag grows and the run is
flagged `generator_lagging` instead of quietly sending less.

A run is a warm-up (same rate, payments only, not measured but verified) followed by the measured
period. With `refund_fraction`, that share of the measured requests are partial refunds of
payments captured earlier in the run (each payment refunded at most once).
"""

from __future__ import annotations

import asyncio
import base64
import collections
import json
import os
import resource
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson
from hdrh.histogram import HdrHistogram

# 1 µs .. 120 s, 3 significant digits.
HIST_MAX_US = 120_000_000
LAG_FLAG_US = 10_000  # p99 dispatch lag above this: the generator did not keep up


def new_histogram() -> HdrHistogram:
    return HdrHistogram(1, HIST_MAX_US, 3)


@dataclass
class Config:
    base_url: str
    api_key: str
    merchant_id: str
    rate: float
    duration: float
    warmup: float = 5.0
    refund_fraction: float = 0.0
    connections: int = 1024
    timeout: float = 30.0
    idempotency_keys: bool = True
    run_id: str = "run"
    # Stop sending when this many requests are outstanding (a saturated service); 0: never.
    max_outstanding: int = 0
    card_number: str = "4242424242424242"
    amount: str = "25.00"
    refund_amount: str = "5.00"


@dataclass
class Stats:
    latency: dict[str, HdrHistogram] = field(
        default_factory=lambda: {"payment": new_histogram(), "refund": new_histogram()}
    )
    lag: HdrHistogram = field(default_factory=new_histogram)
    status: collections.Counter[str] = field(default_factory=collections.Counter)
    errors: collections.Counter[str] = field(default_factory=collections.Counter)
    per_second: collections.Counter[int] = field(default_factory=collections.Counter)
    # Latency by answer (`payment_200`, `payment_503`, ...): how fast a refusal is.
    by_status: dict[str, HdrHistogram] = field(
        default_factory=lambda: collections.defaultdict(new_histogram)
    )
    # The slowest answer finished in each second of the measured period (pauses show here).
    slowest_per_second: dict[int, float] = field(default_factory=dict)
    ok_measured: int = 0
    sent_measured: int = 0
    first_measured_sched: float | None = None
    last_measured_done: float = 0.0


class Generator:
    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.stats = Stats()
        self.payments: dict[str, str] = {}  # transaction id -> status in the answer
        self.refunds: dict[str, list[str]] = {}  # refund id -> [transaction id, status]
        # Idempotency keys of payments answered with an error: were they processed anyway?
        self.failed_keys: dict[str, str] = {}
        self.captured: collections.deque[str] = collections.deque()
        self.outstanding = 0
        self.saturated_at: float | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        cfg_body = {
            "merchant_id": cfg.merchant_id,
            "amount": cfg.amount,
            "currency": "USD",
            "card_data": {
                "card_number": cfg.card_number,
                "expiry_month": 12,
                "expiry_year": 2030,
                "cvv": "123",
                "cardholder_name": "Bench Load",
            },
            "description": "benchmark payment",
        }
        self._payment_body = orjson.dumps(cfg_body)
        self._refund_body = orjson.dumps({"amount": cfg.refund_amount, "reason": "benchmark"})
        self._headers = {
            "Authorization": f"Bearer {cfg.api_key}",
            "Content-Type": "application/json",
        }

    async def run(self) -> dict[str, Any]:
        cfg = self.cfg
        loop = asyncio.get_running_loop()
        connector = aiohttp.TCPConnector(
            limit=cfg.connections, limit_per_host=cfg.connections, keepalive_timeout=120
        )
        timeout = aiohttp.ClientTimeout(total=cfg.timeout)
        self.session = aiohttp.ClientSession(
            cfg.base_url, connector=connector, timeout=timeout, skip_auto_headers=("User-Agent",)
        )
        warm_n = round(cfg.rate * cfg.warmup)
        total = warm_n + round(cfg.rate * cfg.duration)
        refund_every = round(1 / cfg.refund_fraction) if cfg.refund_fraction > 0 else 0
        cpu0 = resource.getrusage(resource.RUSAGE_SELF)
        t0 = loop.time() + 0.05
        self.t0 = t0
        self.measured_start = t0 + warm_n / cfg.rate
        i = 0
        async with self.session:
            while i < total:
                now = loop.time()
                due = min(total, int((now - t0) * cfg.rate) + 1)
                while i < due:
                    measured = i >= warm_n
                    kind = "payment"
                    if measured and refund_every and i % refund_every == 0 and self.captured:
                        kind = "refund"
                    self._spawn(self._fire(i, t0 + i / cfg.rate, measured, kind))
                    i += 1
                if cfg.max_outstanding and self.outstanding > cfg.max_outstanding:
                    self.saturated_at = loop.time() - self.measured_start
                    break
                delay = t0 + i / cfg.rate - loop.time()
                await asyncio.sleep(delay if delay > 0 else 0)
            sent = i
            send_end = loop.time()
            if self._tasks:
                await asyncio.wait(set(self._tasks))
        cpu1 = resource.getrusage(resource.RUSAGE_SELF)
        end = loop.time()
        return self._summary(warm_n, total, sent, send_end, end, cpu0, cpu1)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _fire(self, i: int, sched: float, measured: bool, kind: str) -> None:
        loop = asyncio.get_running_loop()
        st = self.stats
        lag = loop.time() - sched
        if measured:
            st.lag.record_value(max(1, int(lag * 1e6)))
            st.sent_measured += 1
        self.outstanding += 1
        headers = self._headers
        if kind == "refund":
            txn = self.captured.popleft()
            path = f"/api/v1/payments/{txn}/refund"
            body = self._refund_body
        else:
            txn = None
            path = "/api/v1/payments/process"
            body = self._payment_body
        key = f"bench-{self.cfg.run_id}-{i}"
        if self.cfg.idempotency_keys:
            headers = {**headers, "Idempotency-Key": key}
        status, raw, error = 0, b"", ""
        try:
            async with self.session.post(path, data=body, headers=headers) as resp:
                raw = await resp.read()
                status = resp.status
        except TimeoutError:
            self._error(measured, "client_timeout")
            error = "client_timeout"
        except aiohttp.ClientError as exc:
            error = type(exc).__name__
            self._error(measured, error)
        finally:
            self.outstanding -= 1
        done = loop.time()
        if kind == "payment" and status not in (200, 202):
            self.failed_keys[key] = str(status or error)
        if status == 0:
            return
        data: dict[str, Any] = {}
        if status in (200, 202):
            try:
                data = orjson.loads(raw)
            except orjson.JSONDecodeError:
                self._error(measured, "bad_json")
                return
        if kind == "payment" and status in (200, 202):
            payment_status = data.get("status", "?")
            self.payments[data["transaction_id"]] = payment_status
            if payment_status == "captured":
                self.captured.append(data["transaction_id"])
        elif kind == "refund" and status in (200, 202):
            self.refunds[data["refund_id"]] = [txn or "", data.get("status", "?")]
        if not measured:
            if status not in (200, 202):
                self.stats.errors[f"warmup_http_{status}"] += 1
            return
        st.status[f"{kind}_{status}"] += 1
        took_us = max(1, int((done - sched) * 1e6))
        st.latency[kind].record_value(took_us)
        st.by_status[f"{kind}_{status}"].record_value(took_us)
        second = int(done - self.measured_start)
        st.per_second[second] += 1
        st.slowest_per_second[second] = max(st.slowest_per_second.get(second, 0.0), took_us / 1000)
        if status in (200, 202):
            st.last_measured_done = max(st.last_measured_done, done)
            if status == 200:
                st.ok_measured += 1
        else:
            st.errors[f"http_{status}"] += 1

    def _error(self, measured: bool, name: str) -> None:
        self.stats.errors[name if measured else f"warmup_{name}"] += 1

    def _summary(
        self,
        warm_n: int,
        total: int,
        sent: int,
        send_end: float,
        end: float,
        cpu0: Any,
        cpu1: Any,
    ) -> dict[str, Any]:
        st = self.stats
        cfg = self.cfg
        measured_sent = max(0, sent - warm_n)
        span = max(1e-9, (st.last_measured_done or end) - self.measured_start)
        lat = {k: _percentiles(h) for k, h in st.latency.items() if h.get_total_count()}
        both = new_histogram()
        for h in st.latency.values():
            both.add(h)
        lag = _percentiles(st.lag)
        cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
        return {
            "config": {k: v for k, v in cfg.__dict__.items() if k != "api_key"},
            "clock": {
                "t0": self.t0,
                "measured_start": self.measured_start,
                "send_end": send_end,
                "end": end,
            },
            "scheduled": total - warm_n,
            "sent": measured_sent,
            "sent_total": sent,
            "saturated_after_s": self.saturated_at,
            "ok": st.ok_measured,
            "achieved_rps": st.ok_measured / span,
            "offered_rps": measured_sent
            / max(1e-9, min(send_end, self.measured_start + cfg.duration) - self.measured_start),
            "latency_ms": {"all": _percentiles(both), **lat},
            "latency_by_status_ms": {k: _percentiles(h) for k, h in sorted(st.by_status.items())},
            "histograms": {
                k: base64.b64encode(h.encode()).decode()
                for k, h in {**st.latency, "all": both}.items()
                if h.get_total_count()
            },
            "lag_ms": lag,
            "generator_lagging": lag.get("p99", 0) * 1000 > LAG_FLAG_US,
            "status": dict(st.status),
            "errors": dict(st.errors),
            "per_second": [st.per_second.get(s, 0) for s in range(int(cfg.duration) + 1)],
            "slowest_per_second_ms": [
                round(st.slowest_per_second.get(s, 0.0), 1) for s in range(int(cfg.duration) + 1)
            ],
            "generator_cpu_s": cpu,
            "payments": self.payments,
            "refunds": self.refunds,
            "failed_keys": self.failed_keys if cfg.idempotency_keys else {},
        }


def _percentiles(h: HdrHistogram) -> dict[str, float]:
    n = h.get_total_count()
    if not n:
        return {"count": 0}
    out: dict[str, float] = {"count": n}
    for name, q in (("p50", 50), ("p90", 90), ("p99", 99), ("p99.9", 99.9)):
        out[name] = h.get_value_at_percentile(q) / 1000
    out["max"] = h.get_max_value() / 1000
    out["mean"] = h.get_mean_value() / 1000
    return out


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m bench.loadgen CONFIG.json OUT.json", file=sys.stderr)
        return 2
    with open(argv[0], encoding="utf-8") as f:
        cfg = Config(**json.load(f))
    started = time.monotonic()
    result = asyncio.run(Generator(cfg).run())
    result["wall_s"] = time.monotonic() - started
    result["pid"] = os.getpid()
    tmp = argv[1] + ".tmp"
    with open(tmp, "wb") as f:
        f.write(orjson.dumps(result))
    os.replace(tmp, argv[1])
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
