"""Kafka messages: the public, versioned contract of the payment topics (DESIGN.md §3).

Every message is a JSON envelope `{type, message_id, occurred_at, data}`. Money is `amount_minor`
(an integer) plus `currency`. The card number travels only sealed to the processor's public key
(HPKE, bound to the transaction id: docs/security.md has the exact bytes), or not at all when the
payment names a card on file (`payment_method_id`); the security code never travels (it waits
in Redis, see `cards.vault`). A producer needs the published public key and no secret.

Headers: `producer-id`, `signed-at`, `signature` (Ed25519, `kafka/signing.py`), `correlation-id`,
`reply-partition` (the results partition the waiting API reads) and the trace context. JSON
Schemas generated from these models are committed under `schemas/json/`.

Text in a command (`Text`) has no control character, like the HTTP fields it comes from: the
processor refuses, with a final error result, a command PostgreSQL could not store (NUL).
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, WithJsonSchema, model_validator

from payment_service.schemas.text import NO_CONTROL_PATTERN

HEADER_CORRELATION_ID = "correlation-id"
HEADER_REPLY_PARTITION = "reply-partition"
HEADER_REPLY_ID = "reply-id"
HEADER_MERCHANT_ID = "merchant-id"  # for the processor's per-merchant share; the body decides
HEADER_DLQ_REASON = "dlq-reason"
HEADER_DLQ_ERROR = "dlq-error"
HEADER_DLQ_SOURCE = "dlq-source"
# Where the dead-lettered message sits in its topic (`<topic>:<partition>:<offset>`, the format of
# `replay-of`): the letter's own key and ids may be masked, this finds the original exactly.
HEADER_DLQ_ORIGIN = "dlq-origin"
# Set by `ops replay --execute` / `ops dlq redrive` on a re-produced command (`<topic>:<partition>:
# <offset>` of the original); copied onto its result, so the operator's tool can match them.
HEADER_REPLAY_OF = "replay-of"

Id = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$")]
AmountMinor = Annotated[int, Field(gt=0, le=10**15)]
PaymentMethodId = Annotated[str, Field(pattern=r"^pm_[A-Za-z0-9]{8,64}$")]
Text = Annotated[str, Field(pattern=NO_CONTROL_PATTERN)]
Metadata = Annotated[
    dict[Text, Text],
    WithJsonSchema(
        {
            "type": "object",
            "propertyNames": {"pattern": NO_CONTROL_PATTERN},
            "additionalProperties": {"type": "string", "pattern": NO_CONTROL_PATTERN},
        }
    ),
]


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def new_message_id() -> str:
    return str(uuid.uuid4())


class EncryptedCard(_Message):
    """The card as it travels: the number sealed to the processor, the rest safe to show."""

    number_envelope: Text = Field(
        max_length=4096,
        description=(
            "the card number sealed with HPKE to the current public key (GET /api/v1/keys/card),"
            ' info = "payment-service/card/v2" 0x00 "card_number" 0x00 <transaction_id>:'
            ' {"v":2,"alg":...,"kid":...,"ct":base64(enc || ciphertext)}'
        ),
    )
    fingerprint: Text | None = Field(
        default=None, description="ignored: the processor computes it after opening the envelope"
    )
    brand: Text
    last4: Annotated[str, Field(pattern=r"^[0-9]{4}$")]
    expiry_month: Annotated[int, Field(ge=1, le=12)]
    expiry_year: Annotated[int, Field(ge=2000, le=2100)]
    holder_name: Annotated[Text, Field(min_length=1, max_length=100)]


RequestedBy = Annotated[str, Field(pattern=r"^api:[A-Za-z0-9]{0,64}$")] | None
_REQUESTED_BY: Any = Field(
    default=None,
    description="set by the API only (api:<api key id>); from any other producer: refused",
)


class ProcessPayment(_Message):
    transaction_id: Id
    merchant_id: Id
    amount_minor: AmountMinor
    currency: Currency
    payment_method: Text = "credit_card"
    card: EncryptedCard | None = Field(default=None, description="exactly one of card and ...")
    payment_method_id: PaymentMethodId | None = Field(
        default=None, description="... a card on file of this merchant's (pm_...)"
    )
    description: Text | None = Field(default=None, max_length=500)
    metadata: Metadata = Field(default_factory=dict)
    idempotency_key: Text | None = Field(default=None, max_length=255)
    request_hash: Text | None = Field(default=None, description="hash of the HTTP request body")
    requested_by: RequestedBy = _REQUESTED_BY
    security_code_in_vault: bool = Field(
        default=False, description="true when the API left the security code in Redis"
    )
    capture_method: Literal["automatic", "manual"] = Field(
        default="automatic",
        description="automatic: authorized and captured at once; manual: authorized only "
        "(status requires_capture) until a payment.capture/v1 or payment.cancel/v1",
    )

    @model_validator(mode="after")
    def _one_card(self) -> ProcessPayment:
        if (self.card is None) == (self.payment_method_id is None):
            raise ValueError("exactly one of card and payment_method_id is required")
        return self


class RefundPayment(_Message):
    refund_id: Id
    transaction_id: Id
    merchant_id: Id
    amount_minor: AmountMinor | None = Field(default=None, description="null: all that remains")
    reason: Text | None = Field(default=None, max_length=100)
    metadata: Metadata = Field(default_factory=dict)
    idempotency_key: Text | None = Field(default=None, max_length=255)
    request_hash: Text | None = None
    requested_by: RequestedBy = _REQUESTED_BY


class CapturePayment(_Message):
    """Capture a manual-capture payment's hold: all of it, or `amount_minor` (the rest is
    released at the bank). Keyed by the transaction id, like the payment and its refunds."""

    transaction_id: Id
    merchant_id: Id
    amount_minor: AmountMinor | None = Field(default=None, description="null: all authorized")
    idempotency_key: Text | None = Field(default=None, max_length=255)
    request_hash: Text | None = None
    requested_by: RequestedBy = _REQUESTED_BY


CancellationReason = Literal["duplicate", "fraudulent", "requested_by_customer", "abandoned"]


class CancelPayment(_Message):
    """Void a manual-capture payment's hold at the bank (status canceled)."""

    transaction_id: Id
    merchant_id: Id
    cancellation_reason: CancellationReason | None = None
    idempotency_key: Text | None = Field(default=None, max_length=255)
    request_hash: Text | None = None
    requested_by: RequestedBy = _REQUESTED_BY


