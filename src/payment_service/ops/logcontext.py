"""What every log line inside a request or a command says about it: ids bound to the context.

The HTTP middleware binds `correlation_id` (and what else it knows) per request; the processor's
handler binds `correlation_id`, `transaction_id` and `merchant_id` per message. The values live in
one `ContextVar`, so they follow the asyncio task that handles the request or message: the
processor runs many messages at once on one loop, each in its own task, and each task's lines
carry its own ids. `ContextFilter` copies them onto every record before the card-data filter runs,
so a client-chosen correlation id is scrubbed like any other field.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from types import MappingProxyType
from typing import Final, Literal

Field = Literal[
    "correlation_id", "request_id", "transaction_id", "refund_id", "merchant_id", "command"
]
FIELDS: Final[tuple[Field, ...]] = (
    "correlation_id",
    "request_id",
    "transaction_id",
    "refund_id",
    "merchant_id",
    "command",
)

_EMPTY: Final[Mapping[str, str]] = MappingProxyType({})
# One immutable mapping per context: binding replaces it, so a task never sees another's change.
_CONTEXT: ContextVar[Mapping[str, str]] = ContextVar("payment_log_context", default=_EMPTY)


def bind(**fields: str | None) -> None:
    """Add ids to the current context (the rest of this task, and tasks it starts).

    Names must be among `FIELDS`; a value of None leaves the field as it was.
    """
    unknown = set(fields) - set(FIELDS)
    if unknown:
        raise ValueError(f"not a log context field: {sorted(unknown)}")
    given = {name: value for name, value in fields.items() if value is not None}
    if given:
        _CONTEXT.set(MappingProxyType({**_CONTEXT.get(), **given}))


@contextmanager
def log_context(**fields: str | None) -> Iterator[None]:
    """Bind `fields` from a clean context for the block, and restore the previous one after.

    A clean start matters for the HTTP server, whose connection task serves one request after
    another: nothing from the previous request may leak into the next one's lines.
    """
    token = _CONTEXT.set(_EMPTY)
    try:
        bind(**fields)
        yield
    finally:
        _CONTEXT.reset(token)


def current() -> Mapping[str, str]:
    """The ids bound in this context."""
    return _CONTEXT.get()


class ContextFilter(logging.Filter):
    """Puts the context's ids on each record (an id given in `extra=` wins); never drops one."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in _CONTEXT.get().items():
            if name not in record.__dict__:
                setattr(record, name, value)
        return True
