"""Payments are counted once, when their settlement is recorded: a redelivery counts nothing."""

from __future__ import annotations

import uuid

import pytest

from payment_service.cards.fingerprint import FingerprintKey
from payment_service.config.settings import DatadogSettings
from payment_service.core.records import CardDetails, NewPayment
from payment_service.ops import metric_catalog as catalog
from payment_service.ops.metric_catalog import Metric
from payment_service.ops.telemetry import Metrics, Tags
from payment_service.streams.cards import CardSources
from payment_service.streams.payments import PaymentFlow
from tests.unit.fakes import (
    DECLINED,
    FixedCards,
    MemoryPaymentMethods,
    MemoryPayments,
    MemoryVault,
    ScriptedBank,
)

pytestmark = pytest.mark.unit


class Recorded(Metrics):
    def __init__(self) -> None:
        super().__init__(DatadogSettings.model_validate({"metrics_enabled": False}), "processor")
        self.counts: list[tuple[Metric, dict[str, str | None], float]] = []

    def increment(self, metric: Metric, tags: Tags | None = None, value: float = 1) -> None:
        self.counts.append((metric, dict(tags or {}), value))


def _new(currency: str = "USD", amount_minor: int = 12_345) -> NewPayment:
    card = CardDetails("unknown", "0000", 12, 2030, "Ada Lovelace")
    return NewPayment(
        f"txn_{uuid.uuid4().hex}",
        "merchant_1",
        amount_minor,
        currency,
        "credit_card",
        card,
        number_envelope="envelope",
    )


def flow(metrics: Metrics, bank: ScriptedBank | None = None) -> PaymentFlow:
    fingerprints = FingerprintKey.parse(
        "fpk1:" + "Zm9yIHRlc3RzIG9ubHk6IGEgZml4ZWQga2V5IG9mIDMyIGJ5dGVz"
    )
    cards = CardSources(FixedCards(), MemoryPaymentMethods(), fingerprints)
    return PaymentFlow(
        MemoryPayments(), bank or ScriptedBank(), MemoryVault(), cards, metrics=metrics
    )


async def test_a_captured_payment_is_counted_once_with_its_amount_in_major_units() -> None:
    metrics = Recorded()
    payments = flow(metrics)
    new = _new("JPY", 5000)
    await payments.run(new, correlation_id=None)
    await payments.run(new, correlation_id=None)  # redelivered: already settled
    assert metrics.counts == [
        (
            catalog.PAYMENTS_SETTLED,
            {"currency": "JPY", "status": "captured", "failure_code": None, "decline_code": None},
            1,
        ),
        (catalog.PAYMENTS_AMOUNT, {"currency": "JPY", "status": "captured"}, 5000.0),
    ]


async def test_a_decline_is_counted_with_its_codes() -> None:
    metrics = Recorded()
    await flow(metrics, ScriptedBank(authorize_with=DECLINED)).run(_new(), correlation_id=None)
    settled = [tags for metric, tags, _ in metrics.counts if metric is catalog.PAYMENTS_SETTLED]
    assert settled == [
        {
            "currency": "USD",
            "status": "failed",
            "failure_code": "card_declined",
            "decline_code": DECLINED.decline_code,
        }
    ]
