#!/usr/bin/env python3
"""Native local stack: Apache Kafka (KRaft), PostgreSQL and Redis, plus the service's own processes.

No Docker engine is needed (DESIGN.md §6). Standard library only: it runs before `.venv` exists.

    python3 scripts/stack.py install          # apt packages that are missing + the Kafka jars
    python3 scripts/stack.py start            # kafka, postgres, redis (idempotent)
    python3 scripts/stack.py start-app        # migrate, topics, banksim, processor, api
    python3 scripts/stack.py up               # install + start + start-app, waits for /health
    python3 scripts/stack.py stop | status | logs [-f] | env [--export] | exec -- CMD...

Everything lives in one state folder (default `<project>/.stack`, `--dir` to change):

    local.env            generated connection URLs and development secrets (mode 0600)
    ports.json           the ports last used, reused when no port option is given
    logs/<name>.log      one log per process (kafka, postgres, redis, banksim, processor, api)
    pids/<name>.pid      the process ids this script started; `stop` stops exactly these
    kafka/               server.properties, log4j2.properties, data/ (KRaft log dirs)
    postgres/            data/ (the cluster, owned by the `postgres` user when run as root), run/
    redis/               redis.conf (no persistence)

Kafka jars are fetched once with Maven into a cache shared by every state folder and clone:
`$PAYMENT_SERVICE_CACHE` or `~/.cache/payment-service/kafka-<version>-<pom hash>/libs`.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import fcntl
import hashlib
import json
import os
import pwd
import re
import secrets
import shlex
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PROJECT = Path(__file__).resolve().parent.parent
DEFAULT_STATE_DIR = PROJECT / ".stack"
KAFKA_POM = PROJECT / "stack" / "kafka" / "pom.xml"
KAFKA_LOG4J_TEMPLATE = PROJECT / "stack" / "kafka" / "log4j2.properties"
APP_BIN = PROJECT / ".venv" / "bin" / "payment-service"

HOST = "127.0.0.1"
DEFAULT_PORTS: dict[str, int] = {
    "kafka": 9092,
    "controller": 9093,
    "postgres": 5432,
    "redis": 6379,
    "banksim": 1080,
    "api": 8000,
}
PG_USER = "payment_user"
PG_DB = "payment_db"
KAFKA_HEAP = ["-Xms256m", "-Xmx512m"]
# The distribution's kafka-run-class.sh performance options.
KAFKA_JVM_OPTS = [
    "-server",
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:InitiatingHeapOccupancyPercent=35",
    "-XX:+ExplicitGCInvokesConcurrent",
    "-XX:MaxInlineLevel=15",
    "-Djava.awt.headless=true",
]

INFRA = ("postgres", "redis", "kafka")
APPS = ("banksim", "processor", "api")
ALL = INFRA + APPS
# Seconds to wait for each process to become healthy, and to exit after the polite signal.
START_TIMEOUT = {"kafka": 90.0, "postgres": 60.0, "redis": 20.0, "banksim": 30.0, "api": 60.0}
STOP_TIMEOUT = {"kafka": 60.0, "postgres": 30.0, "redis": 10.0}
APP_STOP_TIMEOUT = 20.0
# PostgreSQL's fast shutdown is SIGINT (SIGTERM would wait for every client to disconnect).
STOP_SIGNAL = {"postgres": signal.SIGINT}


class StackError(Exception):
    """A failure with what went wrong and what to do about it."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.hint = hint


def say(message: str) -> None:
    print(f"[stack] {message}", flush=True)


# --------------------------------------------------------------------------------------------
# Configuration and state folder


@dataclass(frozen=True)
class Config:
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
        return self.dir / "local.env"

    def log(self, name: str) -> Path:
        return self.logs / f"{name}.log"

    def pidfile(self, name: str) -> Path:
        return self.pids / f"{name}.pid"

    def timeout(self, name: str) -> float:
        return START_TIMEOUT.get(name, 30.0) * self.timeout_scale


