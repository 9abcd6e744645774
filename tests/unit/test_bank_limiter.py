"""The AIMD concurrency limiter: admission, waiting, growth, decrease, and no leaked slots."""

from __future__ import annotations

import asyncio
import logging

import pytest

from payment_service.bank.limiter import ConcurrencyLimiter, Permit

pytestmark = pytest.mark.unit

LONG = 10.0  # a wait that never expires in these tests: they end it themselves


def limiter(low: int = 2, high: int = 8, changes: list[int] | None = None) -> ConcurrencyLimiter:
    hook = changes.append if changes is not None else None
    return ConcurrencyLimiter(min_limit=low, max_limit=high, on_change=hook)


async def take(lim: ConcurrencyLimiter, n: int) -> list[Permit]:
    permits = [await lim.acquire(LONG) for _ in range(n)]
    assert all(p is not None for p in permits)
    return [p for p in permits if p is not None]


async def test_starts_at_the_floor_and_admits_that_many_at_once() -> None:
    changes: list[int] = []
    lim = limiter(changes=changes)
    await take(lim, 2)
    assert (lim.limit, lim.in_flight, changes) == (2, 2, [2])
    assert await lim.acquire(0) is None  # full, and no time to wait: not sent
    assert lim.stats.timed_out == 1


async def test_a_waiter_gets_the_slot_a_release_frees_first_come_first_served() -> None:
    lim = limiter()
    first, second = await take(lim, 2)
    order: list[str] = []

    async def wait(name: str) -> None:
        permit = await lim.acquire(LONG)
        assert permit is not None
        order.append(name)

    waiters = [asyncio.create_task(wait(name)) for name in ("a", "b", "c")]
    await asyncio.sleep(0)
    assert lim.waiting == 3
    lim.release(first, "neutral")
    lim.release(second, "neutral")
    await asyncio.sleep(0)
    assert order == ["a", "b"]
    assert (lim.in_flight, lim.waiting) == (2, 1)
    waiters[2].cancel()
    await asyncio.gather(*waiters, return_exceptions=True)
    assert (lim.in_flight, lim.waiting) == (2, 0)


async def test_each_answer_while_the_limit_is_in_use_raises_it_by_one() -> None:
    changes: list[int] = []
    lim = limiter(low=2, high=6, changes=changes)
    for _ in range(4):  # one call in flight of a limit of 2: in use
        (permit,) = await take(lim, 1)
        lim.release(permit, "answered")
        if lim.limit == 3:
            break
    assert lim.limit == 3
    # One in flight of 3 is under half: light traffic does not raise the limit.
    (permit,) = await take(lim, 1)
    lim.release(permit, "answered")
    assert lim.limit == 3
    # Under load every answer counts while half the limit is in flight: 3 -> 4 -> 5.
    for permit in await take(lim, 3):
        lim.release(permit, "answered")
    assert lim.limit == 5
    for permit in await take(lim, 5):
        lim.release(permit, "answered")
    assert lim.limit == 6  # never above the ceiling
    assert changes == [2, 3, 4, 5, 6]


async def test_overload_halves_the_limit_once_per_wave_and_never_below_the_floor() -> None:
    lim = limiter(low=2, high=8)
    while lim.limit < 8:
        for permit in await take(lim, lim.limit):
            lim.release(permit, "answered")
    wave = await take(lim, 8)  # all admitted before the overload
    for permit in wave:
        lim.release(permit, "overload")
    assert (lim.limit, lim.stats.decreases) == (4, 1)
    for _ in range(3):  # later waves, each admitted after the last decrease: down to the floor
        (permit,) = await take(lim, 1)
        lim.release(permit, "overload")
    assert (lim.limit, lim.stats.decreases, lim.stats.lowest_limit) == (2, 2, 2)
    assert lim.stats.highest_limit == 8


async def test_a_wait_that_expires_leaves_nothing_behind() -> None:
    lim = limiter(low=1, high=1)
    (held,) = await take(lim, 1)
    assert await lim.acquire(0.01) is None
    assert (lim.in_flight, lim.waiting, lim.stats.waited, lim.stats.timed_out) == (1, 0, 1, 1)
    lim.release(held, "neutral")
    assert await lim.acquire(0) is not None


async def test_a_slot_handed_to_a_waiter_that_gives_up_passes_to_the_next() -> None:
    lim = limiter(low=1, high=1)
    (held,) = await take(lim, 1)
    giving_up = asyncio.create_task(lim.acquire(LONG))
    patient = asyncio.create_task(lim.acquire(LONG))
    await asyncio.sleep(0)
    lim.release(held, "neutral")  # hands the slot to `giving_up`...
    giving_up.cancel()  # ...which is cancelled before it runs
    with pytest.raises(asyncio.CancelledError):
        await giving_up
    assert await patient is not None
    assert lim.in_flight == 1


async def test_a_broken_hook_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    def broken(limit: int) -> None:
        raise RuntimeError("metrics down")

    with caplog.at_level(logging.ERROR):
        lim = ConcurrencyLimiter(min_limit=1, max_limit=4, on_change=broken)
        (permit,) = await take(lim, 1)
        lim.release(permit, "answered")
    assert lim.limit == 2
    assert "concurrency limit hook failed" in caplog.text


def test_bounds_are_checked() -> None:
    with pytest.raises(ValueError, match="min_limit"):
        ConcurrencyLimiter(min_limit=5, max_limit=4)
