"""Every metric the service emits, in one table: its name, type, tags and meaning.

`Metrics` (ops/telemetry.py) takes only these `Metric` values, so nothing can be emitted without
being listed here. The dashboard and monitors under `ops/datadog/` are checked against this table
by a unit test, `payment-service metrics` prints it, and docs/operations.md lists it.

Names are under the `payment.` namespace. Every metric also carries the unified service tags
`service`, `env`, `version` and the `process` (`api`, `processor`). Tags never hold card data:
ids of payments are not tags either (too many values), only codes, statuses and currencies.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

NAMESPACE: Final = "payment"
CONSTANT_TAGS: Final = ("service", "env", "version", "process")

Kind = Literal["count", "gauge", "distribution"]
Process = Literal["api", "processor", "both"]


@dataclass(frozen=True)
class Metric:
    name: str  # without the namespace
    kind: Kind
    tags: tuple[str, ...]
    unit: str
    process: Process
    description: str

    @property
    def full_name(self) -> str:
        return f"{NAMESPACE}.{self.name}"


def _m(name: str, kind: Kind, tags: str, unit: str, process: Process, text: str) -> Metric:
    return Metric(name, kind, tuple(tags.split()), unit, process, text)


# ---- API --------------------------------------------------------------------------------------
API_REQUESTS = _m(
    "api.requests", "count", "route method status", "request", "api", "HTTP requests answered"
)
API_DURATION = _m(
    "api.duration_ms",
    "distribution",
    "route method status",
    "ms",
    "api",
    "time to answer an HTTP request",
)
API_REPLIES = _m(
    "api.replies",
    "count",
    "kind outcome",
    "request",
    "api",
    "commands sent and how their wait ended: result (answered 200 or with an error), "
    "timeout (answered 202, still processing), not_accepted (Kafka did not ack: 503)",
)
API_RESULTS_DROPPED = _m(
    "api.results_dropped",
    "count",
    "reason",
    "message",
    "api",
    "results the reply consumer dropped and never showed a client: no or bad processor"
    " signature, ids that do not match the command, unreadable (reason)",
)
API_REPLY_CONSUMER_RESTARTS = _m(
    "api.reply_consumer_restarts",
    "count",
    "error",
    "restart",
    "api",
    "times the reply consumer's thread died and was started again",
)
API_REPLY_WAIT = _m(
    "api.reply_wait_ms",
    "distribution",
    "kind outcome",
    "ms",
    "api",
    "from producing a command to its result (or to the sync timeout)",
)

# ---- processor ----------------------------------------------------------------------------------
PROCESSED = _m(
    "processed",
    "count",
    "kind outcome final",
    "message",
    "processor",
    "commands processed, by kind (payment, refund) and outcome (status or error code)",
)
PROCESS_DURATION = _m(
    "process.duration_ms",
    "distribution",
    "kind outcome final",
    "ms",
    "processor",
    "time to process one command, bank calls included",
)
TRANSIENT_RETRIES = _m(
    "transient_retries",
    "count",
    "error",
    "retry",
    "processor",
    "a command retried after an outage of PostgreSQL, Redis or Kafka",
)
DLQ = _m("dlq", "count", "reason", "message", "processor", "messages parked on the DLQ")
COMMANDS_REFUSED = _m(
    "commands.refused",
    "count",
    "code producer",
    "message",
    "processor",
    "commands refused before any effect: unsigned, badly signed, unknown or revoked producer,"
    " merchant or command type not allowed (code); producer as claimed, or none",
)
PAYMENTS_SETTLED = _m(
    "payments.settled",
    "count",
    "currency status failure_code decline_code",
    "payment",
    "processor",
    "payments recorded as captured or failed, once each (approval ratio: captured / all)",
)
PAYMENTS_AMOUNT = _m(
    "payments.amount",
    "count",
    "currency status",
    "major unit",
    "processor",
    "amount of the payments settled, in major units of their currency (sum by currency)",
)
REFUNDS_SETTLED = _m(
    "refunds.settled",
    "count",
    "currency status failure_code",
    "refund",
    "processor",
    "refunds recorded as completed or failed, once each",
)
REFUNDS_AMOUNT = _m(
    "refunds.amount",
    "count",
    "currency status",
    "major unit",
    "processor",
    "amount of the refunds settled, in major units of their currency",
)
BANK_REQUESTS = _m(
    "bank.requests",
    "count",
    "operation outcome",
    "call",
    "processor",
    "bank operations (retries and outcome resolution included) by outcome: approved, "
    "declined, or the error (not_sent, outcome_unknown, rejected)",
)
BANK_DURATION = _m(
    "bank.duration_ms",
    "distribution",
    "operation outcome",
    "ms",
    "processor",
    "time of one bank operation, retries included",
)
BANK_BREAKER_OPEN = _m(
    "bank.breaker_open",
    "gauge",
    "state",
    "boolean",
    "processor",
    "1 while the circuit breaker towards the bank is open or half-open",
)
BANK_CONCURRENCY_LIMIT = _m(
    "bank.concurrency_limit",
    "gauge",
    "",
    "request",
    "processor",
    "the adaptive limit of bank calls in flight (AIMD: up on answers, halved on timeouts)",
)
PROCESSOR_HEARTBEAT = _m(
    "processor.heartbeat",
    "gauge",
    "",
    "flag",
    "processor",
    "1 while the processor's consumer runs, 0 between a failed consumer and its replacement; "
    "absent when the process is stopped (the API's /health reads the same heartbeat in Redis)",
)
FAST_LANE = _m(
    "reconciler.fast_lane",
    "count",
    "outcome",
    "payment",
    "processor",
    "unknown payments and lost captures or voids the fast lane settled (captured, canceled, "
    "requires_capture, failed), or left to the sweep, by outcome",
)
CONSUMER_RESTARTS = _m(
    "consumer.restarts",
    "count",
    "",
    "restart",
    "processor",
    "Quix consumers replaced after failing (lost group membership, broker gone too long)",
)
CONSUMER_LAG = _m(
    "consumer.lag",
    "gauge",
    "topic partition",
    "message",
    "processor",
    "commands not yet committed by the processor's group (librdkafka statistics: high "
    "watermark minus committed offset), per assigned partition",
)
RECONCILER_RUNS = _m(
    "reconciler.runs",
    "count",
    "holder",
    "round",
    "processor",
    "reconciliation rounds; holder:false when another processor holds the lock",
)
RECONCILER_ACTIONS = _m(
    "reconciler.actions",
    "count",
    "kind outcome",
    "record",
    "processor",
    "payments and refunds the reconciler looked at: the status it recorded, unchanged or error",
)
AUDIT_PUBLISHED = _m(
    "audit.published", "count", "", "event", "processor", "audit rows published to the audit topic"
)
AUDIT_LAG_ROWS = _m(
    "audit.lag.rows", "gauge", "", "row", "processor", "audit rows not yet published (to 10000)"
)
AUDIT_LAG_SECONDS = _m(
    "audit.lag.seconds", "gauge", "", "second", "processor", "age of the oldest unpublished row"
)

# ---- both processes: connection pools (sampled every DD_METRICS_INTERVAL_SECONDS) -------------
DB_POOL_SIZE = _m(
    "db.pool.size", "gauge", "", "connection", "both", "open PostgreSQL connections in the pool"
)
DB_POOL_IDLE = _m(
    "db.pool.idle", "gauge", "", "connection", "both", "idle PostgreSQL connections in the pool"
)
DB_POOL_MAX = _m("db.pool.max", "gauge", "", "connection", "both", "the pool's maximum size")
REDIS_POOL_IN_USE = _m(
    "redis.pool.in_use", "gauge", "", "connection", "both", "Redis connections in use"
)
REDIS_POOL_IDLE = _m("redis.pool.idle", "gauge", "", "connection", "both", "idle Redis connections")
REDIS_POOL_MAX = _m(
    "redis.pool.max", "gauge", "", "connection", "both", "the Redis pool's maximum size"
)

# ---- both processes: Python's garbage collector (ops/gc_watch.py, sampled like the pools) ------
GC_PAUSE_MAX = _m("runtime.gc.pause.max", "gauge", "", "ms", "both", "longest collection (a pause)")
GC_TIME = _m("runtime.gc.time", "gauge", "", "ms", "both", "time spent collecting garbage")

CATALOG: Final[tuple[Metric, ...]] = tuple(
    value for value in list(globals().values()) if isinstance(value, Metric)
)
BY_NAME: Final = {m.full_name: m for m in CATALOG}


def table() -> list[tuple[str, str, str, str, str]]:
    """(name, type, tags, process, description) per metric, in catalogue order."""
    return [
        (
            m.full_name,
            m.kind,
            " ".join(m.tags) or "-",
            m.process,
            m.description,
        )
        for m in CATALOG
    ]


def markdown_table() -> str:
    """The catalogue as the Markdown table docs/operations.md shows (a test compares them)."""
    lines = [
        "| metric | type | tags | process | what it counts |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, kind, tags, process, text in table():
        lines.append(f"| `{name}` | {kind} | {tags} | {process} | {text} |")
    return "\n".join(lines) + "\n"
