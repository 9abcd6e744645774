"""How the operators' tools print: aligned tables and progress for people, JSON for scripts.

Progress goes to stderr (only on a terminal, unless forced), so `--json` output on stdout stays
one clean document.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TextIO


def table(rows: Iterable[Mapping[str, Any]], columns: Sequence[str], *, limit: int = 0) -> str:
    """`rows` as an aligned text table of `columns` (`limit` > 0: at most that many rows)."""
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    shown = cells[:limit] if limit else cells
    widths = [max([len(c), *(len(r[i]) for r in shown)]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in shown]
    if limit and len(cells) > limit:
        lines.append(f"... {len(cells) - limit} more (--json for all)")
    return "\n".join(line.rstrip() for line in lines)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bytes):
        return value.hex()[:16]
    text = value.isoformat() if hasattr(value, "isoformat") else str(value)
    return text if len(text) <= 80 else text[:77] + "..."


def dump_json(data: Any, out: TextIO = sys.stdout) -> None:
    out.write(json.dumps(data, indent=2, sort_keys=True, default=_json_default) + "\n")


def _json_default(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.hex()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


class Progress:
    """`done/total` and a bar on stderr, redrawn at most ten times a second."""

    def __init__(self, label: str, total: int | None, *, enabled: bool | None = None) -> None:
        self._label = label
        self._total = total
        self._done = 0
        self._drawn = 0.0
        self._on = sys.stderr.isatty() if enabled is None else enabled

    def advance(self, n: int = 1) -> None:
        self._done += n
        now = time.monotonic()
        if self._on and (now - self._drawn > 0.1 or self._done == self._total):
            self._drawn = now
            sys.stderr.write("\r" + self._line())
            sys.stderr.flush()

    def close(self) -> None:
        if self._on:
            sys.stderr.write("\r" + self._line() + "\n")

    def _line(self) -> str:
        if not self._total:
            return f"{self._label}: {self._done}"
        filled = int(30 * self._done / self._total)
        return f"{self._label}: [{'#' * filled}{'.' * (30 - filled)}] {self._done}/{self._total}"
