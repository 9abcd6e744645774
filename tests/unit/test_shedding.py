"""The API's in-flight cap and how it follows a queue of payments (http/shedding.py)."""

from __future__ import annotations

from contextlib import ExitStack
from itertools import pairwise

import pytest

from payment_service.core.errors import Overloaded
from payment_service.http.shedding import LoadShedder, SheddingPolicy

pytestmark = pytest.mark.unit


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def shedder(ceiling: int = 100, floor: int = 10) -> tuple[LoadShedder, Clock]:
    clock = Clock()
    policy = SheddingPolicy(ceiling=ceiling, floor=floor, target_seconds=0.5, interval_seconds=1.0)
    return LoadShedder(policy, clock), clock


def finish(shed: LoadShedder, clock: Clock, took: float, *, measured: bool = True) -> None:
    """One request that took `took` seconds, ending now."""
    clock.now -= took
    with shed.slot(measured=measured):
        clock.now += took


def test_the_cap_refuses_at_once_and_frees_its_slots() -> None:
    shed, _ = shedder(ceiling=2, floor=1)
    with shed.slot(measured=True), shed.slot(measured=False):
        with pytest.raises(Overloaded) as info, shed.slot(measured=True):
            pass
        assert (info.value.status, info.value.code) == (503, "overloaded")
        assert info.value.retry_after_seconds >= 1
    assert (shed.count, shed.refused) == (0, 1)
    with shed.slot(measured=True):
        assert shed.count == 1


def test_a_standing_queue_lowers_the_cap_towards_what_was_in_flight() -> None:
    shed, clock = shedder()
    with ExitStack() as held:
        for _ in range(50):
            held.enter_context(shed.slot(measured=True))
        clock.now += 2.0  # all 50 waited 2 s: the fastest of the interval is slow
    finish(shed, clock, 2.0)
    assert shed.limit == 40  # 80 % of the 50 in flight
    clock.now += 1.0
    finish(shed, clock, 2.0)
    assert shed.limit == 39  # 80 % of the 49 still in flight when that interval began
    clock.now += 1.0
    finish(shed, clock, 2.0)
    assert shed.limit == 10  # 80 % of 1, held at the floor


def test_a_passing_burst_does_not_lower_the_cap() -> None:
    shed, clock = shedder()
    for took in (2.0, 0.05, 3.0):  # one request got through quickly: no standing queue
        finish(shed, clock, took)
    clock.now += 1.0
    finish(shed, clock, 2.0)
    assert shed.limit == 100


def test_unmeasured_requests_neither_hide_nor_make_a_queue() -> None:
    shed, clock = shedder()
    finish(shed, clock, 0.001, measured=False)  # a fast read
    finish(shed, clock, 5.0, measured=False)  # a slow one that does not wait for the processor
    finish(shed, clock, 2.0)
    clock.now += 1.0
    finish(shed, clock, 2.0)
    assert shed.limit < 100
    shed2, clock2 = shedder()
    finish(shed2, clock2, 5.0, measured=False)
    clock2.now += 1.0
    finish(shed2, clock2, 5.0, measured=False)
    assert shed2.limit == 100


def test_the_cap_recovers_by_a_tenth_per_interval_up_to_the_ceiling() -> None:
    shed, clock = shedder()
    shed.limit = 10
    seen = []
    for _ in range(30):
        clock.now += 1.0
        finish(shed, clock, 0.05)
        seen.append(shed.limit)
    assert seen[:4] == [11, 12, 13, 14]
    assert seen[-1] == 100
    assert all(b >= a for a, b in pairwise(seen))


def test_an_interval_with_nothing_finished_leaves_the_cap() -> None:
    shed, clock = shedder()
    shed.limit = 50
    with shed.slot(measured=True):
        clock.now += 10.0
        with shed.slot(measured=True):  # the interval ends here, with nothing measured in it
            assert shed.limit == 50


def test_the_floor_is_never_above_the_ceiling() -> None:
    shed, clock = shedder(ceiling=5, floor=128)
    finish(shed, clock, 2.0)
    clock.now += 1.0
    finish(shed, clock, 2.0)
    assert shed.limit == 5