class ProcessPaymentV1(_Message):
    type: Literal["payment.process/v1"] = "payment.process/v1"
    message_id: str = Field(default_factory=new_message_id)
    occurred_at: dt.datetime = Field(default_factory=_now)
    data: ProcessPayment


class RefundPaymentV1(_Message):
    type: Literal["payment.refund/v1"] = "payment.refund/v1"
    message_id: str = Field(default_factory=new_message_id)
    occurred_at: dt.datetime = Field(default_factory=_now)
    data: RefundPayment


class CapturePaymentV1(_Message):
    type: Literal["payment.capture/v1"] = "payment.capture/v1"
    message_id: str = Field(default_factory=new_message_id)
    occurred_at: dt.datetime = Field(default_factory=_now)
    data: CapturePayment


class CancelPaymentV1(_Message):
    type: Literal["payment.cancel/v1"] = "payment.cancel/v1"
    message_id: str = Field(default_factory=new_message_id)
    occurred_at: dt.datetime = Field(default_factory=_now)
    data: CancelPayment


AnyCommand = ProcessPaymentV1 | RefundPaymentV1 | CapturePaymentV1 | CancelPaymentV1
Command = Annotated[AnyCommand, Field(discriminator="type")]


COMMAND_ADAPTER: TypeAdapter[AnyCommand] = TypeAdapter(Command)


def parse_command(raw: bytes) -> AnyCommand:
    """Parse a request-topic message; raises `pydantic.ValidationError` when it is not one."""
    return COMMAND_ADAPTER.validate_json(raw)


class ResultError(_Message):
    code: str
    message: str


class PaymentResult(_Message):
    """The outcome of a command: the payment as it now stands, the refund if any, or an error."""

    transaction_id: str
    merchant_id: str
    refund_id: str | None = None
    kind: Literal["payment", "refund"]
    final: bool = Field(description="true when the HTTP caller has its final answer")
    payment: dict[str, Any] | None = Field(default=None, description="PaymentView as JSON")
    refund: dict[str, Any] | None = Field(default=None, description="RefundView as JSON")
    error: ResultError | None = None


class PaymentResultV1(_Message):
    type: Literal["payment.result/v1"] = "payment.result/v1"
    message_id: str = Field(default_factory=new_message_id)
    occurred_at: dt.datetime = Field(default_factory=_now)
    data: PaymentResult


class AuditEvent(_Message):
    """One `audit_log` row, published from the row itself (streams/audit_relay.py).

    `event_id` is the row's: a redelivery repeats it, so consumers deduplicate on it.
    """

    event_id: str
    transaction_id: str
    refund_id: str | None = None
    merchant_id: str
    action: str
    from_status: str | None = None
    to_status: str | None = None
    amount_minor: int | None = None
    currency: str | None = None
    correlation_id: str | None = None
    actor: str | None = Field(
        default=None,
        description="who asked: api:<api key id>, producer:<name>, or processor:reconciler",
    )
    details: dict[str, Any] = Field(default_factory=dict)
    audit_id: int | None = Field(default=None, description="the row's id in audit_log")
    created_at: dt.datetime | None = Field(default=None, description="when the row was written")


class AuditEventV1(_Message):
    type: Literal["audit.event/v1"] = "audit.event/v1"
    message_id: str = Field(default_factory=new_message_id)
    occurred_at: dt.datetime = Field(default_factory=_now)
    data: AuditEvent


PUBLISHED_MESSAGES: dict[str, type[BaseModel]] = {
    "payment.process.v1": ProcessPaymentV1,
    "payment.refund.v1": RefundPaymentV1,
    "payment.capture.v1": CapturePaymentV1,
    "payment.cancel.v1": CancelPaymentV1,
    "payment.result.v1": PaymentResultV1,
    "audit.event.v1": AuditEventV1,
}
