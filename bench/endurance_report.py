"""The report's section on scenarios 5-7: stability of the p99, memory over a soak, overload.

Written from `results.json` (`endurance` verdicts and the runs' records) by `bench.report`.
"""

from __future__ import annotations

import statistics
from typing import Any

from bench.markdown import ms

# Error counts under these names are answers (a 503 is a clean refusal), not client failures.
_ANSWERS = ("http_", "warmup_http_")


def _correct(r: dict[str, Any]) -> str:
    ops = r.get("ops_verify")
    bench = "yes" if r["correctness"].get("ok") else "**no**"
    return bench if not ops else f"{bench}, ops verify {'yes' if ops.get('ok') else '**no**'}"


def _pauses(slowest: list[float]) -> str:
    """The seconds whose slowest answer stands out: more than 3x the run's median second."""
    measured = [v for v in slowest if v > 0]
    if not measured:
        return "-"
    median = statistics.median(measured)
    spikes = [(i, v) for i, v in enumerate(slowest) if v > 3 * median]
    worst = max(range(len(slowest)), key=lambda i: slowest[i])
    text = f"median {ms(median)} ms; worst {ms(slowest[worst])} ms at s{worst}"
    return text + (f"; {len(spikes)} s over 3x the median" if spikes else "; no spike over 3x")


def _stability(results: dict[str, Any], runs: list[dict[str, Any]]) -> list[str]:
    verdict = results.get("endurance", {}).get("stability")
    if not runs or not verdict:
        return []
    out = [
        "### 5: the same rate three times (stability of the p99)",
        "",
        "| run | offered/s | p50 ms | p99 ms | max ms | slowest answer of each second | correct |",
        "|---|--:|--:|--:|--:|---|---|",
    ]
    for r in runs:
        lat = r["latency_ms"]["all"]
        out.append(
            f"| {r['label']} | {r['offered_rps']:,.0f} | {ms(lat.get('p50'))} | "
            f"{ms(lat.get('p99'))} | {ms(lat.get('max'))} | "
            f"{_pauses(r.get('slowest_per_second_ms', []))} | "
            f"{_correct(r)} |"
        )
    agree = "agree" if verdict.get("within_30pct") else "do **not** agree"
    out += [
        "",
        f"The p99s {agree} within ±30 % of their mean {ms(verdict.get('mean_ms'))} ms "
        f"(worst deviation {verdict.get('worst_deviation_pct', '-')} %).",
        "",
    ]
    return out


def _soak(results: dict[str, Any], runs: list[dict[str, Any]]) -> list[str]:
    verdict = results.get("endurance", {}).get("soak")
    if not runs or not verdict:
        return []
    r = runs[-1]
    lat = r["latency_ms"]["all"]
    out = [
        f"### 6: soak, {r['label']} (memory)",
        "",
        f"p50 {ms(lat.get('p50'))} ms, p99 {ms(lat.get('p99'))} ms, max {ms(lat.get('max'))}"
        f" ms; {r['requests']:,} requests; correct: {_correct(r)}. PSS of each process tree (MiB), "
        f"sampled every {verdict.get('interval_s', 10):g} s:",
        "",
        "| process | 2nd minute | last minute | change | max |",
        "|---|--:|--:|--:|--:|",
    ]
    for name, m in verdict.get("components", {}).items():
        change = m.get("change_pct")
        out.append(
            f"| {name} | {m['second_minute_mib']:,.1f} | {m['last_minute_mib']:,.1f} | "
            f"{'-' if change is None else f'{change:+.1f} %'} | {m['max_mib']:,.1f} |"
        )
    return [*out, ""]


def _overload(runs: list[dict[str, Any]]) -> list[str]:
    if not runs:
        return []
    out = [
        "### 7: overload (no backlog limit): how each kind of answer fared",
        "",
        "| offered/s | answer | count | p50 ms | p99 ms | max ms |",
        "|--:|---|--:|--:|--:|--:|",
    ]
    for r in runs:
        for status, lat in r.get("latency_by_status_ms", {}).items():
            out.append(
                f"| {r['offered_rps']:,.0f} | {status} | {lat.get('count', 0):,} | "
                f"{ms(lat.get('p50'))} | {ms(lat.get('p99'))} | {ms(lat.get('max'))} |"
            )
        client = {k: v for k, v in (r.get("error_kinds") or {}).items()
                  if not k.startswith(_ANSWERS)}  # fmt: skip
        out.append(
            f"| {r['offered_rps']:,.0f} | client errors "
            f"({', '.join(client) or 'none'}) | {sum(client.values()):,} | | | |"
        )
    return [
        *out,
        "",
        "Correct after overload (nothing answered 503 was charged, nothing accepted lost): "
        + ", ".join(_correct(r) for r in runs)
        + ".",
        "",
    ]


def section(results: dict[str, Any]) -> list[str]:
    """Markdown lines for scenarios 5-7, or nothing if none of them ran."""
    by: dict[str, list[dict[str, Any]]] = {}
    for r in results["runs"]:
        by.setdefault(r["scenario"], []).append(r)
    body = [
        *_stability(results, by.get("5-stability", [])),
        *_soak(results, by.get("6-soak", [])),
        *_overload(by.get("7-overload", [])),
    ]
    return ["## Scenarios 5-7: stability, memory, overload", "", *body] if body else []
