"""The bank simulator's composition root: its aiohttp application and `run_simulator`."""

from __future__ import annotations

import asyncio
import logging
import signal

import uvloop
from aiohttp import web

from payment_service.bank.simulator import admin, api
from payment_service.bank.simulator.state import SIMULATOR, build_simulator
from payment_service.config.settings import BankSimSettings, Settings
from payment_service.ops.logs import configure_logging

logger = logging.getLogger(__name__)

# In-flight hangs (hang_after_commit) would otherwise hold a shutdown for aiohttp's default 60 s.
_SHUTDOWN_TIMEOUT_SECONDS = 1.0


def build_banksim(settings: BankSimSettings) -> web.Application:
    """The simulator as an aiohttp application (for AppRunner or tests)."""
    app = web.Application(client_max_size=64 * 1024)
    simulator = build_simulator(settings)
    app[SIMULATOR] = simulator

    async def close_books(app: web.Application) -> None:
        simulator.books.close()

    app.on_cleanup.append(close_books)
    app.add_routes(api.ROUTES)
    app.add_routes(admin.ROUTES)
    return app


def run_simulator(settings: Settings, *, host: str | None = None, port: int | None = None) -> None:
    """`payment-service banksim`: serve until SIGINT or SIGTERM; prints its URL once listening."""
    configure_logging(settings, "banksim")
    uvloop.run(
        _serve(
            settings.banksim,
            host if host is not None else settings.banksim.host,
            port if port is not None else settings.banksim.port,
        )
    )


async def _serve(settings: BankSimSettings, host: str, port: int) -> None:
    runner = web.AppRunner(
        build_banksim(settings),
        access_log=logging.getLogger("aiohttp.access") if settings.access_log else None,
        shutdown_timeout=_SHUTDOWN_TIMEOUT_SECONDS,
    )
    await runner.setup()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await web.TCPSite(runner, host, port).start()
        bound_host, bound_port = runner.addresses[0][:2]
        logger.info("bank simulator listening on http://%s:%s", bound_host, bound_port)
        # On stdout too, for scripts that start it with --port 0 and need the port.
        print(f"bank simulator listening on http://{bound_host}:{bound_port}", flush=True)
        await stop.wait()
    finally:
        await runner.cleanup()
