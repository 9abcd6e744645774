"""One attempt of each bank call: send it, check the status, parse the answer.

A non-200 answer becomes its `BankError` (`transport.error_for`); an answer that does not parse
is `BankOutcomeUnknown`, since the bank may have executed what it failed to describe.
"""

from __future__ import annotations

from urllib.parse import quote

from pydantic import ValidationError

from payment_service.bank.transport import BankTransport, RequestBody, error_for
from payment_service.bank.wire import OperationResponse
from payment_service.core.banking import BankInquiry, BankResult
from payment_service.core.errors import BankOutcomeUnknown


async def post_operation(
    transport: BankTransport, operation: str, body: RequestBody, reference: str, key: str
) -> BankResult:
    """`POST /api/v1/{operation}` once, under the idempotency key `key`."""
    reply = await transport.exchange(
        "POST",
        f"/api/v1/{operation}",
        operation=operation,
        reference=reference,
        body=body,
        idempotency_key=key,
    )
    if reply.status != 200:
        raise error_for(reply, operation=operation, reference=reference)
    try:
        answer = OperationResponse.model_validate_json(reply.data)
    except ValidationError as exc:
        raise BankOutcomeUnknown(
            "unreadable answer from the bank", operation=operation, reference=reference
        ) from exc
    return BankResult(
        approved=answer.approved,
        response_code=answer.response_code,
        decline_code=answer.decline_code,
        message=answer.message,
        authorization_id=answer.authorization_id,
        bank_transaction_id=answer.bank_transaction_id,
        via="replay" if reply.replayed else "response",
    )


async def inquire_once(transport: BankTransport, reference: str) -> BankInquiry:
    """`GET /api/v1/transactions/{reference}` once; a 404 is "nothing known"."""
    path = f"/api/v1/transactions/{quote(reference, safe='')}"
    reply = await transport.exchange("GET", path, operation="inquire", reference=reference)
    if reply.status == 404:
        return BankInquiry(reference=reference)
    if reply.status != 200:
        raise error_for(reply, operation="inquire", reference=reference)
    try:
        return BankInquiry.model_validate_json(reply.data)
    except ValidationError as exc:
        raise BankOutcomeUnknown(
            "unreadable inquiry answer", operation="inquire", reference=reference
        ) from exc
