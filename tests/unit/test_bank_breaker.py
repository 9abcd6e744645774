"""The circuit breaker's state machine, with a manual clock and fake bank calls (no network)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import pytest

from payment_service.bank.breaker import BankCircuitBreaker, BreakerState
from payment_service.core.errors import (
    BankBusy,
    BankCircuitOpen,
    BankNotSent,
    BankOutcomeUnknown,
    BankRejected,
)

pytestmark = pytest.mark.unit

RESET = 30.0


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Bank:
    """Counts the calls that got through the breaker."""

    def __init__(self) -> None:
        self.calls = 0

    def answers(self, value: str = "ok") -> Callable[[], Awaitable[str]]:
        async def call() -> str:
            self.calls += 1
            return value

        return call

    def raises(self, exc: Exception) -> Callable[[], Awaitable[str]]:
        async def call() -> str:
            self.calls += 1
            raise exc

        return call

    def waits(
        self, gate: asyncio.Event, entered: asyncio.Event | None = None
    ) -> Callable[[], Awaitable[str]]:
        async def call() -> str:
            self.calls += 1
            if entered is not None:
                entered.set()
            await gate.wait()
            return "probe"

        return call


def unknown() -> BankOutcomeUnknown:
    return BankOutcomeUnknown("read timeout", operation="authorize", reference="r")


def rejected() -> BankRejected:
    return BankRejected("too much", code="amount_exceeds_captured", status=422)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def changes() -> list[tuple[BreakerState, BreakerState]]:
    return []


@pytest.fixture
def breaker(clock: Clock, changes: list[tuple[BreakerState, BreakerState]]) -> BankCircuitBreaker:
    return BankCircuitBreaker(
        fail_max=3,
        reset_seconds=RESET,
        clock=clock,
        on_state_change=lambda old, new: changes.append((old, new)),
    )


async def trip(breaker: BankCircuitBreaker, bank: Bank) -> None:
    for _ in range(3):
        with pytest.raises(BankOutcomeUnknown):
            await breaker.call(bank.raises(unknown()), operation="authorize")
    assert breaker.state == "open"


async def test_starts_closed_and_lets_calls_through(breaker: BankCircuitBreaker) -> None:
    bank = Bank()
    assert breaker.state == "closed"
    assert await breaker.call(bank.answers(), operation="authorize") == "ok"
    assert bank.calls == 1


async def test_counts_consecutive_failures_and_a_success_resets_them(
    breaker: BankCircuitBreaker,
) -> None:
    bank = Bank()
    for _ in range(2):
        with pytest.raises(BankOutcomeUnknown):
            await breaker.call(bank.raises(unknown()), operation="authorize")
    assert (breaker.state, breaker.failures) == ("closed", 2)
    await breaker.call(bank.answers(), operation="authorize")
    assert (breaker.state, breaker.failures) == ("closed", 0)


async def test_the_tripping_call_keeps_its_own_outcome_unknown_error(
    breaker: BankCircuitBreaker,
    changes: list[tuple[BreakerState, BreakerState]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    bank = Bank()
    caplog.set_level(logging.INFO, logger="payment_service.bank.breaker")
    for _ in range(2):
        with pytest.raises(BankOutcomeUnknown):
            await breaker.call(bank.raises(unknown()), operation="authorize")
    with pytest.raises(BankOutcomeUnknown) as tripped:
        await breaker.call(bank.raises(unknown()), operation="authorize")
    assert not isinstance(tripped.value, BankNotSent)
    assert breaker.state == "open"
    assert changes == [("closed", "open")]
    assert "bank circuit breaker state closed -> open" in caplog.text


async def test_not_sent_failures_count_too(breaker: BankCircuitBreaker) -> None:
    bank = Bank()
    for _ in range(3):
        with pytest.raises(BankNotSent):
            await breaker.call(bank.raises(BankNotSent("refused")), operation="authorize")
    assert breaker.state == "open"


async def test_open_fails_fast_without_calling_the_bank(
    breaker: BankCircuitBreaker, clock: Clock
) -> None:
    bank = Bank()
    await trip(breaker, bank)
    clock.advance(RESET / 3)
    with pytest.raises(BankCircuitOpen) as refused:
        await breaker.call(bank.answers(), operation="authorize", reference="r2")
    assert isinstance(refused.value, BankNotSent)
    assert refused.value.retry_after == pytest.approx(RESET * 2 / 3)
    assert refused.value.reference == "r2"
    assert bank.calls == 3


async def test_half_open_admits_exactly_one_probe_and_closes_on_its_success(
    breaker: BankCircuitBreaker,
    clock: Clock,
    changes: list[tuple[BreakerState, BreakerState]],
) -> None:
    bank = Bank()
    await trip(breaker, bank)
    clock.advance(RESET)
    gate, entered = asyncio.Event(), asyncio.Event()
    probe = asyncio.create_task(breaker.call(bank.waits(gate, entered), operation="authorize"))
    await asyncio.wait_for(entered.wait(), timeout=5)
    assert (breaker.state, breaker.probe_in_flight) == ("half_open", True)

    others = await asyncio.gather(
        *(breaker.call(bank.answers(), operation="authorize") for _ in range(20)),
        return_exceptions=True,
    )
    assert all(isinstance(o, BankCircuitOpen) for o in others)
    assert all(o.retry_after is None for o in others if isinstance(o, BankCircuitOpen))
    assert bank.calls == 3 + 1

    gate.set()
    assert await probe == "probe"
    assert breaker.state == "closed"
    assert changes == [("closed", "open"), ("open", "half_open"), ("half_open", "closed")]
    assert await breaker.call(bank.answers(), operation="authorize") == "ok"


async def test_a_failed_probe_reopens_for_a_full_reset_period(
    breaker: BankCircuitBreaker, clock: Clock
) -> None:
    bank = Bank()
    await trip(breaker, bank)
    clock.advance(RESET + 5)
    with pytest.raises(BankOutcomeUnknown):
        await breaker.call(bank.raises(unknown()), operation="authorize")
    assert breaker.state == "open"
    assert breaker.seconds_until_probe() == pytest.approx(RESET)
    with pytest.raises(BankCircuitOpen):
        await breaker.call(bank.answers(), operation="authorize")


async def test_rejections_and_declines_are_answers_not_failures(
    breaker: BankCircuitBreaker,
) -> None:
    bank = Bank()
    for _ in range(5):
        with pytest.raises(BankRejected):
            await breaker.call(bank.raises(rejected()), operation="refund")
        await breaker.call(bank.answers("declined"), operation="authorize")
    assert (breaker.state, breaker.failures) == ("closed", 0)


async def test_a_rejected_probe_closes_the_breaker(
    breaker: BankCircuitBreaker, clock: Clock
) -> None:
    bank = Bank()
    await trip(breaker, bank)
    clock.advance(RESET)
    with pytest.raises(BankRejected):
        await breaker.call(bank.raises(rejected()), operation="refund")
    assert breaker.state == "closed"


async def test_inquiry_success_does_not_hide_failing_charges(breaker: BankCircuitBreaker) -> None:
    bank = Bank()
    for _ in range(3):
        with pytest.raises(BankOutcomeUnknown):
            await breaker.call(bank.raises(unknown()), operation="authorize")
        if breaker.state == "closed":
            await breaker.call(bank.answers(), operation="inquire", success_resets=False)
    assert breaker.state == "open"


async def test_a_timeout_inside_the_breaker_is_a_counted_unknown_outcome(clock: Clock) -> None:
    breaker = BankCircuitBreaker(fail_max=1, reset_seconds=RESET, call_timeout=0.01, clock=clock)
    never = asyncio.Event()
    with pytest.raises(BankOutcomeUnknown, match="no answer"):
        await breaker.call(Bank().waits(never), operation="authorize", reference="r")
    assert breaker.state == "open"


async def test_a_cancelled_probe_frees_the_slot_for_the_next_caller(
    breaker: BankCircuitBreaker, clock: Clock
) -> None:
    bank = Bank()
    await trip(breaker, bank)
    clock.advance(RESET)
    entered = asyncio.Event()
    probe = asyncio.create_task(
        breaker.call(bank.waits(asyncio.Event(), entered), operation="authorize")
    )
    await asyncio.wait_for(entered.wait(), timeout=5)
    probe.cancel()
    with pytest.raises(asyncio.CancelledError):
        await probe
    assert (breaker.state, breaker.probe_in_flight) == ("half_open", False)
    assert await breaker.call(bank.answers(), operation="authorize") == "ok"
    assert breaker.state == "closed"


async def test_calls_sent_before_the_trip_do_not_decide_the_state(
    breaker: BankCircuitBreaker, clock: Clock
) -> None:
    bank = Bank()
    slow_ok, slow_fail = asyncio.Event(), asyncio.Event()
    ok_sent, fail_sent = asyncio.Event(), asyncio.Event()

    async def fails_later() -> str:
        fail_sent.set()
        await slow_fail.wait()
        raise unknown()

    late_success = asyncio.create_task(
        breaker.call(bank.waits(slow_ok, ok_sent), operation="authorize")
    )
    late_failure = asyncio.create_task(breaker.call(fails_later, operation="authorize"))
    # Both calls are past the breaker's gate (sent, closed state) before it trips.
    await asyncio.wait_for(asyncio.gather(ok_sent.wait(), fail_sent.wait()), timeout=5)
    await trip(breaker, bank)
    clock.advance(RESET / 2)
    slow_ok.set()
    assert await late_success == "probe"
    assert breaker.state == "open"
    slow_fail.set()
    with pytest.raises(BankOutcomeUnknown):
        await late_failure
    assert breaker.seconds_until_probe() == pytest.approx(RESET / 2)


async def test_a_broken_state_hook_does_not_change_the_outcome(clock: Clock) -> None:
    def broken(old: BreakerState, new: BreakerState) -> None:
        raise RuntimeError("metrics down")

    breaker = BankCircuitBreaker(
        fail_max=1, reset_seconds=RESET, clock=clock, on_state_change=broken
    )
    with pytest.raises(BankOutcomeUnknown):
        await breaker.call(Bank().raises(unknown()), operation="authorize")
    assert breaker.state == "open"


def busy() -> BankBusy:
    return BankBusy("no connection in time", operation="authorize", reference="r")


async def test_our_own_queueing_is_neither_a_failure_nor_a_success(
    breaker: BankCircuitBreaker, clock: Clock
) -> None:
    bank = Bank()
    for _ in range(2):
        with pytest.raises(BankOutcomeUnknown):
            await breaker.call(bank.raises(unknown()), operation="authorize")
    for _ in range(5):  # a burst that timed out connecting, or a 429: not the bank's failure
        with pytest.raises(BankBusy):
            await breaker.call(bank.raises(busy()), operation="authorize")
    assert (breaker.state, breaker.failures) == ("closed", 2)

    # Nor does it settle a probe: the breaker stays half-open and the next caller probes.
    with pytest.raises(BankOutcomeUnknown):
        await breaker.call(bank.raises(unknown()), operation="authorize")
    assert breaker.state == "open"
    clock.advance(RESET)
    with pytest.raises(BankBusy):
        await breaker.call(bank.raises(busy()), operation="authorize")
    assert (breaker.state, breaker.probe_in_flight) == ("half_open", False)
    assert await breaker.call(bank.answers(), operation="authorize") == "ok"
    assert state_of(breaker) == "closed"


def state_of(breaker: BankCircuitBreaker) -> BreakerState:
    """The state now (a call, so mypy does not carry an earlier assert's narrowing over)."""
    return breaker.state


async def test_refusal_says_what_call_would_do_without_sending(
    breaker: BankCircuitBreaker, clock: Clock
) -> None:
    bank = Bank()
    assert breaker.refusal("authorize") is None
    await trip(breaker, bank)
    refused = breaker.refusal("authorize", "r")
    assert isinstance(refused, BankCircuitOpen)
    assert refused.retry_after == pytest.approx(RESET)
    clock.advance(RESET)
    assert breaker.refusal("authorize") is None  # a probe may go
    assert breaker.state == "open"  # asking changed nothing
    calls = bank.calls
    gate = asyncio.Event()
    entered = asyncio.Event()
    probe = asyncio.create_task(breaker.call(bank.waits(gate, entered), operation="authorize"))
    await asyncio.wait_for(entered.wait(), timeout=5)
    refused = breaker.refusal("authorize")
    assert isinstance(refused, BankCircuitOpen)
    assert refused.retry_after is None
    gate.set()
    assert await probe == "probe"
    assert bank.calls == calls + 1


async def test_waiters_wake_when_the_probe_ends(breaker: BankCircuitBreaker, clock: Clock) -> None:
    bank = Bank()
    await trip(breaker, bank)
    clock.advance(RESET)
    gate, entered = asyncio.Event(), asyncio.Event()
    probe = asyncio.create_task(breaker.call(bank.waits(gate, entered), operation="authorize"))
    await asyncio.wait_for(entered.wait(), timeout=5)
    waiter = asyncio.create_task(breaker.wait_for_change(60.0))
    await asyncio.sleep(0)
    assert not waiter.done()
    gate.set()
    await asyncio.wait_for(waiter, timeout=5)  # woken by the probe's end, not its timeout
    await probe
    assert breaker.state == "closed"
