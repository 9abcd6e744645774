"""The broker authenticates every client and enforces the ACL table (DESIGN.md §3, Transport).

Against the real, secured broker of the `stack` fixture: the service's principals get their
grants from `payment-service kafka bootstrap`'s own code (`principals.bootstrap`), for topics of
this module's own; producer principals come from the same ACL function (`acls.grants`).
"""

from __future__ import annotations

import secrets
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import NewTopic

from payment_service.config.settings import KafkaSettings
from payment_service.kafka import principals
from payment_service.kafka.acls import grants, results_topic_of
from payment_service.kafka.topics import ensure_topics
from tests.fixtures.stack import StackInfo

pytestmark = pytest.mark.integration

DEADLINE_SECONDS = 30.0
TOPIC_DENIED = KafkaError.TOPIC_AUTHORIZATION_FAILED


@pytest.fixture(scope="module")
def topics(stack: StackInfo) -> KafkaSettings:
    """Admin settings naming this module's own topics, created with the principals' ACLs."""
    if not stack.kafka_secured:
        pytest.skip("the Kafka of this stack is not secured (KAFKA_SECURITY_PROTOCOL=PLAINTEXT)")
    run = uuid.uuid4().hex[:8]
    kafka = stack.kafka_settings("admin").model_copy(
        update={
            "topic_requests": f"it.sec.{run}.requests",
            "topic_results": f"it.sec.{run}.results",
            "topic_audit": f"it.sec.{run}.audit",
            "topic_dlq": f"it.sec.{run}.dlq",
            "consumer_group": f"it-sec-{run}-processor",
            "requests_partitions": 1,
            "results_partitions": 1,
            "audit_partitions": 1,
        }
    )
    ensure_topics(kafka)
    principals.bootstrap(kafka, stack.kafka_users)
    return kafka


def denied(outcome: bytes | KafkaError | None) -> bool:
    """The broker refused: not authorized for the topic."""
    return isinstance(outcome, KafkaError) and outcome.code() == TOPIC_DENIED


def produce(config: dict[str, Any], topic: str) -> KafkaError | None:
    """Send one message; the delivery report's error (None: written)."""
    producer = Producer(
        {**config, "enable.idempotence": True, "acks": "all", "message.timeout.ms": 10_000}
    )
    reports: list[KafkaError | None] = []
    try:
        producer.produce(topic, b"probe", key=b"k", on_delivery=lambda e, _m: reports.append(e))
    except KafkaException as exc:  # refused up front once metadata says unauthorized
        return exc.args[0]
    assert producer.flush(DEADLINE_SECONDS) == 0, "no delivery report before the deadline"
    return reports[0]


def first_message(config: dict[str, Any], topic: str, group: str) -> bytes | KafkaError:
    """The first message of `topic` read through consumer group `group`, or the error."""
    consumer = Consumer(
        {**config, "group.id": group, "auto.offset.reset": "earliest", "enable.auto.commit": False}
    )
    consumer.subscribe([topic])
    try:
        deadline = time.monotonic() + DEADLINE_SECONDS
        while time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None:
                continue
            error = message.error()
            if error is not None:
                return error
            return message.value()
        raise AssertionError(f"neither a message nor an error from {topic} before the deadline")
    finally:
        consumer.close()


def auth_error_seen(config: dict[str, Any]) -> KafkaError:
    """Wait (with a deadline) for the client's error callback to report failed authentication:
    librdkafka retries a refused login forever, so this is how a client fails fast."""
    seen = threading.Event()
    errors: list[KafkaError] = []

    def on_error(error: KafkaError) -> None:
        errors.append(error)
        if error.code() == KafkaError._AUTHENTICATION:
            seen.set()

    producer = Producer({**config, "error_cb": on_error})
    deadline = time.monotonic() + DEADLINE_SECONDS
    while not seen.is_set():
        assert time.monotonic() < deadline, f"no authentication error; saw {errors}"
        producer.poll(0.1)
    return next(e for e in errors if e.code() == KafkaError._AUTHENTICATION)


def test_an_anonymous_client_is_refused(stack: StackInfo, topics: KafkaSettings) -> None:
    producer = Producer(stack.kafka_config(None))  # PLAINTEXT to the SASL listener
    with pytest.raises(KafkaException):
        producer.list_topics(timeout=5)
    assert produce(stack.kafka_config(None), topics.topic_requests) is not None