def load_config(args: argparse.Namespace) -> Config:
    state = Path(args.dir).resolve() if args.dir else DEFAULT_STATE_DIR
    saved: dict[str, int] = {}
    with contextlib.suppress(OSError, ValueError):
        saved = {k: int(v) for k, v in json.loads((state / "ports.json").read_text()).items()}
    ports: dict[str, int] = {}
    for name, default in DEFAULT_PORTS.items():
        option = getattr(args, f"{name}_port", None)
        env = os.environ.get(f"{name.upper()}_PORT") if name in ("api", "banksim") else None
        ports[name] = int(option or env or saved.get(name) or default)
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
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def read_env_file(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    with contextlib.suppress(FileNotFoundError):
        for line in path.read_text(encoding="utf-8").splitlines():
            line = line.strip()
            if line and not line.startswith("#") and "=" in line:
                key, _, value = line.partition("=")
                values[key.strip()] = value.strip()
    return values


def ensure_local_env(cfg: Config) -> dict[str, str]:
    """Write `<dir>/local.env`: URLs for the current ports, secrets generated once and kept."""
    old = read_env_file(cfg.local_env)
    password = old.get("POSTGRES_PASSWORD") or secrets.token_urlsafe(24)
    secret_key = old.get("SECRET_KEY") or secrets.token_urlsafe(32)
    encryption_key = old.get("ENCRYPTION_KEY") or (
        "k1:" + base64.b64encode(secrets.token_bytes(32)).decode()
    )
    p = cfg.ports
    values = {
        "ENVIRONMENT": old.get("ENVIRONMENT", "development"),
        "DATABASE_URL": f"postgresql://{PG_USER}:{password}@{HOST}:{p['postgres']}/{PG_DB}",
        "REDIS_URL": f"redis://{HOST}:{p['redis']}/0",
        "KAFKA_BOOTSTRAP_SERVERS": f"{HOST}:{p['kafka']}",
        "BANKING_API_URL": f"http://{HOST}:{p['banksim']}",
        "API_PORT": str(p["api"]),
        "BANKSIM_PORT": str(p["banksim"]),
        "SECRET_KEY": secret_key,
        "ENCRYPTION_KEY": encryption_key,
        "POSTGRES_PASSWORD": password,
    }
    header = (
        f"# Written by scripts/stack.py for the local stack in {cfg.dir}.\n"
        "# Development-only secrets generated on first start and kept; never commit this file.\n"
    )
    text = header + "".join(f"{k}={v}\n" for k, v in values.items())
    if not cfg.local_env.exists() or cfg.local_env.read_text(encoding="utf-8") != text:
        write_atomic(cfg.local_env, text, mode=0o600)
    return values


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


# --------------------------------------------------------------------------------------------
# Installing what is missing


def pg_bin_dir() -> Path | None:
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    if candidates:
        return candidates[-1].parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def java_bin() -> str | None:
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").exists():
        return str(Path(home) / "bin" / "java")
    return shutil.which("java")


def missing_packages() -> list[str]:
    missing = []
    if pg_bin_dir() is None:
        missing.append("postgresql")
    if not shutil.which("redis-server"):
        missing.append("redis-server")
    if java_bin() is None:
        missing.append("openjdk-17-jre-headless")
    if not shutil.which("mvn"):
        missing.append("maven")
    if not shutil.which("make"):
        missing.append("make")
    return missing


def apt_install(packages: Sequence[str]) -> None:
    """apt-get install, with Debian's service auto-start held off (they would take our ports)."""
    prefix: list[str] = []
    if os.geteuid() != 0:
        if shutil.which("sudo") and subprocess.run(["sudo", "-n", "true"]).returncode == 0:
            prefix = ["sudo", "-n"]
        else:
            retry = f"sudo apt-get update && sudo apt-get install -y {' '.join(packages)}"
            raise StackError(f"missing system packages: {', '.join(packages)}", f"run: {retry}")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    policy = Path("/usr/sbin/policy-rc.d")
    made_policy = False
    if os.geteuid() == 0 and not policy.exists():
        # Debian's convention: exit 101 means "do not start services from maintainer scripts".
        policy.write_text("#!/bin/sh\nexit 101\n")
        policy.chmod(0o755)
        made_policy = True
    try:
        for cmd in (
            [*prefix, "apt-get", "update", "-q"],
            [*prefix, "apt-get", "install", "-y", "-q", "--no-install-recommends", *packages],
        ):
            say("running: " + " ".join(cmd))
            if subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL).returncode != 0:
                raise StackError(
                    f"`{' '.join(cmd)}` failed",
                    "check the network access to Debian's package mirror, then retry: "
                    "python3 scripts/stack.py install",
                )
    finally:
        if made_policy:
            policy.unlink(missing_ok=True)


