"""A stand-in for the Datadog agent: records what it is sent (traces and DSM over HTTP, DogStatsD
over UDP), so the tests can read it. The agent itself is not one of the parts we run here."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from aiohttp import web

from tests.fixtures.stack import free_ports


@dataclass
class FakeAgent:
    http_port: int
    udp_port: int
    requests: list[tuple[str, bytes]] = field(default_factory=list)  # (path, body)
    datagrams: list[bytes] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def posted(self, path_prefix: str) -> list[bytes]:
        """The bodies sent to paths starting with `path_prefix` (e.g. /v0.1/pipeline_stats)."""
        return [body for path, body in self.requests if path.startswith(path_prefix)]

    @property
    def http_bytes(self) -> bytes:
        return b"".join(body for _, body in self.requests)

    def metric_lines(self) -> list[str]:
        """Every DogStatsD line received (`name:value|type|#tags`)."""
        text = b"\n".join(self.datagrams).decode("utf-8", "replace")
        return [line for line in text.splitlines() if line]

    def environment(self) -> dict[str, str]:
        """The variables that point a service process at this agent, with tracing on."""
        return {
            "DD_TRACE_ENABLED": "true",
            "DD_TRACE_AGENT_URL": self.url,
            "DD_AGENT_HOST": "127.0.0.1",
            "DD_DOGSTATSD_PORT": str(self.udp_port),
            "DD_INSTRUMENTATION_TELEMETRY_ENABLED": "false",
            "DD_REMOTE_CONFIGURATION_ENABLED": "false",
            "DD_TRACE_FLUSH_INTERVAL": "0.2",
        }


@asynccontextmanager
async def fake_agent() -> AsyncIterator[FakeAgent]:
    http_port, udp_port = free_ports(2)
    agent = FakeAgent(http_port, udp_port)

    async def record(request: web.Request) -> web.Response:
        agent.requests.append((request.path, await request.read()))
        return web.json_response({"rate_by_service": {}})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", record)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", http_port).start()

    class Datagrams(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, addr: object) -> None:
            agent.datagrams.append(data)

    transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
        Datagrams, local_addr=("127.0.0.1", udp_port), family=socket.AF_INET
    )
    try:
        yield agent
    finally:
        transport.close()
        await runner.cleanup()
