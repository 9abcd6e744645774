"""Apache Kafka 4 from its jars: one combined KRaft broker+controller, configured, formatted, run.

`start_kafka` runs four steps, each in one function, so that a change of the broker's security
(SASL/SCRAM, ACLs) has one obvious place per step:

1. `kafka_server_properties`: the whole of `server.properties` (listeners and their security
   protocol map; mechanisms, the authorizer and super users would join them there);
2. `format_storage`: `StorageTool format` before the first start (where SCRAM credentials can be
   bootstrapped into the metadata log, `--add-scram`);
3. `kafka_java`: the JVM command line shared by the broker and the storage tool;
4. launch and wait for health (`probes.kafka_metadata` speaks to the client listener).
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
from pathlib import Path

from .config import HOST, PROJECT, Config, StackError, say
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


def kafka_server_properties(cfg: Config, data: Path) -> str:
    """The broker's whole configuration: one local node, listeners on 127.0.0.1 only."""
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


def write_config(cfg: Config) -> Path:
    """`kafka/server.properties` and `kafka/log4j2.properties` in the state folder; the former."""
    kdir = cfg.dir / "kafka"
    kdir.mkdir(parents=True, exist_ok=True)
    props = kdir / "server.properties"
    props.write_text(kafka_server_properties(cfg, kdir / "data"))
    shutil.copyfile(KAFKA_LOG4J_TEMPLATE, kdir / "log4j2.properties")
    return props


def format_storage(cfg: Config, libs: Path, props: Path) -> None:
    """Format the KRaft log dirs once, with a cluster id generated once and kept in `cluster.id`."""
    kdir = cfg.dir / "kafka"
    data = kdir / "data"
    if (data / "meta.properties").exists():
        return
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


def start_kafka(cfg: Config, libs: Path) -> None:
    """Start the broker unless ours already runs (then wait until it is healthy)."""
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
    props = write_config(cfg)
    format_storage(cfg, libs, props)
    say(f"starting kafka on {HOST}:{cfg.ports['kafka']} (controller {cfg.ports['controller']})…")
    proc = launch(cfg, "kafka", kafka_java(cfg, libs, "kafka.Kafka", str(props)), cwd=props.parent)
    wait_healthy(cfg, "kafka", proc, proc.pid)


def run_tool(cfg: Config, argv: list[str]) -> str:
    """Run a Kafka command-line tool to completion, its output appended to kafka.log."""
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