def cache_root() -> Path:
    if os.environ.get("PAYMENT_SERVICE_CACHE"):
        return Path(os.environ["PAYMENT_SERVICE_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "payment-service"


def kafka_version() -> str:
    match = re.search(r"<kafka.version>([^<]+)</kafka.version>", KAFKA_POM.read_text())
    if not match:
        raise StackError(f"no <kafka.version> in {KAFKA_POM}")
    return match.group(1).strip()


def kafka_libs_dir() -> Path:
    digest = hashlib.sha256(KAFKA_POM.read_bytes()).hexdigest()[:10]
    return cache_root() / f"kafka-{kafka_version()}-{digest}" / "libs"


def ensure_kafka_libs() -> Path:
    libs = kafka_libs_dir()
    marker = libs.parent / "complete"
    if marker.exists() and libs.is_dir():
        return libs
    if not shutil.which("mvn"):
        raise StackError("Maven (mvn) is not installed", "run: python3 scripts/stack.py install")
    libs.parent.mkdir(parents=True, exist_ok=True)
    tmp = libs.parent / f"libs.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    mvn_log = libs.parent / "mvn.log"
    cmd = [
        "mvn",
        "-q",
        "-B",
        "-Dstyle.color=never",
        "-f",
        str(KAFKA_POM),
        "dependency:copy-dependencies",
        f"-DoutputDirectory={tmp}",
    ]
    say(
        f"downloading Apache Kafka {kafka_version()} jars from Maven Central into {libs} "
        "(first time only)…"
    )
    started = time.monotonic()
    with open(mvn_log, "wb") as log:
        rc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=libs.parent).returncode
    if rc != 0 or not list(tmp.glob("kafka_2.13-*.jar")):
        shutil.rmtree(tmp, ignore_errors=True)
        raise StackError(
            f"Maven could not fetch the Kafka jars (exit {rc})\n{tail(mvn_log, 15)}",
            f"full log: {mvn_log}\nretry: {shlex.join(cmd[:-1])} -DoutputDirectory={libs}\n"
            "or simply run again: python3 scripts/stack.py install",
        )
    shutil.rmtree(libs, ignore_errors=True)
    tmp.rename(libs)
    jars = len(list(libs.glob("*.jar")))
    marker.write_text(f"{jars} jars in {time.monotonic() - started:.1f}s\n")
    say(f"fetched {jars} jars in {time.monotonic() - started:.1f}s")
    return libs


def install(cfg: Config | None = None) -> Path:
    missing = missing_packages()
    if missing:
        say(f"installing missing system packages: {', '.join(missing)}…")
        apt_install(missing)
        still = missing_packages()
        if still:
            raise StackError(f"still missing after apt-get install: {', '.join(still)}")
    return ensure_kafka_libs()


# --------------------------------------------------------------------------------------------
# Processes: launch, identify, stop


def proc_state(pid: int) -> str | None:
    """The process state letter, or None when there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return stat[stat.rindex(")") + 2 :].split()[0]


def proc_pgid(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return int(stat[stat.rindex(")") + 2 :].split()[2])


def alive(pid: int) -> bool:
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)  # reap our own child if it has exited
    state = proc_state(pid)
    return state is not None and state not in ("Z", "X")


def cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [a.decode(errors="replace") for a in raw.split(b"\0") if a]


def environ(pid: int) -> dict[str, str]:
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return {}
    out = {}
    for item in raw.split(b"\0"):
        key, sep, value = item.partition(b"=")
        if sep:
            out[key.decode(errors="replace")] = value.decode(errors="replace")
    return out


def expected_process(cfg: Config, name: str, pid: int) -> bool:
    """Does `pid` still run the command this script started for `name` in this state folder?"""
    argv = cmdline(pid)
    if not argv:
        return False
    if name == "kafka":
        return "kafka.Kafka" in argv and str(cfg.dir / "kafka" / "server.properties") in argv
    if name == "postgres":
        return Path(argv[0]).name in ("postgres", "postmaster") and str(pg_data(cfg)) in argv
    if name == "redis":
        conf = str(cfg.dir / "redis" / "redis.conf")
        return Path(argv[0]).name == "redis-server" and conf in argv
    if name in APPS:
        return (
            any(Path(a).name == "payment-service" for a in argv)
            and name in argv
            and environ(pid).get("PAYMENT_STACK_DIR") == str(cfg.dir)
        )
    return False


def recorded_pid(cfg: Config, name: str) -> int | None:
    """The pid recorded for `name` if that process is still ours; stale records are removed."""
    path = cfg.pidfile(name)
    try:
        pid = int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    if alive(pid) and expected_process(cfg, name, pid):
        return pid
    path.unlink(missing_ok=True)
    return None


def launch(
    cfg: Config,
    name: str,
    argv: list[str],
    *,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    user: str | None = None,
) -> subprocess.Popen[bytes]:
    log_path = cfg.log(name)
    with open(log_path, "ab") as log:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        log.write(f"\n===== {stamp} stack.py started: {shlex.join(argv)}\n".encode())
        log.flush()
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=cwd or cfg.dir,
            env=env,
            start_new_session=True,  # own process group: `stop` can clean up its children
            user=user,
            group=user,
            extra_groups=[] if user else None,
        )
    write_atomic(cfg.pidfile(name), f"{proc.pid}\n")
    return proc


def group_members(pgid: int) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and proc_pgid(int(entry.name)) == pgid:
            pids.append(int(entry.name))
    return pids


def stop_processes(cfg: Config, names: Sequence[str], timeout: Callable[[str], float]) -> None:
    """SIGTERM (SIGINT for PostgreSQL) the recorded pids, wait, then SIGKILL what is left."""
    running = {}
    for name in names:
        pid = recorded_pid(cfg, name)
        if pid is None:
            continue
        say(f"stopping {name} (pid {pid})…")
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, STOP_SIGNAL.get(name, signal.SIGTERM))
        running[name] = pid
    deadline = {n: time.monotonic() + timeout(n) for n in running}
    while running:
        for name, pid in list(running.items()):
            if not alive(pid):
                del running[name]
                kill_group_leftovers(pid)
                cfg.pidfile(name).unlink(missing_ok=True)
                say(f"{name} stopped")
            elif time.monotonic() > deadline[name]:
                say(f"{name} (pid {pid}) did not exit in {timeout(name):.0f}s; sending SIGKILL")
                with contextlib.suppress(ProcessLookupError):
                    if proc_pgid(pid) == pid:
                        os.killpg(pid, signal.SIGKILL)
                    else:
                        os.kill(pid, signal.SIGKILL)
                deadline[name] = time.monotonic() + 10
        time.sleep(0.1)


def kill_group_leftovers(leader: int) -> None:
    """Children left in the (dead) leader's process group: ours by construction."""
    for pid in group_members(leader):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


# --------------------------------------------------------------------------------------------
# Ports and health checks


def port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((HOST, port))
        except OSError:
            return True
    return False


def port_owner(port: int) -> str:
    """'pid N (command)' of whoever listens on the port, when /proc tells."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "0A":
                    inodes.add(fields[9])
    if not inodes:
        return "another process"
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            for fd in (entry / "fd").iterdir():
                link = os.readlink(fd)
                if link.startswith("socket:[") and link[8:-1] in inodes:
                    cmd = " ".join(cmdline(int(entry.name)))[:120]
                    return f"pid {entry.name} ({cmd})"
    return "another process"


def check_ports_free(cfg: Config, name: str, ports: dict[str, int]) -> None:
    for label, port in ports.items():
        if port_in_use(port):
            option = {"controller": "--controller-port"}.get(label, f"--{label}-port")
            raise StackError(
                f"cannot start {name}: port {port} ({label}) on {HOST} is already in use by "
                f"{port_owner(port)}",
                f"stop that process, or choose another port: python3 scripts/stack.py start "
                f"{option} <port>  (with make: make up STACK_ARGS='{option} <port>')",
            )


def tcp_open(port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=timeout):
            return True
    except OSError:
        return False


def kafka_metadata(port: int, timeout: float = 2.0) -> dict[str, Any]:
    """A real Kafka Metadata request (v4, the oldest Kafka 4 still serves) over a raw socket."""
    client_id = b"stack.py"
    header = struct.pack(">hhih", 3, 4, 1, len(client_id)) + client_id
    body = struct.pack(">i", -1) + b"\x00"  # all topics, allow_auto_topic_creation=false
    request = header + body
    with socket.create_connection((HOST, port), timeout=timeout) as s:
        s.sendall(struct.pack(">i", len(request)) + request)
        size = struct.unpack(">i", recv_exact(s, 4))[0]
        data = recv_exact(s, size)
    pos = 8  # correlation id, throttle time

    def i32() -> int:
        nonlocal pos
        value = struct.unpack_from(">i", data, pos)[0]
        pos += 4
        return int(value)

    def string() -> str | None:
        nonlocal pos
        n = struct.unpack_from(">h", data, pos)[0]
        pos += 2
        if n < 0:
            return None
        value = data[pos : pos + n].decode()
        pos += n
        return value

    brokers = []
    for _ in range(i32()):
        node, host, bport, _rack = i32(), string(), i32(), string()
        brokers.append((node, host, bport))
    cluster_id = string()
    controller = i32()
    return {"brokers": brokers, "cluster_id": cluster_id, "controller": controller}


def recv_exact(s: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise OSError("connection closed")
        buf += chunk
    return buf


def kafka_healthy(cfg: Config) -> bool:
    try:
        meta = kafka_metadata(cfg.ports["kafka"])
    except (OSError, struct.error, UnicodeDecodeError):
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


ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")


def tail(path: Path, lines: int = 20) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 64 * 1024))
            text = f.read().decode(errors="replace")
    except OSError:
        return f"(no log at {path})"
    text = ANSI_ESCAPE.sub("", text)
    return "\n".join("    " + line for line in text.splitlines()[-lines:])


def wait_healthy(cfg: Config, name: str, proc: subprocess.Popen[bytes] | None, pid: int) -> None:
    timeout = cfg.timeout(name)
    say(f"waiting for {name} (up to {timeout:.0f}s)…")
    started = time.monotonic()
    deadline = started + timeout
    check = HEALTH[name]
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


def where(cfg: Config, name: str) -> str:
    port = cfg.ports.get(name)
    return f" on {HOST}:{port}" if port else ""


# --------------------------------------------------------------------------------------------
# PostgreSQL


def pg_data(cfg: Config) -> Path:
    return cfg.dir / "postgres" / "data"


def pg_socket_dir(cfg: Config) -> Path:
    """Inside the state folder unless that path is too long for a unix socket (107 bytes)."""
    inside = cfg.dir / "postgres" / "run"
    if len(str(inside / ".s.PGSQL.65535.lock")) <= 100:
        return inside
    digest = hashlib.sha256(str(cfg.dir).encode()).hexdigest()[:10]
    return Path("/tmp") / f"payment-stack-pg-{digest}"  # noqa: S108 - socket path length


def pg_os_user() -> str | None:
    """initdb refuses root: as root the cluster belongs to the `postgres` system user."""
    return "postgres" if os.geteuid() == 0 else None


def pg_superuser() -> str:
    return pg_os_user() or pwd.getpwuid(os.geteuid()).pw_name


def chown_for_pg(path: Path) -> None:
    user = pg_os_user()
    if user:
        pw = pwd.getpwnam(user)
        os.chown(path, pw.pw_uid, pw.pw_gid)


def ensure_traversable(path: Path) -> None:
    """The postgres user must be able to reach its data dir: add o+x to our own parents."""
    if pg_os_user() is None:
        return
    for parent in [path, *path.parents]:
        st = parent.stat()
        if st.st_mode & 0o001:
            continue
        if st.st_uid == os.geteuid():
            say(f"making {parent} traversable (o+x) for the postgres user")
            parent.chmod(st.st_mode | 0o001)
        else:
            raise StackError(
                f"the postgres user cannot reach {path}: {parent} is not traversable",
                "use a state folder under a traversable path: --dir /some/where",
            )


def pg_init(cfg: Config, bindir: Path) -> None:
    data = pg_data(cfg)
    if (data / "PG_VERSION").exists():
        return
    base = data.parent
    base.mkdir(parents=True, exist_ok=True)
    ensure_traversable(base)
    tmp = base / "data.initdb"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(mode=0o700)
    chown_for_pg(tmp)
    say(f"initialising a PostgreSQL cluster in {data}…")
    cmd = [
        str(bindir / "initdb"),
        "-D",
        str(tmp),
        "-U",
        pg_superuser(),
        "--auth-local=peer",
        "--auth-host=scram-sha-256",
        "--encoding=UTF8",
        "--locale=C",
    ]
    with open(cfg.log("postgres"), "ab") as log:
        rc = subprocess.run(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=base,
            user=pg_os_user(),
            group=pg_os_user(),
            extra_groups=[] if pg_os_user() else None,
        ).returncode
    if rc != 0:
        raise StackError(
            f"initdb failed (exit {rc}); last log lines:\n{tail(cfg.log('postgres'))}",
            f"full log: {cfg.log('postgres')}",
        )
    tmp.rename(data)


def start_postgres(cfg: Config, env_values: dict[str, str]) -> None:
    bindir = pg_bin_dir()
    if bindir is None:
        raise StackError("PostgreSQL is not installed", "run: python3 scripts/stack.py install")
    pid = recorded_pid(cfg, "postgres")
    if pid is None:
        check_ports_free(cfg, "postgres", {"postgres": cfg.ports["postgres"]})
        pg_init(cfg, bindir)
        sock = pg_socket_dir(cfg)
        sock.mkdir(parents=True, exist_ok=True, mode=0o700)
        chown_for_pg(sock)
        say(f"starting postgres on {HOST}:{cfg.ports['postgres']}…")
        argv = [
            str(bindir / "postgres"),
            "-D",
            str(pg_data(cfg)),
            "-p",
            str(cfg.ports["postgres"]),
            "-k",
            str(sock),
            "-c",
            f"listen_addresses={HOST}",
            "-c",
            "max_connections=200",
        ]
        proc = launch(cfg, "postgres", argv, cwd=pg_data(cfg).parent, user=pg_os_user())
        wait_healthy(cfg, "postgres", proc, proc.pid)
    elif not postgres_healthy(cfg):
        wait_healthy(cfg, "postgres", None, pid)
    else:
        say(f"postgres already running (pid {pid}) on {HOST}:{cfg.ports['postgres']}")
    pg_ensure_database(cfg, bindir, env_values["POSTGRES_PASSWORD"])


def pg_ensure_database(cfg: Config, bindir: Path, password: str) -> None:
    """Role `payment_user` (password from local.env) and database `payment_db`, idempotently."""
    quoted = password.replace("'", "''")
    # Identifiers are constants and the password is quoted: no injection.
    sql = f"""
SELECT 'CREATE ROLE {PG_USER} LOGIN'
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{PG_USER}')\\gexec
ALTER ROLE {PG_USER} WITH LOGIN PASSWORD '{quoted}';
SELECT 'CREATE DATABASE {PG_DB} OWNER {PG_USER}'
 WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = '{PG_DB}')\\gexec
