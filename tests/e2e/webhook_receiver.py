"""A real local webhook receiver (aiohttp) that checks every signature on its own.

It verifies `Payment-Signature` with nothing of ours (hmac + hashlib over `t + "." + body`, as
a merchant following docs/webhooks.md would), and records what arrived, by event id.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fixtures.stack import free_ports


def signature_ok(header: str, body: bytes, secret: str, tolerance: int = 300) -> bool:
    parts = dict(item.split("=", 1) for item in header.split(",") if "=" in item)
    t = parts.get("t", "")
    if not t.isdigit() or abs(time.time() - int(t)) > tolerance:
        return False
    expected = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, parts.get("v1", ""))


@dataclass
class Receiver:
    secret: str = ""
    port: int = field(default_factory=lambda: free_ports(1)[0])
    status: int = 200  # what it answers
    hold: asyncio.Event | None = None  # when set, each request waits for it before answering
    received: list[dict[str, Any]] = field(default_factory=list)
    bad_signatures: int = 0
    in_flight: int = 0
    _runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        if not signature_ok(request.headers.get("Payment-Signature", ""), body, self.secret):
            self.bad_signatures += 1
            return web.Response(status=400)
        event = json.loads(body)
        assert request.headers["Payment-Event-Id"] == event["id"]
        self.in_flight += 1
        try:
            if self.hold is not None:
                await self.hold.wait()
        finally:
            self.in_flight -= 1
        if self.status < 300:
            self.received.append(event)
        return web.Response(status=self.status)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hooks", self._handle)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def ids(self, event_type: str | None = None) -> list[str]:
        return [e["id"] for e in self.received if event_type in (None, e["type"])]

    def of(self, object_id: str) -> list[dict[str, Any]]:
        return [e for e in self.received if object_id in json.dumps(e["data"]["object"])]
