"""The stack's settings and its state folder: ports, paths, timeouts, the lock, shared helpers.

Every other module of the package builds on this one (and on nothing else of the package), so it
holds what they all share: `Config`, `StackError`, `say`, and the layout of the state folder.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[2]
DEFAULT_STATE_DIR = PROJECT / ".stack"

HOST = "127.0.0.1"
DEFAULT_PORTS: dict[str, int] = {
    "kafka": 9092,
    "controller": 9093,
    "postgres": 5432,
    "redis": 6379,
    "banksim": 1080,
    "api": 8000,
}
# Off unless given: a second broker listener (`kafka_proxied`) that Kafka advertises at
# `kafka_proxy`, where a TCP proxy forwards to it, so that a client bootstrapped at the proxy keeps
# every connection on it (the chaos suite's API-Kafka link; the test stack always has them).
OPTIONAL_PORTS: tuple[str, ...] = ("kafka_proxied", "kafka_proxy")
PG_USER = "payment_user"  # the runtime role every process connects as
PG_OWNER = "payment_owner"  # owns the database and its tables; only `migrate` connects as it
PG_DB = "payment_db"

INFRA = ("postgres", "redis", "kafka")
APPS = ("banksim", "processor", "dispatcher", "api")
ALL = INFRA + APPS
# Seconds to wait for each process to become healthy, and to exit after the polite signal.
# Apps that may run as several instances: `api`, `api-1`, ... (the first keeps the plain name),
# counted by these variables (default 1). API instances share the API port (SO_REUSEPORT), each
# with its own reply partition; processors share the consumer group and split the partitions.
SCALED = {"api": "STACK_APIS", "processor": "STACK_PROCESSORS"}
START_TIMEOUT = {"kafka": 90.0, "postgres": 60.0, "redis": 20.0, "banksim": 30.0, "api": 60.0}
STOP_TIMEOUT = {"kafka": 60.0, "postgres": 30.0, "redis": 10.0}
APP_STOP_TIMEOUT = 20.0


def kind_of(name: str) -> str:
    """The app an instance name runs: `api-1` -> `api`."""
    return name.partition("-")[0]


def instance_index(name: str) -> int:
    """`api` -> 0, `api-2` -> 2."""
    index = name.partition("-")[2]
    return int(index) if index.isdigit() else 0


def instance_count(kind: str) -> int:
    """How many instances of `kind` the stack runs (`STACK_APIS`, `STACK_PROCESSORS`)."""
    variable = SCALED.get(kind)
    raw = os.environ.get(variable, "1") if variable else "1"
    if not raw.isdigit() or int(raw) < 1:
        raise StackError(f"{variable}={raw!r}: give a whole number of instances, at least 1")
    return int(raw)


def instance_names(kind: str) -> list[str]:
    """The configured instances of `kind`, in start order."""
    return [kind if i == 0 else f"{kind}-{i}" for i in range(instance_count(kind))]


class StackError(Exception):
    """A failure with what went wrong and what to do about it."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.hint = hint


def say(message: str) -> None:
    """A progress line on stdout, prefixed `[stack]`."""
    print(f"[stack] {message}", flush=True)


