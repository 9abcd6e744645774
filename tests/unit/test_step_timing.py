"""A command's outside calls are summed per step, and only while the command is measured."""

from __future__ import annotations

import asyncio

from payment_service.ops import step_timing
from payment_service.ops.step_timing import measuring, timed


class _Store:
    def __init__(self) -> None:
        self.calls = 0
        self.name = "store"

    async def read(self, wait: asyncio.Event) -> str:
        self.calls += 1
        await wait.wait()
        return "row"

    def describe(self) -> str:
        return f"{self.name} after {self.calls} calls"


async def test_awaited_calls_add_their_time_to_the_step_of_the_measured_command() -> None:
    store = timed(_Store(), "db")
    ready = asyncio.Event()
    with measuring() as steps:
        asyncio.get_running_loop().call_later(0.05, ready.set)
        assert await store.read(ready) == "row"
        assert await store.read(ready) == "row"  # a second call adds to the same step
        seen = step_timing.current()
    assert set(steps) == {"db"}
    assert steps["db"] >= 50.0 * 0.9  # it waited for the event, set 50 ms later
    assert seen == {"db": round(steps["db"], 1)}
    assert store.describe() == "store after 2 calls"  # plain methods and attributes pass through


async def test_outside_a_measured_command_calls_pass_through_unmeasured() -> None:
    store = timed(_Store(), "db")
    done = asyncio.Event()
    done.set()
    assert await store.read(done) == "row"
    assert step_timing.current() == {}
    with measuring() as steps:
        pass
    assert steps == {}
