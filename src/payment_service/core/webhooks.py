"""Merchant-facing events and webhook endpoints: the event types, how a transition names one,
and the records the stores return (pure: no I/O).

An event is derived from one audit row (the row every transition writes in its own statement),
so there is exactly one event per transition: its id is `evt_` + the audit row's UUID, and a
redelivered or re-scanned row names the same event.
"""

from __future__ import annotations

import datetime as dt
import secrets
import uuid
from dataclasses import dataclass
from typing import Any, Final

ALL_EVENTS: Final = "*"
SECRET_PREFIX: Final = "whsec_"  # noqa: S105 - a prefix, not a secret

# (what changed, its new status) -> event type. Statuses another change adds (manual capture:
# requires_capture, canceled) are mapped already, so their events flow once they exist.
PAYMENT_EVENT_TYPES: Final[dict[str, str]] = {
    "requires_capture": "payment.requires_capture",
    "captured": "payment.captured",
    "failed": "payment.failed",
    "unknown": "payment.unknown",
    "unknown_capture": "payment.unknown",
    "canceled": "payment.canceled",
    "partially_refunded": "payment.refunded",
    "refunded": "payment.refunded",
}
REFUND_EVENT_TYPES: Final[dict[str, str]] = {
    "completed": "refund.succeeded",
    "failed": "refund.failed",
}
EVENT_TYPES: Final = frozenset(PAYMENT_EVENT_TYPES.values()) | frozenset(
    REFUND_EVENT_TYPES.values()
)


def event_type(action: str, to_status: str | None) -> str | None:
    """The event a transition's audit row stands for, or None (received, requested, ...).

    Refund rows have actions `refund.<status>`; every other row with a new status is the
    payment's (a completed refund also writes the payment's own `payment.refunded` row).
    """
    if to_status is None:
        return None
    if action.startswith("refund."):
        return REFUND_EVENT_TYPES.get(to_status)
    return PAYMENT_EVENT_TYPES.get(to_status)


def event_id(audit_event_id: uuid.UUID) -> str:
    """The deterministic event id of an audit row: one event per transition, however often seen."""
    return f"evt_{audit_event_id.hex}"


def new_signing_secret() -> str:
    """A fresh signing secret: 32 random bytes, URL-safe, with Stripe's prefix."""
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def new_endpoint_id() -> str:
    return f"we_{secrets.token_hex(12)}"


def matches(enabled_events: tuple[str, ...], event_type_name: str) -> bool:
    """Whether an endpoint subscribed to this type (`*`: to all of them)."""
    return ALL_EVENTS in enabled_events or event_type_name in enabled_events


@dataclass(frozen=True)
class AuditEntry:
    """One audit row, as the event source reads it."""

    id: int
    event_id: uuid.UUID
    transaction_id: str
    refund_id: str | None
    merchant_id: str
    action: str
    to_status: str | None
    created_at: dt.datetime
    xid: int  # the writing transaction's id: the row's place in commit order is (xid, id)

    @property
    def position(self) -> tuple[int, int]:
        return self.xid, self.id


@dataclass(frozen=True)
class NewEvent:
    event_id: str
    merchant_id: str
    type: str
    object_id: str
    data: dict[str, Any]
    created_at: dt.datetime


@dataclass(frozen=True)
class EventRecord:
    event_id: str
    merchant_id: str
    type: str
    object_id: str
    data: dict[str, Any]
    created_at: dt.datetime

    def body(self) -> dict[str, Any]:
        """The event as merchants see it, in the API and in deliveries alike."""
        return {
            "id": self.event_id,
            "object": "event",
            "type": self.type,
            "created_at": self.created_at.isoformat(),
            "data": {"object": self.data},
        }


@dataclass(frozen=True)
class EndpointRecord:
    endpoint_id: str
    merchant_id: str
    url: str
    enabled_events: tuple[str, ...]
    description: str | None
    created_at: dt.datetime
    # The signing secret sealed at rest (webhooks/secrets.py); opened only by the dispatcher.
    secret_envelope: str

    def view(self) -> dict[str, Any]:
        """What the API shows of an endpoint: never its secret (shown once, at creation)."""
        return {
            "id": self.endpoint_id,
            "object": "webhook_endpoint",
            "url": self.url,
            "enabled_events": list(self.enabled_events),
            "description": self.description,
            "status": "enabled",
            "created_at": self.created_at.isoformat(),
        }


@dataclass(frozen=True)
class DeliveryRecord:
    endpoint_id: str
    event_id: str
    status: str  # pending, succeeded, failed (gave up)
    attempts: int
    next_attempt_at: dt.datetime | None
    last_attempt_at: dt.datetime | None
    last_status_code: int | None
    last_error: str | None
    give_up_at: dt.datetime
    created_at: dt.datetime

    def view(self) -> dict[str, Any]:
        def iso(value: dt.datetime | None) -> str | None:
            return value.isoformat() if value else None

        return {
            "object": "webhook_delivery",
            "endpoint_id": self.endpoint_id,
            "event_id": self.event_id,
            "status": self.status,
            "attempts": self.attempts,
            "next_attempt_at": iso(self.next_attempt_at),
            "last_attempt_at": iso(self.last_attempt_at),
            "last_status_code": self.last_status_code,
            "last_error": self.last_error,
            "created_at": iso(self.created_at),
        }


@dataclass(frozen=True)
class DueDelivery:
    """A delivery to attempt now, with what the attempt needs."""

    endpoint_id: str
    event_id: str
    attempts: int
    give_up_at: dt.datetime
    url: str
    secret_envelope: str
    body: dict[str, Any]
