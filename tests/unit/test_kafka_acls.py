"""The ACL table (DESIGN.md §3 "Who may say what"), read as the broker will apply it."""

from __future__ import annotations

import pytest

from payment_service.config.settings import KafkaSettings
from payment_service.kafka.acls import (
    API_REPLY_GROUP_PREFIX,
    ROLES,
    Grant,
    Operation,
    Pattern,
    Resource,
    Role,
    grants,
    results_topic_of,
)

pytestmark = pytest.mark.unit

KAFKA = KafkaSettings.model_validate(
    {
        "topic_requests": "t.requests",
        "topic_results": "t.results",
        "topic_audit": "t.audit",
        "topic_dlq": "t.dlq",
        "consumer_group": "t-processor",
    }
)
SERVICE: dict[Role, str] = {"api": "api", "processor": "processor", "ops": "ops"}


def allows(granted: tuple[Grant, ...], resource: Resource, name: str, op: Operation) -> bool:
    """Whether the grants allow `op` on `name`, as Kafka matches literal and prefixed ACLs
    (READ and WRITE imply DESCRIBE)."""
    implied = {op} | ({Operation.READ, Operation.WRITE} if op == Operation.DESCRIBE else set())
    for g in granted:
        if g.resource != resource or g.operation not in implied:
            continue
        if g.name == name or (g.pattern == Pattern.PREFIXED and name.startswith(g.name)):
            return True
    return False


def every_principal() -> dict[str, tuple[Grant, ...]]:
    table = {name: grants(role, name, KAFKA) for role, name in SERVICE.items()}
    table |= {p: grants("producer", p, KAFKA) for p in ("team-a", "team-b")}
    return table


@pytest.mark.parametrize("topic", ["t.results", "t.audit", "t.dlq", "t.results.team-a"])
def test_only_the_processor_writes_results_audit_and_dlq(topic: str) -> None:
    writers = {
        name
        for name, g in every_principal().items()
        if allows(g, Resource.TOPIC, topic, Operation.WRITE)
    }
    assert writers == {"processor"}


def test_commands_are_written_by_the_api_producers_and_operators_replays() -> None:
    writers = {
        name
        for name, g in every_principal().items()
        if allows(g, Resource.TOPIC, "t.requests", Operation.WRITE)
    }
    assert writers == {"api", "ops", "team-a", "team-b"}


def test_a_producer_reads_only_its_own_results_with_its_own_groups() -> None:
    table = every_principal()
    assert results_topic_of("team-a", KAFKA) == "t.results.team-a"
    readers = {
        name
        for name, g in table.items()
        if allows(g, Resource.TOPIC, "t.results.team-a", Operation.READ)
    }
    assert readers == {"team-a", "ops"}
    team_a = table["team-a"]
    for topic in ("t.results", "t.results.team-b", "t.requests", "t.audit", "t.dlq"):
        assert not allows(team_a, Resource.TOPIC, topic, Operation.READ), topic
    assert allows(team_a, Resource.GROUP, "team-a.mine", Operation.READ)
    for group in ("team-b.theirs", "t-processor", "team-ab.x"):
        assert not allows(team_a, Resource.GROUP, group, Operation.READ), group


def test_the_processor_consumes_commands_in_its_group_and_quix_may_describe_them() -> None:
    processor = every_principal()["processor"]
    assert allows(processor, Resource.TOPIC, "t.requests", Operation.READ)
    assert allows(processor, Resource.TOPIC, "t.requests", Operation.DESCRIBE_CONFIGS)
    assert allows(processor, Resource.GROUP, "t-processor", Operation.READ)
    assert not allows(processor, Resource.TOPIC, "t.requests", Operation.WRITE)


def test_the_api_reads_results_without_joining_a_group() -> None:
    api = every_principal()["api"]
    assert allows(api, Resource.TOPIC, "t.results", Operation.READ)
    group = f"{API_REPLY_GROUP_PREFIX}1234"
    assert allows(api, Resource.GROUP, group, Operation.DESCRIBE)
    assert not allows(api, Resource.GROUP, group, Operation.READ)
    assert not allows(api, Resource.TOPIC, "t.requests", Operation.READ)


def test_operators_read_everything_of_ours_and_move_the_processors_offsets() -> None:
    ops = every_principal()["ops"]
    for topic in ("t.requests", "t.results", "t.audit", "t.dlq", "t.results.team-a"):
        assert allows(ops, Resource.TOPIC, topic, Operation.READ), topic
    assert allows(ops, Resource.GROUP, "t-processor", Operation.DESCRIBE)
    assert allows(ops, Resource.GROUP, "t-processor", Operation.READ)


@pytest.mark.parametrize("role", ROLES)
def test_the_table_is_a_pure_function_of_role_name_and_topics(role: Role) -> None:
    name = "team-a" if role == "producer" else role
    once = grants(role, name, KAFKA)
    assert once == grants(role, name, KAFKA)
    assert len(set(once)) == len(once)
    other = KAFKA.model_copy(update={"topic_requests": "u.requests"})
    assert {g.name for g in grants(role, name, other)} != {g.name for g in once}


@pytest.mark.parametrize("name", ["api", "ops", "admin", "team.a", "Team", "a,b", "x=y", "", "-x"])
def test_producer_names_that_could_take_another_principal_or_prefix_are_refused(name: str) -> None:
    with pytest.raises(ValueError, match="invalid producer name"):
        grants("producer", name, KAFKA)
