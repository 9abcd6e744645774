"""A burst never fails good payments, and an outage fails them only after the not-sent budget.

Against real simulator processes: the session's one (with 50 ms latency) for the burst, and
simulators of the test's own to stop and start.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from payment_service.bank.breaker import BankCircuitBreaker, BreakerState
from payment_service.bank.client import HttpBankClient
from payment_service.bank.simulator.control import SimulatorControl
from payment_service.core.errors import BankNotSent, BankOutcomeUnknown
from tests.fixtures.bank import BankSimulator, free_port, unique_reference
from tests.fixtures.service import eventually
from tests.integration.test_bank_client import authorize

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

MakeClient = Callable[..., HttpBankClient]


async def approved_once(control: SimulatorControl, references: list[str]) -> bool:
    """Each reference has exactly one entry, an approved authorization."""
    wanted = set(references)
    entries = [e for e in await control.ledger(operation="authorize") if e["reference"] in wanted]
    seen = [e["reference"] for e in entries if e["outcome"] == "approved"]
    return len(entries) == len(seen) == len(set(seen)) == len(wanted)


async def test_a_burst_of_300_waits_for_slots_and_none_fails(
    make_client: MakeClient, bank_control: SimulatorControl
) -> None:
    await bank_control.set_latency(50.0, 0.0)
    changes: list[tuple[BreakerState, BreakerState]] = []
    # The production breaker (5 failures open it): any of our queueing counted would trip it.
    breaker = BankCircuitBreaker(
        fail_max=5, reset_seconds=10.0, call_timeout=8.0,
        on_state_change=lambda old, new: changes.append((old, new)),
    )  # fmt: skip
    # Ten connections and a 0.2 s connect timeout: 300 calls at once would have waited for a
    # pooled connection for up to 1.5 s, timed out, and opened the breaker.
    client = make_client(
        breaker=breaker, max_connections=10, max_concurrency=10, min_concurrency=2,
        connect_timeout_seconds=0.2, not_sent_budget_seconds=60.0,
    )  # fmt: skip
    references = [unique_reference("burst") for _ in range(300)]

    results = await asyncio.gather(*(authorize(client, ref) for ref in references))

    assert all(result.approved for result in results)
    assert changes == []  # never left "closed"
    stats = client.limiter.stats
    assert stats.peak_in_flight <= 10
    assert (stats.waited > 0, stats.timed_out, stats.decreases) == (True, 0, 0)
    assert stats.highest_limit == 10  # grew from the floor to the ceiling
    assert await approved_once(bank_control, references)


async def test_a_bank_down_for_less_than_the_budget_fails_nothing(
    simulator_factory: Callable[..., BankSimulator], make_client: MakeClient
) -> None:
    sim = simulator_factory()
    sim.start()
    client = make_client(
        url=sim.url, breaker_fail_max=3, breaker_reset_seconds=0.5, not_sent_budget_seconds=60.0
    )
    assert (await authorize(client, unique_reference())).approved  # a pooled connection, too

    # Step 1: the bank goes away, and 50 payments arrive.
    await asyncio.to_thread(sim.stop)
    references = [unique_reference("outage") for _ in range(50)]
    calls = asyncio.gather(*(authorize(client, ref) for ref in references))
    try:
        # Step 2: they fail to reach it until the breaker opens; none gives up.
        await eventually(lambda: _is_open(client), what="the breaker to open")
        assert not calls.done()

        # Step 3: the bank comes back (same port, same ledger); every payment completes.
        await asyncio.to_thread(sim.start)
        results = await calls
    finally:
        calls.cancel()
    assert all(result.approved for result in results)
    assert client.breaker.state == "closed"
    async with SimulatorControl(sim.url) as control:
        assert await approved_once(control, references)


async def _is_open(client: HttpBankClient) -> bool:
    return client.breaker.state != "closed"


async def test_a_bank_down_for_longer_than_the_budget_is_not_sent(make_client: MakeClient) -> None:
    budget = 1.0
    client = make_client(
        url=f"http://127.0.0.1:{free_port()}", breaker_fail_max=3, breaker_reset_seconds=0.2,
        not_sent_budget_seconds=budget,
    )  # fmt: skip
    loop = asyncio.get_running_loop()
    started = loop.time()
    outcomes = await asyncio.gather(
        *(authorize(client, unique_reference()) for _ in range(20)), return_exceptions=True
    )
    waited = loop.time() - started
    assert all(isinstance(outcome, BankNotSent) for outcome in outcomes), outcomes
    assert not any(isinstance(outcome, BankOutcomeUnknown) for outcome in outcomes)
    assert waited >= budget  # they kept trying for the whole budget, not a moment less
    assert client.breaker.state != "closed"
