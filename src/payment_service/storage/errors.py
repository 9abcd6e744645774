"""Storage errors, and the one place asyncpg's errors are translated into them.

    StorageError
    ├── StorageUnavailable   connection refused or lost, timeout, server shutting down,
    │                        serialization failure or deadlock: nothing was written, retry
    ├── IntegrityViolation   a constraint refused the write (a bug, or a race the CAS missed)
    ├── TransitionConflict   compare-and-set matched no row: the status was not the expected one
    ├── IdempotencyConflict  same idempotency key or id, other request (also IdempotencyKeyReused)
    └── MigrationError       migrations cannot be applied as they are (checksum changed, ...)

Domain refusals (`NotFound`, `PaymentNotRefundable`, `RefundExceedsRemaining`) are raised from
`app.errors` directly: they are answers for the caller, not storage failures.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import asyncpg

from payment_service.app.errors import IdempotencyKeyReused


class StorageError(Exception):
    """PostgreSQL could not do what was asked; the message names no card data nor secrets."""


class StorageUnavailable(StorageError):
    """Transient: nothing was committed, the same call may be retried."""


class IntegrityViolation(StorageError):
    """A constraint refused the write; retrying the same write will fail the same way."""


class MigrationError(StorageError):
    """The migration files and the database disagree; nothing was applied past the last good one."""


class TransitionConflict(StorageError):
    """The row was not in the expected status (or is missing: `current_status` is None).

    For a redelivered message this usually means the transition already happened; the caller
    reads the row and decides.
    """

    def __init__(self, current_status: str | None, *, resource_id: str = "") -> None:
        shown = current_status if current_status is not None else "missing"
        super().__init__(f"{resource_id or 'row'} is {shown}: compare-and-set matched no row")
        self.current_status = current_status
        self.resource_id = resource_id


class IdempotencyConflict(StorageError, IdempotencyKeyReused):
    """An idempotency key (or transaction/refund id) was already used for another request.

    `existing_resource_id` names what the key points at; `same_request` is True when the stored
    request hash matches (the key was used for the same body but another resource, e.g. two
    concurrent HTTP requests): the caller may answer with the existing resource.
    """

    def __init__(
        self, message: str, *, existing_resource_id: str | None = None, same_request: bool = False
    ) -> None:
        IdempotencyKeyReused.__init__(self, message)
        self.existing_resource_id = existing_resource_id
        self.same_request = same_request


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
    return StorageError(type(exc).__name__)


@contextmanager
def translated() -> Iterator[None]:
    """Run a block, re-raising asyncpg and connection errors as `StorageError`s."""
    try:
        yield
    except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError) as exc:
        raise translate(exc) from exc
