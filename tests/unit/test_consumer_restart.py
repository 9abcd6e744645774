"""The processor replaces a Quix consumer that failed, instead of exiting; a signal ends it."""

from __future__ import annotations

from typing import Any

import pytest
from confluent_kafka import KafkaException

from payment_service.app import processor as root
from payment_service.config.settings import Settings
from tests.unit.test_business_metrics import Recorded

pytestmark = pytest.mark.unit


class FakeApp:
    def __init__(self, outcome: Exception | None, runs: list[str]) -> None:
        self._outcome = outcome
        self._runs = runs

    def run(self) -> None:
        self._runs.append("run")
        if self._outcome is not None:
            raise self._outcome


class FakeSink:
    def drain(self, timeout: float) -> int:
        return 0


class FakeHeartbeat:
    consuming = False


def test_a_failed_consumer_is_replaced_and_a_clean_stop_ends_the_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    runs: list[str] = []
    failures: list[Exception | None] = [RuntimeError("Unknown member"), None]
    builds: list[Exception | None] = [KafkaException("broker down"), None, None]
    seen_consuming: list[bool] = []
    heartbeat = FakeHeartbeat()

    def build(*args: Any, **kwargs: Any) -> tuple[FakeApp, FakeSink]:
        seen_consuming.append(heartbeat.consuming)
        refusal = builds.pop(0)
        if refusal is not None:  # Kafka down: even building asks the broker for the topic
            raise refusal
        return FakeApp(failures.pop(0), runs), FakeSink()

    monkeypatch.setattr(root, "build_application", build)
    monkeypatch.setattr(root, "RESTART_BACKOFF_CAP_SECONDS", 0.01)
    monkeypatch.setattr(root, "_on_signals", lambda stopping: None)  # keep pytest's handlers
    metrics = Recorded()
    processor: Any = root.Processor(
        handler=None,  # type: ignore[arg-type]
        publisher=None,  # type: ignore[arg-type]
        metrics=metrics,
        heartbeat=heartbeat,  # type: ignore[arg-type]
        close=None,  # type: ignore[arg-type]
    )
    root.consume(Settings(), None, processor)  # type: ignore[arg-type]
    assert runs == ["run", "run"]
    assert seen_consuming == [False, False, False]  # "not consuming" between the consumers
    assert [m.name for m, _, _ in metrics.counts] == ["consumer.restarts"] * 2
    assert heartbeat.consuming  # set again for the consumer that then ran
