"""Sale, void and partial capture over real HTTP (simulator and client), the ledger the oracle."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from payment_service.bank.client import HttpBankClient
from payment_service.bank.simulator.control import SimulatorControl
from payment_service.core.errors import BankRejected
from payment_service.core.ids import idempotency_key
from payment_service.core.masking import CardNumber, SecurityCode
from tests.fixtures.bank import unique_reference
from tests.integration.test_bank_simulator import (
    FUTURE_YEAR,
    Raw,
    authorize_body,
    authorized,
    refund_body,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


@pytest_asyncio.fixture
async def raw(bank_sim_url: str) -> AsyncIterator[Raw]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as session:
        yield Raw(session, bank_sim_url)


def capture_body(reference: str, auth_id: str, amount: int) -> dict[str, Any]:
    return {"reference": reference, "authorization_id": auth_id, "amount_minor": amount,
            "currency": "USD"}  # fmt: skip


def void_body(reference: str, auth_id: str) -> dict[str, Any]:
    return {"reference": reference, "authorization_id": auth_id}


async def totals(raw: Raw, reference: str) -> tuple[int, int, int, int]:
    status, inquiry = await raw.inquire(reference)
    assert status == 200
    return (
        inquiry["authorized_minor"],
        inquiry["captured_minor"],
        inquiry["refunded_minor"],
        inquiry["released_minor"],
    )


async def approved_operations(control: SimulatorControl, reference: str) -> list[str]:
    return [e["operation"] for e in await control.ledger(reference) if e["outcome"] == "approved"]


async def test_a_sale_authorizes_and_captures_in_one_entry(
    raw: Raw, bank_control: SimulatorControl
) -> None:
    ref = unique_reference()
    status, body, headers = await raw.post("sale", authorize_body(ref, amount=2500), f"{ref}:sale")
    assert (status, body["approved"], body["operation"]) == (200, True, "sale")
    assert body["authorization_id"].startswith("auth_")
    assert body["bank_transaction_id"].startswith("sal_")
    assert body["card"] == {"brand": "visa", "last4": "4242"}
    assert "Idempotent-Replayed" not in headers
    [entry] = await bank_control.ledger(ref)
    assert (entry["operation"], entry["outcome"]) == ("sale", "approved")
    assert entry["amount_minor"] == 2500
    assert await totals(raw, ref) == (2500, 2500, 0, 0)
    _, inquiry = await raw.inquire(ref)
    assert inquiry["authorizations"] == [
        {"authorization_id": body["authorization_id"], "amount_minor": 2500, "currency": "USD",
         "status": "captured", "captured_minor": 2500, "released_minor": 0},
    ]  # fmt: skip

    again = await raw.post("sale", authorize_body(ref, amount=2500), f"{ref}:sale")
    assert (again[0], again[1], again[2].get("Idempotent-Replayed")) == (200, body, "true")
    other = await raw.post("sale", authorize_body(ref, amount=2600), f"{ref}:sale")
    assert (other[0], other[1]["error"]["code"]) == (422, "idempotency_key_reuse")
    [entry] = await bank_control.ledger(ref)
    assert entry["replays"] == 1

    refund = await raw.post("refund", refund_body(ref, 2500), f"{ref}:rfd")
    assert (refund[0], refund[1]["approved"]) == (200, True)
    assert await totals(raw, ref) == (2500, 2500, 2500, 0)


async def test_a_declined_sale_captures_nothing(raw: Raw) -> None:
    ref = unique_reference()
    body = authorize_body(ref, "4000000000009995")
    status, answer, _ = await raw.post("sale", body, f"{ref}:sale")
    assert (status, answer["approved"]) == (200, False)
    assert answer["decline_code"] == "insufficient_funds"
    assert answer["authorization_id"] is None
    assert await totals(raw, ref) == (0, 0, 0, 0)
    refund = await raw.post("refund", refund_body(ref, 100), f"{ref}:rfd")
    assert (refund[0], refund[1]["error"]["code"]) == (422, "payment_not_captured")


async def test_a_partial_capture_releases_the_rest_and_bounds_refunds(raw: Raw) -> None:
    ref = unique_reference()
    auth_id = await authorized(raw, ref, 1000)
    status, body, _ = await raw.post("capture", capture_body(ref, auth_id, 600), f"{ref}:capture")
    assert (status, body["approved"], body["amount_minor"]) == (200, True, 600)
    assert await totals(raw, ref) == (1000, 600, 0, 400)
    _, inquiry = await raw.inquire(ref)
    [hold] = inquiry["authorizations"]
    assert (hold["status"], hold["captured_minor"], hold["released_minor"]) == (
        "captured", 600, 400,
    )  # fmt: skip

    second = await raw.post("capture", capture_body(ref, auth_id, 400), f"{ref}:capture-2")
    assert (second[0], second[1]["error"]["code"]) == (409, "already_captured")
    too_much = await raw.post("refund", refund_body(ref, 601), f"{ref}:rfd-1")
    assert (too_much[0], too_much[1]["error"]["code"]) == (422, "amount_exceeds_captured")
    refund = await raw.post("refund", refund_body(ref, 600), f"{ref}:rfd-2")
    assert (refund[0], refund[1]["approved"]) == (200, True)


async def test_a_void_releases_the_hold_and_the_authorization_cannot_be_captured(
    raw: Raw, bank_control: SimulatorControl
) -> None:
    ref = unique_reference()
    auth_id = await authorized(raw, ref, 1000)
    status, body, _ = await raw.post("void", void_body(ref, auth_id), f"{ref}:void")
    assert (status, body["approved"], body["operation"], body["amount_minor"]) == (
        200, True, "void", 1000,
    )  # fmt: skip
    assert body["bank_transaction_id"].startswith("void_")
    assert await totals(raw, ref) == (1000, 0, 0, 1000)
    _, inquiry = await raw.inquire(ref)
    assert inquiry["authorizations"][0]["status"] == "voided"

    replay = await raw.post("void", void_body(ref, auth_id), f"{ref}:void")
    assert (replay[1], replay[2].get("Idempotent-Replayed")) == (body, "true")
    capture = await raw.post("capture", capture_body(ref, auth_id, 1000), f"{ref}:capture")
    assert (capture[0], capture[1]["error"]["code"]) == (409, "authorization_voided")
    again = await raw.post("void", void_body(ref, auth_id), f"{ref}:void-2")
    assert (again[0], again[1]["error"]["code"]) == (409, "already_voided")
    approved = await approved_operations(bank_control, ref)
    assert approved == ["authorize", "void"]


async def test_voids_that_are_refused(raw: Raw) -> None:
    captured_ref, sold_ref, other_ref = (unique_reference() for _ in range(3))
    auth_id = await authorized(raw, captured_ref, 1000)
    await raw.post("capture", capture_body(captured_ref, auth_id, 1000), f"{captured_ref}:capture")
    _, sale, _ = await raw.post("sale", authorize_body(sold_ref), f"{sold_ref}:sale")
    other_auth = await authorized(raw, other_ref, 1000)
    cases = [
        (void_body(captured_ref, auth_id), 409, "already_captured"),
        (void_body(sold_ref, sale["authorization_id"]), 409, "already_captured"),
        (void_body(captured_ref, other_auth), 422, "reference_mismatch"),
        (void_body(captured_ref, "auth_unknown"), 404, "authorization_not_found"),
    ]
    for body, status, code in cases:
        answer = await raw.post("void", body, unique_reference("key"))
        assert (answer[0], answer[1]["error"]["code"]) == (status, code), body
    assert await totals(raw, other_ref) == (1000, 0, 0, 0)  # the hold is untouched


async def test_a_capture_racing_a_void_lets_exactly_one_win(
    raw: Raw, bank_control: SimulatorControl
) -> None:
    ref = unique_reference()
    auth_id = await authorized(raw, ref, 1000)
    capture, void = await asyncio.gather(
        raw.post("capture", capture_body(ref, auth_id, 1000), f"{ref}:capture"),
        raw.post("void", void_body(ref, auth_id), f"{ref}:void"),
    )
    assert sorted([capture[0], void[0]]) == [200, 409]
    approved = await approved_operations(bank_control, ref)
    assert len(approved) == 2  # the authorization and one of the two
    authorized_, captured, _, released = await totals(raw, ref)
    assert authorized_ == captured + released == 1000


@pytest.mark.parametrize("operation", ["sale", "void"])
async def test_faults_and_counters_apply_to_sale_and_void(
    raw: Raw, bank_control: SimulatorControl, operation: str
) -> None:
    ref = unique_reference()
    if operation == "sale":
        body = authorize_body(ref)
    else:
        body = void_body(ref, await authorized(raw, ref, 1000))
    before = (await bank_control.stats())["received"].get(operation, 0)
    await bank_control.add_fault(
        "error_after_commit", references=[ref], operations=[operation], count=1
    )
    failed = await raw.post(operation, body, f"{ref}:{operation}")
    assert (failed[0], failed[1]["error"]["code"]) == (500, "bank_unavailable")
    retried = await raw.post(operation, body, f"{ref}:{operation}")
    assert (retried[0], retried[1]["approved"], retried[2].get("Idempotent-Replayed")) == (
        200, True, "true",
    )  # fmt: skip
    assert len(await bank_control.ledger(ref, operation)) == 1
    assert (await bank_control.stats())["received"][operation] == before + 2


async def test_the_client_sells_voids_and_partially_captures(
    make_client: Callable[..., HttpBankClient], bank_control: SimulatorControl
) -> None:
    client = make_client()
    sold_ref, voided_ref, partial_ref = (unique_reference() for _ in range(3))
    card: dict[str, Any] = {
        "currency": "USD", "card_number": CardNumber("4242424242424242"),
        "security_code": SecurityCode("123"), "expiry_month": 12, "expiry_year": FUTURE_YEAR,
        "holder_name": "Test Holder",
    }  # fmt: skip
    sale = await client.sale(
        reference=sold_ref, idempotency_key=idempotency_key(sold_ref, "sale"), amount_minor=500,
        **card,
    )  # fmt: skip
    assert (sale.approved, sale.via) == (True, "response")
    assert sale.authorization_id is not None
    assert sale.bank_transaction_id is not None
    inquiry = await client.inquire(sold_ref)
    assert (inquiry.authorized_minor, inquiry.captured_minor) == (500, 500)
    assert [op.operation for op in inquiry.operations] == ["sale"]
    with pytest.raises(BankRejected) as refused:
        await client.void(
            reference=sold_ref, idempotency_key=idempotency_key(sold_ref, "void"),
            authorization_id=sale.authorization_id,
        )  # fmt: skip
    assert (refused.value.status, refused.value.code) == (409, "already_captured")

    for ref in (voided_ref, partial_ref):
        auth = await client.authorize(
            reference=ref, idempotency_key=idempotency_key(ref, "authorize"), amount_minor=1000,
            **card,
        )  # fmt: skip
        assert auth.authorization_id is not None
        if ref == voided_ref:
            voided = await client.void(
                reference=ref, idempotency_key=idempotency_key(ref, "void"),
                authorization_id=auth.authorization_id,
            )  # fmt: skip
            assert voided.approved
        else:
            partial = await client.capture(
                reference=ref, idempotency_key=idempotency_key(ref, "capture"),
                authorization_id=auth.authorization_id, amount_minor=250, currency="USD",
            )  # fmt: skip
            assert partial.approved
    voided_state = await client.inquire(voided_ref)
    assert (voided_state.released_minor, voided_state.authorizations[0].status) == (1000, "voided")
    partial_state = await client.inquire(partial_ref)
    assert (partial_state.captured_minor, partial_state.released_minor) == (250, 750)
    assert len(await bank_control.ledger(voided_ref, "void")) == 1
