"""Settle payments that no message will settle: outcome unknown, or stuck mid-flow.

Every interval, the processor that holds the reconciliation lock (`LOCK_ID`, a PostgreSQL
advisory lock: one holder at a time across all processors) asks the bank about payments unsettled
for longer than `stale_after` and records what the bank says, with the same idempotency keys as
the flow, so it is safe beside redeliveries. A capture or void whose answer was lost is repeated
under its key. Two more sweeps release holds: a manual-capture hold not captured within
`authorization_validity` is voided (`canceled`, reason `expired`), and a payment the give-up
path failed is checked once at the bank for a hold (or sale) that arrived late, which is voided
(or reversed). Rounds and what each record came to are counted
(`reconciler.runs`, `reconciler.actions`); the lines about one record carry its ids.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging

from payment_service.core.capture_ports import CaptureRepository
from payment_service.core.errors import BankError, PaymentNotCapturable, TransitionConflict
from payment_service.core.ports import ExclusiveLock, PaymentRepository, RefundRepository
from payment_service.core.records import CaptureRequest, PaymentRecord, RefundRecord
from payment_service.ops import metric_catalog as catalog
from payment_service.ops.logcontext import log_context
from payment_service.ops.telemetry import Metrics
from payment_service.streams.captures import CaptureFlow
from payment_service.streams.payments import PaymentFlow
from payment_service.streams.publisher import ResultPublisher
from payment_service.streams.refunds import RefundFlow
from payment_service.streams.settling import settle_once

log = logging.getLogger(__name__)

LOCK_ID = 0x7061796D  # "paym": one reconciler at a time across processors
BATCH = 100


class Reconciler:
    def __init__(
        self,
        lock: ExclusiveLock,
        repo: PaymentRepository,
        flow: PaymentFlow,
        publisher: ResultPublisher,
        refunds_repo: RefundRepository,
        refunds: RefundFlow,
        *,
        stale_after: dt.timedelta,
        give_up_after: dt.timedelta,
        captures_repo: CaptureRepository,
        captures: CaptureFlow,
        authorization_validity: dt.timedelta = dt.timedelta(days=7),
        metrics: Metrics | None = None,
    ) -> None:
        self._captures_repo = captures_repo
        self._captures = captures
        self._validity = authorization_validity
        self._metrics = metrics
        self._lock = lock
        self._repo = repo
        self._flow = flow
        self._publisher = publisher
        self._refunds_repo = refunds_repo
        self._refunds = refunds
        self._stale_after = stale_after
        self._give_up_after = give_up_after

    async def run_forever(self, interval_seconds: float) -> None:
        while True:
            await asyncio.sleep(interval_seconds)
            try:
                await self.run_once()
            except Exception:  # the loop must survive any one bad round; it logs and tries again
                log.exception("reconciliation round failed")

    async def run_once(self) -> int:
        """One round; returns how many payments changed status."""
        async with self._lock.held() as mine:
            self._count(catalog.RECONCILER_RUNS, holder=str(bool(mine)).lower())
            if not mine:
                return 0
            return await self._round()

    def _count(self, metric: catalog.Metric, **tags: str) -> None:
        if self._metrics is not None:
            self._metrics.increment(metric, tags)

    async def _round(self) -> int:
        changed = await self._refund_round() + await self._payment_round()
        return changed + await self._hold_round() + await self._give_up_round()

    async def _payment_round(self) -> int:
        changed = 0
        last: PaymentRecord | None = None
        while batch := await self._repo.find_unsettled(self._stale_after, BATCH, after=last):
            for payment in batch:
                with log_context(
                    transaction_id=payment.transaction_id,
                    merchant_id=payment.merchant_id,
                    correlation_id=payment.correlation_id,
                ):
                    changed += await self._settle_payment(payment)
            last = batch[-1]
        return changed

    async def _settle_payment(self, payment: PaymentRecord) -> int:
        try:
            settled = await settle_once(
                payment,
                flow=self._flow,
                captures=self._captures,
                give_up_after=self._give_up_after,
            )
        except Exception:  # one payment's failure must not stop the others
            log.exception("reconciling payment %s failed", payment.transaction_id)
            self._count(catalog.RECONCILER_ACTIONS, kind="payment", outcome="error")
            return 0
        if settled.status == payment.status:
            self._count(catalog.RECONCILER_ACTIONS, kind="payment", outcome="unchanged")
            return 0
        self._count(catalog.RECONCILER_ACTIONS, kind="payment", outcome=settled.status.value)
        log.info(
            "reconciled payment %s: %s -> %s",
            payment.transaction_id,
            payment.status,
            settled.status,
        )
        await self._publisher.publish_payment(settled)
        return 1

    async def _refund_round(self) -> int:
        changed = 0
        last: RefundRecord | None = None
        while batch := await self._refunds_repo.find_unsettled(
            self._stale_after, BATCH, after=last
        ):
            for refund in batch:
                with log_context(
                    transaction_id=refund.transaction_id,
                    refund_id=refund.refund_id,
                    merchant_id=refund.merchant_id,
                    correlation_id=refund.correlation_id,
                ):
                    changed += await self._settle_refund(refund)
            last = batch[-1]
        return changed

    async def _settle_refund(self, refund: RefundRecord) -> int:
        try:
            outcome = await self._refunds.reconcile(refund, give_up_after=self._give_up_after)
        except Exception:  # one refund's failure must not stop the others
            log.exception("reconciling refund %s failed", refund.refund_id)
            self._count(catalog.RECONCILER_ACTIONS, kind="refund", outcome="error")
            return 0
        if outcome.refund is None or outcome.refund.status == refund.status:
            self._count(catalog.RECONCILER_ACTIONS, kind="refund", outcome="unchanged")
            return 0
        self._count(catalog.RECONCILER_ACTIONS, kind="refund", outcome=outcome.refund.status.value)
        log.info(
            "reconciled refund %s: %s -> %s",
            refund.refund_id,
            refund.status,
            outcome.refund.status,
        )
        return 1

    async def _hold_round(self) -> int:
        """Void manual-capture holds past their validity window (the issuer drops them anyway;
        ours would otherwise say requires_capture for ever)."""
        changed = 0
        last: PaymentRecord | None = None
        find = self._captures_repo.find_expired_holds
        while batch := await find(self._validity, BATCH, after=last):
            for payment in batch:
                with log_context(transaction_id=payment.transaction_id,
                                 merchant_id=payment.merchant_id):  # fmt: skip
                    changed += await self._void_expired(payment)
            last = batch[-1]
        return changed

    async def _void_expired(self, payment: PaymentRecord) -> int:
        request = CaptureRequest(
            payment.transaction_id, payment.merchant_id, cancellation_reason="expired"
        )
        try:
            canceling = await self._captures_repo.request_cancel(request, correlation_id=None)
            settled = await self._captures.finish(canceling, None)
        except (PaymentNotCapturable, TransitionConflict):
            return 0  # captured or canceled meanwhile: nothing to release
        except Exception:  # one payment's failure must not stop the others
            log.exception("voiding the expired hold of %s failed", payment.transaction_id)
            self._count(catalog.RECONCILER_ACTIONS, kind="hold", outcome="error")
            return 0
        self._count(catalog.RECONCILER_ACTIONS, kind="hold", outcome=settled.status.value)
        log.info("expired hold of %s: %s", payment.transaction_id, settled.status)
        await self._publisher.publish_payment(settled)
        return 1

    async def _give_up_round(self) -> int:
        """Check each given-up payment once for a hold or sale that reached the bank late."""
        released = 0
        last: PaymentRecord | None = None
        find = self._captures_repo.find_unchecked_give_ups
        while batch := await find(self._stale_after, BATCH, after=last):
            for payment in batch:
                with log_context(transaction_id=payment.transaction_id,
                                 merchant_id=payment.merchant_id):  # fmt: skip
                    released += await self._release_late_hold(payment)
            last = batch[-1]
        return released

    async def _release_late_hold(self, payment: PaymentRecord) -> int:
        try:
            released = await self._captures.release_late_hold(payment)
        except BankError:
            return 0  # the bank cannot say now: checked again next round
        except Exception:
            log.exception("checking %s for a late hold failed", payment.transaction_id)
            return 0
        await self._captures_repo.record_hold_check(
            payment.transaction_id, voided=released, correlation_id=None
        )
        if released:
            log.warning("released a late hold of failed payment %s", payment.transaction_id)
            self._count(catalog.RECONCILER_ACTIONS, kind="hold", outcome="released")
        return len(released)