"""  # noqa: S608
    cmd = [str(bindir / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1"]
    cmd += ["-h", str(pg_socket_dir(cfg)), "-p", str(cfg.ports["postgres"])]
    cmd += ["-U", pg_superuser(), "-d", "postgres", "-f", "-"]
    result = subprocess.run(
        cmd,
        input=sql.encode(),
        capture_output=True,
        cwd="/",
        user=pg_os_user(),
        group=pg_os_user(),
        extra_groups=[] if pg_os_user() else None,
        timeout=60,
    )
    if result.returncode != 0:
        raise StackError(
            f"could not create the role/database: {result.stderr.decode(errors='replace')}",
            f"postgres log: {cfg.log('postgres')}",
        )


# --------------------------------------------------------------------------------------------
# Redis


def start_redis(cfg: Config) -> None:
    exe = shutil.which("redis-server")
    if exe is None:
        raise StackError("redis-server is not installed", "run: python3 scripts/stack.py install")
    pid = recorded_pid(cfg, "redis")
    if pid is not None:
        if redis_healthy(cfg):
            say(f"redis already running (pid {pid}) on {HOST}:{cfg.ports['redis']}")
        else:
            wait_healthy(cfg, "redis", None, pid)
        return
    check_ports_free(cfg, "redis", {"redis": cfg.ports["redis"]})
    rdir = cfg.dir / "redis"
    rdir.mkdir(parents=True, exist_ok=True)
    conf = rdir / "redis.conf"
    conf.write_text(
        "# Written by scripts/stack.py: local development Redis, no disk persistence.\n"
        f"bind {HOST}\n"
        f"port {cfg.ports['redis']}\n"
        "protected-mode yes\n"
        "daemonize no\n"
        "supervised no\n"
        "set-proc-title no\n"
        f'pidfile "{rdir / "redis.pid"}"\n'
        f'dir "{rdir}"\n'
        'logfile ""\n'
        'save ""\n'
        "appendonly no\n"
    )
    say(f"starting redis on {HOST}:{cfg.ports['redis']}…")
    proc = launch(cfg, "redis", [exe, str(conf)], cwd=rdir)
    wait_healthy(cfg, "redis", proc, proc.pid)


# --------------------------------------------------------------------------------------------
# Kafka


def kafka_server_properties(cfg: Config, data: Path) -> str:
    port, cport = cfg.ports["kafka"], cfg.ports["controller"]
    return f"""# Written by scripts/stack.py: one combined KRaft broker+controller (local dev).
