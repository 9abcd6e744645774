"""The command line: `install`, `start`, `start-app`, `up`, `stop`, `status`, `logs`, `env`, `exec`.

Each command takes the state folder's lock while it changes anything; failures are `StackError`s,
printed with their hint and exit status 1.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from collections.abc import Callable, Sequence

from .apps import app_env, as_kafka_user, processor_env, start_apps
from .config import (
    ALL,
    APP_STOP_TIMEOUT,
    APPS,
    DEFAULT_PORTS,
    DEFAULT_STATE_DIR,
    HOST,
    INFRA,
    OPTIONAL_PORTS,
    STOP_TIMEOUT,
    Config,
    StackError,
    kind_of,
    load_config,
    prepare_dirs,
    save_ports,
    say,
    state_lock,
    tail,
)
from .env import ensure_local_env, read_env_file
from .kafka import start_kafka
from .kafka_jars import kafka_libs_dir
from .kafka_users import USERS, ensure_credentials
from .postgres import start_postgres
from .probes import HEALTH
from .procs import recorded_pid, stop_processes
from .redis import start_redis
from .supervise import restart_record
from .system import install

DESCRIPTION = (
    "Native local stack: Apache Kafka (KRaft), PostgreSQL and Redis, plus the service's own "
    "processes."
)


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
        kinds = [n for n in ("api", "dispatcher", "processor", "banksim") if n in names]
        apps = [i for kind in kinds for i in cfg.instances(kind)]
        stop_processes(cfg, apps, lambda n: APP_STOP_TIMEOUT)
        stop_processes(cfg, [n for n in INFRA if n in names], lambda n: STOP_TIMEOUT[n])
    left = [i for n in names for i in cfg.instances(n) if recorded_pid(cfg, i)]
    if left:
        raise StackError(f"still running: {', '.join(left)}")
    say("stopped" + ("" if args.only else " everything"))
    return 0


def cmd_status(cfg: Config, args: argparse.Namespace) -> int:
    all_ok = True
    print(f"state folder: {cfg.dir}")
    for name in (i for kind in ALL for i in cfg.instances(kind)):
        kind = kind_of(name)
        pid = recorded_pid(cfg, name) if cfg.dir.exists() else None
        port = cfg.ports.get(kind)
        where_ = f"{HOST}:{port}" if port else "-"
        if pid is None:
            state = "stopped"
            all_ok = all_ok and kind in APPS
        elif kind in HEALTH:
            healthy = HEALTH[kind](cfg)
            state = "running, healthy" if healthy else "running, NOT healthy"
            all_ok = all_ok and healthy
        else:
            state = "running"
        print(f"  {name:<12} {state:<22} pid {pid or '-':<8} {where_}{restarts(cfg, name)}")
    if args.check and not all_ok:
        return 1
    return 0


def restarts(cfg: Config, name: str) -> str:
    """`  restarts N (last exit S at T)` for a supervised app that was restarted."""
    record = restart_record(cfg.dir, name) if kind_of(name) in APPS else {}
    if not record:
        return ""
    last = f"last exit {record['last_exit']} at {record['last_exit_at']}"
    return f"  restarts {record['count']} ({last})"


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
        keys = ("POSTGRES_PASSWORD", "SECRET_KEY", "CARD_FINGERPRINT_KEY")
        users = ensure_credentials(cfg)
        values = {k: values[k] for k in keys}
        values.update({f"KAFKA_{name.upper()}_PASSWORD": users[name] for name in USERS})
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
    base = processor_env(cfg) if args.processor else app_env(cfg)
    env = as_kafka_user(cfg, base, args.kafka_user)
    os.execvpe(command[0], command, env)  # noqa: S606


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
    for name in OPTIONAL_PORTS:
        common.add_argument(
            f"--{name.replace('_', '-')}-port",
            type=int,
            help="off by default: "
            + (
                "a second Kafka listener"
                if name == "kafka_proxied"
                else "where Kafka advertises it"
            ),
        )
    common.add_argument(
        "--timeout-scale", type=float, default=1.0, help="multiply every health-check deadline"
    )
    common.add_argument(
        "--no-install", action="store_true", help="do not install missing packages or jars"
    )
    p = argparse.ArgumentParser(prog="stack.py", description=DESCRIPTION)
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
    ex.add_argument(
        "--kafka-user",
        default="ops",
        choices=[u for u in USERS if u != "controller"],
        help="the Kafka user the command logs in as (default ops, the operators' principal)",
    )
    ex.add_argument(
        "--processor",
        action="store_true",
        help="with the processor's variables too (its private card keys: rewrap, rotate...)",
    )
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
