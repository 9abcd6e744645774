"""Retry timing for bank calls: capped exponential backoff with full jitter.

Full jitter (a uniform draw between zero and the capped exponential ceiling) spreads the retries of
many clients that failed together, so a recovering bank is not hit by synchronized waves.
"""

from __future__ import annotations

import random
from collections.abc import Callable

# os.urandom-backed; the jitter needs no reproducibility and this keeps the bandit rule quiet.
_system_random = random.SystemRandom()

# Beyond this the ceiling is the cap anyway; stops 2**n from growing without need.
_MAX_EXPONENT = 62


def backoff_ceiling(retry: int, *, base: float, cap: float) -> float:
    """The longest wait before retry number `retry` (0 for the first retry): min(cap, base*2^n)."""
    if retry < 0:
        raise ValueError("retry must be >= 0")
    return min(cap, base * 2.0 ** min(retry, _MAX_EXPONENT))


def backoff_delay(
    retry: int,
    *,
    base: float,
    cap: float,
    rand: Callable[[], float] = _system_random.random,
) -> float:
    """Seconds to wait before retry number `retry`: uniform in [0, backoff_ceiling(retry)].

    `rand` returns a float in [0, 1); tests pass a fixed one.
    """
    return rand() * backoff_ceiling(retry, base=base, cap=cap)
