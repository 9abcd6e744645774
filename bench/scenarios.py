"""The three scenarios of the benchmark (issue 6) as run specs, and the rate sweep of scenario 1.

1. fast bank (about 1 ms): a sweep for the highest rate sustained with p99 < 100 ms, no errors,
   no 202s, and a clean correctness check;
2. realistic bank (50 ms +/- 20 ms): fixed rates 200, 500 and 1,000 payments/s;
3. mixed load with 10 % refunds of payments captured earlier in the same run;
4. scale-out (not run by default: `--scenarios 4`): scenario 1's sweep with 2 APIs on one port
   and 3 processors (`STACK_APIS`, `STACK_PROCESSORS`), to show how throughput follows cores.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bench.run import RunSpec, say
from bench.stackctl import Stack

FAST_BANK = (1.0, 0.5)
REAL_BANK = (50.0, 20.0)
S1_P99_MS = 100.0
S2_P99_MS = 250.0


def sweep(
    run: Callable[[RunSpec], dict[str, Any]],
    *,
    start: float,
    factor: float,
    max_rate: float,
    refine_steps: int,
    duration: float,
    warmup: float,
    explicit: list[float] | None = None,
    scenario: str = "1-fast-bank",
) -> list[dict[str, Any]]:
    """Raise the rate until a run fails, then bisect between the last pass and the first fail."""

    def spec(rate: float) -> RunSpec:
        return RunSpec(
            scenario=scenario,
            label=f"{rate:.0f}/s",
            rate=rate,
            duration=duration,
            warmup=warmup,
            bank_ms=FAST_BANK[0],
            bank_jitter_ms=FAST_BANK[1],
            p99_target_ms=S1_P99_MS,
        )

    records: list[dict[str, Any]] = []
    if explicit:
        for rate in explicit:
            records.append(run(spec(rate)))
        return records
    passed, failed = 0.0, None
    rate = start
    while rate <= max_rate:
        record = run(spec(rate))
        records.append(record)
        if record["meets_target"]:
            passed = rate
            rate = round_rate(rate * factor)
        else:
            failed = rate
            break
    for _ in range(refine_steps):
        if failed is None or failed - passed <= max(10.0, 0.1 * failed):
            break
        rate = round_rate((passed + failed) / 2) if passed else round_rate(failed / 2)
        record = run(spec(rate))
        records.append(record)
        if record["meets_target"]:
            passed = rate
        else:
            failed = rate
    say(f"{scenario}: highest rate sustained with p99 < {S1_P99_MS:.0f} ms: {passed:.0f}/s")
    return records


def round_rate(rate: float) -> float:
    step = 50.0 if rate >= 200 else 10.0
    return max(step, round(rate / step) * step)


def realistic(rates: list[float], duration: float, warmup: float) -> list[RunSpec]:
    return [
        RunSpec(
            scenario="2-realistic-bank",
            label=f"{rate:.0f}/s",
            rate=rate,
            duration=duration,
            warmup=warmup,
            bank_ms=REAL_BANK[0],
            bank_jitter_ms=REAL_BANK[1],
            p99_target_ms=S2_P99_MS if rate <= 500 else None,
        )
        for rate in rates
    ]


def mixed(rate: float, duration: float, warmup: float, bank: tuple[float, float]) -> RunSpec:
    return RunSpec(
        scenario="3-mixed-refunds",
        label=f"{rate:.0f}/s, 10% refunds",
        rate=rate,
        duration=duration,
        warmup=warmup,
        bank_ms=bank[0],
        bank_jitter_ms=bank[1],
        refund_fraction=0.1,
    )


def best_sustained(records: list[dict[str, Any]]) -> float:
    rates = [r["rate"] for r in records if r["meets_target"]]
    return max(rates) if rates else 0.0


SCALE_OUT = "4-scale-out"
# The instances scenario 4 runs, and the one-of-each it goes back to (scripts/stackctl/config.py).
SCALE_OUT_INSTANCES = {"STACK_APIS": "2", "STACK_PROCESSORS": "3"}
ONE_OF_EACH = {"STACK_APIS": "1", "STACK_PROCESSORS": "1"}


def scale_out(
    stack: Stack,
    overrides: dict[str, str],
    run_sweep: Callable[[str], list[dict[str, Any]]],
) -> list[dict[str, Any]]:
    """Scenario 4: restart the API and the processor as 2 and 3 instances, sweep as scenario 1,
    then back to one of each (with the run's other settings)."""
    say(f"{SCALE_OUT}: restarting api, processor with {SCALE_OUT_INSTANCES}")
    stack.restart(["api", "processor"], {**overrides, **SCALE_OUT_INSTANCES})
    try:
        return run_sweep(SCALE_OUT)
    finally:
        say(f"{SCALE_OUT}: back to one api and one processor")
        stack.restart(["api", "processor"], {**overrides, **ONE_OF_EACH})
