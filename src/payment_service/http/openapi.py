"""The OpenAPI 3.1 document, generated from the route table (`http/operations.py`).

Nothing here names a path: every operation, parameter and body comes from an `Operation` and its
pydantic models (`model_json_schema`); this module only knows what is common to all of them (the
error body, the headers every answer carries, the bearer scheme).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any, Final

from pydantic import BaseModel

from payment_service import __version__
from payment_service.http.operations import PATH_PARAMETERS, Operation, Reply
from payment_service.schemas.answers import ErrorResponse

ERRORS: Final[dict[int, str]] = {
    400: "malformed JSON (`malformed_json`, `json_too_deep`, `duplicate_key`), a bad header "
    "(`invalid_idempotency_key`) or a refused operation (`payment_not_refundable`, "
    "`refund_exceeds_remaining`, `payment_method_detached`)",
    401: "missing or invalid API key (`invalid_api_key`)",
    402: "`card_expired`: the card on file is past its expiry",
    404: "`resource_missing`: unknown, or another merchant's (never 403: that would say it "
    "exists); also any path that is no route",
    408: "`body_read_timeout`: the body did not arrive in time",
    409: "`idempotency_key_in_use`: a request with the same Idempotency-Key is in progress",
    413: "`body_too_large`: body larger than 64 KiB",
    422: "validation failed, field by field (`validation_error` or the first rule's code: "
    "`control_characters`, `amount_too_large`...), or `idempotency_key_reused` with another body",
    429: "`rate_limited`: see Retry-After",
    503: "`not_accepted`: not durably accepted, nothing charged; or `overloaded` (see "
    "Retry-After). Retry with the same Idempotency-Key",
}
HEADERS: Final[dict[str, tuple[str, dict[str, Any]]]] = {
    "Request-Id": ("this answer's id (`req_...`): quote it to support", {"type": "string"}),
    "X-Correlation-ID": (
        "the request's `X-Correlation-ID` (1-128 printable characters), or a new one",
        {"type": "string"},
    ),
    "Idempotent-Replayed": (
        "`true` when this answers an earlier request with the same Idempotency-Key",
        {"type": "string", "enum": ["true"]},
    ),
    "Location": ("where to GET the outcome", {"type": "string"}),
    "Retry-After": ("seconds to wait before retrying", {"type": "string"}),
}
ALWAYS: Final = ("Request-Id", "X-Correlation-ID")
IDEMPOTENCY_KEY: Final = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "Stripe's semantics, scoped to the merchant: the same key and body replays "
    "the first answer (with `Idempotent-Replayed: true`); the same key with another body is "
    "422; while the first is in progress, 409. Without it, every request is new.",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255},
    "example": "order-12345-attempt-1",
}
CORRELATION: Final = {
    "name": "X-Correlation-ID",
    "in": "header",
    "required": False,
    "description": "echoed on the answer and on every log line of this request",
    "schema": {"type": "string", "maxLength": 128},
}
_PARAM: Final = re.compile(r"{([^}]+)}")


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _schema_of(models: tuple[type[BaseModel], ...]) -> dict[str, Any]:
    return _ref(models[0]) if len(models) == 1 else {"anyOf": [_ref(m) for m in models]}


def _headers(names: Iterable[str]) -> dict[str, Any]:
    return {
        name: {
            "description": HEADERS[name][0],
            "required": name in ALWAYS,
            "schema": HEADERS[name][1],
        }
        for name in (*ALWAYS, *names)
    }


def _example(model: type[BaseModel]) -> Any:
    """The model's first example, shown (and sent by "Try it out") as the request body."""
    examples: Any = model.model_json_schema().get("examples")
    return examples[0] if isinstance(examples, list) and examples else None


def _reply(reply: Reply) -> dict[str, Any]:
    schema = _schema_of(reply.models) if reply.models else dict(reply.body)  # type: ignore[arg-type]
    return {
        "description": reply.description,
        "headers": _headers(reply.headers),
        "content": {media: {"schema": schema} for media in reply.media},
    }


def _error(status: int) -> dict[str, Any]:
    retry = ("Retry-After",) if status in (429, 503) else ()
    return {
        "description": ERRORS[status],
        "headers": _headers(retry),
        "content": {"application/json": {"schema": _ref(ErrorResponse)}},
    }


def _parameters(op: Operation) -> list[dict[str, Any]]:
    parameters = []
    for name in _PARAM.findall(op.path):
        description, schema = op.path_parameters.get(name) or PATH_PARAMETERS[name]
        parameters.append(
            {
                "name": name,
                "in": "path",
                "required": True,
                "description": description,
                "schema": schema,
            }
        )
    parameters.extend(op.query_parameters)
    if op.idempotent:
        parameters.append(IDEMPOTENCY_KEY)
    if op.tag != "service":
        parameters.append(CORRELATION)
    return parameters


def _operation(op: Operation) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    for status, reply in op.replies.items():
        responses[str(status)] = _reply(reply)
        if op.links.get(status):
            responses[str(status)]["links"] = {
                link.name: {"operationId": link.operation_id, "parameters": dict(link.parameters)}
                for link in op.links[status]
            }
    for status in op.errors:
        responses[str(status)] = _error(status)
    document: dict[str, Any] = {
        "operationId": op.operation_id,
        "summary": op.summary,
        "tags": [op.tag],
        "parameters": _parameters(op),
        "responses": responses,
        "security": [{"bearer": []}] if op.authenticated else [],
    }
    if op.description:
        document["description"] = op.description
    if op.request is not None:
        media: dict[str, Any] = {"schema": _ref(op.request)}
        example = _example(op.request)
        if example is not None:
            media["example"] = example
        document["requestBody"] = {"required": True, "content": {"application/json": media}}
    return document


def _models(operations: Iterable[Operation]) -> list[type[BaseModel]]:
    seen: dict[str, type[BaseModel]] = {ErrorResponse.__name__: ErrorResponse}
    for op in operations:
        for model in (op.request, *(m for r in op.replies.values() for m in r.models)):
            if model is not None:
                seen.setdefault(model.__name__, model)
    return list(seen.values())


def build_document(
    operations: Iterable[Operation], extra_schemas: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The document for these operations: paths, components, the bearer scheme.

    `extra_schemas` are components written as JSON Schema (bodies that are not pydantic models).
    """
    documented = list(operations)
    schemas: dict[str, Any] = dict(extra_schemas or {})
    for model in _models(documented):
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
    paths: dict[str, dict[str, Any]] = {}
    for op in documented:
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(op)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Payment Service",
            "version": __version__,
            "description": "Card payments and refunds. Authenticate with `Authorization: Bearer "
            "<api key>` (`make db-seed` prints one). Every answer carries `Request-Id` and "
            "`X-Correlation-ID`; errors have one shape, `ErrorResponse`.",
        },
        "servers": [{"url": "/"}],
        "tags": [
            {"name": "payments", "description": "take, read and refund card payments"},
            {"name": "cards", "description": "cards on file and the card-sealing key"},
            {"name": "webhooks", "description": "webhook endpoints, events and deliveries"},
            {"name": "service", "description": "health and service information"},
        ],
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "the merchant's API key (`psk_...`)",
                }
            },
        },
        "security": [{"bearer": []}],
        "paths": paths,
    }
