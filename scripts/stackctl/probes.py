"""Health checks of every process, and waiting for one to become healthy within its deadline.

Kafka is asked a real Metadata request after a SCRAM login as `admin` (`kafka_wire`, a small
hand-written Kafka protocol client: the script runs before any Kafka library is installed);
PostgreSQL with `pg_isready`, Redis with `PING`, the apps with `GET /health`.
"""

from __future__ import annotations

import json
import socket
import struct
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable

from .config import (
    APP_STOP_TIMEOUT,
    HOST,
    STOP_TIMEOUT,
    Config,
    StackError,
    kind_of,
    say,
    tail,
    where,
)
from .kafka_users import read_credentials
from .kafka_wire import kafka_metadata
from .procs import alive, stop_processes
from .system import pg_bin_dir


def kafka_healthy(cfg: Config) -> bool:
    """Logged in as `admin` (SCRAM), the broker's metadata lists it and names a controller."""
    password = read_credentials(cfg).get("admin")
    if password is None:
        return False
    try:
        meta = kafka_metadata(HOST, cfg.ports["kafka"], "admin", password)
    except (OSError, struct.error, UnicodeDecodeError, KeyError, ValueError):
        return False
    return meta["controller"] >= 0 and any(b[2] == cfg.ports["kafka"] for b in meta["brokers"])


def postgres_healthy(cfg: Config) -> bool:
    bindir = pg_bin_dir()
    if bindir is None:
        return False
    cmd = [str(bindir / "pg_isready"), "-q", "-h", HOST, "-p", str(cfg.ports["postgres"])]
    return subprocess.run([*cmd, "-t", "2"], stdin=subprocess.DEVNULL).returncode == 0


def redis_healthy(cfg: Config) -> bool:
    try:
        with socket.create_connection((HOST, cfg.ports["redis"]), timeout=1.0) as s:
            s.sendall(b"*1\r\n$4\r\nPING\r\n")
            return s.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def http_status(port: int, path: str = "/health", timeout: float = 2.0) -> int | None:
    try:
        with urllib.request.urlopen(f"http://{HOST}:{port}{path}", timeout=timeout) as r:
            return int(r.status)
    except urllib.error.HTTPError as e:
        return int(e.code)
    except (OSError, ValueError):
        return None


def api_healthy(cfg: Config) -> bool:
    return http_status(cfg.ports["api"]) == 200


def api_instance_answers(cfg: Config, partition: int, tries: int = 8) -> bool:
    """Has the API instance reading `partition` joined the shared port? Each try is a new
    connection, which the kernel gives to any of the instances; its `/health` names it."""
    url = f"http://{HOST}:{cfg.ports['api']}/health"
    for _ in range(tries):
        try:
            with urllib.request.urlopen(url, timeout=2.0) as r:
                report = json.loads(r.read())
        except (OSError, ValueError):
            continue
        if report.get("components", {}).get("kafka", {}).get("reply_partition") == partition:
            return True
    return False


def banksim_healthy(cfg: Config) -> bool:
    status = http_status(cfg.ports["banksim"])
    return status is not None and status < 500


HEALTH: dict[str, Callable[[Config], bool]] = {
    "kafka": kafka_healthy,
    "postgres": postgres_healthy,
    "redis": redis_healthy,
    "api": api_healthy,
    "banksim": banksim_healthy,
}


def wait_healthy(
    cfg: Config,
    name: str,
    proc: subprocess.Popen[bytes] | None,
    pid: int,
    check: Callable[[Config], bool] | None = None,
) -> None:
    timeout = cfg.timeout(name)
    say(f"waiting for {name} (up to {timeout:.0f}s)…")
    started = time.monotonic()
    deadline = started + timeout
    check = check or HEALTH[kind_of(name)]
    while True:
        if check(cfg):
            say(f"{name} healthy{where(cfg, name)} ({time.monotonic() - started:.1f}s)")
            return
        exited = proc.poll() if proc is not None else (None if alive(pid) else "?")
        if exited is not None:
            cfg.pidfile(name).unlink(missing_ok=True)
            raise StackError(
                f"{name} exited (status {exited}) before becoming healthy; last log lines:\n"
                f"{tail(cfg.log(name))}",
                f"full log: {cfg.log(name)}",
            )
        if time.monotonic() > deadline:
            say(f"{name} not healthy after {timeout:.0f}s; stopping it")
            stop_processes(cfg, [name], lambda n: STOP_TIMEOUT.get(n, APP_STOP_TIMEOUT))
            raise StackError(
                f"{name} did not become healthy within {timeout:.0f}s; last log lines:\n"
                f"{tail(cfg.log(name))}",
                f"full log: {cfg.log(name)}; a slow machine can use --timeout-scale 3",
            )
        time.sleep(0.25)
