"""`HttpBankClient` against the real simulator: results, retries, faults, breaker, bank down."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import date
from typing import Any

import pytest
import pytest_asyncio

from payment_service.bank.breaker import BankCircuitBreaker, BreakerState
from payment_service.bank.client import HttpBankClient
from payment_service.bank.simulator.control import SimulatorControl
from payment_service.core.banking import BankResult
from payment_service.core.errors import (
    BankBusy,
    BankCircuitOpen,
    BankError,
    BankNotSent,
    BankOutcomeUnknown,
    BankRejected,
)
from payment_service.core.ids import idempotency_key
from payment_service.core.masking import CardNumber, SecurityCode
from tests.fixtures.bank import free_port, unique_reference

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

MakeClient = Callable[..., HttpBankClient]
FUTURE_YEAR = date.today().year + 3
# A Luhn-valid card no other test uses, to look for in logs and errors.
CANARY = "4000002500003155"


async def authorize(
    client: HttpBankClient, reference: str, number: str = "4242424242424242", amount: int = 1000
) -> BankResult:
    return await client.authorize(
        reference=reference,
        idempotency_key=idempotency_key(reference, "authorize"),
        amount_minor=amount,
        currency="USD",
        card_number=CardNumber(number),
        security_code=SecurityCode("123"),
        expiry_month=12,
        expiry_year=FUTURE_YEAR,
        holder_name="Test Holder",
    )


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 10.0) -> None:
    """Wait until `check()` holds; fail (TimeoutError) if it does not within `timeout`."""
    async with asyncio.timeout(timeout):
        while True:
            if await check():
                return
            await asyncio.sleep(0.01)


async def received(control: SimulatorControl, operation: str = "authorize") -> int:
    count: int = (await control.stats())["received"].get(operation, 0)
    return count


async def test_approvals_and_declines_are_results(make_client: MakeClient) -> None:
    client = make_client()
    approved = await authorize(client, unique_reference())
    assert (approved.approved, approved.response_code, approved.via) == (True, "00", "response")
    assert approved.authorization_id
    declined = await authorize(client, unique_reference(), "4000000000009995")
    assert (declined.approved, declined.response_code) == (False, "51")
    assert (declined.decline_code, declined.authorization_id) == ("insufficient_funds", None)


async def test_capture_refund_and_the_amount_rules(make_client: MakeClient) -> None:
    client = make_client()
    ref = unique_reference()
    auth = await authorize(client, ref, amount=1000)
    assert auth.authorization_id is not None
    capture: dict[str, Any] = {"reference": ref, "authorization_id": auth.authorization_id,
                               "currency": "USD"}  # fmt: skip
    with pytest.raises(BankRejected) as over:
        await client.capture(idempotency_key=f"{ref}:c1", amount_minor=1001, **capture)
    assert (over.value.status, over.value.code) == (422, "amount_exceeds_authorized")
    captured = await client.capture(idempotency_key=f"{ref}:c2", amount_minor=1000, **capture)
    assert captured.approved
    assert captured.bank_transaction_id

    def refund(amount: int, refund_id: str) -> Awaitable[BankResult]:
        return client.refund(
            reference=ref, refund_reference=refund_id,
            idempotency_key=idempotency_key(refund_id, "refund"), amount_minor=amount,
            currency="USD",
        )  # fmt: skip

    assert (await refund(700, unique_reference("rfd"))).approved
    with pytest.raises(BankRejected) as too_much:
        await refund(301, unique_reference("rfd"))
    assert too_much.value.code == "amount_exceeds_captured"
    inquiry = await client.inquire(ref)
    assert (inquiry.captured_minor, inquiry.refunded_minor) == (1000, 700)
    assert not (await client.inquire(unique_reference())).found


async def test_error_before_commit_is_retried_and_charges_once(
    make_client: MakeClient, bank_control: SimulatorControl
) -> None:
    ref = unique_reference()
    fault = await bank_control.add_fault("error_before_commit", references=[ref], count=2)
    result = await authorize(make_client(max_attempts=3), ref)
    assert (result.approved, result.via) == (True, "response")
    assert len(await bank_control.ledger(ref, "authorize")) == 1
    [state] = [f for f in await bank_control.faults() if f["id"] == fault]
    assert state["hits"] == 2


async def test_error_after_commit_is_retried_with_the_same_key_and_replayed(
    make_client: MakeClient, bank_control: SimulatorControl
) -> None:
    ref = unique_reference()
    await bank_control.add_fault("error_after_commit", references=[ref], count=1)
    result = await authorize(make_client(), ref)
    assert (result.approved, result.via) == (True, "replay")
    [entry] = await bank_control.ledger(ref, "authorize")
    assert (entry["replays"], entry["authorization_id"]) == (1, result.authorization_id)


async def test_hang_after_commit_ends_in_one_charge_found_by_inquiry(
    make_client: MakeClient, bank_control: SimulatorControl
) -> None:
    ref = unique_reference()
    await bank_control.add_fault(
        "hang_after_commit", references=[ref], operations=["authorize"], delay_ms=30_000
    )
    client = make_client(read_timeout_seconds=0.3, total_timeout_seconds=2.0, max_attempts=2)
    result = await asyncio.wait_for(authorize(client, ref), timeout=30)
    assert (result.approved, result.via) == (True, "inquiry")
    [entry] = await bank_control.ledger(ref, "authorize")
    assert entry["authorization_id"] == result.authorization_id


async def test_an_unresolved_outcome_is_unknown_until_a_retry_with_the_same_key(
    make_client: MakeClient, bank_control: SimulatorControl
) -> None:
    ref = unique_reference()
    await bank_control.add_fault("hang_after_commit", references=[ref], delay_ms=30_000)
    client = make_client(read_timeout_seconds=0.3, total_timeout_seconds=2.0, max_attempts=2)
    with pytest.raises(BankOutcomeUnknown) as unknown:
        await asyncio.wait_for(authorize(client, ref), timeout=30)
    assert not isinstance(unknown.value, BankNotSent)
    await bank_control.clear_faults()
    later = await authorize(client, ref)  # what the processor does on its next delivery
    assert (later.approved, later.via) == (True, "replay")
    assert len(await bank_control.ledger(ref, "authorize")) == 1


@pytest.mark.parametrize(("mode", "via"), [("reset", "response"), ("reset_after_commit", "replay")])
async def test_a_reset_connection_is_retried_safely(
    make_client: MakeClient, bank_control: SimulatorControl, mode: str, via: str
) -> None:
    ref = unique_reference()
    await bank_control.add_fault(mode, references=[ref], count=1)
    result = await authorize(make_client(), ref)
    assert (result.approved, result.via) == (True, via)
    assert len(await bank_control.ledger(ref, "authorize")) == 1


async def test_a_slow_body_is_cut_by_the_total_timeout_and_retried(
    make_client: MakeClient, bank_control: SimulatorControl
) -> None:
    ref = unique_reference()
    await bank_control.add_fault("slow_body", references=[ref], delay_ms=100, count=1)
    client = make_client(read_timeout_seconds=5.0, total_timeout_seconds=0.5)
    result = await asyncio.wait_for(authorize(client, ref), timeout=30)
    assert (result.approved, result.via) == (True, "replay")
    assert len(await bank_control.ledger(ref, "authorize")) == 1


async def test_with_the_bank_down_calls_fail_as_not_sent_once_the_budget_is_spent(
    make_client: MakeClient,
) -> None:
    client = make_client(url=f"http://127.0.0.1:{free_port()}", not_sent_budget_seconds=0.5)
    with pytest.raises(BankNotSent) as down:
        await asyncio.wait_for(authorize(client, unique_reference()), timeout=30)
    assert not isinstance(down.value, BankCircuitOpen | BankBusy)
    # Refused connections are the bank's own failures (counted), and retried within the budget.
    assert client.breaker.failures >= 2


@pytest_asyncio.fixture
async def silent_bank() -> AsyncIterator[str]:
    """A TCP server that accepts requests and never answers."""

    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await reader.read(65536):
            pass
        writer.close()

    server = await asyncio.start_server(swallow, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()
        await server.wait_closed()


async def test_a_silent_bank_times_out_as_outcome_unknown(
    make_client: MakeClient, silent_bank: str
) -> None:
    client = make_client(url=silent_bank, read_timeout_seconds=0.2, max_attempts=2)
    with pytest.raises(BankOutcomeUnknown):
        await asyncio.wait_for(authorize(client, unique_reference()), timeout=30)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_breaker_opens_probes_once_when_half_open_and_closes(
    make_client: MakeClient, bank_control: SimulatorControl
) -> None:
    clock, changes = Clock(), list[tuple[BreakerState, BreakerState]]()
    breaker = BankCircuitBreaker(
        fail_max=3, reset_seconds=30, call_timeout=10, clock=clock,
        on_state_change=lambda old, new: changes.append((old, new)),
    )  # fmt: skip
    # No not-sent budget: every refused call fails at once, so each step shows the breaker alone.
    client = make_client(breaker=breaker, max_attempts=1, not_sent_budget_seconds=0)
    failing = [unique_reference("fail") for _ in range(3)]
    await bank_control.add_fault(
        "error_before_commit", references=failing, operations=["authorize"]
    )

    # Step 1: three failed charges open it; the one that trips it is still "outcome unknown".
    for ref in failing:
        with pytest.raises(BankOutcomeUnknown) as tripped:
            await authorize(client, ref)
    assert not isinstance(tripped.value, BankNotSent)
    assert breaker.state == "open"

    # Step 2: while open nothing is sent.
    before = await received(bank_control)
    with pytest.raises(BankCircuitOpen):
        await authorize(client, unique_reference())
    assert await received(bank_control) == before

    # Step 3: after the reset period one probe goes out, held at the bank by a delay fault...
    clock.now += 30
    probe_ref = unique_reference("probe")
    await bank_control.add_fault("delay", references=[probe_ref], delay_ms=1_000)
    probe = asyncio.create_task(authorize(client, probe_ref))
    try:
        await eventually(lambda: _equals(received(bank_control), before + 1))
        assert (breaker.state, breaker.probe_in_flight) == ("half_open", True)

        # ...and every other caller meanwhile fails fast without reaching the bank.
        burst = [unique_reference("burst") for _ in range(20)]
        outcomes = await asyncio.gather(
            *(authorize(client, r) for r in burst), return_exceptions=True
        )
        assert not probe.done(), "the probe must still be in flight for this test to mean much"
        assert all(isinstance(o, BankCircuitOpen) for o in outcomes)
    except BaseException:
        probe.cancel()  # a failed test must not leave the probe running into the next one
        raise

    # Step 4: the probe succeeds and closes the breaker; the bank saw exactly that one request.
    assert (await probe).approved
    assert _state(breaker) == "closed"
    assert await received(bank_control) == before + 1
    assert [await bank_control.ledger(r) for r in burst] == [[] for _ in burst]
    assert changes == [("closed", "open"), ("open", "half_open"), ("half_open", "closed")]
    assert (await authorize(client, unique_reference())).approved


async def _equals(value: Awaitable[int], expected: int) -> bool:
    return await value == expected


async def test_card_data_never_appears_in_errors_or_logs(
    make_client: MakeClient, bank_control: SimulatorControl, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    ref = unique_reference()
    await bank_control.add_fault("error_after_commit", references=[ref], count=1)
    assert (await authorize(make_client(), ref, CANARY)).approved
    down = make_client(
        url=f"http://127.0.0.1:{free_port()}", max_attempts=2, not_sent_budget_seconds=0.3
    )
    with pytest.raises(BankError) as failed:
        await authorize(down, unique_reference(), CANARY)
    chain: list[BaseException] = []
    exc: BaseException | None = failed.value
    while exc is not None:
        chain.append(exc)
        exc = exc.__cause__ or exc.__context__
    texts = [str(e) for e in chain] + [repr(e) for e in chain] + [caplog.text]
    assert all(CANARY not in text for text in texts)


def _state(breaker: BankCircuitBreaker) -> BreakerState:
    """The breaker's state now (a call, so a type checker does not carry an earlier assert over)."""
    return breaker.state
