"""Wire contracts: HTTP bodies and Kafka messages (pydantic models, no I/O)."""
