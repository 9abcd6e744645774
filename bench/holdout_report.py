"""The hold-out run's report: our generator's figures beside vegeta's, pair by pair."""

from __future__ import annotations

import statistics
from typing import Any


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def spread(values: list[float]) -> str:
    """The median and how far the runs stray from it, as `median (-a %/+b %)`."""
    if not values:
        return "-"
    mid = statistics.median(values)
    if not mid:
        return f"{mid:g}"
    low, high = (min(values) - mid) / mid * 100, (max(values) - mid) / mid * 100
    return f"{mid:.1f} ({low:+.0f} %/{high:+.0f} %)"


def render(result: dict[str, Any]) -> str:
    runs = result["runs"]
    rows = [
        [
            str(r["pair"]),
            r["generator"],
            str(r["sent"]),
            _num(r["sent_rps"]),
            *(_num(r["latency_ms"].get(k)) for k in ("p50", "p90", "p99", "p99.9", "max")),
            str(r["errors_total"]),
            _num(r["cpu_ms_per_request"].get("stack")),
            _num(r.get("generator_cpu_ms_per_request")),
            _num(r.get("other_cores")),
            "yes" if r["correctness"]["ok"] else "NO",
            "yes" if r["ops_verify"].get("ok") else "NO",
            str(len(r["pauses"].get("processor_stalls", []))),
        ]
        for r in runs
    ]
    header = [
        "pair", "generator", "sent", "sent/s", "p50 ms", "p90 ms", "p99 ms", "p99.9 ms",
        "max ms", "errors", "CPU ms/req", "generator CPU ms/req", "other cores", "correct",
        "ops verify", "stalls",
    ]  # fmt: skip
    by_gen: dict[str, dict[str, list[float]]] = {}
    for r in runs:
        g = by_gen.setdefault(r["generator"], {"p50": [], "p99": [], "cpu": []})
        for k in ("p50", "p99"):
            if r["latency_ms"].get(k) is not None:
                g[k].append(float(r["latency_ms"][k]))
        if r["cpu_ms_per_request"].get("stack") is not None:
            g["cpu"].append(float(r["cpu_ms_per_request"]["stack"]))
    summary = [
        [gen, spread(v["p50"]), spread(v["p99"]), spread(v["cpu"])] for gen, v in by_gen.items()
    ]
    return "\n".join(
        [
            "# Hold-out run: our load generator against vegeta",
            "",
            f"{result['rate']:g} payments/s for {result['seconds']:g} s per run, bank "
            f"{result['bank_ms']:g} ms, {result.get('machine', {}).get('cpu', '?')}, commit "
            f"{result.get('machine', {}).get('commit', '?')}, {result.get('started_at', '')}. "
            "Ours times each request from its schedule, vegeta from its start; both are open "
            "loop. CPU is the whole stack's per processed payment, without the generator, whose "
            "own CPU per request is the next column; other cores: what the rest of the machine "
            "used (the generator included).",
            "",
            table(header, rows),
            "",
            "Median over the runs, and the furthest run from it:",
            "",
            table(["generator", "p50 ms", "p99 ms", "CPU ms/req"], summary),
            "",
        ]
    )


def _num(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:.1f}" if isinstance(value, float) else str(value)
