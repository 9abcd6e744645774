"""Render the chaos suite's results (`CHAOS_REPORT`, JSON lines) as docs/reliability.md's table.

python -m tests.chaos.report .chaos/results.jsonl
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def _codes(codes: dict[str, int]) -> str:
    return ", ".join(f"{code}: {n}" for code, n in sorted(codes.items()))


def row(result: dict[str, Any]) -> str:
    held = all(result["invariants"].values())
    broken = [name for name, ok in result["invariants"].items() if not ok]
    failed = sum(result["failed"].values())
    # Since the suite runs with production's bank settings, no scenario may fail a good payment.
    good_failed = f"{failed} (bank faulty)" if not result["bank_healthy"] else str(failed)
    return (
        f"| {result['scenario']} | {result['sent']} | {_codes(result['codes'])} "
        f"| {'all held' if held else 'BROKEN: ' + '; '.join(broken)} "
        f"| {result['recovery_seconds']} s | {good_failed} "
        f"| {_codes(result['failed']) or '-'} |"
    )


def table(lines: list[str]) -> str:
    results = [json.loads(line) for line in lines if line.strip()]
    head = (
        "| scenario | requests sent | HTTP codes seen (all attempts) | invariants "
        "| time to recover | good payments failed | failures (code: n) |\n"
        "| --- | --- | --- | --- | --- | --- | --- |"
    )
    return "\n".join([head, *(row(r) for r in results)])


if __name__ == "__main__":
    print(table(Path(sys.argv[1]).read_text().splitlines()))
