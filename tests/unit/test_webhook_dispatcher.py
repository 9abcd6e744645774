"""The dispatcher's scheduling against in-memory fakes: an endpoint is served again once its
turn ends, a failed attempt is due again after its backoff, and one slow endpoint does not hold
up another (each endpoint in its own task)."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from payment_service.config.webhooks import WebhookSettings
from payment_service.core.webhooks import DueDelivery
from payment_service.webhooks.delivery import AttemptResult
from payment_service.webhooks.dispatcher import Dispatcher

pytestmark = pytest.mark.unit


class _Deliveries:
    """Pending deliveries in memory: (endpoint, event) -> [attempts, due at, status]."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], list[Any]] = {}

    def add(self, endpoint: str, event: str) -> None:
        self.rows[(endpoint, event)] = [0, dt.datetime.now(dt.UTC), "pending"]

    def _due(self, endpoint: str | None = None) -> list[tuple[str, str]]:
        now = dt.datetime.now(dt.UTC)
        return [
            k for k, (_, at, status) in self.rows.items()
            if status == "pending" and at <= now and endpoint in (None, k[0])
        ]  # fmt: skip

    async def due_endpoints(self, busy: list[str], limit: int) -> list[str]:
        return list(dict.fromkeys(e for e, _ in self._due() if e not in busy))[:limit]

    async def due_for(self, endpoint_id: str, limit: int) -> list[DueDelivery]:
        far = dt.datetime.now(dt.UTC) + dt.timedelta(days=3)
        return [
            DueDelivery(e, ev, self.rows[(e, ev)][0], far, f"http://{e}", "sealed", {"id": ev})
            for e, ev in self._due(endpoint_id)[:limit]
        ]

    async def attempted(self, delivery: DueDelivery, **outcome: Any) -> None:
        row = self.rows[(delivery.endpoint_id, delivery.event_id)]
        row[0] += 1
        if outcome["succeeded"]:
            row[2] = "succeeded"
        elif outcome["next_attempt_at"] is None:
            row[2] = "failed"
        else:
            row[1] = outcome["next_attempt_at"]


class _Sender:
    def __init__(self) -> None:
        self.failing: set[str] = set()
        self.hold: dict[str, asyncio.Event] = {}
        self.sent: list[tuple[str, str]] = []

    async def send(self, delivery: DueDelivery) -> AttemptResult:
        if delivery.endpoint_id in self.hold:
            await self.hold[delivery.endpoint_id].wait()
        self.sent.append((delivery.endpoint_id, delivery.event_id))
        if delivery.endpoint_id in self.failing:
            return AttemptResult(False, 500, "answered 500")
        return AttemptResult(True, 200)


class _Nothing:
    async def step(self) -> int:
        return 0

    async def purge(self) -> int:
        return 0


class _Lock:
    @asynccontextmanager
    async def held(self) -> AsyncIterator[bool]:
        yield True


def _dispatcher(store: _Deliveries, sender: _Sender) -> Dispatcher:
    settings = WebhookSettings(retry_base_seconds=0.05, retry_max_seconds=0.1)
    nothing = _Nothing()
    return Dispatcher(settings, nothing, nothing, store, sender, _Lock())  # type: ignore[arg-type]


async def _until(check: Any, dispatcher: Dispatcher, passes: int = 200) -> None:
    for _ in range(passes):
        await dispatcher.step()
        await asyncio.sleep(0.01)
        if check():
            return
    raise AssertionError("condition not reached")


async def test_an_endpoint_is_served_again_for_deliveries_that_came_later() -> None:
    store, sender = _Deliveries(), _Sender()
    dispatcher = _dispatcher(store, sender)
    store.add("a", "evt_1")
    await _until(lambda: sender.sent == [("a", "evt_1")], dispatcher)
    store.add("a", "evt_2")
    await _until(lambda: ("a", "evt_2") in sender.sent, dispatcher)
    assert sender.sent == [("a", "evt_1"), ("a", "evt_2")]


async def test_a_failed_attempt_is_retried_until_it_succeeds() -> None:
    store, sender = _Deliveries(), _Sender()
    dispatcher = _dispatcher(store, sender)
    sender.failing.add("a")
    store.add("a", "evt_1")
    await _until(lambda: store.rows[("a", "evt_1")][0] >= 3, dispatcher)
    sender.failing.clear()
    await _until(lambda: store.rows[("a", "evt_1")][2] == "succeeded", dispatcher)


async def test_a_held_endpoint_does_not_hold_up_another() -> None:
    store, sender = _Deliveries(), _Sender()
    dispatcher = _dispatcher(store, sender)
    sender.hold["slow"] = asyncio.Event()
    store.add("slow", "evt_1")
    store.add("slow", "evt_2")
    store.add("quick", "evt_3")
    await _until(lambda: ("quick", "evt_3") in sender.sent, dispatcher)
    assert all(e != "slow" for e, _ in sender.sent)
    sender.hold["slow"].set()
    await _until(lambda: len(sender.sent) == 3, dispatcher)
