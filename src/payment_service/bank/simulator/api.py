"""The simulated acquirer's API: authorize, sale, capture, void, refund, status inquiry, health.

A request's path through an operation handler:
1. Check the Idempotency-Key header and parse the JSON (400 when either is missing or broken).
2. Draw a fault for (operation, reference); before-commit faults act now.
3. Validate the body (422, nothing executed).
4. Execute once per idempotency key (the books replay duplicates), after the processing latency;
   answered once the ledger file has committed it.
5. After-commit faults act on the answer; otherwise send it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import struct
from collections.abc import Callable
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ValidationError

from payment_service.bank.simulator import operations
from payment_service.bank.simulator.faults import BEFORE_COMMIT, FaultSpec
from payment_service.bank.simulator.ledger import Answer, Txn, error_answer
from payment_service.bank.simulator.state import SIMULATOR, Simulator
from payment_service.bank.wire import (
    AuthorizeRequest,
    CaptureRequest,
    RefundRequest,
    SaleRequest,
    VoidRequest,
)

logger = logging.getLogger(__name__)

_TRICKLE_CHUNK = 8  # bytes per slow_body chunk


_OPERATIONS: dict[str, tuple[type[BaseModel], Callable[[Txn, Any], Answer]]] = {
    "authorize": (AuthorizeRequest, operations.authorize),
    "sale": (SaleRequest, operations.sale),
    "capture": (CaptureRequest, operations.capture),
    "void": (VoidRequest, operations.void),
    "refund": (RefundRequest, operations.refund),
}


def json_response(status: int, data: Any) -> web.Response:
    body = json.dumps(data).encode()
    return web.Response(status=status, body=body, content_type="application/json")


def error_response(status: int, code: str, message: str, param: str | None = None) -> web.Response:
    """The one error shape: `{"error": {"code", "message", "param"}}`."""
    return json_response(status, {"error": {"code": code, "message": message, "param": param}})


def invalid_response(exc: ValidationError) -> web.Response:
    """422 naming the first bad field; field names and rule text only, never the input."""
    first = exc.errors(include_input=False, include_url=False)[0]
    param = ".".join(str(part) for part in first["loc"])
    return error_response(422, "invalid_request", f"{param}: {first['msg']}", param)


async def _api_operation(request: web.Request) -> web.StreamResponse:
    sim = request.app[SIMULATOR]
    operation = request.match_info["operation"]
    sim.received[operation] += 1
    parsed = await _read(request)
    if isinstance(parsed, web.Response):
        return parsed
    key, body = parsed
    fault = sim.faults.draw(operation, _reference_of(body))
    if fault is not None and (early := await _before_commit(request, sim, fault)) is not None:
        return early
    model, commit = _OPERATIONS[operation]
    try:
        req = model.model_validate(body)
    except ValidationError as exc:
        return invalid_response(exc)
    answer, replayed = await sim.books.execute(
        key,
        sim.books.fingerprint(operation, body),
        lambda txn: commit(txn, req),
        sim.latency.sleep,
    )
    return await _answer(request, sim, answer, replayed, fault)


async def _read(request: web.Request) -> tuple[str, Any] | web.Response:
    """The idempotency key and the parsed body, or the 400 saying which is missing."""
    key = request.headers.get("Idempotency-Key", "")
    if not key or len(key) > 255:
        message = "an Idempotency-Key header of 1 to 255 characters is required"
        return error_response(400, "idempotency_key_missing", message)
    try:
        return key, json.loads(await request.read())
    except ValueError:
        return error_response(400, "invalid_json", "the body is not JSON")


def _reference_of(body: Any) -> str | None:
    """The reference a fault may target, read before validation (faults hit bad bodies too)."""
    reference = body.get("reference") if isinstance(body, dict) else None
    return reference if isinstance(reference, str) else None


async def _api_inquiry(request: web.Request) -> web.StreamResponse:
    sim = request.app[SIMULATOR]
    reference = request.match_info["reference"]
    sim.received["inquiry"] += 1
    fault = sim.faults.draw("inquiry", reference)
    if fault is not None and (early := await _before_commit(request, sim, fault)) is not None:
        return early
    await sim.latency.sleep()
    inquiry = await sim.books.inquiry(reference)
    if inquiry is None:
        answer = error_answer(404, "not_found", "nothing is known about this reference")
    else:
        answer = Answer(200, inquiry.model_dump_json().encode())
    return await _answer(request, sim, answer, False, fault)


async def _before_commit(
    request: web.Request, sim: Simulator, fault: FaultSpec
) -> web.StreamResponse | None:
    """Act on a before-commit fault; None lets the request go on to be executed."""
    if fault.mode not in BEFORE_COMMIT:
        return None
    sim.injected[fault.mode] += 1
    logger.info("fault %s on %s", fault.mode, request.path)
    if fault.mode == "delay":
        await asyncio.sleep(fault.delay_seconds)
        return None
    if fault.mode == "reset":
        return _reset(request)
    return error_response(fault.status, "bank_unavailable", "simulated failure, nothing executed")


async def _answer(
    request: web.Request, sim: Simulator, answer: Answer, replayed: bool, fault: FaultSpec | None
) -> web.StreamResponse:
    headers = {"Idempotent-Replayed": "true"} if replayed else {}
    if fault is None or fault.mode in BEFORE_COMMIT:
        return web.Response(
            status=answer.status, body=answer.body, content_type="application/json", headers=headers
        )
    sim.injected[fault.mode] += 1
    logger.info("fault %s on %s", fault.mode, request.path)
    if fault.mode == "error_after_commit":
        return error_response(fault.status, "bank_unavailable", "simulated failure after executing")
    if fault.mode == "reset_after_commit":
        return _reset(request)
    if fault.mode == "hang_after_commit":
        await asyncio.sleep(fault.delay_seconds)
        return web.Response(
            status=answer.status, body=answer.body, content_type="application/json", headers=headers
        )
    return await _trickle(request, answer, headers, fault.delay_seconds)


def _reset(request: web.Request) -> web.Response:
    """Drop the connection with a TCP RST (SO_LINGER 0), as a crashed middlebox would."""
    transport = request.transport
    if transport is not None:
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
    # aiohttp fails quietly writing this to the closed transport.
    return web.Response(status=500)


async def _trickle(
    request: web.Request, answer: Answer, headers: dict[str, str], interval: float
) -> web.StreamResponse:
    response = web.StreamResponse(status=answer.status, headers=headers)
    response.content_type = "application/json"
    response.content_length = len(answer.body)
    try:
        await response.prepare(request)
        for start in range(0, len(answer.body), _TRICKLE_CHUNK):
            await response.write(answer.body[start : start + _TRICKLE_CHUNK])
            await asyncio.sleep(interval)
        await response.write_eof()
    except ConnectionError:
        pass  # the client gave up, which is what this fault is for
    return response


async def _health(request: web.Request) -> web.Response:
    return json_response(200, {"status": "ok"})


ROUTES = [
    web.get("/health", _health),
    web.post("/api/v1/{operation:authorize|sale|capture|void|refund}", _api_operation),
    web.get("/api/v1/transactions/{reference}", _api_inquiry),
]
