"""Apache Kafka 4 from its jars: one combined KRaft broker+controller, secured, formatted, run.

`start_kafka` runs four steps, each in one function:

1. `kafka_server_properties`: the whole of `server.properties`: the client listener on
   SASL_PLAINTEXT with SCRAM-SHA-512, the controller listener on SASL/PLAIN (so no anonymous
   client is a super user), the StandardAuthorizer with `allow.everyone.if.no.acl.found=false`;
2. `format_storage`: `StorageTool format` before the first start, with the `broker` and `admin`
   SCRAM users bootstrapped into the metadata log (`--add-scram`); the service's own users and
   their ACLs are created later through the admin API (`payment-service kafka bootstrap`);
3. `kafka_java`: the JVM command line shared by the broker and the storage tool;
4. launch and wait for health (`probes.kafka_healthy` logs in as `admin` and asks for metadata).

Log dirs formatted by an older stack without SASL have no users: `refuse_unsecured_data` says so
and how to start afresh, instead of a broker that nobody can log in to.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path

from .config import DEFAULT_STATE_DIR, HOST, PROJECT, Config, StackError, say, write_atomic
from .kafka_users import credentials_file, ensure_credentials
from .ports import check_ports_free
from .probes import kafka_healthy, wait_healthy
from .procs import launch, recorded_pid
from .system import java_bin

KAFKA_LOG4J_TEMPLATE = PROJECT / "stack" / "kafka" / "log4j2.properties"
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


# A deleted SCRAM user keeps its open connections until it must log in again: this often.
REAUTH_MS = 10_000
SCRAM = "SCRAM-SHA-512"


def kafka_server_properties(cfg: Config, data: Path, users: Mapping[str, str]) -> str:
    """The broker's whole configuration: one local node, listeners on 127.0.0.1 only."""
    port, cport = cfg.ports["kafka"], cfg.ports["controller"]
    broker, controller = users["broker"], users["controller"]
    listeners = f"SASL_PLAINTEXT://{HOST}:{port},CONTROLLER://{HOST}:{cport}"
    advertised = f"SASL_PLAINTEXT://{HOST}:{port}"
    protocols = "CONTROLLER:SASL_PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT"
    proxied = ""
    if "kafka_proxied" in cfg.ports and "kafka_proxy" in cfg.ports:
        # Metadata names the listener a client came in on: one bootstrapped at the proxy is
        # sent to the proxy for every partition leader too.
        listeners += f",PROXIED://{HOST}:{cfg.ports['kafka_proxied']}"
        advertised += f",PROXIED://{HOST}:{cfg.ports['kafka_proxy']}"
        protocols += ",PROXIED:SASL_PLAINTEXT"
        proxied = (
            "\n# A second client listener, advertised at a TCP proxy's port (API-Kafka faults).\n"
            "listener.name.proxied.scram-sha-512.sasl.jaas.config="
            "org.apache.kafka.common.security.scram.ScramLoginModule required "
            f'username="broker" password="{broker}";'
        )
    return f"""# Written by scripts/stack.py: one combined KRaft broker+controller (local dev).
# Holds the broker's passwords: mode 0600, like kafka/credentials.env.
process.roles=broker,controller
node.id=1
# A static voter set (not --standalone's dynamic one), so that changing the controller port of an
# existing state folder keeps working.
controller.quorum.voters=1@{HOST}:{cport}
listeners={listeners}
advertised.listeners={advertised}
listener.security.protocol.map={protocols}
controller.listener.names=CONTROLLER
# Clients (and the broker itself, there is no other broker listener) log in with SCRAM-SHA-512;
# the users live in the metadata log (bootstrapped at format time, then the admin API).
inter.broker.listener.name=SASL_PLAINTEXT
sasl.enabled.mechanisms={SCRAM}
sasl.mechanism.inter.broker.protocol={SCRAM}
listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config=\
  org.apache.kafka.common.security.scram.ScramLoginModule required \
  username="broker" password="{broker}";{proxied}
# The controller listener authenticates too (SASL/PLAIN, one static user on that listener only:
# SCRAM's users live in the log the controller serves). With a PLAINTEXT controller listener,
# User:ANONYMOUS would have to be a super user, and any local process could change ACLs.
sasl.mechanism.controller.protocol=PLAIN
listener.name.controller.sasl.enabled.mechanisms=PLAIN
listener.name.controller.plain.sasl.jaas.config=\
  org.apache.kafka.common.security.plain.PlainLoginModule required \
  username="broker" password="{controller}" user_broker="{controller}";
# Re-authentication (KIP-368): a deleted user loses its open connections within this.
connections.max.reauth.ms={REAUTH_MS}
# ACLs in the metadata log; what no ACL allows is refused. The principals and their ACLs are
# made by `payment-service kafka bootstrap` (src/payment_service/kafka/acls.py).
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
allow.everyone.if.no.acl.found=false
super.users=User:broker;User:admin
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
    """`java … <main class> <args>` with the jars, heap, GC options and log4j2 config."""
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


def write_config(cfg: Config, users: Mapping[str, str]) -> Path:
    """`kafka/server.properties` and `kafka/log4j2.properties` in the state folder; the former."""
    kdir = cfg.dir / "kafka"
    kdir.mkdir(parents=True, exist_ok=True)
    props = kdir / "server.properties"
    write_atomic(props, kafka_server_properties(cfg, kdir / "data", users), mode=0o600)
    shutil.copyfile(KAFKA_LOG4J_TEMPLATE, kdir / "log4j2.properties")
    return props


def refuse_unsecured_data(cfg: Config) -> None:
    """Log dirs formatted before the stack had SASL hold no users: say how to start afresh."""
    kdir = cfg.dir / "kafka"
    if (kdir / "data" / "meta.properties").exists() and not credentials_file(cfg).exists():
        make_args = f" STACK_ARGS='--dir {cfg.dir}'" if cfg.dir != DEFAULT_STATE_DIR else ""
        raise StackError(
            f"the Kafka data in {kdir / 'data'} was formatted by an older stack without SASL (or "
            f"{credentials_file(cfg).name} was removed): no client could log in to it",
            "its topics hold only local messages (PostgreSQL keeps every payment); start Kafka "
            f"afresh with: make down{make_args} && rm -rf {kdir} && make up{make_args}",
        )


def format_storage(cfg: Config, libs: Path, props: Path, users: Mapping[str, str]) -> None:
    """Format the KRaft log dirs once, with a cluster id generated once and kept in `cluster.id`,
    and the `broker` and `admin` SCRAM users in the first metadata."""
    kdir = cfg.dir / "kafka"
    data = kdir / "data"
    if (data / "meta.properties").exists():
        return
    cluster_file = kdir / "cluster.id"
    if not cluster_file.exists():
        out = run_tool(cfg, kafka_java(cfg, libs, "kafka.tools.StorageTool", "random-uuid"))
        cluster_file.write_text(out.strip().splitlines()[-1] + "\n")
    cluster_id = cluster_file.read_text().strip()
    say(f"formatting Kafka storage in {data} (cluster id {cluster_id}, users broker, admin)…")
    scram = [
        arg
        for name in ("broker", "admin")
        for arg in ("--add-scram", f"{SCRAM}=[name={name},password={users[name]}]")
    ]
    argv = ["format", "--cluster-id", cluster_id, "--config", str(props), "--ignore-formatted"]
    run_tool(cfg, kafka_java(cfg, libs, "kafka.tools.StorageTool", *argv, *scram), shown=argv)


def start_kafka(cfg: Config, libs: Path) -> None:
    """Start the broker unless ours already runs (then wait until it is healthy)."""
    refuse_unsecured_data(cfg)
    users = ensure_credentials(cfg)
    pid = recorded_pid(cfg, "kafka")
    if pid is not None:
        if kafka_healthy(cfg):
            say(f"kafka already running (pid {pid}) on {HOST}:{cfg.ports['kafka']}")
        else:
            wait_healthy(cfg, "kafka", None, pid)
        return
    own = ("kafka", "controller", "kafka_proxied")
    check_ports_free(cfg, "kafka", {name: cfg.ports[name] for name in own if name in cfg.ports})
    props = write_config(cfg, users)
    format_storage(cfg, libs, props, users)
    say(f"starting kafka on {HOST}:{cfg.ports['kafka']} (controller {cfg.ports['controller']})…")
    proc = launch(cfg, "kafka", kafka_java(cfg, libs, "kafka.Kafka", str(props)), cwd=props.parent)
    wait_healthy(cfg, "kafka", proc, proc.pid)


def run_tool(cfg: Config, argv: list[str], shown: list[str] | None = None) -> str:
    """Run a Kafka command-line tool to completion, its output appended to kafka.log (with
    `shown` as its arguments there: the real ones may hold passwords)."""
    result = subprocess.run(argv, capture_output=True, stdin=subprocess.DEVNULL, timeout=120)
    with open(cfg.log("kafka"), "ab") as log:
        log.write(f"\n===== stack.py ran: {shlex.join(shown or argv[-4:])}\n".encode())
        log.write(result.stdout + result.stderr)
    if result.returncode != 0:
        raise StackError(
            f"Kafka storage tool failed (exit {result.returncode}):\n"
            f"{result.stderr.decode(errors='replace')[-2000:]}",
            f"log: {cfg.log('kafka')}",
        )
    return result.stdout.decode()
