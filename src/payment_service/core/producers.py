"""Registered producers (docs/kafka.md): who may put which commands on Kafka, for which merchants.

Pure: the registry's record, the one rule of what a producer may do (`refusal`), and the codes a
refused command is answered with. The API is the producer `api` (`API_PRODUCER`): it may act for
every merchant, because it authenticates merchants itself.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Final, Literal

CommandKind = Literal["payment", "refund"]
COMMAND_KINDS: Final[tuple[CommandKind, ...]] = ("payment", "refund")
API_PRODUCER: Final = "api"

# The codes of a refused command's final error result (docs/kafka.md, "Error codes").
SIGNATURE_MISSING: Final = "signature_missing"
SIGNATURE_INVALID: Final = "signature_invalid"
PRODUCER_UNKNOWN: Final = "producer_unknown"
PRODUCER_REVOKED: Final = "producer_revoked"
PRODUCER_NOT_AUTHORIZED: Final = "producer_not_authorized"
REFUSAL_CODES: Final = (
    SIGNATURE_MISSING,
    SIGNATURE_INVALID,
    PRODUCER_UNKNOWN,
    PRODUCER_REVOKED,
    PRODUCER_NOT_AUTHORIZED,
)


@dataclass(frozen=True)
class ProducerRecord:
    """One registered producer. `merchants` None means every merchant (the API only)."""

    name: str
    merchants: frozenset[str] | None
    commands: frozenset[CommandKind]
    public_key: str
    created_at: dt.datetime | None = None
    revoked_at: dt.datetime | None = None

    @property
    def actor(self) -> str:
        return f"producer:{self.name}"


@dataclass(frozen=True)
class Refusal:
    """Why a command is refused, and which registered producer (or `api`) is told, if any."""

    code: str
    message: str
    answer_to: str | None = None


def refusal(producer: ProducerRecord, kind: CommandKind, merchant_id: str) -> Refusal | None:
    """Why `producer` may not send a `kind` command for `merchant_id`, or None when it may."""
    if producer.revoked_at is not None:
        return Refusal(PRODUCER_REVOKED, f"producer {producer.name} is revoked")
    if kind not in producer.commands:
        return Refusal(
            PRODUCER_NOT_AUTHORIZED, f"producer {producer.name} may not send {kind} commands"
        )
    if producer.merchants is not None and merchant_id not in producer.merchants:
        return Refusal(
            PRODUCER_NOT_AUTHORIZED,
            f"producer {producer.name} may not act for merchant {merchant_id}",
        )
    return None


def actor_of(producer: str, requested_by: str | None) -> str:
    """Who asked: the API names its API key (`api:<key id>`); any other producer is itself."""
    if producer == API_PRODUCER:
        if requested_by and requested_by.startswith("api:"):
            return requested_by
        return "api"
    return f"producer:{producer}"
