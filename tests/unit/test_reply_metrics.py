"""Reply waits are measured by how they end: result (200), timeout (202), not accepted (503)."""

from __future__ import annotations

from typing import Any, cast

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from payment_service.config.settings import DatadogSettings
from payment_service.core.errors import NotAccepted
from payment_service.http.replies import ReplyRouter
from payment_service.http.request_reply import RequestReply
from payment_service.kafka.producer import AsyncProducer, ProduceFailed
from payment_service.kafka.signing import Signer
from payment_service.ops import metric_catalog as catalog
from payment_service.ops.metric_catalog import Metric
from payment_service.ops.telemetry import Metrics, Tags
from payment_service.schemas.messages import PaymentResult

pytestmark = pytest.mark.unit


class Recorded(Metrics):
    def __init__(self) -> None:
        super().__init__(DatadogSettings.model_validate({"metrics_enabled": False}), "api")
        self.counts: list[tuple[Metric, dict[str, str | None]]] = []
        self.timings: list[Metric] = []

    def increment(self, metric: Metric, tags: Tags | None = None, value: float = 1) -> None:
        self.counts.append((metric, dict(tags or {})))

    def timing(self, metric: Metric, milliseconds: float, tags: Tags | None = None) -> None:
        assert milliseconds >= 0
        self.timings.append(metric)


class Producer:
    def __init__(self, fails: bool) -> None:
        self.fails = fails

    async def produce(self, topic: str, value: bytes, **kwargs: Any) -> None:
        if self.fails:
            raise ProduceFailed("no ack")


class Replies:
    partition = 0

    def __init__(self, result: PaymentResult | None) -> None:
        self.result = result

    def expect(self, reply_id: str, expected: object) -> None:
        return None

    def forget(self, reply_id: str) -> None:
        return None

    async def wait(self, reply_id: str, timeout: float) -> PaymentResult | None:
        return self.result


def sender(metrics: Metrics, *, fails: bool = False, answered: bool = True) -> RequestReply:
    result = PaymentResult(
        transaction_id="t", merchant_id="m", kind="payment", final=True, refund_id=None
    )
    return RequestReply(
        cast(AsyncProducer, Producer(fails)),
        cast(ReplyRouter, Replies(result if answered else None)),
        Signer("api", Ed25519PrivateKey.generate()),
        topic="requests",
        timeout_seconds=1.0,
        tracing=False,
        metrics=metrics,
    )


@pytest.mark.parametrize(
    ("fails", "answered", "outcome"),
    [(False, True, "result"), (False, False, "timeout"), (True, True, "not_accepted")],
)
async def test_each_wait_is_counted_and_timed_by_outcome(
    fails: bool, answered: bool, outcome: str
) -> None:
    metrics = Recorded()
    try:
        await sender(metrics, fails=fails, answered=answered).send(
            b"{}", "t", "c", kind="refund", merchant_id="m"
        )
    except NotAccepted:
        assert fails
    assert metrics.counts == [(catalog.API_REPLIES, {"kind": "refund", "outcome": outcome})]
    assert metrics.timings == [catalog.API_REPLY_WAIT]
