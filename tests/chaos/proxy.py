"""A small TCP proxy of our own that delays and cuts connections (the chaos suite's toxiproxy).

`Proxy(target_port)` listens on a free local port (or the one `start` is given: a port that
Kafka advertises) and forwards every connection to the target.
`degrade(delay, cut_every)` delays every chunk by `delay` seconds, resets every connection open
now and then every `cut_every`-th new one; `heal()` makes it a plain pipe again.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools


class Proxy:
    def __init__(self, target_port: int) -> None:
        self._target = target_port
        self._server: asyncio.Server | None = None
        self._open: set[asyncio.StreamWriter] = set()
        self._count = itertools.count(1)
        self.delay = 0.0
        self.cut_every = 0

    async def start(self, port: int = 0) -> int:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", port)
        bound: int = self._server.sockets[0].getsockname()[1]
        return bound

    async def close(self) -> None:
        self._reset_all()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def degrade(self, delay: float, cut_every: int) -> None:
        self.delay, self.cut_every = delay, cut_every
        self._reset_all()

    def heal(self) -> None:
        self.delay, self.cut_every = 0.0, 0

    def _reset_all(self) -> None:
        for writer in list(self._open):
            writer.transport.abort()  # a TCP RST, as a cut cable or a dead middlebox gives

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.cut_every and next(self._count) % self.cut_every == 0:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self._target)
        except OSError:
            writer.transport.abort()
            return
        self._open.update((writer, up_writer))
        try:
            await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        finally:
            self._open.difference_update((writer, up_writer))

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                if self.delay:
                    await asyncio.sleep(self.delay)
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            with contextlib.suppress(ConnectionError, OSError):
                writer.close()
