"""A Quix streaming sink that overlaps bank calls on an asyncio loop of its own (DESIGN.md §4).

Quix hands the sink one message at a time on its thread. `add()` submits the message's work to
the side loop and returns at once, blocking only when `max_queued` messages are submitted and
not done. Messages with the same key (a payment and its refunds) run one after another, in
offset order; different keys overlap. `flush()`, called by Quix before it commits offsets, waits
for every submitted message, so an offset is committed only after its effects are durable
(at-least-once; the flows make redelivery harmless).

Fairness: a message takes one of the `max_in_flight` running slots only once it may run, that
is after the messages before it with its key are done (a refund storm on one payment waits in
the queue, not in the slots), and after one of its merchant's `max_in_flight_per_merchant`
slots (one merchant's storm cannot take every slot). The merchant comes from the command's
`merchant-id` header (set by our API), else from its body.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import uvloop
from quixstreams.sinks import BaseSink

from payment_service.ops import step_timing
from payment_service.schemas.messages import HEADER_MERCHANT_ID

log = logging.getLogger(__name__)
SLOW_FLUSH_MS = 50.0

# value, key, headers, and where the message sits: `<topic>:<partition>:<offset>`.
Handle = Callable[[bytes | None, str | None, dict[str, str], str], Awaitable[None]]


class SideLoop:
    """An asyncio event loop running on its own daemon thread."""

    def __init__(self, name: str = "processor-io") -> None:
        self.loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def submit(self, coro: Coroutine[Any, Any, Any]) -> concurrent.futures.Future[Any]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def run(self, coro: Coroutine[Any, Any, Any], timeout: float) -> Any:
        return self.submit(coro).result(timeout)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5.0)


class CommandSink(BaseSink):
    def __init__(
        self,
        side_loop: SideLoop,
        handle: Handle,
        *,
        max_in_flight: int,
        flush_timeout_seconds: float,
        max_in_flight_per_merchant: int | None = None,
        max_queued: int | None = None,
    ) -> None:
        super().__init__()
        self._side = side_loop
        self._handle = handle
        self._queued = threading.BoundedSemaphore(max_queued or 4 * max_in_flight)
        self._running = asyncio.Semaphore(max_in_flight)
        self._per_merchant = max_in_flight_per_merchant or max_in_flight
        # Per-merchant slots and how many messages hold or wait for them (side loop only).
        self._merchants: dict[str, asyncio.Semaphore] = {}
        self._merchant_users: Counter[str] = Counter()
        self._flush_timeout = flush_timeout_seconds
        self._pending: set[concurrent.futures.Future[None]] = set()
        self._pending_lock = threading.Lock()
        # Last task per key, touched only on the side loop.
        self._tails: dict[str | None, asyncio.Future[None]] = {}

    def add(
        self,
        value: Any,
        key: Any,
        timestamp: int,
        headers: Any,
        topic: str,
        partition: int,
        offset: int,
    ) -> None:
        self._queued.acquire()
        key_text = key.decode() if isinstance(key, bytes) else key
        origin = f"{topic}:{partition}:{offset}"
        future = self._side.submit(self._run_in_order(value, key_text, _headers(headers), origin))
        with self._pending_lock:
            self._pending.add(future)
        future.add_done_callback(self._done)

    def _done(self, future: concurrent.futures.Future[None]) -> None:
        self._queued.release()
        if future.cancelled() or future.exception() is None:
            with self._pending_lock:
                self._pending.discard(future)
        # A failed future stays pending so that flush() sees it and the checkpoint aborts.

    async def _run_in_order(
        self, value: Any, key: str | None, headers: dict[str, str], origin: str
    ) -> None:
        previous = self._tails.get(key)
        mine: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._tails[key] = mine
        try:
            if previous is not None:
                await asyncio.wait([previous])
            merchant = _merchant(value, headers)
            self._merchant_users[merchant] += 1
            slots = self._merchants.setdefault(merchant, asyncio.Semaphore(self._per_merchant))
            try:
                # Its log line sums its outside calls' time per step (ops/step_timing.py).
                async with slots, self._running:
                    with step_timing.measuring():
                        await self._handle(value, key, headers, origin)
            finally:
                self._merchant_users[merchant] -= 1
                if not self._merchant_users[merchant]:
                    del self._merchant_users[merchant], self._merchants[merchant]
        finally:
            mine.set_result(None)
            if self._tails.get(key) is mine:
                del self._tails[key]

    def flush(self) -> None:
        """Wait until every submitted message is done; raise if any failed (no commit then)."""
        with self._pending_lock:
            waiting = list(self._pending)
        if not waiting:
            return
        started = time.monotonic()
        done, not_done = concurrent.futures.wait(waiting, timeout=self._flush_timeout)
        waited_ms = (time.monotonic() - started) * 1000
        if waited_ms >= SLOW_FLUSH_MS:  # intake is stopped meanwhile: a pause worth naming
            log.info(
                "checkpoint waited %.0f ms for %d messages in flight", waited_ms, len(waiting),
                extra={"flush_ms": round(waited_ms, 1), "in_flight": len(waiting)},
            )  # fmt: skip
        if not_done:
            raise TimeoutError(f"{len(not_done)} messages still in flight after flush timeout")
        failed = [f for f in done if f.exception() is not None]
        if failed:
            raise RuntimeError("message processing failed; offsets not committed") from (
                failed[0].exception()
            )
        with self._pending_lock:
            self._pending.difference_update(done)

    def drain(self, timeout: float) -> int:
        """Wait (up to `timeout`) for every submitted message, failed or not; how many remain.

        For a restart of the consumer: the new one's redeliveries then never overlap the old
        one's work on the same payment.
        """
        with self._pending_lock:
            waiting = list(self._pending)
        _, not_done = concurrent.futures.wait(waiting, timeout=timeout)
        return len(not_done)


def _merchant(value: Any, headers: dict[str, str]) -> str:
    """The command's merchant, for its fair share of slots ("" when it names none)."""
    named = headers.get(HEADER_MERCHANT_ID)
    if named is not None:
        return named
    try:
        merchant = json.loads(value)["data"]["merchant_id"]
    except (ValueError, TypeError, KeyError, RecursionError):
        return ""
    return merchant if isinstance(merchant, str) else ""


def _headers(headers: Any) -> dict[str, str]:
    if not headers:
        return {}
    items = headers.items() if isinstance(headers, dict) else headers
    return {
        str(k): v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for k, v in items
    }
