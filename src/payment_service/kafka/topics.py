"""Create the payment topics explicitly, with their partition counts (never auto-created).

Run as a principal allowed to create topics (the local stack's `admin`)."""

from __future__ import annotations

from confluent_kafka.admin import AdminClient, NewPartitions, NewTopic

from payment_service.config.settings import KafkaSettings
from payment_service.kafka.security import client_config

ADMIN_TIMEOUT_SECONDS = 30.0


def topic_plan(kafka: KafkaSettings) -> dict[str, int]:
    """Topic name -> partition count, from the settings."""
    return {
        kafka.topic_requests: kafka.requests_partitions,
        kafka.topic_results: kafka.results_partitions,
        kafka.topic_audit: kafka.audit_partitions,
        kafka.topic_dlq: kafka.dlq_partitions,
    }


def ensure_topics(kafka: KafkaSettings) -> list[str]:
    """Create missing topics and grow ones with too few partitions; return what was done.

    Partitions are only ever added: shrinking would reorder keys, and Kafka cannot do it.
    """
    admin = AdminClient(client_config(kafka))
    metadata = admin.list_topics(timeout=ADMIN_TIMEOUT_SECONDS)
    report: list[str] = []
    to_create: list[NewTopic] = []
    to_grow: list[NewPartitions] = []
    for name, partitions in topic_plan(kafka).items():
        existing = metadata.topics.get(name)
        if existing is None or existing.error is not None:
            to_create.append(
                NewTopic(
                    name, num_partitions=partitions, replication_factor=kafka.replication_factor
                )
            )
        elif len(existing.partitions) < partitions:
            to_grow.append(NewPartitions(name, partitions))
        else:
            report.append(f"topic {name}: exists with {len(existing.partitions)} partitions")
    if to_create:
        created = admin.create_topics(to_create, request_timeout=ADMIN_TIMEOUT_SECONDS)
        for name, future in created.items():
            future.result(timeout=ADMIN_TIMEOUT_SECONDS)
            report.append(f"topic {name}: created")
    if to_grow:
        grown = admin.create_partitions(to_grow, request_timeout=ADMIN_TIMEOUT_SECONDS)
        for name, future in grown.items():
            future.result(timeout=ADMIN_TIMEOUT_SECONDS)
            report.append(f"topic {name}: partitions increased")
    return report
