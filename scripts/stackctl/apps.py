"""The service's own processes: `migrate`, `kafka bootstrap` and `topics`, then banksim,
processor, dispatcher (webhooks; PostgreSQL only, no Kafka login) and api.

They run from the project's `.venv` (`PAYMENT_SERVICE_BIN` overrides the executable) with the
stack's variables from `local.env`; variables exported by the caller win, except the Kafka user:
the tasks log in as `admin`, the processor as `processor`, the API as `api` (`KAFKA_AS`).
Before the first start `payment-service cards keys init` makes the processor's card key pair
(once) and publishes its public key. Only the processor gets `processor.env` (its private key
directory): the API and the bank simulator never see it, and the API refuses to start if they did.
Only `migrate` gets `owner.env` (the database owner's URL): no running process can alter the
audit log.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from .config import (
    APPS,
    INFRA,
    PROJECT,
    Config,
    StackError,
    instance_count,
    instance_index,
    instance_names,
    kind_of,
    say,
    tail,
    where,
)
from .env import api_env, read_env_file
from .kafka_users import CREDENTIAL_VARS, credentials_file, principal_env
from .ports import check_ports_free
from .probes import HEALTH, api_instance_answers, wait_healthy
from .procs import launch, recorded_pid

APP_BIN = PROJECT / ".venv" / "bin" / "payment-service"
# Run as a file: it imports nothing, and `-m` would import this package before it.
SUPERVISOR = Path(__file__).with_name("supervise.py")
# Which Kafka user each process logs in as (banksim uses no Kafka: none).
KAFKA_AS = {"processor": "processor", "api": "api"}


def app_env(cfg: Config) -> dict[str, str]:
    """The process environment, completed by local.env (explicitly exported variables win)."""
    env = dict(os.environ)
    for key, value in read_env_file(cfg.local_env).items():
        env.setdefault(key, value)
    env["API_PORT"] = str(cfg.ports["api"])
    env["BANKSIM_PORT"] = str(cfg.ports["banksim"])
    env["PAYMENT_STACK_DIR"] = str(cfg.dir)
    # The bank simulator's books (SQLite) live with the rest of the stack's state.
    env.setdefault("BANKSIM_LEDGER_PATH", str(cfg.dir / "banksim" / "ledger.sqlite3"))
    env.setdefault("PYTHONUNBUFFERED", "1")
    # A development stack: webhooks may go to a receiver on this machine (docs/webhooks.md).
    env.setdefault("WEBHOOKS_ALLOW_PRIVATE_URLS", "true")
    return env


def processor_env(cfg: Config) -> dict[str, str]:
    """`app_env` plus `processor.env`: for the processor and the card-key tasks only."""
    env = app_env(cfg)
    for key, value in read_env_file(cfg.processor_env).items():
        env.setdefault(key, value)
    return env


def owner_env(cfg: Config) -> dict[str, str]:
    """`app_env` plus the database owner's URL: for `migrate` only."""
    env = app_env(cfg)
    env.setdefault("DATABASE_MIGRATION_URL", read_env_file(cfg.owner_env)["DATABASE_MIGRATION_URL"])
    return env


def api_instance_env(env: dict[str, str], name: str) -> dict[str, str]:
    """An API instance's reply partition (after an exported `API_INSTANCE`, the first's) and
    SO_REUSEPORT, for every instance: one started alone can then be joined by more later (a
    later `STACK_APIS=2 make up`), and they bind beside it. The first instance's port is
    checked free before it starts (`check_ports_free`), so a foreign holder still fails loudly."""
    first = int(env.get("API_INSTANCE", "0"))
    return {"API_INSTANCE": str(first + instance_index(name)), "API_REUSE_PORT": "true"}


def own_check(kind: str, env: dict[str, str], scaled: bool) -> Callable[[Config], bool] | None:
    """With several APIs on one port, wait for this one's own answer (not any instance's)."""
    if kind != "api" or not scaled:
        return None
    partition = int(env["API_INSTANCE"])
    return lambda cfg: api_instance_answers(cfg, partition)


