"""The `/sim` control endpoints for tests and benchmarks: ledger, faults, latency, stats, reset.

Never faulted, never delayed. JSON formats are in docs/bank.md.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web
from pydantic import BaseModel, Field, ValidationError

from payment_service.bank.simulator.api import error_response, invalid_response, json_response
from payment_service.bank.simulator.faults import FaultSpec
from payment_service.bank.simulator.state import SIMULATOR


class LatencySettings(BaseModel):
    mean_ms: float = Field(ge=0)
    jitter_ms: float = Field(default=0.0, ge=0)


async def _ledger(request: web.Request) -> web.Response:
    """`?reference=` and `?operation=` filter; entries in execution order."""
    books = request.app[SIMULATOR].books
    entries = await books.entries(request.query.get("reference"), request.query.get("operation"))
    return json_response(200, {"entries": [entry.to_json() for entry in entries]})


async def _faults(request: web.Request) -> web.Response:
    faults = request.app[SIMULATOR].faults.active()
    return json_response(200, {"faults": [fault.to_json() for fault in faults]})


async def _add_faults(request: web.Request) -> web.Response:
    """Body: one fault rule, or a JSON list of them. Answers with the added faults and their ids."""
    body = await _json_body(request)
    rules = body if isinstance(body, list) else [body]
    try:
        specs = [FaultSpec.model_validate(rule) for rule in rules]
    except ValidationError as exc:
        return invalid_response(exc)
    book = request.app[SIMULATOR].faults
    added = [book.add(spec) for spec in specs]
    return json_response(201, {"faults": [fault.to_json() for fault in added]})


async def _clear_faults(request: web.Request) -> web.Response:
    request.app[SIMULATOR].faults.clear()
    return json_response(200, {"faults": []})


async def _remove_fault(request: web.Request) -> web.Response:
    if request.app[SIMULATOR].faults.remove(request.match_info["fault_id"]):
        return json_response(200, {"removed": request.match_info["fault_id"]})
    return error_response(404, "not_found", "no such fault")


async def _latency(request: web.Request) -> web.Response:
    latency = request.app[SIMULATOR].latency
    return json_response(200, {"mean_ms": latency.mean_ms, "jitter_ms": latency.jitter_ms})


async def _set_latency(request: web.Request) -> web.Response:
    try:
        wanted = LatencySettings.model_validate(await _json_body(request))
    except ValidationError as exc:
        return invalid_response(exc)
    request.app[SIMULATOR].latency.set(wanted.mean_ms, wanted.jitter_ms)
    return await _latency(request)


async def _stats(request: web.Request) -> web.Response:
    sim = request.app[SIMULATOR]
    return json_response(
        200,
        {
            "received": dict(sim.received),
            "faults_injected": dict(sim.injected),
            "ledger_entries": await sim.books.count(),
        },
    )


async def _reset(request: web.Request) -> web.Response:
    await request.app[SIMULATOR].reset()
    return json_response(200, {"status": "reset"})


async def _json_body(request: web.Request) -> Any:
    try:
        return json.loads(await request.read())
    except ValueError:
        raise web.HTTPBadRequest(
            text='{"error": {"code": "invalid_json", "message": "the body is not JSON"}}',
            content_type="application/json",
        ) from None


ROUTES = [
    web.get("/sim/ledger", _ledger),
    web.get("/sim/faults", _faults),
    web.post("/sim/faults", _add_faults),
    web.delete("/sim/faults", _clear_faults),
    web.delete("/sim/faults/{fault_id}", _remove_fault),
    web.get("/sim/latency", _latency),
    web.post("/sim/latency", _set_latency),
    web.get("/sim/stats", _stats),
    web.post("/sim/reset", _reset),
]
