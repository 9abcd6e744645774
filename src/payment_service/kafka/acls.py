"""Who may say what on Kafka (DESIGN.md §3): the ACL table, one pure function of role and name.

`grants(role, name, kafka)` returns every permission a principal of that role gets, for the
topic and group names in the settings; `kafka/principals.py` turns them into the broker's ACLs.
Anything not granted here is refused (the broker runs with `allow.everyone.if.no.acl.found=false`);
`broker` and `admin` are super users and need no grant.

- `processor`: reads requests (+ describes their configuration, which Quix asks for) with its
  consumer group; writes results, `results.*` (per-producer destinations), audit and DLQ.
- `api`: writes requests; reads results; describes groups `payment-api-replies-*`.
- `ops` (operators' tools): reads every topic of ours and `results.*`; writes requests (replays
  re-produce commands unchanged); describes and reads the processor's group (lag, offsets);
  reads groups `payment-ops-*`.
- `producer` (a registered producer `<name>`): writes requests; reads only `results.<name>`, with
  groups `<name>.*`.

ACLs cannot name partitions: the API may read every partition of results, not only its own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from payment_service.config.settings import KafkaSettings

Role = Literal["api", "processor", "ops", "producer"]
ROLES: tuple[Role, ...] = ("api", "processor", "ops", "producer")
# The group ids of the API's reply consumers (assign() only: never joins, never commits).
API_REPLY_GROUP_PREFIX = "payment-api-replies-"
# Group ids of operators' tools (readers of any topic of ours).
OPS_GROUP_PREFIX = "payment-ops-"
# SCRAM user names: no "," or "=" (RFC 5802 escapes them), nothing a topic name cannot hold.
PRINCIPAL_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")
# A producer's name also ends its group prefix `<name>.`: with no "." in it, one producer's
# prefix can never cover another's groups ("team." would cover "team.a.").
PRODUCER_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
# The broker's own users and the service's principals; no producer may take these names.
RESERVED_NAMES = frozenset({"broker", "admin", "controller", "api", "processor", "ops"})


class Resource(StrEnum):
    TOPIC = "TOPIC"
    GROUP = "GROUP"


class Operation(StrEnum):
    READ = "READ"
    WRITE = "WRITE"
    DESCRIBE = "DESCRIBE"
    DESCRIBE_CONFIGS = "DESCRIBE_CONFIGS"


class Pattern(StrEnum):
    LITERAL = "LITERAL"
    PREFIXED = "PREFIXED"


@dataclass(frozen=True, order=True)
class Grant:
    """One ALLOW for one principal, from any host."""

    resource: Resource
    name: str
    operation: Operation
    pattern: Pattern = Pattern.LITERAL


def principal(name: str) -> str:
    """The broker's principal for a SCRAM user name."""
    return f"User:{name}"


def check_name(name: str) -> str:
    """`name` if it can be a principal (and part of a topic name), else ValueError."""
    if not PRINCIPAL_NAME.match(name):
        raise ValueError(
            f"invalid principal name {name!r}: lower-case letters, digits, '.', '_', '-'"
            " (at most 63, starting with a letter or digit)"
        )
    return name


def check_producer_name(name: str) -> str:
    """`name` if a registered producer may have it, else ValueError."""
    if not PRODUCER_NAME.match(name) or name in RESERVED_NAMES:
        raise ValueError(
            f"invalid producer name {name!r}: lower-case letters, digits, '_', '-', and not one"
            f" of {sorted(RESERVED_NAMES)}"
        )
    return name


def results_topic_of(producer: str, kafka: KafkaSettings) -> str:
    """A registered producer's own results destination: `<results topic>.<producer>`."""
    return f"{kafka.topic_results}.{check_producer_name(producer)}"


def grants(role: Role, name: str, kafka: KafkaSettings) -> tuple[Grant, ...]:
    """Every permission principal `name` of `role` gets: the whole table for one principal."""
    if role == "producer":
        check_producer_name(name)
    check_name(name)
    if role == "producer":
        chosen = _producer(name, kafka)
    else:
        chosen = {"processor": _processor, "api": _api, "ops": _ops}[role](kafka)
    return tuple(sorted(set(chosen)))


def _topic(name: str, op: Operation, pattern: Pattern = Pattern.LITERAL) -> Grant:
    return Grant(Resource.TOPIC, name, op, pattern)


def _group(name: str, op: Operation, pattern: Pattern = Pattern.LITERAL) -> Grant:
    return Grant(Resource.GROUP, name, op, pattern)


def _processor(k: KafkaSettings) -> list[Grant]:
    return [
        _topic(k.topic_requests, Operation.READ),
        # Quix describes the configuration of every topic it consumes.
        _topic(k.topic_requests, Operation.DESCRIBE_CONFIGS),
        _group(k.consumer_group, Operation.READ),
        _topic(k.topic_results, Operation.WRITE),
        _topic(f"{k.topic_results}.", Operation.WRITE, Pattern.PREFIXED),
        _topic(k.topic_audit, Operation.WRITE),
        _topic(k.topic_dlq, Operation.WRITE),
    ]


def _api(k: KafkaSettings) -> list[Grant]:
    return [
        _topic(k.topic_requests, Operation.WRITE),
        _topic(k.topic_results, Operation.READ),
        # The reply consumer's random group id is never joined, but librdkafka describes it.
        _group(API_REPLY_GROUP_PREFIX, Operation.DESCRIBE, Pattern.PREFIXED),
    ]


def _ops(k: KafkaSettings) -> list[Grant]:
    ours = (k.topic_requests, k.topic_results, k.topic_audit, k.topic_dlq)
    return [
        *(_topic(t, Operation.READ) for t in ours),
        *(_topic(t, Operation.DESCRIBE_CONFIGS) for t in ours),
        _topic(f"{k.topic_results}.", Operation.READ, Pattern.PREFIXED),
        _topic(k.topic_requests, Operation.WRITE),
        # Describing the processor's lag, and moving its offsets (reading the group is what
        # Kafka asks of an offset change; the processor must be stopped for one).
        _group(k.consumer_group, Operation.DESCRIBE),
        _group(k.consumer_group, Operation.READ),
        _group(OPS_GROUP_PREFIX, Operation.READ, Pattern.PREFIXED),
    ]


def _producer(name: str, k: KafkaSettings) -> list[Grant]:
    return [
        _topic(k.topic_requests, Operation.WRITE),
        _topic(results_topic_of(name, k), Operation.READ),
        _group(f"{name}.", Operation.READ, Pattern.PREFIXED),
    ]
