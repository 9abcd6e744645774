"""Route declarations: one `Operation` per method and path, read by the router and the document.

`register(app, operations)` adds each operation's handler to aiohttp's router, and
`http/openapi.py` builds the OpenAPI document from the same list, so a route cannot exist without
its documentation (a test checks `app.router` against the document). To add a route, append an
`Operation` to the table in `http/routes.py`:

    Operation("GET", "/api/v1/payments/{transaction_id}/captures", list_captures,
              "listCaptures", "List a payment's captures", ok=Reply(CaptureList),
              errors=READ_ERRORS)

Path parameters are found in the path; their schema comes from `PATH_PARAMETERS` (add a name
there once). Request and answer bodies are pydantic models, documented by `model_json_schema`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from aiohttp import web
from pydantic import BaseModel

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# Our ids' shape (http/handlers._ID): a value outside it is answered 404 before any lookup.
_ID_SCHEMA: Final = {"type": "string", "pattern": "^[A-Za-z0-9_.:-]{1,64}$"}
PATH_PARAMETERS: Final[Mapping[str, tuple[str, dict[str, Any]]]] = {
    "transaction_id": ("the payment's id (`transaction_id` of its answer)", _ID_SCHEMA),
    "refund_id": ("the refund's id (`refund_id` of its answer)", _ID_SCHEMA),
    "payment_method_id": ("a card on file (`pm_...`)", {"type": "string", "maxLength": 80}),
    "endpoint_id": ("a webhook endpoint (`we_...`)", {"type": "string", "maxLength": 80}),
    "event_id": ("an event (`evt_...`)", {"type": "string", "maxLength": 80}),
}


@dataclass(frozen=True)
class Reply:
    """One documented answer: its body and its headers.

    The body is one model, any of several, or (for what is not a model: the document itself,
    the docs page and its assets) a plain JSON Schema, served as each of `media`.
    """

    body: type[BaseModel] | tuple[type[BaseModel], ...] | Mapping[str, Any]
    description: str = "OK"
    headers: tuple[str, ...] = ()
    media: tuple[str, ...] = ("application/json",)

    @property
    def models(self) -> tuple[type[BaseModel], ...]:
        if isinstance(self.body, Mapping):
            return ()
        return self.body if isinstance(self.body, tuple) else (self.body,)


@dataclass(frozen=True)
class Link:
    """An OpenAPI link: a value of this answer fills a parameter of another operation."""

    name: str
    operation_id: str
    parameters: Mapping[str, str]  # parameter -> runtime expression ($response.body#/...)


@dataclass(frozen=True)
class Operation:
    """A route and everything its documentation says.

    `replies` maps status to answer (200 and 202 here, or 201...); `errors` lists the error
    statuses this operation can answer with the common error body. `idempotent` documents the
    `Idempotency-Key` header; `authenticated` the bearer key.
    """

    method: str
    path: str
    handler: Handler
    operation_id: str
    summary: str
    replies: Mapping[int, Reply]
    errors: tuple[int, ...] = ()
    request: type[BaseModel] | None = None
    idempotent: bool = False
    authenticated: bool = True
    tag: str = "payments"
    description: str = ""
    links: Mapping[int, tuple[Link, ...]] = field(default_factory=dict)
    # Path parameters whose schema is this operation's own (else PATH_PARAMETERS has it).
    path_parameters: Mapping[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)
    # Query parameters, as OpenAPI parameter objects (http/lists.py declares the list ones).
    query_parameters: tuple[dict[str, Any], ...] = ()


def register(app: web.Application, operations: tuple[Operation, ...]) -> None:
    """Add every operation to the router, and nothing else (no HEAD beside GET: undocumented)."""
    for op in operations:
        if op.method == "GET":
            app.router.add_get(op.path, op.handler, allow_head=False, name=op.operation_id)
        else:
            app.router.add_route(op.method, op.path, op.handler, name=op.operation_id)
