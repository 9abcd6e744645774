"""The state tables drawn as Mermaid diagrams: docs/states.md is this module's output.

`payment-service states --mermaid > docs/states.md` writes it; a unit test checks the published
page equals what the tables draw now, so the docs cannot drift from the code.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import TypeVar

from payment_service.core.states import (
    PAYMENT_TERMINAL,
    PAYMENT_TRANSITIONS,
    REFUND_TERMINAL,
    REFUND_TRANSITIONS,
    PaymentStatus,
    RefundStatus,
)

Status = TypeVar("Status", bound=StrEnum)
Event = TypeVar("Event", bound=StrEnum)


def mermaid(
    transitions: Mapping[tuple[Status, Event], Status],
    initial: Status,
    terminal: Iterable[Status],
) -> str:
    """A `stateDiagram-v2` with one arrow per row of `transitions`, in table order."""
    lines = ["stateDiagram-v2", f"    [*] --> {initial.value}"]
    lines += [
        f"    {source.value} --> {target.value}: {event.value}"
        for (source, event), target in transitions.items()
    ]
    lines += [f"    {status.value} --> [*]" for status in sorted(terminal)]
    return "\n".join(lines) + "\n"


def states_page() -> str:
    """docs/states.md: both state machines, drawn from their tables."""
    payments = mermaid(PAYMENT_TRANSITIONS, PaymentStatus.PROCESSING, PAYMENT_TERMINAL)
    refunds = mermaid(REFUND_TRANSITIONS, RefundStatus.PROCESSING, REFUND_TERMINAL)
    return (
        "# Payment and refund states\n\n"
        "Generated from `core/states.py` by `payment-service states --mermaid`; do not edit by\n"
        "hand (a test checks this page equals the tables). Each arrow is one row of the table,\n"
        "labelled with its event; any other (status, event) pair is refused and changes nothing.\n"
        "`unknown` and `unknown_capture` mean the bank's answer was lost: never reported as\n"
        "failed, they are settled later from the bank's own record.\n\n"
        "## Payments\n\n"
        f"```mermaid\n{payments}```\n\n"
        "## Refunds\n\n"
        f"```mermaid\n{refunds}```\n"
    )