@pytest.mark.parametrize("user", ["api", "nobody"])
def test_a_wrong_password_is_refused(stack: StackInfo, topics: KafkaSettings, user: str) -> None:
    error = auth_error_seen(stack.kafka_config(user, password=secrets.token_urlsafe(16)))
    assert "SCRAM-SHA-512" in error.str() or "credentials" in error.str()
    # The real password of the same user is accepted.
    Producer(stack.kafka_config("api")).list_topics(topics.topic_requests, timeout=10)


def test_the_service_principals_get_exactly_their_grants_and_bootstrap_is_idempotent(
    stack: StackInfo, topics: KafkaSettings
) -> None:
    principals.bootstrap(topics, stack.kafka_users)  # a second time changes nothing
    admin = principals.admin_client(topics)
    for role in principals.SERVICE_ROLES:
        held = set(principals.grants_of(admin, role))
        assert set(grants(role, role, topics)) <= held, role


@pytest.mark.parametrize("topic", ["topic_results", "topic_audit", "topic_dlq"])
def test_the_api_cannot_write_what_only_the_processor_writes(
    stack: StackInfo, topics: KafkaSettings, topic: str
) -> None:
    assert produce(stack.kafka_config("api"), topics.topic_requests) is None  # its own job
    error = produce(stack.kafka_config("api"), getattr(topics, topic))
    assert denied(error)
    assert produce(stack.kafka_config("processor"), getattr(topics, topic)) is None


def test_the_processor_writes_no_commands_and_ops_writes_no_results(
    stack: StackInfo, topics: KafkaSettings
) -> None:
    error = produce(stack.kafka_config("processor"), topics.topic_requests)
    assert denied(error)
    assert produce(stack.kafka_config("ops"), topics.topic_requests) is None  # replays
    error = produce(stack.kafka_config("ops"), topics.topic_results)
    assert denied(error)


@pytest.fixture
def producers(stack: StackInfo, topics: KafkaSettings) -> Iterator[dict[str, str]]:
    """Two registered-producer principals, made with the producer role's grants."""
    admin = principals.admin_client(topics)
    made = {f"it-{uuid.uuid4().hex[:8]}": secrets.token_urlsafe(24) for _ in range(2)}
    for name, password in made.items():
        principals.add_principal(admin, topics, name, "producer", password)
    ensure_results_topics(topics, list(made))
    yield made
    for name in made:
        principals.remove_principal(admin, name)


def ensure_results_topics(kafka: KafkaSettings, names: list[str]) -> None:
    admin = principals.admin_client(kafka)
    new = [NewTopic(results_topic_of(n, kafka), num_partitions=1) for n in names]
    for future in admin.create_topics(new).values():
        future.result(timeout=DEADLINE_SECONDS)


def test_a_producer_writes_commands_reads_only_its_own_results(
    stack: StackInfo, topics: KafkaSettings, producers: dict[str, str]
) -> None:
    (one, one_pw), (other, _) = producers.items()
    as_one = stack.kafka_config(one, password=one_pw)
    assert produce(as_one, topics.topic_requests) is None
    for topic in (topics.topic_results, results_topic_of(one, topics)):
        error = produce(as_one, topic)
        assert denied(error), topic
    # The processor writes its results to its own destination, which it alone may read.
    assert produce(stack.kafka_config("processor"), results_topic_of(one, topics)) is None
    assert first_message(as_one, results_topic_of(one, topics), f"{one}.reader") == b"probe"
    refused = first_message(as_one, results_topic_of(other, topics), f"{one}.reader")
    assert denied(refused)
    refused = first_message(as_one, topics.topic_results, f"{one}.reader")
    assert denied(refused)


def test_a_removed_principal_can_no_longer_log_in(
    stack: StackInfo, topics: KafkaSettings, producers: dict[str, str]
) -> None:
    name, password = next(iter(producers.items()))
    assert produce(stack.kafka_config(name, password=password), topics.topic_requests) is None
    assert principals.remove_principal(principals.admin_client(topics), name) > 0
    auth_error_seen(stack.kafka_config(name, password=password))
