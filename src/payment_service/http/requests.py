"""What every handler of the newer resources does first: authenticate, read the body, page.

The Stripe list parameters: `limit` 1 to 100 (default 10), `starting_after` or `ending_before`
(an id of the same list; never both), answered as `{"object": "list", "data", "has_more"}`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from payment_service.core.errors import InvalidRequest
from payment_service.http.answers import Answer
from payment_service.http.errors import validation_failed
from payment_service.http.protection import client_address
from payment_service.http.state import AUTH, LIMITER
from payment_service.ops.logcontext import bind
from payment_service.schemas import jsonbody

Model = TypeVar("Model", bound=BaseModel)
DEFAULT_LIMIT: Final = 10
MAX_LIMIT: Final = 100


async def merchant(request: web.Request) -> str:
    """The caller's merchant id (401 otherwise), rate-limited like every API call."""
    found = await request.app[AUTH].merchant_for(
        request.headers.get("Authorization"), client_address(request)
    )
    bind(merchant_id=found)
    await request.app[LIMITER].check(found)
    return found


async def body(request: web.Request, model: type[Model]) -> Model:
    raw = await request.read()
    data: Any = jsonbody.loads(raw) if raw.strip() else {}
    if not isinstance(data, dict):
        raise InvalidRequest("request body must be a JSON object", code="malformed_json")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise validation_failed(exc) from None


def respond(answer: Answer) -> web.Response:
    return web.json_response(answer.body, status=answer.status, headers=answer.headers)


@dataclass(frozen=True)
class Page:
    limit: int
    starting_after: str | None
    ending_before: str | None


def page(request: web.Request) -> Page:
    """The list parameters of the query string, or a clear 400."""
    query = request.query
    raw = query.get("limit", str(DEFAULT_LIMIT))
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        raise InvalidRequest(
            f"limit must be an integer from 1 to {MAX_LIMIT}", code="invalid_limit", param="limit"
        )
    after, before = query.get("starting_after"), query.get("ending_before")
    if after is not None and before is not None:
        raise InvalidRequest(
            "give starting_after or ending_before, not both", param="ending_before"
        )
    for name, value in (("starting_after", after), ("ending_before", before)):
        if value is not None and not value:
            raise InvalidRequest(f"{name} must be an id", param=name)
    return Page(int(raw), after, before)


def listing(data: list[dict[str, Any]], has_more: bool, url: str) -> Answer:
    return Answer(200, {"object": "list", "url": url, "data": data, "has_more": has_more})
