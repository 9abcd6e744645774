"""Write the results as Markdown (report.md, and table.md for the README) and a PNG plot."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench import endurance_report, pauses, pgstats
from bench.cpu import COMPONENTS
from bench.markdown import ms

TARGETS = {
    "1-fast-bank": "highest rate with p99 < 100 ms, no errors (target >= 1,000/s)",
    "2-realistic-bank": "500/s with p99 < 250 ms",
    "3-mixed-refunds": "10 % of requests are partial refunds of captured payments",
    "4-scale-out": "scenario 1 with 2 APIs (one port) and 3 processors: scaling with cores",
}


def _verdict(r: dict[str, Any]) -> str:
    c = r["correctness"]
    late = c.get("error_answers_processed") or {}
    note = (
        f"; {sum(late.values())} payments answered with an error were processed anyway "
        f"({', '.join(f'{k} {v}' for k, v in late.items())})"
        if late
        else ""
    )
    if not c["ok"]:
        problems = ", ".join(f"{k} {v}" for k, v in c["problems"].items())
        return f"**FAILED**: {problems}{note}"
    refunds = f", {c['refunds_checked']:,} refunds" if c["refunds_checked"] else ""
    return f"ok ({c['payments_checked']:,} payments{refunds}){note}"


def ops_verdict(r: dict[str, Any]) -> str:
    """`ops verify --since` over the run's payments: the operators' check, beside the bench's."""
    found = r.get("ops_verify")
    if not found:
        return "-"
    if found.get("ok"):
        return "yes"
    failed = {k: v for k, v in found.get("checks", {}).items() if v}
    return "**no** (" + ", ".join(f"{k} {v}" for k, v in failed.items()) + ")"


def _bank(r: dict[str, Any]) -> str:
    return f"{r['bank_ms']:g}±{r['bank_jitter_ms']:g} ms"


def _flags(r: dict[str, Any]) -> str:
    flags = []
    if r["saturated_after_s"] is not None and r["saturated_after_s"] < 0:
        flags.append("saturated during the warm-up: nothing measured")
    elif r["saturated_after_s"] is not None:
        flags.append(f"saturated after {r['saturated_after_s']:.1f} s")
    if r["generator_lagging"]:
        flags.append("generator lagging")
    if r.get("meets_target") is True:
        flags.append("meets target")
    elif r.get("meets_target") is False:
        flags.append("misses target")
    return "; ".join(flags)


def table(results: dict[str, Any]) -> str:
    """The compact table (also for the README)."""
    m = results["machine"]
    lines = [
        f"Measured {results['started_at'][:10]} on {m['cores']} cores ({m['cpu']}), "
        f"{m['memory_gib']} GiB, everything on one machine (commit {m['commit']}). "
        "Latency from each request's scheduled start (open loop). processed/s: payments (and "
        "refunds) that reached a final status in PostgreSQL per second, first request to fully "
        "drained. CPU: all processes of the stack over that time, per processed request.",
        "",
        "| scenario | bank | offered/s | processed/s | p50 ms | p90 ms | p99 ms | p99.9 ms "
        "| errors | 202s | CPU ms/request | correct | ops verify | note |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|---|---|",
    ]
    for r in results["runs"]:
        lat = r["latency_ms"]["all"]
        lines.append(
            f"| {r['scenario']} | {_bank(r)} "
            f"| {r['offered_rps']:,.0f} | {r.get('processed_rps', r['achieved_rps']):,.0f} "
            f"| {ms(lat.get('p50'))} | {ms(lat.get('p90'))} | {ms(lat.get('p99'))} "
            f"| {ms(lat.get('p99.9'))} | {r['errors']} | {r['accepted_202']} "
            f"| {r['cpu_ms_per_request']['stack']:.2f} "
            f"| {'yes' if r['correctness']['ok'] else '**no**'} | {ops_verdict(r)} | {_flags(r)} |"
        )
    best = results.get("summary", {}).get("scenario1_max_sustained_rps")
    if best is not None and any(r["scenario"] == "1-fast-bank" for r in results["runs"]):
        lines += ["", f"Scenario 1, highest rate sustained with p99 < 100 ms: **{best:,.0f}/s**."]
    return "\n".join(lines) + "\n"


