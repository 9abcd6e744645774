"""The fast lane: a payment whose bank answer was lost is asked about again within seconds.

The reconciler's sweep only looks at payments unsettled for minutes (`stale_after`), so a capture
whose answer was lost in a bank slowdown used to wait two minutes and more after the bank was
answering again. Every payment the flow records `unknown` / `unknown_capture`, and every manual
capture or void left `capturing` / `canceling` by a lost answer, is handed here (`offer`); it is
reconciled again after 0.5 s, then at growing intervals up to `max_delay`, for `window` (after
that, the sweep has it). Each attempt is the sweep's own (`streams.settling`), with the same
idempotency keys, so it is safe beside redeliveries and the sweep. It is bounded: at most
`max_followed` payments followed and `concurrency` asked at once; past that the sweep still
settles them, only later.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time

from payment_service.core.ports import PaymentRepository
from payment_service.core.records import PaymentRecord
from payment_service.core.states import PAYMENT_SETTLED
from payment_service.ops import metric_catalog as catalog
from payment_service.ops.logcontext import log_context
from payment_service.ops.telemetry import Metrics
from payment_service.streams.captures import CaptureFlow
from payment_service.streams.payments import PaymentFlow
from payment_service.streams.publisher import ResultPublisher
from payment_service.streams.settling import settle_once

log = logging.getLogger(__name__)


class FastLane:
    """Follows unknown payments of this process until the bank settles them."""

    def __init__(
        self,
        repo: PaymentRepository,
        publisher: ResultPublisher,
        *,
        window: dt.timedelta,
        give_up_after: dt.timedelta,
        metrics: Metrics | None = None,
        first_delay: float = 0.5,
        max_delay: float = 3.0,
        concurrency: int = 8,
        max_followed: int = 10_000,
    ) -> None:
        self._repo = repo
        self._publisher = publisher
        self._window = window.total_seconds()
        self._give_up_after = give_up_after
        self._metrics = metrics
        self._first_delay = first_delay
        self._max_delay = max_delay
        self._slots = asyncio.Semaphore(concurrency)
        self._max_followed = max_followed
        self._followed: dict[str, asyncio.Task[None]] = {}
        self._flow: PaymentFlow | None = None
        self._captures: CaptureFlow | None = None

    def start(self, flow: PaymentFlow, captures: CaptureFlow | None = None) -> None:
        """Reconcile with `flow`, and repeat lost captures and voids with `captures` (both are
        built with `offer` as their recorder's `on_unknown`)."""
        self._flow = flow
        self._captures = captures

    def offer(self, payment: PaymentRecord) -> None:
        """Follow this payment, unless it is followed already or the lane is full."""
        txn = payment.transaction_id
        if self._flow is None or txn in self._followed:
            return
        if len(self._followed) >= self._max_followed:
            self._count("full")
            return
        task = asyncio.get_running_loop().create_task(self._follow(payment))
        self._followed[txn] = task
        task.add_done_callback(lambda _: self._followed.pop(txn, None))

    async def close(self) -> None:
        tasks = list(self._followed.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _follow(self, payment: PaymentRecord) -> None:
        deadline = time.monotonic() + self._window
        delay = self._first_delay
        with log_context(transaction_id=payment.transaction_id, merchant_id=payment.merchant_id):
            while time.monotonic() + delay < deadline:
                await asyncio.sleep(delay)
                if await self._settled(payment.transaction_id):
                    return
                delay = min(delay * 2, self._max_delay)
            self._count("left_to_sweep")

    async def _settled(self, txn: str) -> bool:
        """One attempt: True when the payment needs no more following."""
        assert self._flow is not None
        async with self._slots:
            try:
                payment = await self._repo.get_payment(txn)
                if payment is None or payment.status in PAYMENT_SETTLED:
                    return True
                settled = await settle_once(
                    payment,
                    flow=self._flow,
                    captures=self._captures,
                    give_up_after=self._give_up_after,
                )
                if settled.status != payment.status:
                    await self._publisher.publish_payment(settled)
            except Exception:  # one bad attempt must not end the following; the next tries again
                log.exception("fast-lane reconciliation failed")
                self._count("error")
                return False
        if settled.status in PAYMENT_SETTLED:
            self._count(settled.status.value)
            log.info("fast lane settled payment %s: %s", txn, settled.status)
            return True
        return False

    def _count(self, outcome: str) -> None:
        if self._metrics is not None:
            self._metrics.increment(catalog.FAST_LANE, {"outcome": outcome})
