"""What a refused or invalid command is answered with, and what its error summary may say.

`refused()` builds the final error result for a command the processor will not run, when the
message still names its payment (type, transaction and merchant ids, and refund id for a
refund), so whoever waits for it gets an answer. `summary()` describes validation errors without
their input values: a message may carry card data.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import TypeAdapter, ValidationError

from payment_service.schemas.messages import Id, ResultError
from payment_service.streams.results import CommandResult

KINDS: dict[object, Literal["payment", "refund"]] = {
    "payment.process/v1": "payment",
    "payment.refund/v1": "refund",
    # Capturing or voiding a payment is part of taking it: the producer's "payment" right.
    "payment.capture/v1": "payment",
    "payment.cancel/v1": "payment",
}
_ID_ADAPTER: TypeAdapter[str] = TypeAdapter(Id)


def refused(raw: bytes | None, code: str, message: str) -> CommandResult | None:
    """The final error result for a refused command that names its payment, else None."""
    try:
        envelope: Any = json.loads(raw or b"")
    except (ValueError, RecursionError):
        return None
    data = envelope.get("data") if isinstance(envelope, dict) else None
    kind = KINDS.get(envelope.get("type")) if isinstance(data, dict) else None
    if kind is None or not isinstance(data, dict):
        return None
    names = ("transaction_id", "merchant_id", *(("refund_id",) if kind == "refund" else ()))
    try:
        ids = {name: _ID_ADAPTER.validate_python(data.get(name), strict=True) for name in names}
    except ValidationError:
        return None  # not a payment anyone can be waiting for
    return CommandResult(
        kind=kind,
        transaction_id=ids["transaction_id"],
        merchant_id=ids["merchant_id"],
        refund_id=ids.get("refund_id"),
        final=True,
        error=ResultError(code=code, message=message),
    )


def summary(exc: ValidationError) -> str:
    """Validation errors without input values: a message may carry card data."""
    parts = [
        f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
        for e in exc.errors(include_input=False, include_url=False, include_context=False)
    ]
    return "; ".join(parts[:10])
