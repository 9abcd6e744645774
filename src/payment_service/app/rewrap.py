"""`payment-service cards rewrap`: re-seal every stored envelope under the current key.

1. Cards on file (`payment_methods`): pages of rows whose key id is not the current one (keyset
   paging on the id), each opened and re-sealed, then swapped by compare-and-set on the old
   envelope: a card detached or re-sealed meanwhile is left alone.
2. Security codes waiting in Redis (`cvv:*`, by SCAN): re-sealed and swapped by a Lua
   compare-and-set that keeps the TTL. Legacy v1 (AES-GCM) values become v2.

Resumable and safe to interrupt (SIGINT) anywhere: every row is one atomic swap, and a second
run picks up what is still under an old key. A row that cannot be opened is counted under its
failure code and left as it is (its key cannot be retired while it stays). Progress goes to
stderr; each run writes `card_keys.rewrap_started` and `card_keys.rewrap_finished` (or
`_interrupted`) rows to `custody_audit`, the last one with the counts.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import signal
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from payment_service.app.custody import card_opener
from payment_service.cards.crypto import CardOpener
from payment_service.cards.vault import SecurityCodeVault
from payment_service.config.settings import Settings
from payment_service.core.errors import CardCryptoError
from payment_service.ops.faults import crash_point
from payment_service.ops.redis_client import redis_client
from payment_service.storage.db import create_pool
from payment_service.storage.payment_methods import PgPaymentMethods, write_custody_audit

Progress = Callable[[str], None]


@dataclass
class Tally:
    """What one kind of stored envelope went through."""

    examined: int = 0
    rewrapped: int = 0
    already_current: int = 0
    changed_meanwhile: int = 0
    failed: Counter[str] = field(default_factory=Counter)

    def to_dict(self) -> dict[str, Any]:
        return {
            "examined": self.examined,
            "rewrapped": self.rewrapped,
            "already_current": self.already_current,
            "changed_meanwhile": self.changed_meanwhile,
            "failed": dict(self.failed),
        }

    def line(self, name: str) -> str:
        failed = sum(self.failed.values())
        return (
            f"{name}: {self.examined} examined, {self.rewrapped} re-sealed, "
            f"{self.changed_meanwhile} changed meanwhile, {failed} failed"
        )


@dataclass
class RewrapSummary:
    current_kid: str
    run_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    started_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    payment_methods: Tally = field(default_factory=Tally)
    security_codes: Tally = field(default_factory=Tally)
    interrupted: bool = False

    @property
    def complete(self) -> bool:
        failures = self.payment_methods.failed + self.security_codes.failed
        return not self.interrupted and not failures

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "current_kid": self.current_kid,
            "started_at": self.started_at.isoformat(),
            "interrupted": self.interrupted,
            "complete": self.complete,
            "payment_methods": self.payment_methods.to_dict(),
            "security_codes": self.security_codes.to_dict(),
        }


async def _cards_on_file(
    methods: PgPaymentMethods, opener: CardOpener, batch: int, tally: Tally, progress: Progress
) -> None:
    current = opener.keys.current_kid()
    after = ""
    while True:
        page = await methods.not_under(current, after=after, limit=batch)
        if not page:
            return
        for method_id, old in page:
            tally.examined += 1
            try:
                new = opener.rewrap(old, "card_on_file", method_id)
            except CardCryptoError as exc:
                tally.failed[exc.failure_code] += 1
                continue
            if new is None:
                tally.already_current += 1
            elif await methods.swap_envelope(method_id, old=old, new=new, new_kid=current):
                tally.rewrapped += 1
                crash_point("rewrap_after_swap", signal.SIGINT)
            else:
                tally.changed_meanwhile += 1
        after = page[-1][0]
        progress(tally.line("payment_methods"))


async def _security_codes(
    vault: SecurityCodeVault, batch: int, tally: Tally, progress: Progress
) -> None:
    async for transaction_id, sealed in vault.sealed_codes(batch):
        tally.examined += 1
        try:
            swapped = await vault.rewrap(transaction_id, sealed)
        except CardCryptoError as exc:
            tally.failed[exc.failure_code] += 1
            continue
        if swapped is None:
            tally.already_current += 1
        elif swapped:
            tally.rewrapped += 1
        else:
            tally.changed_meanwhile += 1
        if tally.examined % batch == 0:
            progress(tally.line("security codes"))
    progress(tally.line("security codes"))


async def rewrap(
    settings: Settings, *, batch: int, actor: str, progress: Progress
) -> RewrapSummary:
    """One run over every stored envelope; see the module docstring."""
    opener = card_opener(settings)
    summary = RewrapSummary(current_kid=opener.keys.current_kid())
    pool = await create_pool(settings.database)
    redis = redis_client(settings.redis)
    vault = SecurityCodeVault.from_settings(redis, settings.redis, opener=opener)
    details = {"run_id": summary.run_id}
    try:
        await write_custody_audit(
            pool, action="card_keys.rewrap_started", actor=actor,
            key_id=summary.current_kid, details=details,
        )  # fmt: skip
        try:
            progress(f"re-sealing under {summary.current_kid}")
            await _cards_on_file(
                PgPaymentMethods(pool), opener, batch, summary.payment_methods, progress
            )
            progress(summary.payment_methods.line("payment_methods"))
            await _security_codes(vault, batch, summary.security_codes, progress)
        except (asyncio.CancelledError, KeyboardInterrupt):
            summary.interrupted = True
            raise
        finally:
            action = "rewrap_interrupted" if summary.interrupted else "rewrap_finished"
            await asyncio.shield(
                write_custody_audit(
                    pool,
                    action=f"card_keys.{action}",
                    actor=actor,
                    key_id=summary.current_kid,
                    details=summary.to_dict(),
                )
            )
    finally:
        await redis.aclose()
        await pool.close()
    return summary