process.roles=broker,controller
node.id=1
# A static voter set (not --standalone's dynamic one), so that changing the controller port of an
# existing state folder keeps working.
controller.quorum.voters=1@{HOST}:{cport}
listeners=PLAINTEXT://{HOST}:{port},CONTROLLER://{HOST}:{cport}
advertised.listeners=PLAINTEXT://{HOST}:{port}
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs={data}
# Topics are created explicitly with their partition counts (`payment-service topics`).
auto.create.topics.enable=false
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=10
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
log.retention.hours=168
"""


def kafka_java(cfg: Config, libs: Path, *args: str) -> list[str]:
    java = java_bin()
    if java is None:
        raise StackError("Java is not installed", "run: python3 scripts/stack.py install")
    kdir = cfg.dir / "kafka"
    return [
        java,
        *KAFKA_HEAP,
        *KAFKA_JVM_OPTS,
        f"-Dkafka.logs.dir={cfg.logs}",
        f"-Dlog4j2.configurationFile={kdir / 'log4j2.properties'}",
        "-cp",
        f"{libs}/*",
        *args,
    ]


def start_kafka(cfg: Config, libs: Path) -> None:
    pid = recorded_pid(cfg, "kafka")
    if pid is not None:
        if kafka_healthy(cfg):
            say(f"kafka already running (pid {pid}) on {HOST}:{cfg.ports['kafka']}")
        else:
            wait_healthy(cfg, "kafka", None, pid)
        return
    check_ports_free(
        cfg, "kafka", {"kafka": cfg.ports["kafka"], "controller": cfg.ports["controller"]}
    )
    kdir = cfg.dir / "kafka"
    data = kdir / "data"
    kdir.mkdir(parents=True, exist_ok=True)
    props = kdir / "server.properties"
    props.write_text(kafka_server_properties(cfg, data))
    shutil.copyfile(KAFKA_LOG4J_TEMPLATE, kdir / "log4j2.properties")
    if not (data / "meta.properties").exists():
        cluster_file = kdir / "cluster.id"
        if not cluster_file.exists():
            out = run_tool(cfg, kafka_java(cfg, libs, "kafka.tools.StorageTool", "random-uuid"))
            cluster_file.write_text(out.strip().splitlines()[-1] + "\n")
        cluster_id = cluster_file.read_text().strip()
        say(f"formatting Kafka storage in {data} (cluster id {cluster_id})…")
        run_tool(
            cfg,
            kafka_java(
                cfg,
                libs,
                "kafka.tools.StorageTool",
                "format",
                "--cluster-id",
                cluster_id,
                "--config",
                str(props),
                "--ignore-formatted",
            ),
        )
    say(f"starting kafka on {HOST}:{cfg.ports['kafka']} (controller {cfg.ports['controller']})…")
    proc = launch(cfg, "kafka", kafka_java(cfg, libs, "kafka.Kafka", str(props)), cwd=kdir)
    wait_healthy(cfg, "kafka", proc, proc.pid)


def run_tool(cfg: Config, argv: list[str]) -> str:
    result = subprocess.run(argv, capture_output=True, stdin=subprocess.DEVNULL, timeout=120)
    with open(cfg.log("kafka"), "ab") as log:
        log.write(f"\n===== stack.py ran: {shlex.join(argv[-4:])}\n".encode())
        log.write(result.stdout + result.stderr)
    if result.returncode != 0:
        raise StackError(
            f"Kafka storage tool failed (exit {result.returncode}):\n"
            f"{result.stderr.decode(errors='replace')[-2000:]}",
            f"log: {cfg.log('kafka')}",
        )
    return result.stdout.decode()


# --------------------------------------------------------------------------------------------
# The service's own processes


def app_env(cfg: Config) -> dict[str, str]:
    """The process environment, completed by local.env (explicitly exported variables win)."""
    env = dict(os.environ)
    for key, value in read_env_file(cfg.local_env).items():
        env.setdefault(key, value)
    env["API_PORT"] = str(cfg.ports["api"])
    env["BANKSIM_PORT"] = str(cfg.ports["banksim"])
    env["PAYMENT_STACK_DIR"] = str(cfg.dir)
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def app_bin() -> Path:
    exe = Path(os.environ.get("PAYMENT_SERVICE_BIN", APP_BIN))
    if not exe.exists():
        raise StackError(
            f"{exe} does not exist: the virtual environment is not installed",
            "run: make install",
        )
    return exe


def run_app_task(cfg: Config, task: str, env: dict[str, str]) -> None:
    say(f"running `payment-service {task}`…")
    cmd = [str(app_bin()), task]
    try:
        result = subprocess.run(
            cmd, env=env, cwd=PROJECT, capture_output=True, stdin=subprocess.DEVNULL, timeout=180
        )
    except subprocess.TimeoutExpired as e:
        raise StackError(f"`payment-service {task}` did not finish in 180s") from e
    output = (result.stdout + result.stderr).decode(errors="replace")
    with open(cfg.log(task), "a", encoding="utf-8") as log:
        log.write(f"\n===== {time.strftime('%Y-%m-%d %H:%M:%S')} payment-service {task}\n")
        log.write(output)
    if result.returncode != 0:
        last = "\n".join("    " + line for line in output.strip().splitlines()[-20:])
        raise StackError(
            f"`payment-service {task}` failed (exit {result.returncode}):\n{last}",
            f"log: {cfg.log(task)}; retry: make up",
        )
    for line in result.stdout.decode(errors="replace").strip().splitlines():
        say(f"  {task}: {line}")


def start_apps(cfg: Config, names: Sequence[str]) -> None:
    for name in INFRA:
        if recorded_pid(cfg, name) is None or not HEALTH[name](cfg):
            raise StackError(
                f"{name} is not running; the service needs the whole stack",
                "run: python3 scripts/stack.py start  (or make up)",
            )
    env = app_env(cfg)
    if not all(recorded_pid(cfg, n) for n in names):
        run_app_task(cfg, "migrate", env)
        run_app_task(cfg, "topics", env)
    procs: dict[str, subprocess.Popen[bytes]] = {}
    for name in (n for n in APPS if n in names):
        pid = recorded_pid(cfg, name)
        if pid is not None:
            say(f"{name} already running (pid {pid}){where(cfg, name)}")
            if name in HEALTH and not HEALTH[name](cfg):
                wait_healthy(cfg, name, None, pid)
            continue
        if name in cfg.ports:
            check_ports_free(cfg, name, {name: cfg.ports[name]})
        say(f"starting {name}{where(cfg, name)}…")
        procs[name] = launch(cfg, name, [str(app_bin()), name], env=env, cwd=PROJECT)
        if name in HEALTH:
            wait_healthy(cfg, name, procs[name], procs[name].pid)
    for name, proc in procs.items():
        if proc.poll() is not None:
            cfg.pidfile(name).unlink(missing_ok=True)
            raise StackError(
                f"{name} exited (status {proc.returncode}); last log lines:\n{tail(cfg.log(name))}",
                f"full log: {cfg.log(name)}",
            )


# --------------------------------------------------------------------------------------------
# Commands


def parse_only(value: str | None, allowed: Sequence[str]) -> list[str]:
    if not value:
        return list(allowed)
    names = [n.strip() for n in value.split(",") if n.strip()]
    unknown = [n for n in names if n not in allowed]
    if unknown:
        raise StackError(f"unknown service(s): {', '.join(unknown)}; choose from {list(allowed)}")
    return names


def cmd_install(cfg: Config, args: argparse.Namespace) -> int:
    libs = install(cfg)
    say(f"everything installed; Kafka jars in {libs}")
    return 0


def start_infra(cfg: Config, names: Sequence[str]) -> None:
    libs = install(cfg) if cfg.install else kafka_libs_dir()
    env_values = ensure_local_env(cfg)
    save_ports(cfg)
    if "postgres" in names:
        start_postgres(cfg, env_values)
    if "redis" in names:
        start_redis(cfg)
    if "kafka" in names:
        start_kafka(cfg, libs)


def cmd_start(cfg: Config, args: argparse.Namespace) -> int:
    started = time.monotonic()
    with state_lock(cfg):
        start_infra(cfg, parse_only(args.only, INFRA))
        if args.services:
            start_apps(cfg, APPS)
    say(f"stack ready in {time.monotonic() - started:.1f}s; variables in {cfg.local_env}")
    return 0


def cmd_start_app(cfg: Config, args: argparse.Namespace) -> int:
    with state_lock(cfg):
        start_apps(cfg, parse_only(args.only, APPS))
    return 0


def cmd_up(cfg: Config, args: argparse.Namespace) -> int:
    started = time.monotonic()
    with state_lock(cfg):
        start_infra(cfg, INFRA)
        start_apps(cfg, APPS)
    api = f"http://localhost:{cfg.ports['api']}"
    make_args = "" if cfg.dir == DEFAULT_STATE_DIR else f" STACK_ARGS='--dir {cfg.dir}'"
    print(
        f"""
