"""Kafka adapters shared by the API and the processor: topics, an asyncio producer, headers."""