def report(results: dict[str, Any]) -> str:
    m = results["machine"]
    s = results["settings"]
    out = [
        "# Benchmark results",
        "",
        f"Run {results['started_at']} → {results.get('finished_at', '…')} "
        f"({results.get('elapsed_s', 0):.0f} s) with `make bench` (see docs/benchmark.md).",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, Linux {m['kernel']}, "
        f"Python {m['python']}; commit {m['commit']}. The load generator, Kafka, PostgreSQL, "
        "Redis, the bank simulator, the processor and the API all share these cores.",
        "",
        f"Settings given to the apps: `{s['overrides']}`; client: {s['connections']} connections, "
        f"Idempotency-Key on every request: {s['idempotency_keys']}; each run: "
        f"{s['warmup_s']:.0f} s warm-up at the same rate (verified, not measured), then "
        f"{s['duration_s']:.0f} s measured ({s['s2_duration_s']:.0f} s in scenario 2).",
        "",
        "## Summary",
        "",
        table(results),
        "![latency versus rate](latency.png)",
        "",
        "## CPU per request, by process (ms of CPU per processed request)",
        "",
        "| scenario | offered/s | " + " | ".join(COMPONENTS) + " | stack | stack cores "
        "| generator | other cores |",
        "|---|--:|" + "--:|" * (len(COMPONENTS) + 4),
    ]
    for r in results["runs"]:
        per = r["cpu_ms_per_request"]
        out.append(
            f"| {r['scenario']} | {r['offered_rps']:,.0f} | "
            + " | ".join(f"{per.get(c, 0):.2f}" for c in COMPONENTS)
            + f" | **{per['stack']:.2f}** | {r['cores_used_by_stack']:.2f} "
            f"| {r['generator_cpu_ms_per_request']:.2f} | {r['other_cores']:.2f} |"
        )
    idle = results.get("idle_cores")
    if idle:
        out += [
            "",
            "The idle stack alone uses "
            + ", ".join(f"{k} {idle[k]:.3f}" for k in (*COMPONENTS, "stack") if k in idle)
            + " cores (polling, timers). What the load adds on top of that, per request "
            "(the marginal cost, which is what grows with the rate):",
            "",
            "| scenario | offered/s | " + " | ".join(COMPONENTS) + " | stack |",
            "|---|--:|" + "--:|" * (len(COMPONENTS) + 1),
        ]
        for r in results["runs"]:
            per = r.get("cpu_ms_per_request_marginal")
            if per:
                out.append(
                    f"| {r['scenario']} | {r['offered_rps']:,.0f} | "
                    + " | ".join(f"{per.get(c, 0):.2f}" for c in COMPONENTS)
                    + f" | **{per['stack']:.2f}** |"
                )
    out += [
        "",
        "`generator`: CPU of the load generator (and this harness) per request, on the same "
        "cores. `other cores`: CPU used during the run by processes outside the stack and the "
        "benchmark (another program on the machine); anything above ~0.05 disturbed the run.",
        "",
        *endurance_report.section(results),
        "## Per run",
        "",
    ]
    for r in results["runs"]:
        lat = r["latency_ms"]
        parts = [f"all p99 {ms(lat['all'].get('p99'))} ms"]
        for kind in ("payment", "refund"):
            if kind in lat and "refund" in lat:
                parts.append(
                    f"{kind}s p50 {ms(lat[kind].get('p50'))} / p99 "
                    f"{ms(lat[kind].get('p99'))} ms ({lat[kind]['count']:,})"
                )
        out.append(
            f"- **{r['scenario']} {r['label']}** (bank {_bank(r)}"
            f"): {r['requests']:,} requests; {', '.join(parts)}; max "
            f"{ms(lat['all'].get('max'))} ms; status {r['status']}; client errors "
            f"{r['error_kinds'] or 'none'}; generator dispatch lag p99 "
            f"{r['lag_ms'].get('p99', 0):.1f} ms; correctness: {_verdict(r)}, drained in "
            f"{r['correctness']['drained_in_s']:.1f} s. {_flags(r)}"
            f"{pgstats.describe(r)}{pauses.describe(r)}"
        )
    return "\n".join(out) + "\n"


def plot(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = results["runs"]
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(13, 5), gridspec_kw={"width_ratios": [3, 2]})
    styles = {"p50": ":", "p99": "-", "p99.9": "--"}
    colors = {
        "1-fast-bank": "tab:blue",
        "2-realistic-bank": "tab:orange",
        "3-mixed-refunds": "tab:green",
        "4-scale-out": "tab:red",
    }
    names = {
        "1-fast-bank": "fast bank 1 ms",
        "2-realistic-bank": "bank 50±20 ms",
        "3-mixed-refunds": "10% refunds",
        "4-scale-out": "2 APIs x 3 processors",
    }
    for scenario, color in colors.items():
        rows = sorted((r for r in runs if r["scenario"] == scenario), key=lambda r: r["rate"])
        if not rows:
            continue
        xs = [r["offered_rps"] for r in rows]
        for q, style in styles.items():
            ys = [r["latency_ms"]["all"].get(q) for r in rows]
            ax.plot(xs, ys, style, marker="o", color=color, label=f"{names[scenario]} {q}")
        for r in rows:
            if r["saturated_after_s"] is not None or r["errors"]:
                ax.annotate(
                    "saturated" if r["saturated_after_s"] is not None else "errors",
                    (r["offered_rps"], r["latency_ms"]["all"].get("p99") or 1),
                    textcoords="offset points",
                    xytext=(4, 6),
                    fontsize=7,
                    color=color,
                )
    ax.axhline(100, color="grey", lw=0.8)
    ax.axhline(250, color="grey", lw=0.8, ls="-.")
    ax.text(ax.get_xlim()[0], 100, " 100 ms", va="bottom", fontsize=7, color="grey")
    ax.text(ax.get_xlim()[0], 250, " 250 ms", va="bottom", fontsize=7, color="grey")
    ax.set_yscale("log")
    ax.set_xlabel("offered rate (requests/s)")
    ax.set_ylabel("latency from scheduled start (ms)")
    ax.set_title("Latency versus rate (open loop)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, ncol=2)

    labels = [f"{r['scenario'][0]}:{r['offered_rps']:.0f}" for r in runs]
    bottom = [0.0] * len(runs)
    for comp in COMPONENTS:
        vals = [r["cpu_ms_per_request"].get(comp, 0.0) for r in runs]
        bx.bar(labels, vals, bottom=bottom, label=comp)
        bottom = [b + v for b, v in zip(bottom, vals, strict=True)]
    bx.set_ylabel("CPU ms per request")
    bx.set_title("CPU per request by process")
    bx.tick_params(axis="x", labelrotation=60, labelsize=7)
    bx.legend(fontsize=7)
    m = results["machine"]
    fig.suptitle(
        f"payment-service benchmark, {m['cores']} cores ({m['cpu']}), {results['started_at'][:10]}",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(results: dict[str, Any], out: Path) -> None:
    if not results["runs"]:
        return
    (out / "report.md").write_text(report(results))
    (out / "table.md").write_text(table(results))
    plot(results, out / "latency.png")