def app_bin() -> Path:
    exe = Path(os.environ.get("PAYMENT_SERVICE_BIN", APP_BIN))
    if not exe.exists():
        raise StackError(
            f"{exe} does not exist: the virtual environment is not installed",
            "run: make install",
        )
    return exe


def as_kafka_user(cfg: Config, env: dict[str, str], user: str | None) -> dict[str, str]:
    """`env` with the Kafka login of `user` (and no other's)."""
    env = {k: v for k, v in env.items() if k not in CREDENTIAL_VARS}
    return {**env, **principal_env(cfg, user)} if user else env


def run_app_task(cfg: Config, task: str, env: dict[str, str], *args: str) -> None:
    say(f"running `payment-service {task}`…")
    cmd = [str(app_bin()), *task.split(), *args]
    log_path = cfg.log(task.replace(" ", "-"))
    try:
        result = subprocess.run(
            cmd, env=env, cwd=PROJECT, capture_output=True, stdin=subprocess.DEVNULL, timeout=180
        )
    except subprocess.TimeoutExpired as e:
        raise StackError(f"`payment-service {task}` did not finish in 180s") from e
    output = (result.stdout + result.stderr).decode(errors="replace")
    with open(log_path, "a", encoding="utf-8") as log:
        log.write(f"\n===== {time.strftime('%Y-%m-%d %H:%M:%S')} payment-service {task}\n")
        log.write(output)
    if result.returncode != 0:
        last = "\n".join("    " + line for line in output.strip().splitlines()[-20:])
        raise StackError(
            f"`payment-service {task}` failed (exit {result.returncode}):\n{last}",
            f"log: {log_path}; retry: make up",
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
    if not all(recorded_pid(cfg, i) for n in names for i in instance_names(n)):
        admin = as_kafka_user(cfg, env, "admin")
        run_app_task(cfg, "migrate", owner_env(cfg))
        run_app_task(cfg, "kafka bootstrap", admin, "--credentials", str(credentials_file(cfg)))
        run_app_task(cfg, "topics", admin)
        run_app_task(
            cfg, "cards keys init", processor_env(cfg),
            "--dir", str(cfg.card_keys), "--public-key-file", str(cfg.card_public_key),
        )  # fmt: skip
        run_app_task(cfg, "signing init", env, "--dir", str(cfg.signing_keys))
    procs: dict[str, subprocess.Popen[bytes]] = {}
    scaled = instance_count("api") > 1
    for name in (i for kind in APPS if kind in names for i in instance_names(kind)):
        kind = kind_of(name)
        pid = recorded_pid(cfg, name)
        if pid is not None:
            say(f"{name} already running (pid {pid}){where(cfg, kind)}")
            if kind in HEALTH and not HEALTH[kind](cfg):
                wait_healthy(cfg, name, None, pid)
            continue
        if kind in cfg.ports and instance_index(name) == 0:
            check_ports_free(cfg, kind, {kind: cfg.ports[kind]})
        say(f"starting {name}{where(cfg, kind)}…")
        base = processor_env(cfg) if kind == "processor" else env
        if kind == "api":
            base = {**env, **api_env(cfg), **api_instance_env(env, name)}
        own_env = as_kafka_user(cfg, base, KAFKA_AS.get(kind))
        # Under the supervisor (supervise.py), which restarts the app when it exits.
        argv = [sys.executable, str(SUPERVISOR), str(cfg.dir), name, "--", str(app_bin()), kind]
        procs[name] = launch(cfg, name, argv, env=own_env, cwd=PROJECT)
        if kind in HEALTH:
            wait_healthy(cfg, name, procs[name], procs[name].pid, own_check(kind, own_env, scaled))
    for name, proc in procs.items():
        if proc.poll() is not None:
            cfg.pidfile(name).unlink(missing_ok=True)
            raise StackError(
                f"{name} exited (status {proc.returncode}); last log lines:\n{tail(cfg.log(name))}",
                f"full log: {cfg.log(name)}",
            )
