#!/usr/bin/env python3
"""`make metrics`: listen where the service sends its DogStatsD metrics and print what arrives.

The service has no metrics endpoint: the API and the processor send DogStatsD datagrams over UDP
to DD_AGENT_HOST:DD_DOGSTATSD_PORT (localhost:8125 by default), where a Datadog agent would be.
With no agent running, this script takes the agent's place for a few seconds, parses every
datagram (`name:value|type[|@rate][|#tags]`, several per datagram), and prints one line per
metric and tag set: counters summed (and per second, sample rates applied), gauges' last value,
histograms, distributions and timings as count, mean, p50, p95 and max. Service checks (`_sc`)
and events (`_e`) are counted.

If an agent already holds the port, the figures are in Datadog (or `datadog-agent status`); this
script says so and stops. Standard library only.
"""

from __future__ import annotations

import argparse
import errno
import math
import socket
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

DEFAULT_PORT = 8125
MAX_DATAGRAM = 65535


@dataclass(frozen=True)
class Sample:
    """One DogStatsD metric sample."""

    name: str
    value: float
    kind: str  # c, g, h, d, ms, s
    rate: float = 1.0
    tags: tuple[str, ...] = ()
    member: str = ""  # a set's element


@dataclass
class Series:
    """Everything received for one metric name, type and tag set."""

    kind: str
    total: float = 0.0
    last: float = 0.0
    values: list[float] = field(default_factory=list)
    members: set[str] = field(default_factory=set)


def parse_line(line: str) -> list[Sample]:
    """The samples of one metric line; none for service checks, events and anything malformed.

    A line may carry several values (DogStatsD protocol v1.1, `name:1:2:3|h`)."""
    if not line or line.startswith(("_sc|", "_e{")):
        return []
    head, _, rest = line.partition("|")
    name, sep, raw_value = head.partition(":")
    if not sep or not name or not rest:
        return []
    fields = rest.split("|")
    kind, rate = fields[0], 1.0
    tags: tuple[str, ...] = ()
    for extra in fields[1:]:
        if extra.startswith("@"):
            try:
                rate = float(extra[1:]) or 1.0
            except ValueError:
                return []
        elif extra.startswith("#"):
            tags = tuple(sorted(t for t in extra[1:].split(",") if t))
    if kind == "s":
        return [Sample(name, 0.0, kind, rate, tags, member=raw_value)]
    try:
        values = [float(v) for v in raw_value.split(":")]
    except ValueError:
        return []
    return [Sample(name, value, kind, rate, tags) for value in values]


def parse_datagram(data: bytes) -> tuple[list[Sample], int]:
    """The metric samples of one datagram, and how many service checks and events it held."""
    samples, others = [], 0
    for line in data.decode("utf-8", "replace").splitlines():
        line = line.strip()
        if line.startswith(("_sc|", "_e{")):
            others += 1
            continue
        samples += parse_line(line)
    return samples, others


SeriesKey = tuple[str, str, tuple[str, ...]]
KIND_NAMES = {"h": "histogram", "d": "distribution", "ms": "timing"}


def aggregate(samples: Iterable[Sample]) -> dict[SeriesKey, Series]:
    """Series by (name, type, tags)."""
    series: dict[SeriesKey, Series] = {}
    for sample in samples:
        s = series.setdefault((sample.name, sample.kind, sample.tags), Series(sample.kind))
        if sample.kind == "c":
            s.total += sample.value / sample.rate
        elif sample.kind == "g":
            s.last = sample.value
        elif sample.kind == "s":
            s.members.add(sample.member)
        else:
            s.values.append(sample.value)
    return series


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def describe(series: Series, seconds: float) -> str:
    if series.kind == "c":
        return f"count {series.total:g} ({series.total / seconds:.2f}/s)"
    if series.kind == "g":
        return f"gauge {series.last:g}"
    if series.kind == "s":
        return f"set, {len(series.members)} distinct"
    v = series.values
    kind = KIND_NAMES.get(series.kind, series.kind)
    return (
        f"{kind} n={len(v)} mean={sum(v) / len(v):.3g} p50={percentile(v, 0.5):.3g} "
        f"p95={percentile(v, 0.95):.3g} max={max(v):.3g}"
    )


def report(series: dict[SeriesKey, Series], seconds: float) -> list[str]:
    """One line per series, sorted by name."""
    lines = []
    for (name, _, tags), s in sorted(series.items()):
        label = f"{name}{{{','.join(tags)}}}" if tags else name
        lines.append(f"  {label:<70} {describe(s, seconds)}")
    return lines


def listen(host: str, port: int, seconds: float) -> tuple[list[Sample], int, int]:
    """Receive datagrams on host:port for `seconds`; (samples, service checks/events, datagrams)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.bind((host, port))
        deadline = time.monotonic() + seconds
        samples: list[Sample] = []
        others = datagrams = 0
        while (left := deadline - time.monotonic()) > 0:
            sock.settimeout(left)
            try:
                data = sock.recv(MAX_DATAGRAM)
            except TimeoutError:
                break
            datagrams += 1
            got, n = parse_datagram(data)
            samples += got
            others += n
    return samples, others, datagrams


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="statsd_capture.py", description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help="DogStatsD port (8125)")
    p.add_argument("--seconds", type=float, default=10.0, help="how long to listen (10)")
    args = p.parse_args(argv)
    print(f"listening for DogStatsD on udp://{args.host}:{args.port} for {args.seconds:g}s…")
    try:
        samples, others, datagrams = listen(args.host, args.port, args.seconds)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            print(
                f"udp port {args.port} is taken, probably by a Datadog agent: the metrics go to it "
                "(see Datadog, or `datadog-agent status`). Stop it to capture here.",
                file=sys.stderr,
            )
            return 1
        raise
    series = aggregate(samples)
    print(f"{datagrams} datagrams, {len(samples)} samples, {len(series)} series", end="")
    print(f", {others} service checks/events" if others else "")
    if not samples:
        print(
            "nothing arrived: is the stack running (make status), with DD_METRICS_ENABLED=true "
            f"and DD_DOGSTATSD_PORT={args.port}? Metrics are sent as requests are processed."
        )
        return 0
    print("\n".join(report(series, args.seconds)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
