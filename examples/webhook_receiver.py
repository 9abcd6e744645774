"""A merchant's webhook receiver: verifies `Payment-Signature` and prints each event once.

    WEBHOOK_SECRET=whsec_... python examples/webhook_receiver.py --port 9000

Register `http://127.0.0.1:9000/hooks` as an endpoint first (docs/webhooks.md); the local stack
allows private addresses. Needs only aiohttp and the standard library: no code of the service.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import time

from aiohttp import web

TOLERANCE_SECONDS = 300


def verify(header: str, body: bytes, secret: str) -> bool:
    """Stripe's scheme: v1 = hex HMAC-SHA256(secret, "<t>.<raw body>"), t recent."""
    parts = dict(item.split("=", 1) for item in header.split(",") if "=" in item)
    t = parts.get("t", "")
    if not t.isdigit() or abs(time.time() - int(t)) > TOLERANCE_SECONDS:
        return False
    expected = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, parts.get("v1", ""))


def app(secret: str) -> web.Application:
    seen: set[str] = set()  # deliveries are at least once: deduplicate by event id

    async def hooks(request: web.Request) -> web.Response:
        body = await request.read()  # the raw bytes: verify before parsing
        if not verify(request.headers.get("Payment-Signature", ""), body, secret):
            return web.Response(status=400, text="bad signature")
        event = json.loads(body)
        if event["id"] not in seen:
            seen.add(event["id"])
            status = event["data"]["object"].get("status")
            print(f"{event['created_at']} {event['type']:<26} {event['id']} status={status}")
        return web.Response(status=200)  # 2xx quickly; do slow work after answering

    application = web.Application()
    application.router.add_post("/hooks", hooks)
    return application


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9000)
    args = parser.parse_args()
    secret = os.environ.get("WEBHOOK_SECRET", "")
    if not secret.startswith("whsec_"):
        raise SystemExit("set WEBHOOK_SECRET to the secret the endpoint's creation answered")
    web.run_app(app(secret), host=args.host, port=args.port)


if __name__ == "__main__":
    main()
