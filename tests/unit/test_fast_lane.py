"""The fast lane settles a manual capture whose bank answer was lost, within seconds.

Against in-memory ports: the capture flow hands a `capturing` payment to the lane when the bank's
answer is lost; the lane repeats the capture under the same key until the bank answers, the way
the reconciler's sweep does (`streams.settling`), and publishes the settled payment.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from typing import Any, cast

import pytest

from payment_service.core.capture_ports import CaptureRepository
from payment_service.core.errors import BankOutcomeUnknown
from payment_service.core.ids import idempotency_key
from payment_service.core.records import CardDetails, NewPayment, PaymentRecord
from payment_service.core.states import PaymentStatus
from payment_service.streams.captures import CaptureFlow
from payment_service.streams.fastlane import FastLane
from payment_service.streams.payments import PaymentFlow
from payment_service.streams.publisher import ResultPublisher
from payment_service.streams.recorder import PaymentRecorder
from tests.unit.fakes import MemoryPayments, MemoryVault, ScriptedBank, record_of

pytestmark = pytest.mark.unit
S = PaymentStatus
DEADLINE = 10.0  # seconds; the lane's first attempts come after 0.5 s and 1 s


class Published:
    """The `ResultPublisher` as far as the lane uses it."""

    def __init__(self) -> None:
        self.payments: list[PaymentRecord] = []

    async def publish_payment(self, payment: PaymentRecord) -> None:
        self.payments.append(payment)


def _capturing(repo: MemoryPayments) -> PaymentRecord:
    card = CardDetails("visa", "4242", 12, 2030, "Ada Lovelace")
    new = NewPayment(
        f"txn_{uuid.uuid4().hex}", "merchant_1", 10_000, "USD", "credit_card", card,
        number_envelope="envelope", capture_method="manual",
    )  # fmt: skip
    row = record_of(new, status=S.CAPTURING, authorization_id="auth_1",
                    capture_requested_minor=4_000)  # fmt: skip
    repo.rows[row.transaction_id] = row
    return row


def _wired(repo: MemoryPayments, bank: ScriptedBank, published: Published) -> CaptureFlow:
    lane = FastLane(
        repo,
        cast(ResultPublisher, published),
        window=dt.timedelta(seconds=30),
        give_up_after=dt.timedelta(minutes=15),
    )
    flow = PaymentFlow(repo, bank, MemoryVault(), cast(Any, None), on_unknown=lane.offer)
    captures = CaptureFlow(
        cast(CaptureRepository, repo), repo, bank, PaymentRecorder(repo, None, lane.offer)
    )
    lane.start(flow, captures)
    return captures


async def _until(condition: Any, what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DEADLINE
    while not condition():
        assert loop.time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def test_a_lost_capture_answer_is_repeated_by_the_fast_lane_under_its_key() -> None:
    repo, published = MemoryPayments(), Published()
    lost = BankOutcomeUnknown("answer lost", operation="capture", reference="r")
    bank = ScriptedBank(capture_with=lost)
    captures = _wired(repo, bank, published)
    payment = _capturing(repo)

    left = await captures.finish(payment, None)
    assert left.status == S.CAPTURING  # never failed for a lost answer
    bank.capture_with = ScriptedBank().capture_with  # the bank answers again

    await _until(lambda: published.payments, "the fast lane to publish the capture")
    settled = repo.rows[payment.transaction_id]
    assert (settled.status, settled.captured_minor) == (S.CAPTURED, 4_000)
    assert [p.status for p in published.payments] == [S.CAPTURED]
    key = idempotency_key(payment.transaction_id, "capture")
    assert len(bank.calls) >= 2  # the lost call, then the lane's repeat
    assert set(bank.calls) == {("capture", key)}  # the one key, every time
