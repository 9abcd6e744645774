"""The one place asyncpg's errors are translated into the storage errors of `core.errors`.

Domain refusals (`NotFound`, `PaymentNotRefundable`, `RefundExceedsRemaining`) are raised by the
repositories directly: they are answers for the caller, not storage failures.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import asyncpg

from payment_service.core.errors import IntegrityViolation, StorageError, StorageUnavailable

# SQLSTATEs that mean "nothing happened, try again" (PostgreSQL appendix A): connection
# exceptions (08), insufficient resources (53), serialization failure, deadlock, lock not
# available, statement timeout / cancel, admin or crash shutdown, cannot connect now.
_TRANSIENT_CLASSES = frozenset({"08", "53"})
_TRANSIENT_STATES = frozenset({"40001", "40P01", "55P03", "57014", "57P01", "57P02", "57P03"})


def _transient(state: str | None) -> bool:
    return state is not None and (state in _TRANSIENT_STATES or state[:2] in _TRANSIENT_CLASSES)


def translate(exc: BaseException) -> StorageError:
    """The storage error for an asyncpg / network error (the one translation table)."""
    if isinstance(exc, asyncpg.IntegrityConstraintViolationError):
        return IntegrityViolation(f"{type(exc).__name__}: constraint {exc.constraint_name!r}")
    if isinstance(exc, asyncpg.PostgresError):
        state = getattr(exc, "sqlstate", None)
        kind = StorageUnavailable if _transient(state) else StorageError
        return kind(f"{type(exc).__name__} (SQLSTATE {state})")
    if isinstance(exc, OSError | TimeoutError | asyncpg.InterfaceError):
        return StorageUnavailable(f"database unreachable: {type(exc).__name__}")
    if isinstance(exc, asyncpg.InternalClientError):
        # The client's own state after a lost connection (e.g. an outdated schema cache).
        return StorageUnavailable(f"database client error: {type(exc).__name__}")
    return StorageError(type(exc).__name__)


@contextmanager
def translated() -> Iterator[None]:
    """Run a block, re-raising asyncpg and connection errors as `StorageError`s."""
    try:
        yield
    except (
        asyncpg.PostgresError,
        asyncpg.InterfaceError,
        asyncpg.InternalClientError,
        OSError,
        TimeoutError,
    ) as exc:
        raise translate(exc) from exc