[stack] everything is up ({time.monotonic() - started:.1f}s)
    API            {api}
    Health         {api}/health
    API docs       {api}/docs
    Bank simulator http://localhost:{cfg.ports["banksim"]}
    Kafka          {HOST}:{cfg.ports["kafka"]}   PostgreSQL {HOST}:{cfg.ports["postgres"]}   \
Redis {HOST}:{cfg.ports["redis"]}
    Variables      {cfg.local_env}
    Logs           {cfg.logs}/   (make logs)
  Get an API key:  make db-seed{make_args}
  Stop everything: make down{make_args}
""",
        flush=True,
    )
    return 0


def cmd_stop(cfg: Config, args: argparse.Namespace) -> int:
    if not cfg.dir.exists():
        say(f"nothing to stop: no state folder {cfg.dir}")
        return 0
    names = parse_only(args.only, ALL)
    with state_lock(cfg):
        apps = [n for n in ("api", "processor", "banksim") if n in names]
        stop_processes(cfg, apps, lambda n: APP_STOP_TIMEOUT)
        stop_processes(cfg, [n for n in INFRA if n in names], lambda n: STOP_TIMEOUT[n])
    left = [n for n in names if recorded_pid(cfg, n)]
    if left:
        raise StackError(f"still running: {', '.join(left)}")
    say("stopped" + ("" if args.only else " everything"))
    return 0


def cmd_status(cfg: Config, args: argparse.Namespace) -> int:
    all_ok = True
    print(f"state folder: {cfg.dir}")
    for name in ALL:
        pid = recorded_pid(cfg, name) if cfg.dir.exists() else None
        port = cfg.ports.get(name)
        where_ = f"{HOST}:{port}" if port else "-"
        if pid is None:
            state = "stopped"
            all_ok = all_ok and name in APPS
        elif name in HEALTH:
            healthy = HEALTH[name](cfg)
            state = "running, healthy" if healthy else "running, NOT healthy"
            all_ok = all_ok and healthy
        else:
            state = "running"
        print(f"  {name:<10} {state:<22} pid {pid or '-':<8} {where_}")
    if args.check and not all_ok:
        return 1
    return 0


def cmd_logs(cfg: Config, args: argparse.Namespace) -> int:
    names = args.names or [p.stem for p in sorted(cfg.logs.glob("*.log"))]
    paths = [cfg.log(n) for n in names if cfg.log(n).exists()]
    if not paths:
        say(f"no logs in {cfg.logs}")
        return 0
    if args.follow:
        os.execvp("tail", ["tail", "-n", str(args.lines), "-F", *map(str, paths)])  # noqa: S606
    for path in paths:
        print(f"==> {path} <==")
        print(tail(path, args.lines))
    return 0


def cmd_env(cfg: Config, args: argparse.Namespace) -> int:
    values = read_env_file(cfg.local_env)
    if not values:
        if not args.docker:
            raise StackError(f"no {cfg.local_env} yet", "run: make up")
        prepare_dirs(cfg)
        values = ensure_local_env(cfg)
    if args.docker:
        keys = ("POSTGRES_PASSWORD", "SECRET_KEY", "ENCRYPTION_KEY")
        values = {k: values[k] for k in keys}
    for key, value in values.items():
        print(f"export {key}={shlex.quote(value)}" if args.export else f"{key}={value}")
    return 0


def cmd_exec(cfg: Config, args: argparse.Namespace) -> int:
    command = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
    if not command:
        raise StackError("exec needs a command: stack.py exec -- pytest tests/e2e")
    missing = [n for n in INFRA if recorded_pid(cfg, n) is None]
    if missing:
        raise StackError(f"the stack is not running ({', '.join(missing)} stopped)", "run: make up")
    os.execvpe(command[0], command, app_env(cfg))  # noqa: S606


def parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--dir", help=f"state folder (default {DEFAULT_STATE_DIR})")
    for name in DEFAULT_PORTS:
        common.add_argument(
            f"--{name}-port",
            type=int,
            help=f"default {DEFAULT_PORTS[name]}"
            + (" (Kafka port + 1 when the Kafka port is given)" if name == "controller" else ""),
        )
    common.add_argument(
        "--timeout-scale", type=float, default=1.0, help="multiply every health-check deadline"
    )
    common.add_argument(
        "--no-install", action="store_true", help="do not install missing packages or jars"
    )
    p = argparse.ArgumentParser(prog="stack.py", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("install", parents=[common], help="install missing packages and Kafka jars")
    start = sub.add_parser("start", parents=[common], help="start kafka, postgres, redis")
    start.add_argument("--only", help="comma-separated subset of kafka,postgres,redis")
    start.add_argument("--services", action="store_true", help="then start the app (start-app)")
    start_app = sub.add_parser(
        "start-app", parents=[common], help="migrate, create topics, start banksim/processor/api"
    )
    start_app.add_argument("--only", help="comma-separated subset of banksim,processor,api")
    sub.add_parser("up", parents=[common], help="install + start + start-app, wait for /health")
    stop = sub.add_parser("stop", parents=[common], help="stop what this script started")
    stop.add_argument("--only", help="comma-separated subset of " + ",".join(ALL))
    status = sub.add_parser("status", parents=[common], help="show processes and health")
    status.add_argument("--check", action="store_true", help="exit 1 unless all infra is healthy")
    logs = sub.add_parser("logs", parents=[common], help="show (or follow) the logs")
    logs.add_argument("names", nargs="*", help="which logs (default: all)")
    logs.add_argument("-n", "--lines", type=int, default=40)
    logs.add_argument("-f", "--follow", action="store_true")
    env = sub.add_parser("env", parents=[common], help="print the running stack's variables")
    env.add_argument("--export", action="store_true", help="as shell `export` lines")
    env.add_argument("--docker", action="store_true", help="only the secrets docker-compose needs")
    ex = sub.add_parser("exec", parents=[common], help="run a command with the stack's variables")
    ex.add_argument("argv", nargs=argparse.REMAINDER, metavar="-- COMMAND")
    return p


COMMANDS: dict[str, Callable[[Config, argparse.Namespace], int]] = {
    "install": cmd_install,
    "start": cmd_start,
    "start-app": cmd_start_app,
    "up": cmd_up,
    "stop": cmd_stop,
    "status": cmd_status,
    "logs": cmd_logs,
    "env": cmd_env,
    "exec": cmd_exec,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        cfg = load_config(args)
        return COMMANDS[args.command](cfg, args)
    except StackError as e:
        print(f"[stack] FAILED: {e}", file=sys.stderr, flush=True)
        if e.hint:
            for line in e.hint.splitlines():
                print(f"[stack]   → {line}", file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:
        print("[stack] interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
