"""The bank branch of the error tree drawn in `core.errors` (and re-exported there).

What the `BankClient` port raises; a decline is a `BankResult`, never an error.
"""

from __future__ import annotations


class BankError(Exception):
    """Base of all bank-call failures; carries our reference and the operation."""

    def __init__(self, message: str, *, operation: str = "", reference: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.operation = operation
        self.reference = reference


class BankNotSent(BankError):
    """The request never reached the bank, so it cannot have been charged."""


class BankCircuitOpen(BankNotSent):
    """The circuit breaker refused the call without sending it.

    `retry_after` is the seconds until the breaker admits a probe, or None while a probe is
    already in flight (its answer decides).
    """

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None,
        operation: str = "",
        reference: str | None = None,
    ) -> None:
        super().__init__(message, operation=operation, reference=reference)
        self.retry_after = retry_after


class BankBusy(BankNotSent):
    """Not sent because the way to the bank was busy, not because the bank failed.

    No concurrency slot or pooled connection within the wait, a TCP connect that timed out
    under our own burst, or the bank's 429. The circuit breaker does not count it; the caller
    waits and retries within its budget.
    """


class BankOutcomeUnknown(BankError):
    """The request may have reached the bank and been executed; we have no answer."""


class BankRejected(BankError):
    """The bank refused the request (HTTP 4xx). `code` is the bank's machine-readable code."""

    def __init__(
        self,
        message: str,
        *,
        code: str,
        status: int,
        operation: str = "",
        reference: str | None = None,
    ) -> None:
        super().__init__(message, operation=operation, reference=reference)
        self.code = code
        self.status = status

    def __str__(self) -> str:
        return f"{self.status} {self.code}: {self.message}"
