"""CommandSink's fairness, on its real side loop: slots go to messages that can run.

A message waiting behind its own key holds no running slot, and one merchant's messages hold
at most their share, so another merchant's command runs while a storm is under way.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from payment_service.streams.sink import CommandSink, SideLoop

pytestmark = pytest.mark.unit


class Gate:
    """A handler that records what started and holds chosen messages until released."""

    def __init__(self, hold: Callable[[dict[str, Any]], bool]) -> None:
        self._hold = hold
        self.started: list[str] = []
        self.done: list[str] = []
        self._lock = threading.Lock()
        self.release = threading.Event()

    async def handle(
        self, raw: bytes | None, key: str | None, headers: dict[str, str], origin: str
    ) -> None:
        message = json.loads(raw or b"{}")
        with self._lock:
            self.started.append(message["id"])
        if self._hold(message):
            await asyncio.to_thread(self.release.wait, 30)
        with self._lock:
            self.done.append(message["id"])


def _message(ident: str, merchant: str) -> bytes:
    return json.dumps({"id": ident, "data": {"merchant_id": merchant}}).encode()


def _wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 30
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


@pytest.fixture
def side() -> Iterator[SideLoop]:
    loop = SideLoop("test-sink")
    yield loop
    loop.stop()


def _add(sink: CommandSink, ident: str, key: str, merchant: str, offset: int) -> None:
    sink.add(_message(ident, merchant), key.encode(), 0, [], "requests", 0, offset)


def test_messages_behind_their_own_key_leave_the_slots_to_others(side: SideLoop) -> None:
    gate = Gate(hold=lambda m: m["id"] == "storm-0")
    sink = CommandSink(side, gate.handle, max_in_flight=2, max_queued=100, flush_timeout_seconds=30)
    # A refund storm on one payment: all behind the first, which the bank holds.
    for n in range(20):
        _add(sink, f"storm-{n}", "one-payment", "m1", n)
    _add(sink, "other-1", "payment-b", "m2", 20)
    _add(sink, "other-2", "payment-c", "m2", 21)
    _wait_for(lambda: {"other-1", "other-2"} <= set(gate.done), "the other payments")
    assert gate.started.count("storm-1") == 0  # still waiting behind storm-0, in order
    gate.release.set()
    sink.flush()
    assert [i for i in gate.done if i.startswith("storm-")] == [f"storm-{n}" for n in range(20)]


def test_one_merchant_takes_at_most_its_share_of_the_slots(side: SideLoop) -> None:
    gate = Gate(hold=lambda m: m["data"]["merchant_id"] == "stormy")
    sink = CommandSink(
        side, gate.handle, max_in_flight=4, max_in_flight_per_merchant=2, flush_timeout_seconds=30
    )
    for n in range(10):
        _add(sink, f"stormy-{n}", f"payment-{n}", "stormy", n)
    _add(sink, "calm-1", "payment-calm", "calm", 10)
    _wait_for(lambda: "calm-1" in gate.done, "the calm merchant's payment")
    assert len([i for i in gate.started if i.startswith("stormy-")]) == 2
    gate.release.set()
    sink.flush()
    assert len(gate.done) == 11


def test_intake_blocks_only_past_the_queue_bound(side: SideLoop) -> None:
    gate = Gate(hold=lambda m: True)
    sink = CommandSink(side, gate.handle, max_in_flight=1, max_queued=3, flush_timeout_seconds=30)
    for n in range(3):
        _add(sink, f"q-{n}", "same", "m", n)
    fourth = threading.Thread(target=_add, args=(sink, "q-3", "same", "m", 3))
    fourth.start()
    fourth.join(0.2)
    assert fourth.is_alive()  # the Quix thread waits: memory stays bounded
    gate.release.set()
    fourth.join(30)
    sink.flush()
    assert gate.done == [f"q-{n}" for n in range(4)]


def test_the_merchant_header_decides_when_present(side: SideLoop) -> None:
    gate = Gate(hold=lambda m: m["id"].startswith("h-"))
    sink = CommandSink(
        side, gate.handle, max_in_flight=4, max_in_flight_per_merchant=1, flush_timeout_seconds=30
    )
    for n in range(3):
        value = _message(f"h-{n}", "body-says-other")
        sink.add(value, f"k{n}".encode(), 0, [("merchant-id", b"hdr")], "requests", 0, n)
    _wait_for(lambda: len(gate.started) >= 1, "the first message")
    time.sleep(0.2)  # give the others a chance to start, which the header's share forbids
    assert len(gate.started) == 1
    gate.release.set()
    sink.flush()
