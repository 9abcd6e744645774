"""Number formatting shared by the report's tables."""

from __future__ import annotations


def ms(value: float | None) -> str:
    """Milliseconds as the tables print them: whole above 100, one decimal below, '-' if none."""
    if value is None:
        return "-"
    return f"{value:,.0f}" if value >= 100 else f"{value:.1f}"
