"""Native local stack: Apache Kafka (KRaft), PostgreSQL and Redis, plus the service's own processes.

No Docker engine is needed (DESIGN.md §6). Standard library only: it runs before `.venv` exists.

    python3 scripts/stack.py install          # apt packages that are missing + the Kafka jars
    python3 scripts/stack.py start            # kafka, postgres, redis (idempotent)
    python3 scripts/stack.py start-app        # migrate, topics, banksim, processor, api
    python3 scripts/stack.py up               # install + start + start-app, waits for /health
    python3 scripts/stack.py stop | status | logs [-f] | env [--export] | exec -- CMD...

(`python3 -m stackctl …` from `scripts/`, or `python3 -m scripts.stackctl …` from the project,
run the same command line.) Everything lives in one state folder (default `<project>/.stack`,
`--dir` to change):

    local.env            generated connection URLs and development secrets (mode 0600), read by
                         every process: no private card key
    processor.env        the processor's own variables: its private card key directory (0600)
    card-keys/           the processor's card key pairs (0700; `payment-service cards keys`)
    card-public-key.json the current card public key, for the API (CARD_PUBLIC_KEY_FILE)
    ports.json           the ports last used, reused when no port option is given
    logs/<name>.log      one log per process (kafka, postgres, redis, banksim, processor, api)
    pids/<name>.pid      the process ids this script started; `stop` stops exactly these (for an
                         app, its supervisor; the app itself is pids/<name>.child.pid)
    restarts/<name>.json how often the supervisor restarted an app, and its last exit
    kafka/               credentials.env (Kafka users' passwords, 0600), server.properties (0600),
                         log4j2.properties, data/ (KRaft log dirs)
    postgres/            data/ (the cluster, owned by the `postgres` user when run as root), run/
    redis/               redis.conf (no persistence)

Kafka jars are fetched once with Maven into a cache shared by every state folder and clone:
`$PAYMENT_SERVICE_CACHE` or `~/.cache/payment-service/kafka-<version>-<pom hash>/libs`.

Modules, each importing only those above it:

    config      ports, paths, timeouts, `Config`, `StackError`, the state folder and its lock
    env         local.env: URLs and generated development secrets
    kafka_users the Kafka users' generated passwords (kafka/credentials.env), each process's login
    kafka_wire  a small Kafka protocol client: SCRAM-SHA-512 login, Metadata
    kafka_jars  the Kafka jars from Maven Central, cached
    system      apt packages (PostgreSQL, Redis, Java, Maven, make), `install()`
    procs       launching, identifying and stopping exactly our processes
    supervise   the apps' supervisor: restarts an app that exits, with backoff (imports nothing)
    ports       free ports, who holds a taken one
    probes      health checks (Kafka: a SCRAM login as admin, then Metadata), waiting
    postgres, redis, kafka   each server: its configuration, first-time setup, start
    apps        migrate, topics, banksim, processor, api
    cli         the commands and their options; `__main__` runs it

This package's namespace is what tests and tools use; the names below are its public face.
"""

from .cli import main
from .config import (
    ALL,
    APPS,
    DEFAULT_PORTS,
    DEFAULT_STATE_DIR,
    INFRA,
    OPTIONAL_PORTS,
    PG_DB,
    PG_USER,
    PROJECT,
    Config,
    StackError,
    load_config,
    save_ports,
)
from .env import (
    ensure_local_env,
    new_encryption_key,
    new_fingerprint_key,
    new_secret_key,
    read_env_file,
)
from .kafka import kafka_server_properties
from .ports import check_ports_free, port_in_use
from .procs import expected_process, recorded_pid

__all__ = [
    "ALL",
    "APPS",
    "DEFAULT_PORTS",
    "DEFAULT_STATE_DIR",
    "INFRA",
    "OPTIONAL_PORTS",
    "PG_DB",
    "PG_USER",
    "PROJECT",
    "Config",
    "StackError",
    "check_ports_free",
    "ensure_local_env",
    "expected_process",
    "kafka_server_properties",
    "load_config",
    "main",
    "new_encryption_key",
    "new_fingerprint_key",
    "new_secret_key",
    "port_in_use",
    "read_env_file",
    "recorded_pid",
    "save_ports",
]
