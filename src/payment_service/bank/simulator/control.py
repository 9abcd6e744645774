"""A small client for the simulator's `/sim` endpoints, for tests, benchmarks and scripts."""

from __future__ import annotations

from types import TracebackType
from typing import Any

import aiohttp


class SimulatorControl:
    """Reads the ledger and sets faults and latency on a running simulator."""

    def __init__(self, base_url: str, *, timeout_seconds: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=timeout_seconds),
            raise_for_status=True,
        )

    async def __aenter__(self) -> SimulatorControl:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        await self._session.close()

    async def ledger(
        self, reference: str | None = None, operation: str | None = None
    ) -> list[dict[str, Any]]:
        """Ledger entries, oldest first, filtered by our reference and/or operation."""
        query = {k: v for k, v in (("reference", reference), ("operation", operation)) if v}
        data = await self._call("GET", "/sim/ledger", params=query)
        entries: list[dict[str, Any]] = data["entries"]
        return entries

    async def add_fault(self, mode: str, **rule: Any) -> str:
        """Activate a fault rule (see docs/bank.md); returns its id."""
        data = await self._call("POST", "/sim/faults", json={"mode": mode, **rule})
        fault_id: str = data["faults"][0]["id"]
        return fault_id

    async def faults(self) -> list[dict[str, Any]]:
        faults: list[dict[str, Any]] = (await self._call("GET", "/sim/faults"))["faults"]
        return faults

    async def remove_fault(self, fault_id: str) -> None:
        await self._call("DELETE", f"/sim/faults/{fault_id}")

    async def clear_faults(self) -> None:
        await self._call("DELETE", "/sim/faults")

    async def set_latency(self, mean_ms: float, jitter_ms: float = 0.0) -> None:
        await self._call("POST", "/sim/latency", json={"mean_ms": mean_ms, "jitter_ms": jitter_ms})

    async def stats(self) -> dict[str, Any]:
        """Requests received per operation, faults injected per mode, ledger size."""
        return await self._call("GET", "/sim/stats")

    async def reset(self) -> None:
        await self._call("POST", "/sim/reset")

    async def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        async with self._session.request(method, self.base_url + path, **kwargs) as response:
            data: dict[str, Any] = await response.json()
            return data
