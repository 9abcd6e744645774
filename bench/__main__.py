"""`python -m bench`: the benchmark of the whole payment path (issue 6; docs/benchmark.md).

    python -m bench                       # all three scenarios, results in bench/results/
    python -m bench --scenarios 2 --s2-rates 500
    python -m bench --scenarios 4         # scale-out: 2 APIs x 3 processors, scenario 1's sweep
    python -m bench --scenarios 5,6,7     # stability (3 x 300/s), 10-min soak, overload
    python -m bench --env PROCESSOR_MAX_IN_FLIGHT=512   # a setting for the apps (restarted)
    python -m bench profile --rate 400    # py-spy on the API and the processor under load
    python -m bench report                # re-write report.md and the plot from results.json
    python -m bench holdout --rate 80     # our generator against vegeta, 3 pairs of runs

Run it with the stack's variables (`make bench` does: scripts/stack.py exec).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import endurance, scenarios
from bench.cpu import idle_cores, read_pids
from bench.report import write_report
from bench.run import RunSpec, execute, say, wait_for_quiet
from bench.stackctl import PROJECT, Stack, owners

RESULTS = PROJECT / "bench" / "results"
MERCHANT = "bench_merchant"
# The per-merchant rate limit (default 6,000/min) would refuse the load itself.
BASE_OVERRIDES = {"API_RATE_LIMIT_PER_MINUTE": "1000000000"}


def _rates(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x.strip()]


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "command", nargs="?", default="run", choices=["run", "profile", "report", "holdout"]
    )
    p.add_argument(
        "--scenarios", default="1,2,3", help="which scenarios (default 1,2,3; 4: scale-out)"
    )
    p.add_argument("--duration", type=float, default=20.0, help="measured seconds per run (1, 3)")
    p.add_argument("--s2-duration", type=float, default=30.0, help="measured seconds (scenario 2)")
    p.add_argument("--warmup", type=float, default=5.0, help="warm-up seconds before each run")
    p.add_argument("--sweep-start", type=float, default=50.0)
    p.add_argument("--sweep-factor", type=float, default=1.5)
    p.add_argument("--sweep-max", type=float, default=3000.0)
    p.add_argument("--sweep-refine", type=int, default=2, help="bisection steps after a failure")
    p.add_argument("--sweep-rates", type=_rates, help="explicit scenario-1 rates (no search)")
    p.add_argument("--s2-rates", type=_rates, default=[200.0, 500.0, 1000.0])
    p.add_argument(
        "--s3-rate",
        type=float,
        default=None,
        help="scenario-3 rate (default: half of scenario 1's best, at least 50/s)",
    )
    p.add_argument("--s3-bank", choices=["fast", "realistic"], default="realistic")
    p.add_argument("--connections", type=int, default=1024, help="client connection pool size")
    p.add_argument(
        "--no-idempotency-keys",
        dest="idempotency_keys",
        action="store_false",
        help="send no Idempotency-Key header (by default every request has one)",
    )
    p.add_argument(
        "--max-backlog-seconds",
        type=float,
        default=3.0,
        help="stop a run (saturated) when this many seconds of requests are pending",
    )
    p.add_argument("--drain-timeout", type=float, default=90.0)
    p.add_argument(
        "--quiet-cores",
        type=float,
        default=0.4,
        help="before a run, wait until the machine uses less than this (idle stack)",
    )
    p.add_argument(
        "--quiet-wait",
        type=float,
        default=30.0,
        help="how long to wait for that at most (0: do not wait)",
    )
    p.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a setting for the apps, passed at their (re)start; repeatable",
    )
    p.add_argument(
        "--keep-settings",
        action="store_true",
        help="leave the apps running with the benchmark's settings afterwards",
    )
    p.add_argument("--out", type=Path, default=RESULTS)
    endurance.add_arguments(p)
    # profile
    p.add_argument("--rate", type=float, help="profile, holdout: the load (requests/s; 400 and 80)")
    p.add_argument("--bank-ms", type=float, default=1.0, help="profile: bank latency (ms)")
    p.add_argument(
        "--seconds", type=float, help="profile: recording seconds (20); holdout: per run (60)"
    )
    p.add_argument("--native", action="store_true", help="profile: py-spy --native")
    # holdout (--rate and --bank-ms above)
    p.add_argument("--pairs", type=int, default=3, help="holdout: pairs of runs (ours, vegeta)")
    return p


def machine() -> dict[str, Any]:
    cpu = "?"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kb = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal")
    )
    commit = subprocess.run(  # noqa: S603
        ["git", "-C", str(PROJECT), "rev-parse", "--short", "HEAD"],  # noqa: S607
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(mem_kb / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "commit": commit,
    }


def prepare(stack: Stack, extra: list[str]) -> tuple[dict[str, str], list[str]]:
    overrides = dict(BASE_OVERRIDES)
    for item in extra:
        name, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--env {item!r}: expected NAME=VALUE")
        overrides[name] = value
    apps: set[str] = set()
    for name, value in overrides.items():
        for app in owners(name):
            if stack.environ_of(app).get(name) != value:
                apps.add(app)
    if apps:
        say(f"restarting {', '.join(sorted(apps))} with {overrides}")
        stack.restart(sorted(apps), overrides)
    return overrides, sorted(apps)


def restore(stack: Stack, apps: list[str]) -> None:
    try:
        stack.reset_bank()
    except OSError as exc:
        say(f"could not reset the bank simulator: {exc}")
    if apps:
        say(f"restarting {', '.join(apps)} with their usual settings")
        stack.restart(apps, {})


def cmd_run(args: argparse.Namespace) -> int:
    stack = Stack.locate()
    wanted = {s.strip() for s in args.scenarios.split(",")}
    overrides, restarted = prepare(stack, args.env)
    api_key = stack.create_api_key(MERCHANT)
    results: dict[str, Any] = {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "settings": {
            "overrides": overrides,
            "connections": args.connections,
            "idempotency_keys": args.idempotency_keys,
            "warmup_s": args.warmup,
            "duration_s": args.duration,
            "s2_duration_s": args.s2_duration,
        },
        "runs": [],
    }
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()

    def run(spec: RunSpec) -> dict[str, Any]:
        say(
            f"{spec.scenario} {spec.label}: bank {spec.bank_ms}±{spec.bank_jitter_ms} ms, "
            f"{spec.warmup:.0f}s warm-up + {spec.duration:.0f}s"
        )
        record = execute(stack, spec, api_key, MERCHANT, args)
        results["runs"].append(record)
        save(results, args.out)
        return record

    try:
        say("warm-up of the whole stack (not recorded)")
        execute(
            stack,
            RunSpec("warmup", "warm-up", 100, 5, 2, *scenarios.FAST_BANK),
            api_key,
            MERCHANT,
            args,
        )
        if args.quiet_wait:
            wait_for_quiet(args.quiet_cores, args.quiet_wait)
        args.idle_cores = idle_cores(read_pids(stack.dir))
        results["idle_cores"] = args.idle_cores
        say(f"idle stack: {args.idle_cores}")

        def sweep(scenario: str) -> list[dict[str, Any]]:
            return scenarios.sweep(
                run,
                start=args.sweep_start,
                factor=args.sweep_factor,
                max_rate=args.sweep_max,
                refine_steps=args.sweep_refine,
                duration=args.duration,
                warmup=args.warmup,
                explicit=args.sweep_rates,
                scenario=scenario,
            )

        if "1" in wanted:
            sweep("1-fast-bank")
        if "2" in wanted:
            for spec in scenarios.realistic(args.s2_rates, args.s2_duration, args.warmup):
                run(spec)
        if "3" in wanted:
            bank = scenarios.REAL_BANK if args.s3_bank == "realistic" else scenarios.FAST_BANK
            best = scenarios.best_sustained(
                [r for r in results["runs"] if r["scenario"] == "1-fast-bank"]
            )
            rate = args.s3_rate or (max(50.0, scenarios.round_rate(best / 2)) if best else 200.0)
            run(scenarios.mixed(rate, args.duration, args.warmup, bank))
        if "4" in wanted:
            scenarios.scale_out(stack, overrides, sweep)
        best = scenarios.best_sustained(
            [r for r in results["runs"] if r["scenario"] == "1-fast-bank"]
        )
        endurance.run_wanted(wanted, run, lambda: read_pids(stack.dir), args, results, best)
    finally:
        results["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
        results["elapsed_s"] = round(time.monotonic() - started, 1)
        save(results, args.out)
        if not args.keep_settings:
            restore(stack, restarted)
    say(f"done in {results['elapsed_s']:.0f}s; report: {args.out / 'report.md'}")
    return 0


def save(results: dict[str, Any], out: Path) -> None:
    results["summary"] = {
        "scenario1_max_sustained_rps": scenarios.best_sustained(
            [r for r in results["runs"] if r["scenario"] == "1-fast-bank"]
        ),
    }
    tmp = out / "results.json.tmp"
    tmp.write_text(json.dumps(results, indent=1) + "\n")
    tmp.replace(out / "results.json")
    write_report(results, out)


def cmd_report(args: argparse.Namespace) -> int:
    results = json.loads((args.out / "results.json").read_text())
    write_report(results, args.out)
    print(f"wrote {args.out / 'report.md'}")
    return 0


def cmd_profile(args: argparse.Namespace) -> int:
    from bench.profile import profile

    args.rate, args.seconds = args.rate or 400.0, args.seconds or 20.0
    stack = Stack.locate()
    _, restarted = prepare(stack, args.env)
    try:
        api_key = stack.create_api_key(MERCHANT)
        profile(stack, api_key, MERCHANT, args)
    finally:
        if not args.keep_settings:
            restore(stack, restarted)
    return 0


def cmd_holdout(args: argparse.Namespace) -> int:
    from bench.holdout import run_pairs
    from bench.holdout_report import render

    args.rate, args.seconds = args.rate or 80.0, args.seconds or 60.0
    stack = Stack.locate()
    _, restarted = prepare(stack, args.env)
    out = args.out / "holdout"
    out.mkdir(parents=True, exist_ok=True)
    started = datetime.now(UTC).isoformat(timespec="seconds")
    try:
        api_key = stack.create_api_key(MERCHANT)
        pairs = run_pairs(stack, api_key, MERCHANT, args)
        result = {"started_at": started, "machine": machine(), **pairs}
    finally:
        if not args.keep_settings:
            restore(stack, restarted)
    (out / "holdout.json").write_text(json.dumps(result, indent=1) + "\n")
    (out / "holdout.md").write_text(render(result))
    say(f"report: {out / 'holdout.md'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command == "holdout":
        return cmd_holdout(args)
    if args.command == "report":
        return cmd_report(args)
    if args.command == "profile":
        return cmd_profile(args)
    return cmd_run(args)


if __name__ == "__main__":
    sys.exit(main())
