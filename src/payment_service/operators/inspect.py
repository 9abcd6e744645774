"""`ops inspect`: one payment's timeline, from every topic, its rows and the bank, with a verdict.

1. Find the transaction: by id, by merchant + Idempotency-Key, or by a correlation id.
2. Read its rows (payment, refunds, refusals, audit trail) in one read-only snapshot.
3. Read every message keyed by it on requests, results, audit and the DLQ (redacted).
4. Ask the bank (status inquiry through the `BankClient` port: it moves no money).
5. Verdict: the invariants of `ops verify` for this one payment, plus what its messages say
   (a command dead-lettered, a command without any result).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from payment_service.config.settings import DatabaseSettings, KafkaSettings
from payment_service.core.ports import BankClient
from payment_service.operators import db
from payment_service.operators.chain import check_chain
from payment_service.operators.checks import BankTotals, audit_paths, money_checks
from payment_service.operators.messages import Bound, Message, scan
from payment_service.schemas.messages import HEADER_DLQ_REASON


class NotFoundError(LookupError):
    """No transaction matches what the operator gave."""


@dataclass
class Timeline:
    transaction_id: str
    payment: dict[str, Any] | None
    refunds: list[dict[str, Any]]
    refusals: list[dict[str, Any]]
    audit: list[dict[str, Any]]
    messages: list[dict[str, Any]]
    bank: dict[str, Any]
    disagreements: list[str] = field(default_factory=list)

    @property
    def consistent(self) -> bool:
        return not self.disagreements

    def to_json(self) -> dict[str, Any]:
        return {
            "transaction_id": self.transaction_id,
            "verdict": "consistent" if self.consistent else "inconsistent",
            "disagreements": self.disagreements,
            "payment": self.payment,
            "refunds": self.refunds,
            "refusals": self.refusals,
            "audit": self.audit,
            "messages": self.messages,
            "bank": self.bank,
        }


async def find(
    database: DatabaseSettings,
    *,
    transaction_id: str | None = None,
    merchant_id: str | None = None,
    idempotency_key: str | None = None,
    correlation_id: str | None = None,
) -> str:
    """Step 1: the transaction id the operator means; NotFoundError if none."""
    if transaction_id is not None:
        return transaction_id
    async with db.reading(database) as conn:
        found = await db.find_transaction(
            conn,
            merchant_id=merchant_id,
            idempotency_key=idempotency_key,
            correlation_id=correlation_id,
        )
    if found is None:
        raise NotFoundError("no transaction matches (check the merchant id, key or id)")
    return found


async def inspect(
    transaction_id: str,
    database: DatabaseSettings,
    kafka: KafkaSettings,
    bank: BankClient,
    *,
    since: Bound | None = None,
) -> Timeline:
    """Steps 2 to 5 for one transaction."""
    async with db.reading(database) as conn:
        payment = await db.payment(conn, transaction_id)
        refunds = await db.refunds_of(conn, transaction_id)
        refusals = await db.refusals_of(conn, transaction_id)
        audit = await db.audit_of(conn, transaction_id)
        chain = await db.audit_chain_rows(conn, [transaction_id])
    messages = _messages(kafka, transaction_id, since)
    inquiry = await bank.inquire(transaction_id)
    timeline = Timeline(
        transaction_id,
        payment,
        refunds,
        refusals,
        audit,
        [m.shown() for m in messages],
        inquiry.model_dump(mode="json"),
    )
    timeline.disagreements = _verdict(timeline, chain, messages, kafka)
    return timeline


def _messages(kafka: KafkaSettings, transaction_id: str, since: Bound | None) -> list[Message]:
    found: list[Message] = []
    topics = (kafka.topic_requests, kafka.topic_results, kafka.topic_audit, kafka.topic_dlq)
    for topic in topics:
        found += scan(kafka, topic, start=since, keep=lambda m: m.key == transaction_id)
    return sorted(found, key=lambda m: (m.timestamp is None, m.timestamp, m.topic, m.offset))


def _verdict(
    t: Timeline, chain: list[dict[str, Any]], messages: list[Message], kafka: KafkaSettings
) -> list[str]:
    said: list[str] = []
    if t.payment is None:
        if t.refusals:
            said.append(f"no payment row: refused ({t.refusals[0]['code']})")
        elif any(m.topic == kafka.topic_requests for m in messages):
            said.append("commands on the requests topic, but no payment row")
    else:
        operations = t.bank.get("operations") or []
        totals = {t.transaction_id: BankTotals.of(operations)} if operations else {}
        found = money_checks([t.payment], t.refunds, totals)
        found += audit_paths(t.audit, [t.payment], t.refunds)
        said += [f"{v.check}: {v.detail}" for v in found]
    said += [f"audit_chain: audit row {b.audit_id}: {b.reason}" for b in check_chain(chain)]
    for m in messages:
        if m.topic == kafka.topic_dlq:
            said.append(f"dead-lettered at {m.partition}:{m.offset}: {m.header(HEADER_DLQ_REASON)}")
    requests = sum(1 for m in messages if m.topic == kafka.topic_requests)
    results = sum(1 for m in messages if m.topic == kafka.topic_results)
    if requests and not results:
        said.append(f"{requests} command(s) on requests, no result published")
    return said