@dataclass(frozen=True)
class Config:
    """One stack: its state folder, its ports, and how the commands behave."""

    dir: Path
    ports: dict[str, int]
    install: bool = True
    timeout_scale: float = 1.0

    @property
    def logs(self) -> Path:
        return self.dir / "logs"

    @property
    def pids(self) -> Path:
        return self.dir / "pids"

    @property
    def local_env(self) -> Path:
        """What every process of the stack reads: URLs and shared secrets, no private key."""
        return self.dir / "local.env"

    @property
    def owner_env(self) -> Path:
        """What only `migrate` gets: the database owner's password and URL."""
        return self.dir / "owner.env"

    @property
    def processor_env(self) -> Path:
        """What only the processor (and the card-key tasks) gets: where its private keys are."""
        return self.dir / "processor.env"

    @property
    def card_keys(self) -> Path:
        """The processor's card key directory (mode 0700, `payment-service cards keys ...`)."""
        return self.dir / "card-keys"

    @property
    def signing_keys(self) -> Path:
        """The message-layer key pairs (`payment-service signing init`): the API's private
        command key and the processor's private result key (0600 each), and their public keys."""
        return self.dir / "signing-keys"

    @property
    def card_public_key(self) -> Path:
        """The current card public key, published for the API (`CARD_PUBLIC_KEY_FILE`)."""
        return self.dir / "card-public-key.json"

    def log(self, name: str) -> Path:
        return self.logs / f"{name}.log"

    def pidfile(self, name: str) -> Path:
        return self.pids / f"{name}.pid"

    def timeout(self, name: str) -> float:
        return START_TIMEOUT.get(kind_of(name), 30.0) * self.timeout_scale

    def recorded_instances(self, kind: str) -> list[str]:
        """Instances of `kind` beyond the first with a pid file (started with a larger count)."""
        found = (p.name.removesuffix(".pid") for p in self.pids.glob(f"{kind}-*.pid"))
        extra = [n for n in found if not n.endswith(".child") and instance_index(n) > 0]
        return sorted(extra, key=instance_index)

    def instances(self, kind: str) -> list[str]:
        """The configured instances of `kind` and any others still recorded as running."""
        names = instance_names(kind)
        return names + [n for n in self.recorded_instances(kind) if n not in names]


def load_config(args: argparse.Namespace) -> Config:
    """Ports from the options, else `API_PORT`/`BANKSIM_PORT`, else ports.json, else defaults."""
    state = Path(args.dir).resolve() if args.dir else DEFAULT_STATE_DIR
    saved: dict[str, int] = {}
    with contextlib.suppress(OSError, ValueError):
        saved = {k: int(v) for k, v in json.loads((state / "ports.json").read_text()).items()}
    ports: dict[str, int] = {}
    for name, default in DEFAULT_PORTS.items():
        option = getattr(args, f"{name}_port", None)
        env = os.environ.get(f"{name.upper()}_PORT") if name in ("api", "banksim") else None
        ports[name] = int(option or env or saved.get(name) or default)
    for name in OPTIONAL_PORTS:
        if value := getattr(args, f"{name}_port", None) or saved.get(name):
            ports[name] = int(value)
    if not getattr(args, "controller_port", None) and (
        getattr(args, "kafka_port", None) or "controller" not in saved
    ):
        ports["controller"] = ports["kafka"] + 1
    if ports["controller"] == ports["kafka"]:
        raise StackError("the Kafka controller port must differ from the Kafka port")
    return Config(
        dir=state,
        ports=ports,
        install=not getattr(args, "no_install", False),
        timeout_scale=getattr(args, "timeout_scale", 1.0) or 1.0,
    )


def save_ports(cfg: Config) -> None:
    write_atomic(cfg.dir / "ports.json", json.dumps(cfg.ports, indent=2, sort_keys=True) + "\n")


def write_atomic(path: Path, text: str, mode: int = 0o644) -> None:
    """Replace `path` in one step, created with `mode` (a secret is never readable on the way)."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def prepare_dirs(cfg: Config) -> None:
    for d in (cfg.dir, cfg.logs, cfg.pids):
        d.mkdir(parents=True, exist_ok=True)
    gitignore = cfg.dir / ".gitignore"
    if not gitignore.exists():
        gitignore.write_text("*\n")


@contextlib.contextmanager
def state_lock(cfg: Config) -> Iterator[None]:
    """One stack manager at a time per state folder."""
    prepare_dirs(cfg)
    with open(cfg.dir / ".lock", "w") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            say(f"another stack command is running on {cfg.dir}; waiting for it…")
            fcntl.flock(f, fcntl.LOCK_EX)
        yield


ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")


def tail(path: Path, lines: int = 20) -> str:
    """The last lines of a log, indented, without colour codes: for error messages."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 64 * 1024))
            text = f.read().decode(errors="replace")
    except OSError:
        return f"(no log at {path})"
    text = ANSI_ESCAPE.sub("", text)
    return "\n".join("    " + line for line in text.splitlines()[-lines:])


def where(cfg: Config, name: str) -> str:
    port = cfg.ports.get(name)
    return f" on {HOST}:{port}" if port else ""


def pg_data(cfg: Config) -> Path:
    """The PostgreSQL cluster (here, not in `postgres`: `procs` recognises the server by it)."""
    return cfg.dir / "postgres" / "data"
