"""The state machines: every row of the tables, and every other pair refused without change.

The published diagrams (docs/states.md) are checked against the tables in test_state_diagrams.py.
"""

from __future__ import annotations

import itertools

import pytest

from payment_service.core.states import (
    PAYMENT_SETTLED,
    PAYMENT_TERMINAL,
    PAYMENT_TRANSITIONS,
    REFUND_TERMINAL,
    REFUND_TRANSITIONS,
    REFUNDABLE,
    InvalidTransition,
    PaymentEvent,
    PaymentStatus,
    RefundEvent,
    RefundStatus,
    advance,
    advance_refund,
    refund_event,
)

pytestmark = pytest.mark.unit
P, E = PaymentStatus, PaymentEvent

PAYMENT_PAIRS = list(itertools.product(PaymentStatus, PaymentEvent))
REFUND_PAIRS = list(itertools.product(RefundStatus, RefundEvent))


@pytest.mark.parametrize(("pair", "target"), list(PAYMENT_TRANSITIONS.items()))
def test_every_allowed_payment_transition(
    pair: tuple[PaymentStatus, PaymentEvent], target: PaymentStatus
) -> None:
    assert advance(*pair) is target


@pytest.mark.parametrize("pair", [p for p in PAYMENT_PAIRS if p not in PAYMENT_TRANSITIONS])
def test_every_other_payment_pair_is_refused(pair: tuple[PaymentStatus, PaymentEvent]) -> None:
    status, event = pair
    with pytest.raises(InvalidTransition) as caught:
        advance(status, event)
    assert (caught.value.status, caught.value.event) == (status, event)
    assert status in caught.value.args[0]
    assert event in caught.value.args[0]


@pytest.mark.parametrize(("pair", "target"), list(REFUND_TRANSITIONS.items()))
def test_every_allowed_refund_transition(
    pair: tuple[RefundStatus, RefundEvent], target: RefundStatus
) -> None:
    assert advance_refund(*pair) is target


@pytest.mark.parametrize("pair", [p for p in REFUND_PAIRS if p not in REFUND_TRANSITIONS])
def test_every_other_refund_pair_is_refused(pair: tuple[RefundStatus, RefundEvent]) -> None:
    with pytest.raises(InvalidTransition):
        advance_refund(*pair)


def test_terminal_settled_and_refundable_sets() -> None:
    assert {P.FAILED, P.REFUNDED, P.CANCELED} == PAYMENT_TERMINAL
    assert {RefundStatus.COMPLETED, RefundStatus.FAILED} == REFUND_TERMINAL
    assert {P.CAPTURED, P.PARTIALLY_REFUNDED} == REFUNDABLE
    assert PAYMENT_TERMINAL <= PAYMENT_SETTLED
    assert not any(src in PAYMENT_TERMINAL for src, _ in PAYMENT_TRANSITIONS)
    # Every status is reachable from processing.
    reached, frontier = {P.PROCESSING}, [P.PROCESSING]
    while frontier:
        source = frontier.pop()
        for (src, _), dst in PAYMENT_TRANSITIONS.items():
            if src == source and dst not in reached:
                reached.add(dst)
                frontier.append(dst)
    assert reached == set(PaymentStatus)


@pytest.mark.parametrize(
    ("captured", "refunded_after", "event"),
    [
        (10_000, 1, E.REFUND_PARTIAL),
        (10_000, 9_999, E.REFUND_PARTIAL),
        (10_000, 10_000, E.REFUND_FULL),
        (1, 1, E.REFUND_FULL),
    ],
)
def test_refund_event_is_full_exactly_when_everything_captured_is_refunded(
    captured: int, refunded_after: int, event: PaymentEvent
) -> None:
    assert refund_event(captured, refunded_after) is event


def test_refund_event_refuses_more_than_captured() -> None:
    with pytest.raises(ValueError, match="cannot exceed"):
        refund_event(10_000, 10_001)


def test_manual_capture_rows() -> None:
    # Authorize only, then the merchant's capture (whole or part) or cancel; a refusal at the
    # bank leaves the hold as it was, to capture or void.
    assert advance(P.PROCESSING, E.AUTHORIZATION_HELD) is P.REQUIRES_CAPTURE
    assert advance(P.UNKNOWN, E.AUTHORIZATION_HELD) is P.REQUIRES_CAPTURE
    assert advance(P.REQUIRES_CAPTURE, E.CAPTURE_REQUESTED) is P.CAPTURING
    assert advance(P.CAPTURING, E.CAPTURE_APPROVED) is P.CAPTURED
    assert advance(P.CAPTURING, E.CAPTURE_REFUSED) is P.REQUIRES_CAPTURE
    assert advance(P.REQUIRES_CAPTURE, E.CANCEL_REQUESTED) is P.CANCELING
    assert advance(P.CANCELING, E.VOID_APPROVED) is P.CANCELED
    assert advance(P.CANCELING, E.VOID_REFUSED) is P.REQUIRES_CAPTURE
    # Only a waiting hold is captured or canceled; nothing else is.
    for status in PaymentStatus:
        for event in (E.CAPTURE_REQUESTED, E.CANCEL_REQUESTED):
            if status is not P.REQUIRES_CAPTURE:
                with pytest.raises(InvalidTransition):
                    advance(status, event)
    # A hold answers the payment request; one being captured or voided does not yet.
    assert {P.REQUIRES_CAPTURE, P.CANCELED} <= PAYMENT_SETTLED
    assert not {P.CAPTURING, P.CANCELING} & PAYMENT_SETTLED
    assert P.REQUIRES_CAPTURE not in REFUNDABLE


def test_a_sale_is_one_transition_to_captured() -> None:
    assert advance(P.PROCESSING, E.SALE_APPROVED) is P.CAPTURED
    assert advance(P.UNKNOWN, E.SALE_APPROVED) is P.CAPTURED
    with pytest.raises(InvalidTransition):
        advance(P.REQUIRES_CAPTURE, E.SALE_APPROVED)
