"""The benchmark's handle on the local stack: where it is, restarting apps, the bank simulator.

Everything goes through `scripts/stack.py` (the same pids, logs and health checks as `make up`).
Settings are passed the way the service reads them, as environment variables at process start;
the bank simulator's latency is changed at run time through its `/sim` endpoints.
"""

from __future__ import annotations

import json
import os
import subprocess
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PROJECT = Path(__file__).resolve().parent.parent
STACK = ["python3", str(PROJECT / "scripts" / "stack.py")]
APP_BIN = PROJECT / ".venv" / "bin" / "payment-service"

# Which app reads a variable, by prefix (src/payment_service/config/settings.py).
PREFIX_OWNERS = {
    "API_": ("api",),
    "PROCESSOR_": ("processor",),
    "BANKSIM_": ("banksim",),
    "BANKING_API_": ("processor",),
    "KAFKA_": ("api", "processor"),
    "DATABASE_": ("api", "processor"),
    "REDIS_": ("api", "processor"),
    "LOG_LEVEL": ("api", "processor", "banksim"),
}


def owners(variable: str) -> tuple[str, ...]:
    for prefix, apps in PREFIX_OWNERS.items():
        if variable.startswith(prefix):
            return apps
    raise ValueError(f"{variable}: not a setting the benchmark knows which app reads")


def read_env_file(path: Path) -> dict[str, str]:
    values = {}
    if path.exists():
        for line in path.read_text().splitlines():
            line = line.strip()
            if line and not line.startswith("#") and "=" in line:
                key, _, value = line.partition("=")
                values[key.strip()] = value.strip()
    return values


@dataclass
class Stack:
    dir: Path
    env: dict[str, str]

    @classmethod
    def locate(cls) -> Stack:
        state = Path(os.environ.get("PAYMENT_STACK_DIR", PROJECT / ".stack"))
        env = read_env_file(state / "local.env")
        env.update({k: v for k, v in os.environ.items() if k in env or k.endswith("_PORT")})
        return cls(state, env)

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.env.get('API_PORT', '8000')}"

    @property
    def banksim_url(self) -> str:
        return f"http://127.0.0.1:{self.env.get('BANKSIM_PORT', '1080')}"

    @property
    def database_url(self) -> str:
        return self.env["DATABASE_URL"]

    def _stack(self, *args: str, env: dict[str, str] | None = None) -> None:
        cmd = [*STACK, *args, "--dir", str(self.dir)]
        result = subprocess.run(  # noqa: S603
            cmd, env=env, capture_output=True, text=True, timeout=300, check=False
        )
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{result.stdout}{result.stderr}")

    def restart(self, apps: list[str], overrides: dict[str, str]) -> None:
        """Restart these apps; the overrides are in their environment (exported values win)."""
        order = [a for a in ("api", "processor", "banksim") if a in apps]
        self._stack("stop", "--only", ",".join(order))
        env = {**os.environ, **overrides}
        self._stack("start-app", "--only", ",".join(reversed(order)), env=env)

    def pid(self, name: str) -> int | None:
        try:
            return int((self.dir / "pids" / f"{name}.pid").read_text().strip())
        except (OSError, ValueError):
            return None

    def environ_of(self, name: str) -> dict[str, str]:
        pid = self.pid(name)
        if pid is None:
            return {}
        try:
            raw = Path(f"/proc/{pid}/environ").read_bytes()
        except OSError:
            return {}
        pairs = (item.split(b"=", 1) for item in raw.split(b"\0") if b"=" in item)
        return {k.decode(): v.decode(errors="replace") for k, v in pairs}

    def create_api_key(self, merchant: str) -> str:
        env = {**os.environ, **self.env}
        result = subprocess.run(  # noqa: S603
            [str(APP_BIN), "keys", "create", "--merchant", merchant, "--name", "bench"],
            env=env,
            cwd=PROJECT,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        keys = [w for w in result.stdout.split() if w.startswith("psk_")]
        if not keys:
            raise RuntimeError(f"no API key in the output of keys create: {result.stdout}")
        return keys[-1]

    # -- the bank simulator ---------------------------------------------------------------------

    def sim(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(  # noqa: S310 (our own loopback simulator)
            self.banksim_url + path,
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310
            return json.loads(resp.read())

    def bank_latency(self) -> dict[str, float]:
        return dict(self.sim("GET", "/sim/latency"))

    def set_bank_latency(self, mean_ms: float, jitter_ms: float) -> None:
        self.sim("POST", "/sim/latency", {"mean_ms": mean_ms, "jitter_ms": jitter_ms})

    def reset_bank(self) -> None:
        """Empty the simulator's books (and back to its start-up latency and faults)."""
        self.sim("POST", "/sim/reset")
