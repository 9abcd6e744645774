"""The bank simulator over real HTTP: test cards, idempotency, amount rules, ledger, faults."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping
from datetime import date
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from payment_service.bank.simulator.control import SimulatorControl
from tests.fixtures.bank import BankSimulator, unique_reference
from tests.fixtures.service import eventually

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

FUTURE_YEAR = date.today().year + 3


class Raw:
    """Plain HTTP against the simulator, to see exactly what it answers."""

    def __init__(self, session: aiohttp.ClientSession, url: str) -> None:
        self.session = session
        self.url = url

    async def post(
        self, operation: str, body: dict[str, Any], key: str | None
    ) -> tuple[int, dict[str, Any], Mapping[str, str]]:
        headers = {"Idempotency-Key": key} if key is not None else {}
        async with self.session.post(
            f"{self.url}/api/v1/{operation}", json=body, headers=headers
        ) as response:
            return response.status, await response.json(), response.headers

    async def inquire(self, reference: str) -> tuple[int, dict[str, Any]]:
        async with self.session.get(f"{self.url}/api/v1/transactions/{reference}") as response:
            return response.status, await response.json()


@pytest_asyncio.fixture
async def raw(bank_sim_url: str) -> AsyncIterator[Raw]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as session:
        yield Raw(session, bank_sim_url)


def authorize_body(
    reference: str, number: str = "4242424242424242", *, amount: int = 1000, **card: Any
) -> dict[str, Any]:
    return {
        "reference": reference,
        "amount_minor": amount,
        "currency": "USD",
        "card": {
            "number": number,
            "expiry_month": 12,
            "expiry_year": FUTURE_YEAR,
            "cvc": "123",
            "holder_name": "Test Holder",
            **card,
        },
    }


async def authorized(raw: Raw, reference: str, amount: int = 1000) -> str:
    status, body, _ = await raw.post(
        "authorize", authorize_body(reference, amount=amount), f"{reference}:authorize"
    )
    assert (status, body["approved"]) == (200, True)
    auth_id: str = body["authorization_id"]
    return auth_id


async def captured(raw: Raw, reference: str, amount: int) -> None:
    auth_id = await authorized(raw, reference, amount)
    status, body, _ = await raw.post(
        "capture",
        {"reference": reference, "authorization_id": auth_id, "amount_minor": amount,
         "currency": "USD"},
        f"{reference}:capture",
    )  # fmt: skip
    assert (status, body["approved"]) == (200, True)


def refund_body(reference: str, amount: int, refund_reference: str | None = None) -> dict[str, Any]:
    return {
        "reference": reference,
        "refund_reference": refund_reference or unique_reference("rfd"),
        "amount_minor": amount,
        "currency": "USD",
    }


TEST_CARDS = [
    ("4242424242424242", True, "00", None),
    ("4111111111111111", True, "00", None),
    ("4000000000000002", False, "05", "generic_decline"),
    ("4000000000009995", False, "51", "insufficient_funds"),
    ("4000000000009987", False, "41", "lost_card"),
    ("4000000000009979", False, "43", "stolen_card"),
    ("4000000000000069", False, "54", "expired_card"),
    ("4000000000000127", False, "N7", "incorrect_cvc"),
    ("4000000000000119", False, "91", "processing_error"),
    ("5555555555554444", True, "00", None),
    ("4242424242424241", False, "14", "incorrect_number"),
]


@pytest.mark.parametrize(("number", "approved", "code", "decline"), TEST_CARDS)
async def test_every_test_card_gives_its_documented_outcome(
    raw: Raw, bank_control: SimulatorControl, number: str, approved: bool, code: str,
    decline: str | None,
) -> None:  # fmt: skip
    reference = unique_reference()
    status, body, _ = await raw.post(
        "authorize", authorize_body(reference, number), "k-" + reference
    )
    assert status == 200
    assert (body["approved"], body["response_code"], body["decline_code"]) == (
        approved, code, decline,
    )  # fmt: skip
    assert (body["authorization_id"] is not None) is approved
    [entry] = await bank_control.ledger(reference)
    assert entry["outcome"] == ("approved" if approved else "declined")
    assert (entry["response_code"], entry["card_last4"]) == (code, number[-4:])
    assert number not in json.dumps(entry)


@pytest.mark.parametrize(
    ("card", "code", "decline"),
    [
        ({"expiry_month": 1, "expiry_year": 2020}, "54", "expired_card"),
        ({"cvc": "12"}, "N7", "incorrect_cvc"),
        ({"cvc": "abc"}, "N7", "incorrect_cvc"),
    ],
)
async def test_an_expired_date_or_malformed_cvc_declines_like_an_issuer(
    raw: Raw, card: dict[str, Any], code: str, decline: str
) -> None:
    reference = unique_reference()
    body = authorize_body(reference, **card)
    status, answer, _ = await raw.post("authorize", body, "k-" + reference)
    assert (status, answer["approved"], answer["response_code"]) == (200, False, code)
    assert answer["decline_code"] == decline


async def test_posts_without_an_idempotency_key_are_refused(raw: Raw) -> None:
    reference = unique_reference()
    status, body, _ = await raw.post("authorize", authorize_body(reference), None)
    assert (status, body["error"]["code"]) == (400, "idempotency_key_missing")
    assert (await raw.inquire(reference))[0] == 404


@pytest.mark.parametrize(
    ("change", "param"),
    [
        ({"amount_minor": 10.5}, "amount_minor"),
        ({"amount_minor": "1000"}, "amount_minor"),
        ({"amount_minor": 0}, "amount_minor"),
        ({"currency": "usd"}, "currency"),
    ],
)
async def test_malformed_requests_get_422_and_execute_nothing(
    raw: Raw, change: dict[str, Any], param: str
) -> None:
    reference = unique_reference()
    body = {**authorize_body(reference), **change}
    status, answer, _ = await raw.post("authorize", body, "k-" + reference)
    assert (status, answer["error"]["code"], answer["error"]["param"]) == (
        422, "invalid_request", param,
    )  # fmt: skip
    assert (await raw.inquire(reference))[0] == 404


async def test_a_replay_returns_the_first_answer_and_leaves_one_ledger_entry(
    raw: Raw, bank_control: SimulatorControl
) -> None:
    reference = unique_reference()
    first = await raw.post("authorize", authorize_body(reference), "k-" + reference)
    again = await raw.post("authorize", authorize_body(reference), "k-" + reference)
    assert (again[0], again[1]) == (first[0], first[1])
    assert again[2].get("Idempotent-Replayed") == "true"
    assert first[2].get("Idempotent-Replayed") is None
    [entry] = await bank_control.ledger(reference)
    assert entry["replays"] == 1


async def test_the_same_key_with_another_body_is_refused(
    raw: Raw, bank_control: SimulatorControl
) -> None:
    reference = unique_reference()
    await raw.post("authorize", authorize_body(reference), "k-" + reference)
    status, body, _ = await raw.post(
        "authorize", authorize_body(reference, amount=999), "k-" + reference
    )
    assert (status, body["error"]["code"]) == (422, "idempotency_key_reuse")
    assert len(await bank_control.ledger(reference)) == 1


async def test_concurrent_requests_with_one_key_execute_once(
    raw: Raw, bank_control: SimulatorControl
) -> None:
    # The first request holds its key for the whole processing time. The simulator's counters
    # show all twenty received while nothing was committed yet: they provably overlapped.
    await bank_control.set_latency(3000)
    reference = unique_reference()
    before = await bank_control.stats()
    sent = asyncio.gather(
        *(raw.post("authorize", authorize_body(reference), "k-" + reference) for _ in range(20))
    )

    async def all_received() -> dict[str, Any] | None:
        stats = await bank_control.stats()
        received = stats["received"].get("authorize", 0) - before["received"].get("authorize", 0)
        return stats if received >= 20 else None

    snapshot = await eventually(all_received, timeout=30, what="all twenty requests at the bank")
    assert snapshot["ledger_entries"] == before["ledger_entries"], "one finished before all came"
    answers = await sent
    assert {a[0] for a in answers} == {200}
    assert len({a[1]["authorization_id"] for a in answers}) == 1
    [entry] = await bank_control.ledger(reference)
    assert entry["replays"] == 19


async def test_over_capture_is_refused(raw: Raw, bank_control: SimulatorControl) -> None:
    reference = unique_reference()
    auth_id = await authorized(raw, reference, 1000)

    def capture(amount: int) -> dict[str, Any]:
        return {"reference": reference, "authorization_id": auth_id, "amount_minor": amount,
                "currency": "USD"}  # fmt: skip

    status, body, _ = await raw.post("capture", capture(1001), unique_reference("key"))
    assert (status, body["error"]["code"]) == (422, "amount_exceeds_authorized")
    status, body, _ = await raw.post("capture", capture(600), unique_reference("key"))
    assert (status, body["approved"], body["response_code"]) == (200, True, "00")
    status, body, _ = await raw.post("capture", capture(100), unique_reference("key"))
    assert (status, body["error"]["code"]) == (409, "already_captured")
    approved = [
        e for e in await bank_control.ledger(reference, "capture") if e["outcome"] == "approved"
    ]
    assert [e["amount_minor"] for e in approved] == [600]


async def test_capture_of_an_unknown_authorization_is_refused(raw: Raw) -> None:
    reference = unique_reference()
    body = {"reference": reference, "authorization_id": "auth_nope", "amount_minor": 1,
            "currency": "USD"}  # fmt: skip
    status, answer, _ = await raw.post("capture", body, unique_reference("key"))
    assert (status, answer["error"]["code"]) == (404, "authorization_not_found")


async def test_over_refund_is_refused(raw: Raw, bank_control: SimulatorControl) -> None:
    reference = unique_reference()
    await captured(raw, reference, 600)
    results = []
    for amount in (700, 400, 300, 200, 1):
        status, body, _ = await raw.post(
            "refund", refund_body(reference, amount), unique_reference("key")
        )
        results.append((status, body.get("approved", body.get("error", {}).get("code"))))
    assert results == [
        (422, "amount_exceeds_captured"),
        (200, True),
        (422, "amount_exceeds_captured"),
        (200, True),
        (422, "amount_exceeds_captured"),
    ]
    status, inquiry = await raw.inquire(reference)
    assert (status, inquiry["captured_minor"], inquiry["refunded_minor"]) == (200, 600, 600)


async def test_refund_before_capture_is_refused(raw: Raw) -> None:
    reference = unique_reference()
    await authorized(raw, reference, 500)
    status, body, _ = await raw.post("refund", refund_body(reference, 100), unique_reference("k"))
    assert (status, body["error"]["code"]) == (422, "payment_not_captured")


async def test_concurrent_refunds_never_exceed_the_captured_amount(
    raw: Raw, bank_control: SimulatorControl
) -> None:
    reference = unique_reference()
    await captured(raw, reference, 600)
    await bank_control.set_latency(100)
    answers = await asyncio.gather(
        *(raw.post("refund", refund_body(reference, 400), unique_reference("k")) for _ in range(5))
    )
    assert sorted(a[0] for a in answers) == [200, 422, 422, 422, 422]
    assert (await raw.inquire(reference))[1]["refunded_minor"] == 400


async def test_inquiry_reports_what_was_executed(raw: Raw) -> None:
    reference = unique_reference()
    assert (await raw.inquire(reference))[0] == 404
    await captured(raw, reference, 800)
    await raw.post("refund", refund_body(reference, 300, "rfd_1"), f"{reference}:rfd_1")
    status, inquiry = await raw.inquire(reference)
    assert status == 200
    assert (inquiry["authorized_minor"], inquiry["captured_minor"], inquiry["refunded_minor"]) == (
        800, 800, 300,
    )  # fmt: skip
    operations = [
        (op["operation"], op["outcome"], op["idempotency_key"]) for op in inquiry["operations"]
    ]
    assert operations == [
        ("authorize", "approved", f"{reference}:authorize"),
        ("capture", "approved", f"{reference}:capture"),
        ("refund", "approved", f"{reference}:rfd_1"),
    ]


async def test_error_before_commit_records_nothing(
    raw: Raw, bank_control: SimulatorControl
) -> None:
    reference = unique_reference()
    await bank_control.add_fault("error_before_commit", references=[reference], count=1)
    status, body, _ = await raw.post("authorize", authorize_body(reference), "k-" + reference)
    assert (status, body["error"]["code"]) == (500, "bank_unavailable")
    assert await bank_control.ledger(reference) == []
    status, body, _ = await raw.post("authorize", authorize_body(reference), "k-" + reference)
    assert (status, body["approved"]) == (200, True)
    assert len(await bank_control.ledger(reference)) == 1


async def test_error_after_commit_records_then_fails_and_a_retry_replays(
    raw: Raw, bank_control: SimulatorControl
) -> None:
    reference = unique_reference()
    await bank_control.add_fault(
        "error_after_commit", references=[reference], operations=["authorize"], status=503, count=1
    )
    status, _, _ = await raw.post("authorize", authorize_body(reference), "k-" + reference)
    assert status == 503
    [entry] = await bank_control.ledger(reference)
    status, body, headers = await raw.post("authorize", authorize_body(reference), "k-" + reference)
    assert (status, body["authorization_id"]) == (200, entry["authorization_id"])
    assert headers.get("Idempotent-Replayed") == "true"


@pytest.mark.parametrize(("mode", "recorded"), [("reset", 0), ("reset_after_commit", 1)])
async def test_reset_drops_the_connection(
    raw: Raw, bank_control: SimulatorControl, mode: str, recorded: int
) -> None:
    reference = unique_reference()
    await bank_control.add_fault(mode, references=[reference], count=1)
    with pytest.raises(aiohttp.ClientConnectionError):
        await raw.post("authorize", authorize_body(reference), "k-" + reference)
    assert len(await bank_control.ledger(reference)) == recorded


async def test_slow_body_sends_headers_then_trickles_the_answer(
    bank_sim_url: str, bank_control: SimulatorControl
) -> None:
    reference = unique_reference()
    await bank_control.add_fault("slow_body", references=[reference], delay_ms=5, count=1)
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session,
        session.post(
            f"{bank_sim_url}/api/v1/authorize",
            json=authorize_body(reference),
            headers={"Idempotency-Key": "k-" + reference},
        ) as response,
    ):
        assert response.status == 200
        chunks = [chunk async for chunk in response.content.iter_any()]
    assert len(chunks) > 1
    assert json.loads(b"".join(chunks))["approved"] is True


async def test_faults_respect_count_probability_and_operation(
    raw: Raw, bank_control: SimulatorControl
) -> None:
    reference = unique_reference()
    never = await bank_control.add_fault("error_before_commit", probability=0.0)
    other_op = await bank_control.add_fault("error_before_commit", operations=["refund"])
    twice = await bank_control.add_fault("error_before_commit", references=[reference], count=2)
    statuses = [
        (await raw.post("authorize", authorize_body(reference), "k-" + reference))[0]
        for _ in range(3)
    ]
    assert statuses == [500, 500, 200]
    hits = {f["id"]: (f["hits"], f["remaining"]) for f in await bank_control.faults()}
    assert hits == {never: (0, None), other_op: (0, None), twice: (2, 0)}


async def test_ledger_and_log_never_hold_a_full_card_number(
    raw: Raw, bank_control: SimulatorControl, bank_simulator: BankSimulator
) -> None:
    canary = "4000056655665556"  # a Luhn-valid Visa debit test number no other test uses
    reference = unique_reference()
    await raw.post("authorize", authorize_body(reference, canary), "k-" + reference)
    await raw.post(
        "authorize", authorize_body(reference, canary, expiry_month=13), "k2" + reference
    )
    ledger = json.dumps(await bank_control.ledger())
    assert "5556" in ledger
    assert canary not in ledger
    assert canary not in bank_simulator.log_path.read_text(errors="replace")
