"""The bank client's error tree. A decline is a `BankResult`, never an exception.

```
BankError                     something went wrong talking to the bank
 ├── BankNotSent              definitely not delivered: nothing was charged; retry later, same key
 │    └── BankCircuitOpen     the breaker refused the call (open, or its one probe is in flight)
 ├── BankOutcomeUnknown       maybe delivered, no usable answer (read timeout, reset after
 │                            sending, 5xx): resolve by status inquiry or a retry with the SAME
 │                            idempotency key, never by a new charge under a new key
 └── BankRejected             the bank answered 4xx: invalid request, idempotency-key reuse,
                              over-capture/refund; permanent, retrying cannot help
```

Messages carry our reference and the operation, never card data.
"""

from __future__ import annotations


class BankError(Exception):
    """Base of all bank-call failures."""

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
