#!/usr/bin/env python3
"""The Docker stack's side of the Makefile: its secrets file, which stack runs, its variables.

`docker-compose.yml` needs these secrets: PostgreSQL's and Redis's passwords, `SECRET_KEY`,
`CARD_FINGERPRINT_KEY` and the Kafka users' passwords (`KAFKA_<USER>_PASSWORD`). They live in
`.docker.env` (mode 0600, ignored by git and Docker), written once and then kept, because the
PostgreSQL volume keeps the password it was created with: the file and the volumes are removed
together (`make docker-clean`), never one without the other.
`make clean-all` is about the native stack (`.stack/`) and keeps both.

Commands:
- `env-file`: make sure `.docker.env` exists; refuse when the database volume exists but the
  file is gone (a new password would not open the old data);
- `which`: print `docker` when the compose stack's API is running and the native stack is not,
  else `native` (`make test-api` and `make db-seed` go where the stack is);
- `exec -- COMMAND…`: run a command on this host with the variables that reach the compose
  stack through its published ports (what `stack.py exec` does for the native stack).

Standard library only, like scripts/stack.py.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scripts.stackctl.config import DEFAULT_PORTS, DEFAULT_STATE_DIR, PG_DB, PG_USER, write_atomic
from scripts.stackctl.env import new_fingerprint_key, new_secret_key, read_env_file
from scripts.stackctl.kafka_users import USERS

PROJECT = Path(__file__).resolve().parent.parent
ENV_FILE = PROJECT / ".docker.env"
# Where `make docker-up` kept the secrets before: reused once so that an existing volume opens.
OLD_ENV_FILE = DEFAULT_STATE_DIR / "docker.env"
# docker-compose.yml sets `name: payment-service`, so its volumes have these names.
PROJECT_NAME = "payment-service"
DB_VOLUME = f"{PROJECT_NAME}_postgres-data"
KAFKA_PASSWORDS = tuple(f"KAFKA_{user.upper()}_PASSWORD" for user in USERS)
SECRETS: tuple[str, ...] = (
    "POSTGRES_PASSWORD",
    "REDIS_PASSWORD",
    "SECRET_KEY",
    "CARD_FINGERPRINT_KEY",
    *KAFKA_PASSWORDS,
)
HOST = "127.0.0.1"


def _password() -> str:
    # URL-safe, so it goes into DATABASE_URL and REDIS_URL unescaped.
    return new_secret_key()[:32]


def docker_answers() -> bool:
    """True when a Docker engine answers (`docker info`)."""
    if shutil.which("docker") is None:
        return False
    try:
        done = subprocess.run(["docker", "info"], capture_output=True, timeout=15, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def volume_exists(name: str) -> bool:
    done = subprocess.run(
        ["docker", "volume", "inspect", name], capture_output=True, timeout=30, check=False
    )
    return done.returncode == 0


def ensure_env_file(
    path: Path, *, old: Path = OLD_ENV_FILE, check_volume: bool = True
) -> dict[str, str]:
    """The compose secrets: read from `path`, completed if some are missing, written once."""
    values = read_env_file(path)
    if not values and old.exists():
        values = read_env_file(old)
        if values:
            print(f"reusing the secrets of {old} (the database volume was made with them)")
    if not values and check_volume and docker_answers() and volume_exists(DB_VOLUME):
        raise SystemExit(
            f"the volume {DB_VOLUME} exists but {path.name}, which holds its password, is gone.\n"
            f"  Restore {path.name}, or drop the Docker stack's data: make docker-clean"
        )
    makers = {
        "POSTGRES_PASSWORD": _password,
        "REDIS_PASSWORD": _password,
        "SECRET_KEY": new_secret_key,
        "CARD_FINGERPRINT_KEY": new_fingerprint_key,
        **dict.fromkeys(KAFKA_PASSWORDS, _password),
    }
    complete = {name: values.get(name) or makers[name]() for name in SECRETS}
    if complete != {k: values.get(k) for k in SECRETS} or not path.exists():
        header = (
            "# Secrets of the Docker stack (docker-compose.yml), by scripts/dockerstack.py.\n"
            "# Kept as long as its volumes: `make docker-clean` removes both. Never commit it.\n"
        )
        write_atomic(path, header + "".join(f"{k}={v}\n" for k, v in complete.items()), 0o600)
    return complete


def host_env(secrets: dict[str, str]) -> dict[str, str]:
    """The variables that reach the compose stack from this host (its ports on 127.0.0.1)."""
    p = DEFAULT_PORTS
    return {
        "ENVIRONMENT": "development",
        "DATABASE_URL": (
            f"postgresql://{PG_USER}:{secrets['POSTGRES_PASSWORD']}@{HOST}:{p['postgres']}/{PG_DB}"
        ),
        "REDIS_URL": f"redis://:{secrets['REDIS_PASSWORD']}@{HOST}:{p['redis']}/0",
        "KAFKA_BOOTSTRAP_SERVERS": f"{HOST}:{p['kafka']}",
        "BANKING_API_URL": f"http://{HOST}:{p['banksim']}",
        "API_PORT": str(p["api"]),
        "BANKSIM_PORT": str(p["banksim"]),
        "PAYMENT_API_URL": f"http://{HOST}:{p['api']}",
        "SECRET_KEY": secrets["SECRET_KEY"],
        "CARD_FINGERPRINT_KEY": secrets["CARD_FINGERPRINT_KEY"],
        # Host tools log in as the operators' principal, as `stack.py exec` does.
        "KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
        "KAFKA_SASL_USERNAME": "ops",
        "KAFKA_SASL_PASSWORD": secrets["KAFKA_OPS_PASSWORD"],
    }


def compose_api_running(path: Path) -> bool:
    """True when the compose stack's api container runs."""
    if not path.exists() or not docker_answers():
        return False
    command = ["docker", "compose", "--env-file", str(path), "ps", "--status", "running", "-q"]
    done = subprocess.run(
        [*command, "api"], capture_output=True, text=True, timeout=30, check=False, cwd=PROJECT
    )
    return done.returncode == 0 and bool(done.stdout.strip())


def native_running(state_dir: Path = DEFAULT_STATE_DIR) -> bool:
    """True when `make up`'s stack has recorded processes (the pid files of its servers)."""
    return any((state_dir / "pids" / f"{name}.pid").exists() for name in ("kafka", "api"))


def which(path: Path) -> str:
    if native_running():
        return "native"
    return "docker" if compose_api_running(path) else "native"


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="dockerstack.py", description=__doc__.splitlines()[0])
    p.add_argument("--env-file", type=Path, default=ENV_FILE)
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("env-file", help="write .docker.env once (secrets for docker-compose.yml)")
    sub.add_parser("which", help="print docker or native: where the running stack is")
    ex = sub.add_parser("exec", help="run a command with the compose stack's host variables")
    ex.add_argument("argv", nargs=argparse.REMAINDER, metavar="-- COMMAND")
    args = p.parse_args(argv)
    if args.command == "env-file":
        ensure_env_file(args.env_file)
        print(f"docker secrets in {args.env_file}")
        return 0
    if args.command == "which":
        print(which(args.env_file))
        return 0
    command = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
    if not command:
        p.error("exec needs a command: dockerstack.py exec -- pytest tests/e2e")
    if not args.env_file.exists():
        raise SystemExit(f"no {args.env_file}: start the Docker stack first (make docker-up)")
    env = {**os.environ, **host_env(ensure_env_file(args.env_file, check_volume=False))}
    os.execvpe(command[0], command, env)  # noqa: S606


if __name__ == "__main__":
    sys.exit(main())
