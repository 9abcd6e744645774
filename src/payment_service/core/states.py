"""The payment and refund state machines, each one table of allowed transitions.

`advance(status, event)` returns the next status or raises `InvalidTransition`; it has no I/O and
no other rule. Amount rules (a refund <= what remains refundable, `core.rules`) are checked before
`advance`. Storage records each transition as a compare-and-set on the expected current status,
so the table is enforced against races too.

The diagrams in docs/states.md are drawn from these tables (`payment-service states --mermaid`);
a test keeps them in step.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final


class PaymentStatus(StrEnum):
    PROCESSING = "processing"
    # Automatic capture before the one-call sale, kept for payments recorded that way.
    AUTHORIZED = "authorized"
    UNKNOWN = "unknown"
    UNKNOWN_CAPTURE = "unknown_capture"
    # Manual capture: the hold waits for the merchant's capture or cancel.
    REQUIRES_CAPTURE = "requires_capture"
    CAPTURING = "capturing"
    CANCELING = "canceling"
    CANCELED = "canceled"
    CAPTURED = "captured"
    FAILED = "failed"
    PARTIALLY_REFUNDED = "partially_refunded"
    REFUNDED = "refunded"


class PaymentEvent(StrEnum):
    AUTHORIZATION_APPROVED = "authorization_approved"
    AUTHORIZATION_DECLINED = "authorization_declined"
    AUTHORIZATION_UNKNOWN = "authorization_unknown"
    # Automatic capture in one bank call: authorized and captured at once.
    SALE_APPROVED = "sale_approved"
    # Manual capture: the authorization holds the funds until a capture or a void.
    AUTHORIZATION_HELD = "authorization_held"
    CAPTURE_REQUESTED = "capture_requested"
    CAPTURE_REFUSED = "capture_refused"
    CANCEL_REQUESTED = "cancel_requested"
    VOID_APPROVED = "void_approved"
    VOID_REFUSED = "void_refused"
    CAPTURE_APPROVED = "capture_approved"
    CAPTURE_DECLINED = "capture_declined"
    CAPTURE_UNKNOWN = "capture_unknown"
    REFUND_PARTIAL = "refund_partial"
    REFUND_FULL = "refund_full"


class RefundStatus(StrEnum):
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"


class RefundEvent(StrEnum):
    REFUND_APPROVED = "refund_approved"
    REFUND_DECLINED = "refund_declined"


P, E = PaymentStatus, PaymentEvent

PAYMENT_TRANSITIONS: Final[dict[tuple[PaymentStatus, PaymentEvent], PaymentStatus]] = {
    (P.PROCESSING, E.AUTHORIZATION_APPROVED): P.AUTHORIZED,
    (P.PROCESSING, E.AUTHORIZATION_DECLINED): P.FAILED,
    (P.PROCESSING, E.AUTHORIZATION_UNKNOWN): P.UNKNOWN,
    (P.UNKNOWN, E.AUTHORIZATION_APPROVED): P.AUTHORIZED,
    (P.UNKNOWN, E.AUTHORIZATION_DECLINED): P.FAILED,
    (P.PROCESSING, E.SALE_APPROVED): P.CAPTURED,
    (P.UNKNOWN, E.SALE_APPROVED): P.CAPTURED,
    (P.PROCESSING, E.AUTHORIZATION_HELD): P.REQUIRES_CAPTURE,
    (P.UNKNOWN, E.AUTHORIZATION_HELD): P.REQUIRES_CAPTURE,
    # The amount to capture is recorded before the bank call, so a redelivery or the
    # reconciler repeats the same capture; a refused one leaves the hold to capture or void.
    (P.REQUIRES_CAPTURE, E.CAPTURE_REQUESTED): P.CAPTURING,
    (P.CAPTURING, E.CAPTURE_APPROVED): P.CAPTURED,
    (P.CAPTURING, E.CAPTURE_REFUSED): P.REQUIRES_CAPTURE,
    (P.REQUIRES_CAPTURE, E.CANCEL_REQUESTED): P.CANCELING,
    (P.CANCELING, E.VOID_APPROVED): P.CANCELED,
    (P.CANCELING, E.VOID_REFUSED): P.REQUIRES_CAPTURE,
    (P.AUTHORIZED, E.CAPTURE_APPROVED): P.CAPTURED,
    (P.AUTHORIZED, E.CAPTURE_DECLINED): P.FAILED,
    (P.AUTHORIZED, E.CAPTURE_UNKNOWN): P.UNKNOWN_CAPTURE,
    (P.UNKNOWN_CAPTURE, E.CAPTURE_APPROVED): P.CAPTURED,
    (P.UNKNOWN_CAPTURE, E.CAPTURE_DECLINED): P.FAILED,
    (P.CAPTURED, E.REFUND_PARTIAL): P.PARTIALLY_REFUNDED,
    (P.CAPTURED, E.REFUND_FULL): P.REFUNDED,
    (P.PARTIALLY_REFUNDED, E.REFUND_PARTIAL): P.PARTIALLY_REFUNDED,
    (P.PARTIALLY_REFUNDED, E.REFUND_FULL): P.REFUNDED,
}

REFUND_TRANSITIONS: Final[dict[tuple[RefundStatus, RefundEvent], RefundStatus]] = {
    (RefundStatus.PROCESSING, RefundEvent.REFUND_APPROVED): RefundStatus.COMPLETED,
    (RefundStatus.PROCESSING, RefundEvent.REFUND_DECLINED): RefundStatus.FAILED,
}

# Statuses the HTTP layer reports as the final answer of a payment request (a manual capture's
# hold is one: the merchant's next move, not ours).
PAYMENT_SETTLED: Final = frozenset(
    {P.CAPTURED, P.FAILED, P.PARTIALLY_REFUNDED, P.REFUNDED, P.REQUIRES_CAPTURE, P.CANCELED}
)
# Still on the way to a final answer: the reconciler settles these when they stay stuck.
PAYMENT_UNSETTLED: Final = frozenset(s for s in PaymentStatus if s not in PAYMENT_SETTLED)
# Statuses that money can be refunded from.
REFUNDABLE: Final = frozenset({P.CAPTURED, P.PARTIALLY_REFUNDED})
# No transition leaves these.
PAYMENT_TERMINAL: Final = frozenset(
    s for s in PaymentStatus if not any(src == s for src, _ in PAYMENT_TRANSITIONS)
)
REFUND_TERMINAL: Final = frozenset({RefundStatus.COMPLETED, RefundStatus.FAILED})
# A capture or cancel command may start from here only.
CAPTURABLE: Final = frozenset({P.REQUIRES_CAPTURE})


class InvalidTransition(Exception):
    """The event is not allowed in the current status; nothing changed."""

    def __init__(self, status: str, event: str) -> None:
        super().__init__(f"event {event!r} is not allowed in status {status!r}")
        self.status = status
        self.event = event


def advance(status: PaymentStatus, event: PaymentEvent) -> PaymentStatus:
    """The payment's next status after `event`, or `InvalidTransition`."""
    try:
        return PAYMENT_TRANSITIONS[(status, event)]
    except KeyError:
        raise InvalidTransition(status, event) from None


def advance_refund(status: RefundStatus, event: RefundEvent) -> RefundStatus:
    """The refund's next status after `event`, or `InvalidTransition`."""
    try:
        return REFUND_TRANSITIONS[(status, event)]
    except KeyError:
        raise InvalidTransition(status, event) from None


def refund_event(captured_minor: int, refunded_minor_after: int) -> PaymentEvent:
    """Whether a completed refund leaves the payment partially or fully refunded.

    Derived from amounts in one place: fully refunded exactly when the refunded total reaches
    the captured amount.
    """
    if refunded_minor_after > captured_minor:
        raise ValueError("refunded total cannot exceed the captured amount")
    return E.REFUND_FULL if refunded_minor_after == captured_minor else E.REFUND_PARTIAL
