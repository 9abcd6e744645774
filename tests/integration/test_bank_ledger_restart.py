"""The simulator's books survive its restart: holds stay capturable and voidable, keys replay."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from payment_service.bank.simulator.control import SimulatorControl
from tests.fixtures.bank import BankSimulator, unique_reference
from tests.integration.test_bank_simulator import authorize_body, refund_body

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

Answer = tuple[int, bytes, str | None]


class Bank:
    """Raw HTTP against one simulator: answers as bytes, to compare replays byte for byte."""

    def __init__(self, session: aiohttp.ClientSession, url: str) -> None:
        self.session = session
        self.url = url

    async def post(self, operation: str, body: dict[str, Any], key: str) -> Answer:
        async with self.session.post(
            f"{self.url}/api/v1/{operation}", json=body, headers={"Idempotency-Key": key}
        ) as response:
            return (
                response.status,
                await response.read(),
                response.headers.get("Idempotent-Replayed"),
            )

    async def inquire(self, reference: str) -> dict[str, Any]:
        async with self.session.get(f"{self.url}/api/v1/transactions/{reference}") as response:
            assert response.status == 200
            data: dict[str, Any] = await response.json()
            return data


@pytest_asyncio.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    # No keep-alive: a connection must not outlive the simulator process it was opened to.
    connector = aiohttp.TCPConnector(force_close=True)
    timeout = aiohttp.ClientTimeout(total=20)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as client:
        yield client


def auth_id_of(answer: Answer) -> str:
    value: str = json.loads(answer[1])["authorization_id"]
    return value


async def test_a_killed_simulator_keeps_every_hold_capture_refund_and_key(
    simulator_factory: Callable[..., BankSimulator], session: aiohttp.ClientSession
) -> None:
    sim = simulator_factory()
    sim.start()
    bank = Bank(session, sim.url)
    to_capture, to_void, sold, refunded = (unique_reference() for _ in range(4))

    # Step 1: before the restart, a hold to capture, a hold to void, a sale, a refunded capture.
    first: dict[tuple[str, str], tuple[dict[str, Any], Answer]] = {}

    async def post(operation: str, body: dict[str, Any], key: str) -> Answer:
        answer = await bank.post(operation, body, key)
        assert answer[0] == 200, answer
        first[(operation, key)] = (body, answer)
        return answer

    held = await post("authorize", authorize_body(to_capture, amount=1000), f"{to_capture}:a")
    voidable = await post("authorize", authorize_body(to_void, amount=700), f"{to_void}:a")
    await post("sale", authorize_body(sold, amount=300), f"{sold}:s")
    paid = await post("authorize", authorize_body(refunded, amount=900), f"{refunded}:a")
    capture = {"reference": refunded, "authorization_id": auth_id_of(paid), "amount_minor": 900,
               "currency": "USD"}  # fmt: skip
    await post("capture", capture, f"{refunded}:c")
    await post("refund", refund_body(refunded, 400, "rfd_before"), f"{refunded}:r")

    # Step 2: SIGKILL (no clean shutdown), then the same port and ledger file again.
    sim.kill()
    sim.start()

    # Step 3: every earlier key replays its first answer, byte for byte.
    for (operation, key), (body, (status, data, _)) in first.items():
        assert await bank.post(operation, body, key) == (status, data, "true"), (operation, key)
    changed = {**authorize_body(to_capture, amount=1001)}
    reuse = await bank.post("authorize", changed, f"{to_capture}:a")
    assert (reuse[0], json.loads(reuse[1])["error"]["code"]) == (422, "idempotency_key_reuse")

    # Step 4: the holds made before the restart are captured and voided after it.
    captured = await bank.post(
        "capture",
        {"reference": to_capture, "authorization_id": auth_id_of(held), "amount_minor": 1000,
         "currency": "USD"},
        f"{to_capture}:c",
    )  # fmt: skip
    assert (captured[0], json.loads(captured[1])["approved"]) == (200, True)
    voided = await bank.post(
        "void", {"reference": to_void, "authorization_id": auth_id_of(voidable)}, f"{to_void}:v"
    )
    assert (voided[0], json.loads(voided[1])["approved"]) == (200, True)
    too_much = await bank.post("refund", refund_body(refunded, 501), f"{refunded}:r2")
    assert json.loads(too_much[1])["error"]["code"] == "amount_exceeds_captured"

    # Step 5: the ledger holds each operation once, and counts the replays.
    async with SimulatorControl(sim.url) as control:
        entries = await control.ledger()
    keys = [entry["idempotency_key"] for entry in entries]
    assert len(keys) == len(set(keys)) == len(first) + 3  # + capture, void, refused refund
    replays = {(e["operation"], e["idempotency_key"]): e["replays"] for e in entries}
    assert all(replays[key] == 1 for key in first)
    assert (await bank.inquire(to_capture))["captured_minor"] == 1000
    assert (await bank.inquire(to_void))["released_minor"] == 700
    assert (await bank.inquire(sold))["captured_minor"] == 300
    assert (await bank.inquire(refunded))["refunded_minor"] == 400


async def test_reset_empties_the_file_for_good(
    simulator_factory: Callable[..., BankSimulator], session: aiohttp.ClientSession
) -> None:
    sim = simulator_factory()
    sim.start()
    bank = Bank(session, sim.url)
    ref = unique_reference()
    assert (await bank.post("sale", authorize_body(ref), f"{ref}:s"))[0] == 200
    async with SimulatorControl(sim.url) as control:
        await control.reset()
        assert await control.ledger() == []
    sim.stop()
    sim.start()
    async with SimulatorControl(sim.url) as control:
        assert (await control.stats())["ledger_entries"] == 0
    again = await bank.post("sale", authorize_body(ref), f"{ref}:s")
    assert (again[0], again[2]) == (200, None)  # executed afresh, not a replay
